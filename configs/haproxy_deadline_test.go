package configs_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cauldron-go/cauldron/configs"
)

func TestHAProxyGivesUpOnARequestAfterEveryTryHadItsTimeouts(t *testing.T) {
	lab := configs.NewHAProxy(cluster(2), "admin", "pw").Defaults
	for _, tc := range []struct {
		name  string
		retry int
		extra []string
		want  time.Duration
	}{
		// 4 tries of connect 2 s + server 3.5 s, and 3 turn-arounds of 1 s.
		{"the lab's defaults", 0, nil, 25 * time.Second},
		{"one retry", 1, nil, 2*5500*time.Millisecond + time.Second},
		{"no retry", 0, []string{"retries 0"}, 5500 * time.Millisecond},
		{"a slower app's timeout server", 0, []string{"timeout server 60s"}, 4*62*time.Second + 3*time.Second},
		{"a connect timeout without a unit is milliseconds, and a turn-around no longer than it", 0,
			[]string{"timeout connect 500"}, 4*4*time.Second + 3*500*time.Millisecond},
		{"the last line wins", 0, []string{"timeout server 1m", "timeout server 10s"}, 4*12*time.Second + 3*time.Second},
		{"a line HAProxy would reject counts for nothing", 0, []string{"timeout server soon", "retries -1"}, 25 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := lab
			if tc.retry > 0 {
				d.Retries = tc.retry
			}
			d.Extra = tc.extra
			if got := d.GivesUpWithin(); got != tc.want {
				t.Errorf("GivesUpWithin() = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestHAProxyStampsEveryRequestWithTheMomentItGivesUpOnIt runs haproxy with the rendered
// file in front of a server that says what deadline each request came with: the
// header is now plus GivesUpWithin, and a client's own header of that name does not get
// through.
func TestHAProxyStampsEveryRequestWithTheMomentItGivesUpOnIt(t *testing.T) {
	if testing.Short() {
		t.Skip("starts haproxy")
	}
	haproxy := need(t, "haproxy")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, strings.Join(r.Header.Values(configs.RequestDeadlineHeader), ","))
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	site := freePort(t)
	c := cluster(2)
	c.Apps = c.Apps[:1]
	c.Apps[0].SitePort = site
	h := configs.NewHAProxy(c, "admin", "stats-pw-test")
	h.Global = configs.HAProxyGlobal{}
	h.Frontends[0].BindAddress = "127.0.0.1"
	b := &h.Backends[0]
	b.HealthCheck = ""
	port := ln.Addr().(*net.TCPAddr).Port
	for i := range b.Servers {
		b.Servers[i].Address, b.Servers[i].Port = "127.0.0.1", port
	}
	file := write(t, t.TempDir(), "haproxy.cfg", h)
	out := runHAProxy(t, haproxy, file)

	within := h.Defaults.GivesUpWithin()
	for _, own := range []string{"", "1", strconv.FormatInt(time.Now().Add(time.Hour).UnixMilli(), 10)} {
		var got string
		var before, after time.Time
		deadline := time.Now().Add(10 * time.Second)
		for {
			req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/", site), nil)
			if own != "" {
				req.Header.Set(configs.RequestDeadlineHeader, own)
			}
			before = time.Now()
			resp, err := http.DefaultClient.Do(req)
			after = time.Now()
			if err == nil {
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					got = string(body)
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("haproxy did not answer: %v\n%s", err, out.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
		ms, err := strconv.ParseInt(got, 10, 64)
		if err != nil {
			t.Fatalf("with the client's header %q the server got %q, want one deadline", own, got)
		}
		at := time.UnixMilli(ms)
		if at.Before(before.Add(within).Truncate(time.Millisecond)) || at.After(after.Add(within)) {
			t.Errorf("with the client's header %q the deadline is %v after the request, want %v", own, at.Sub(before), within)
		}
	}
}
