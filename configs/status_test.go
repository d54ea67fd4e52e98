package configs_test

import (
	"strings"
	"testing"

	"github.com/cauldron-go/cauldron/configs"
)

func TestTheStatusWorkerIsMountedOnTheLoopbackOnly(t *testing.T) {
	cases := []struct {
		name    string
		edit    func(*configs.ApacheStatus)
		wantErr string
	}{
		{"the default", func(*configs.ApacheStatus) {}, ""},
		{"IPv6 loopback", func(s *configs.ApacheStatus) { s.Address = "::1" }, ""},
		{"every address", func(s *configs.ApacheStatus) { s.Address = "*" }, "not a loopback address"},
		{"a public address", func(s *configs.ApacheStatus) { s.Address = "10.10.0.11" }, "not a loopback address"},
		{"a site's port", func(s *configs.ApacheStatus) { s.Port = 80 }, "port 80"},
		{"a path with a space", func(s *configs.ApacheStatus) { s.Path = "/jk status" }, "status worker path"},
		{"a bad worker name", func(s *configs.ApacheStatus) { s.Worker = "jk status" }, "status worker"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			site := configs.NewApacheSite(cluster(2))
			c.edit(site.Status)
			err := site.Validate()
			switch {
			case c.wantErr == "" && err != nil:
				t.Errorf("Validate: %v", err)
			case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
				t.Errorf("Validate: %v, want an error with %q", err, c.wantErr)
			}
		})
	}
}

func TestWorkersListTheStatusWorkerWithItsType(t *testing.T) {
	b, err := configs.NewWorkers(cluster(2)).Render()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"worker.list=admin,user,jkstatus\n", "worker.jkstatus.type=status\n"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("workers.properties lacks %q:\n%s", want, b)
		}
	}
	w := configs.NewWorkers(cluster(2))
	w.StatusWorker = "user1"
	if err := w.Validate(); err == nil || !strings.Contains(err.Error(), "used twice") {
		t.Errorf("a status worker named like a member: %v, want used twice", err)
	}
}
