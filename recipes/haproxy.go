package recipes

import (
	"github.com/cauldron-go/cauldron/configs"
	"github.com/cauldron-go/cauldron/inventory"
	"github.com/cauldron-go/cauldron/steps"
)

// HAProxyHandler reloads HAProxy: a reload keeps established connections.
const HAProxyHandler = "reload haproxy"

// HAProxyConfigPath is Debian's haproxy.cfg.
const HAProxyConfigPath = "/etc/haproxy/haproxy.cfg"

// ConfigureHAProxy returns the recipe of the load balancer: HAProxy from Debian's
// package, /etc/haproxy/haproxy.cfg (mode 0640 root:haproxy) rendered from the typed
// model cfg and checked with `haproxy -c` before it replaces the working one, the
// service enabled and started, and a reload (which keeps established connections) only
// when the file changed. cfg is configs.NewHAProxy's model of the cluster, changed as
// you like, or one you write yourself; a model that does not validate is refused
// before anything connects.
//
//	cfg := configs.NewHAProxy(cluster, "admin", statsPassword)
//	cfg.Defaults.Extra = append(cfg.Defaults.Extra, "option dontlognull")
//	r, err := recipes.ConfigureHAProxy(cfg)
func ConfigureHAProxy(cfg *configs.HAProxy) (*steps.Recipe, error) {
	content, err := rendered(cfg)
	if err != nil {
		return nil, err
	}
	r := steps.NewRecipe("haproxy",
		steps.Packages{Names: []string{"haproxy"}},
		steps.Notify(steps.File{Path: HAProxyConfigPath, Content: content, Mode: 0o640, Owner: "root", Group: "haproxy",
			// Not -q: it silences the ALERT lines that say what is wrong.
			ValidateCmd: "haproxy -c -f %s", SecretLines: cfg.SecretLines()}, HAProxyHandler),
		steps.Service{Name: "haproxy.service", Enabled: ptr(true), State: steps.Started},
	)
	var ports []int
	for _, f := range cfg.Frontends {
		ports = append(ports, f.Port)
	}
	r.Handle(HAProxyHandler, ReloadHAProxy{Ports: ports})
	return r, nil
}

// HAProxyConfig is the load balancer over the web hosts: a frontend per app (80 user,
// 9090 admin), round robin over every web host with health checks on the app's
// /health, fall 3 rise 2, and the stats page behind a password.
func (t *Topology) HAProxyConfig(v Vars) *configs.HAProxy {
	cfg := configs.NewHAProxy(t.Cluster, v.HAProxyStatsUser, v.HAProxyStatsPassword)
	for i := range cfg.Frontends {
		cfg.Frontends[i].BindAddress = v.HAProxyBind
	}
	// The servers are the web hosts, which need not be the Tomcat hosts.
	for i := range cfg.Backends {
		b := &cfg.Backends[i]
		tmpl := b.Servers[0]
		b.Servers = b.Servers[:0]
		for _, w := range t.Webs {
			s := tmpl
			s.Name, s.Address = w.Name, w.Address
			b.Servers = append(b.Servers, s)
		}
	}
	cfg.Defaults.Extra = append(cfg.Defaults.Extra, v.HAProxyExtra...)
	return cfg
}

func (t *Topology) haproxyRecipe(h *inventory.Host) (*steps.Recipe, error) {
	v, err := t.Vars(h)
	if err != nil {
		return nil, err
	}
	return ConfigureHAProxy(t.HAProxyConfig(v))
}
