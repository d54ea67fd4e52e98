package configs_test

import (
	"strings"
	"testing"

	"github.com/cauldron-go/cauldron/configs"
)

func TestIPv6AddressesAreWrittenInBracketsBeforeTheirPort(t *testing.T) {
	c := configs.NewCluster([]configs.Node{
		{Name: "web1", Address: "fd00::11", Index: 1},
		{Name: "web2", Address: "192.0.2.12", Index: 2},
	}, "s3cret")
	haproxy := configs.NewHAProxy(c, "admin", "statspw")
	haproxy.Frontends[0].BindAddress = "::"
	tests := []struct {
		name string
		file configs.File
		want []string
	}{
		{"haproxy.cfg", haproxy, []string{
			"bind [::]:9090\n", "bind *:80\n",
			"server web1 [fd00::11]:9090 check", "server web2 192.0.2.12:9090 check",
		}},
		{"nginx site", configs.NewNginxSite(c), []string{
			"server [fd00::11]:8081 max_fails", "server 192.0.2.12:8081 max_fails",
		}},
		{"application.properties", &configs.AppProperties{
			URL: configs.JDBCURL("fd00::5", 5432, "mago3d"), Username: "mago3d", Password: "dbpw",
		}, []string{"spring.datasource.url=jdbc:postgresql://[fd00::5]:5432/mago3d\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.file.Render()
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(b), w) {
					t.Errorf("the file lacks %q:\n%s", w, b)
				}
			}
		})
	}
}
