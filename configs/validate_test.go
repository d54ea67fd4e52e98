package configs_test

import (
	"strings"
	"testing"
	"time"

	"github.com/cauldron-go/cauldron/configs"
)

// mistake is one way to break a freshly built file and the words its error must hold.
type mistake struct {
	name string
	file func() configs.File
	want string
}

func checkMistakes(t *testing.T, tests []mistake) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := tt.file()
			err := f.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, tt.want)
			}
			if _, err := f.Render(); err == nil {
				t.Fatal("Render renders a file Validate rejects")
			}
		})
	}
}

// clusterFile lets a Cluster stand in a table of Files: it validates only.
type clusterFile struct{ configs.Cluster }

func (c clusterFile) Render() ([]byte, error) { return nil, c.Validate() }

func TestClusterValidateNamesEachMistake(t *testing.T) {
	with := func(change func(c *configs.Cluster)) func() configs.File {
		return func() configs.File {
			c := cluster(2)
			change(&c)
			return clusterFile{c}
		}
	}
	checkMistakes(t, []mistake{
		{"no nodes", with(func(c *configs.Cluster) { c.Nodes = nil }), "no nodes"},
		{"index used twice", with(func(c *configs.Cluster) { c.Nodes[1].Index = 1 }), "jvmRoutes would clash"},
		{"index zero", with(func(c *configs.Cluster) { c.Nodes[0].Index = 0 }), "must be 1 or more"},
		{"address used twice", with(func(c *configs.Cluster) { c.Nodes[1].Address = c.Nodes[0].Address }), "address used twice"},
		{"bad address", with(func(c *configs.Cluster) { c.Nodes[0].Address = "10.0.0.1;" }), "not an IP address"},
		{"empty secret", with(func(c *configs.Cluster) { c.AJPSecret = "" }), "AJP secret is empty"},
		{"secret with a space", with(func(c *configs.Cluster) { c.AJPSecret = "a b" }), "AJP secret holds"},
		// The runbook's admin HTTP port is the admin site's port, on the same node.
		{"Tomcat on the site port", with(func(c *configs.Cluster) { c.Apps[0].HTTPPort = 9090 }), "9090 is also"},
		{"apps share a receiver port", with(func(c *configs.Cluster) { c.Apps[1].ReceiverPort = 4000 }), "4000 is also"},
		{"relative Tomcat home", with(func(c *configs.Cluster) { c.TomcatHome = "tools/tomcat" }), "not an absolute path"},
		{"static path without slash", with(func(c *configs.Cluster) { c.Apps[0].StaticPaths = []string{"static"} }), "static path"},
		// The release is part of a folder's name, beside the docBase.
		{"release that is a path", with(func(c *configs.Cluster) { c.Apps[0].Release = "../../etc" }), `release "../../etc"`},
		{"docBase ending in a slash", with(func(c *configs.Cluster) { c.Apps[0].DocBase += "/" }), "not a clean absolute path"},
	})
}

func TestWorkersValidateNamesEachMistake(t *testing.T) {
	with := func(change func(w *configs.Workers)) func() configs.File {
		return func() configs.File {
			w := configs.NewWorkers(cluster(2))
			change(w)
			return w
		}
	}
	checkMistakes(t, []mistake{
		{"no balancer", with(func(w *configs.Workers) { w.Balancers = nil }), "no load-balancer"},
		{"empty balancer", with(func(w *configs.Workers) { w.Balancers[0].Members = nil }), "balances no worker"},
		{"worker name twice", with(func(w *configs.Workers) { w.Balancers[1].Members[0].Name = "admin1" }), "used twice"},
		{"worker named like a balancer", with(func(w *configs.Workers) { w.Balancers[0].Members[0].Name = "user" }), "used twice"},
		{"dot in a name", with(func(w *configs.Workers) { w.Balancers[0].Name = "ad.min" }), "letters, digits"},
		{"bad port", with(func(w *configs.Workers) { w.Balancers[0].Members[0].Port = 0 }), "not in 1-65535"},
		{"no secret", with(func(w *configs.Workers) { w.Balancers[0].Members[0].Secret = "" }), "secret is empty"},
		{"secret with a newline", with(func(w *configs.Workers) { w.Balancers[0].Members[0].Secret = "a\nworker.list=x" }), "secret"},
		{"lbfactor zero", with(func(w *configs.Workers) { w.Balancers[0].Members[0].LBFactor = 0 }), "lbfactor"},
		{"negative connect ping", with(func(w *configs.Workers) { w.Balancers[0].Members[0].ConnectPingTimeoutMS = -1 }), "connect ping -1 ms"},
		{"connect ping without a connect timeout", with(func(w *configs.Workers) { w.Balancers[0].Members[0].ConnectTimeoutMS = 0 }), "needs a connect timeout"},
	})
}

func TestWebServerFilesValidateNamesEachMistake(t *testing.T) {
	apache := func(change func(s *configs.ApacheSite)) func() configs.File {
		return func() configs.File { s := configs.NewApacheSite(cluster(2)); change(s); return s }
	}
	nginx := func(change func(s *configs.NginxSite)) func() configs.File {
		return func() configs.File { s := configs.NewNginxSite(cluster(2)); change(s); return s }
	}
	checkMistakes(t, []mistake{
		{"apache: vhosts on one port", apache(func(s *configs.ApacheSite) { s.VirtualHosts[1].Port = 9090 }), "9090 is also"},
		{"apache: relative DocumentRoot", apache(func(s *configs.ApacheSite) { s.VirtualHosts[0].DocumentRoot = "www" }), "DocumentRoot"},
		{"apache: worker with a space", apache(func(s *configs.ApacheSite) { s.VirtualHosts[0].Worker = "admin x" }), "worker"},
		{"apache: static path with a star", apache(func(s *configs.ApacheSite) { s.VirtualHosts[0].StaticPaths = []string{"/static/*"} }), "static path"},
		{"jk.conf: relative workers file", func() configs.File { j := configs.NewJkConf(); j.WorkersFile = "workers.properties"; return j }, "JkWorkersFile"},
		{"jk.conf: unknown log level", func() configs.File { j := configs.NewJkConf(); j.LogLevel = "loud"; return j }, "JkLogLevel"},
		{"ports.conf: port twice", func() configs.File { return &configs.ApachePorts{Listen: []int{80, 80}} }, "80 is also"},
		{"ports.conf: empty", func() configs.File { return &configs.ApachePorts{} }, "no Listen"},
		{"nginx: no backends", nginx(func(s *configs.NginxSite) { s.Servers[0].Backends = nil }), "no server"},
		{"nginx: upstream twice", nginx(func(s *configs.NginxSite) { s.Servers[1].Upstream = s.Servers[0].Upstream }), "used twice"},
		{"nginx: root with a brace", nginx(func(s *configs.NginxSite) { s.Servers[0].Root = "/var/www/{x}" }), "root"},
		{"nginx: unknown retry condition", nginx(func(s *configs.NginxSite) { s.Servers[0].NextUpstream = []string{"http_418"} }), "proxy_next_upstream"},
		{"nginx: off with others", nginx(func(s *configs.NginxSite) { s.Servers[0].NextUpstream = []string{"error", "off"} }), "cannot be combined"},
	})
}

func TestHAProxyValidateNamesEachMistake(t *testing.T) {
	with := func(change func(h *configs.HAProxy)) func() configs.File {
		return func() configs.File {
			h := configs.NewHAProxy(cluster(2), "admin", "stats-pw-test")
			change(h)
			return h
		}
	}
	checkMistakes(t, []mistake{
		{"unknown backend", with(func(h *configs.HAProxy) { h.Frontends[0].DefaultBackend = "nope" }), "not defined"},
		{"bind twice", with(func(h *configs.HAProxy) { h.Frontends[1].Port = 9090 }), "used twice"},
		{"bad bind address", with(func(h *configs.HAProxy) { h.Frontends[0].BindAddress = "any" }), "bind address"},
		{"no servers", with(func(h *configs.HAProxy) { h.Backends[0].Servers = nil }), "no server"},
		{"server twice", with(func(h *configs.HAProxy) { h.Backends[0].Servers[1].Name = "web1" }), "used twice"},
		{"fall zero", with(func(h *configs.HAProxy) { h.Backends[0].Servers[0].Fall = 0 }), "fall 0"},
		{"unknown balance", with(func(h *configs.HAProxy) { h.Backends[0].Balance = "random-ish" }), "balance"},
		{"bad health check", with(func(h *configs.HAProxy) { h.Backends[0].HealthCheck = "/health" }), "health check"},
		{"zero timeout", with(func(h *configs.HAProxy) { h.Defaults.TimeoutClient = 0 }), "timeout client"},
		{"sub-millisecond timeout", with(func(h *configs.HAProxy) { h.Defaults.TimeoutServer = time.Microsecond }), "timeout server"},
		{"extra line with a newline", with(func(h *configs.HAProxy) { h.Global.Extra = []string{"maxconn 10\nlisten x"} }), "one non-empty line"},
		{"stats user with a colon", with(func(h *configs.HAProxy) { h.Frontends[1].Stats.User = "a:b" }), "stats user"},
		{"empty stats password", with(func(h *configs.HAProxy) { h.Frontends[1].Stats.Password = "" }), "stats password"},
	})
}

func TestDatabaseAndTomcatFilesValidateNamesEachMistake(t *testing.T) {
	hba := func(change func(h *configs.PgHBA)) func() configs.File {
		return func() configs.File { h := configs.NewPgHBA(cluster(2), "mago3d", "mago3d"); change(h); return h }
	}
	app := func(change func(p *configs.AppProperties)) func() configs.File {
		return func() configs.File {
			p := &configs.AppProperties{URL: configs.JDBCURL("db", 5432, "mago3d"), Username: "mago3d", Password: "pw"}
			change(p)
			return p
		}
	}
	checkMistakes(t, []mistake{
		{"pg_hba: address without prefix", hba(func(h *configs.PgHBA) { h.Entries[1].Address = "10.10.0.11" }), "CIDR"},
		{"pg_hba: host bits set", hba(func(h *configs.PgHBA) { h.Entries[1].Address = "10.10.0.11/24" }), "CIDR"},
		{"pg_hba: trust", hba(func(h *configs.PgHBA) { h.Entries[1].Method = "trust" }), "weak"},
		{"pg_hba: peer over TCP", hba(func(h *configs.PgHBA) { h.Entries[1].Method = "peer" }), "only on local"},
		{"pg_hba: local with address", hba(func(h *configs.PgHBA) { h.Entries[0].Address = "10.0.0.0/8" }), "takes no address"},
		{"listen_addresses: bad", func() configs.File { return &configs.PostgresListen{Addresses: []string{"a b"}} }, "listen_addresses"},
		{"setenv: runbook heap flags", func() configs.File {
			s := configs.NewSetEnv("/opt/jdk")
			s.ExtraOpts = []string{"-D-Xms4096m-Xmx4096m"}
			return s
		}, "system property"},
		{"setenv: min above max", func() configs.File { s := configs.NewSetEnv("/opt/jdk"); s.HeapMin = "2g"; return s }, "larger than"},
		{"setenv: bad heap", func() configs.File { s := configs.NewSetEnv("/opt/jdk"); s.HeapMax = "lots"; return s }, "heap sizes"},
		{"setenv: option with a space", func() configs.File {
			s := configs.NewSetEnv("/opt/jdk")
			s.ExtraOpts = []string{"-Dx=a b"}
			return s
		}, "JVM option"},
		{"setenv: relative JAVA_HOME", func() configs.File { return configs.NewSetEnv("jdk") }, "JAVA_HOME"},
		{"unit: percent in a path", func() configs.File { return configs.NewSystemdUnit(cluster(2), "gaia3d", "/opt/jdk%i") }, "JAVA_HOME"},
		{"unit: bad user", func() configs.File { return configs.NewSystemdUnit(cluster(2), "root user", "/opt/jdk") }, "User"},
		{"properties: not a JDBC URL", app(func(p *configs.AppProperties) { p.URL = "postgresql://db/mago3d" }), "jdbc:postgresql"},
		{"properties: empty password", app(func(p *configs.AppProperties) { p.Password = "" }), "password is empty"},
		{"properties: password with a newline", app(func(p *configs.AppProperties) { p.Password = "a\nspring.x=y" }), "control characters"},
	})
}

func TestErrorsNeverShowASecret(t *testing.T) {
	const secret = "s3cret-value"
	h := configs.NewHAProxy(cluster(2), "admin", secret+" #")
	w := configs.NewWorkers(cluster(2))
	w.Balancers[0].Members[0].Secret = secret + "\n"
	p := &configs.AppProperties{URL: "jdbc:postgresql://db:5432/x", Username: "x", Password: secret + "\n"}
	c := cluster(2)
	c.AJPSecret = secret + " "
	for name, f := range map[string]configs.File{"haproxy": h, "workers": w, "properties": p, "cluster": clusterFile{c}} {
		err := f.Validate()
		if err == nil {
			t.Errorf("%s: Validate accepts a bad secret", name)
			continue
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("%s: the error shows the secret: %v", name, err)
		}
	}
}
