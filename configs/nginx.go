package configs

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// NginxSite is an Nginx site file with, per app, an upstream over every node, one
// upstream per node (that node first, the others as backup) and a server that proxies
// to them. It takes Apache's place on the web nodes: like mod_jk it keeps a session on
// its node, by the jvmRoute suffix of its JSESSIONID cookie (".user1"), so the node that
// answered a request also answers the next one even before replication reached the
// other; a request of a node that is down goes to another, and a request without a
// known route to any node.
type NginxSite struct {
	Servers []NginxServer
}

// NginxServer is one upstream and the server that proxies to it.
type NginxServer struct {
	Listen int
	// ServerName is optional; empty means any name.
	ServerName string
	// Upstream names the upstream block.
	Upstream string
	// Backends are host:port of every Tomcat HTTP connector of the app. With their
	// Route set, a request whose JSESSIONID ends in ".Route" goes to that backend
	// first (the upstream Upstream_Route, the others as backup).
	Backends []NginxBackend
	// Root is where StaticPaths are served from.
	Root        string
	StaticPaths []string
	// NextUpstream is proxy_next_upstream's conditions.
	NextUpstream []string
	// NextUpstreamTimeoutSeconds is proxy_next_upstream_timeout: a request that failed
	// on a node after this long since nginx first passed it on is not passed to the next
	// node but answered 502 or 504. The balancer in front (HAProxy's timeout server) has
	// given up on it by then, so another node's answer would reach nobody, and that node
	// would have taken the session over (JvmRouteBinderValve) from a node that may still
	// hold it: a web host that was frozen woke with every request it held long past its
	// read timeout, passed them to its own node, which took their sessions from the node
	// still serving them (8 sessions lost at once, 4 s after the host woke). 0 leaves
	// nginx's default, no limit.
	NextUpstreamTimeoutSeconds int
	// ConnectTimeoutSeconds is proxy_connect_timeout: a node whose host vanished is given
	// up on (and the next one tried) after this, not after nginx's default of 60 s.
	// 0 leaves the default.
	ConnectTimeoutSeconds int
	// ReadTimeoutSeconds is proxy_read_timeout and proxy_send_timeout: a hung node
	// (a frozen host still accepts connections) is given up on after this, and a safe
	// request goes to the next node; below HAProxy's timeout server. 0 leaves nginx's 60 s.
	ReadTimeoutSeconds int
	// MaxFails failures within FailTimeoutSeconds take a node out of the upstream of new
	// sessions (Upstream) for FailTimeoutSeconds, after which it gets requests again (a
	// node that came back: new sessions within that time). 0 leaves nginx's 1 and 10 s.
	// A session's own upstream never takes its node out (see Render).
	MaxFails, FailTimeoutSeconds int
	// CheckPath, when set, is a file nginx serves itself from Root, never proxied:
	// HAProxy's health check of the web host (WebCheckPath).
	CheckPath string
}

// failParams are an upstream server's max_fails and fail_timeout, when set.
func (v NginxServer) failParams() string {
	var p string
	if v.MaxFails > 0 {
		p += fmt.Sprintf(" max_fails=%d", v.MaxFails)
	}
	if v.FailTimeoutSeconds > 0 {
		p += fmt.Sprintf(" fail_timeout=%ds", v.FailTimeoutSeconds)
	}
	return p
}

// NginxBackend is one upstream server.
type NginxBackend struct {
	Host string
	Port int
	// Route is the node's jvmRoute, which Tomcat appends to the session id; empty
	// leaves the backend without an upstream of its own (no stickiness to it).
	Route string
}

// routeUpstream names the upstream that sends to be first, the others as backup.
func (v NginxServer) routeUpstream(be NginxBackend) string { return v.Upstream + "_" + be.Route }

// routeVariable is the variable the map sets to the upstream of a request.
func (v NginxServer) routeVariable() string {
	return "$" + strings.ReplaceAll(v.Upstream, "-", "_") + "_by_route"
}

// sticky says whether any backend has a route.
func (v NginxServer) sticky() bool {
	for _, be := range v.Backends {
		if be.Route != "" {
			return true
		}
	}
	return false
}

// NewNginxSite returns the site serving every app of c.
func NewNginxSite(c Cluster) *NginxSite {
	s := &NginxSite{}
	for _, a := range c.Apps {
		srv := NginxServer{
			Listen: a.SitePort, Upstream: "mago3d_" + a.Name, Root: a.StaticRoot,
			StaticPaths:  a.StaticPaths,
			NextUpstream: []string{"error", "timeout", "http_502", "http_503"},
			// Below HAProxy's timeout server: see NextUpstreamTimeoutSeconds.
			NextUpstreamTimeoutSeconds: int(HAProxyTimeoutServer / time.Second),
			ConnectTimeoutSeconds:      1, ReadTimeoutSeconds: 2,
			MaxFails: 1, FailTimeoutSeconds: 5,
			CheckPath: WebCheckPath,
		}
		for _, n := range c.Nodes {
			srv.Backends = append(srv.Backends, NginxBackend{Host: n.Address, Port: a.HTTPPort, Route: a.JvmRoute(n)})
		}
		s.Servers = append(s.Servers, srv)
	}
	return s
}

var nextUpstreamRE = regexp.MustCompile(`^(error|timeout|invalid_header|http_(500|502|503|504|403|404|429)|non_idempotent|off)$`)

// Validate reports every mistake in s.
func (s *NginxSite) Validate() error {
	var errs []error
	if len(s.Servers) == 0 {
		errs = append(errs, errors.New("nginx site: no server"))
	}
	ports, upstreams, variables := portSet{}, map[string]bool{}, map[string]bool{}
	for _, v := range s.Servers {
		at := fmt.Sprintf("nginx site: server on %d", v.Listen)
		errs = ports.add(errs, at+": listen", v.Listen)
		if v.ServerName != "" && !isHost(v.ServerName) {
			errs = append(errs, fmt.Errorf("%s: server_name %q is not a host name", at, v.ServerName))
		}
		if !isName(v.Upstream) {
			errs = append(errs, fmt.Errorf("%s: upstream %q must be letters, digits, '-' or '_'", at, v.Upstream))
		}
		errs = appendIfSeen(errs, upstreams, v.Upstream, at+": upstream "+v.Upstream+" used twice")
		if len(v.Backends) == 0 {
			errs = append(errs, fmt.Errorf("%s: upstream has no server", at))
		}
		if v.sticky() {
			errs = appendIfSeen(errs, variables, v.routeVariable(), at+": upstream "+v.Upstream+" gives the variable "+v.routeVariable()+" of another upstream")
		}
		routes := map[string]bool{}
		for _, b := range v.Backends {
			if v.sticky() {
				if !isName(b.Route) {
					errs = append(errs, fmt.Errorf("%s: upstream server %s: route %q must be letters, digits, '-' or '_' (every server needs one when one has)", at, hostPort(b.Host, b.Port), b.Route))
				}
				errs = appendIfSeen(errs, routes, b.Route, at+": route "+b.Route+" used twice")
				errs = appendIfSeen(errs, upstreams, v.routeUpstream(b), at+": upstream "+v.routeUpstream(b)+" used twice")
			}
			if !isHost(b.Host) {
				errs = append(errs, fmt.Errorf("%s: upstream server %q is not an IP address or host name", at, b.Host))
			}
			if err := checkPort(at+": upstream server port", b.Port); err != nil {
				errs = append(errs, err)
			}
		}
		if !isPlainPath(v.Root) || strings.ContainsAny(v.Root, "{};") {
			errs = append(errs, fmt.Errorf("%s: root %q is not an absolute path without spaces, quotes, braces or ';'", at, v.Root))
		}
		errs = append(errs, validateStaticPaths(at, v.StaticPaths)...)
		for _, c := range v.NextUpstream {
			if !nextUpstreamRE.MatchString(c) {
				errs = append(errs, fmt.Errorf("%s: proxy_next_upstream %q is not a condition nginx knows", at, c))
			}
			if c == "off" && len(v.NextUpstream) > 1 {
				errs = append(errs, fmt.Errorf("%s: proxy_next_upstream off cannot be combined with other conditions", at))
			}
		}
		errs = append(errs, validateCheckPath(at, v.CheckPath)...)
		if v.ConnectTimeoutSeconds < 0 || v.ReadTimeoutSeconds < 0 || v.MaxFails < 0 || v.FailTimeoutSeconds < 0 || v.NextUpstreamTimeoutSeconds < 0 {
			errs = append(errs, fmt.Errorf("%s: timeouts and max_fails must not be negative", at))
		}
	}
	return errors.Join(errs...)
}

// Render validates s and returns the site file.
func (s *NginxSite) Render() ([]byte, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteString("# Generated by cauldron; changes here are overwritten.\n")
	for i, v := range s.Servers {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "upstream %s {\n", v.Upstream)
		for _, be := range v.Backends {
			fmt.Fprintf(&b, "    server %s%s;\n", hostPort(be.Host, be.Port), v.failParams())
		}
		b.WriteString("}\n\n")
		pass := v.Upstream
		if v.sticky() {
			// One upstream per node: its node first, the others only when it is down
			// (failed, or left out of the site for a drain: recipes.LeaveOut). Its
			// servers are never marked failed (max_fails=0): each request of a session
			// goes to the session's node and, when that fails, to the next. With
			// max_fails, a node that had failed once was tried again after fail_timeout
			// with one request, and every other request of its sessions until that one
			// was answered went to a node that may not hold the session yet (sessions
			// lost at the start of a load, long after the fault). A session passed to
			// another node comes back with that node's route (JvmRouteBinderValve), so a
			// dead node costs each of its sessions one try.
			for _, first := range v.Backends {
				fmt.Fprintf(&b, "upstream %s {\n", v.routeUpstream(first))
				fmt.Fprintf(&b, "    server %s max_fails=0;\n", hostPort(first.Host, first.Port))
				for _, other := range v.Backends {
					if other != first {
						fmt.Fprintf(&b, "    server %s max_fails=0 backup;\n", hostPort(other.Host, other.Port))
					}
				}
				b.WriteString("}\n\n")
			}
			// Tomcat ends the session id with ".jvmRoute"; a request without one, or
			// with a route this site does not know, goes to any node.
			fmt.Fprintf(&b, "map $cookie_JSESSIONID %s {\n", v.routeVariable())
			fmt.Fprintf(&b, "    default %s;\n", v.Upstream)
			for _, be := range v.Backends {
				fmt.Fprintf(&b, "    ~\\.%s$ %s;\n", be.Route, v.routeUpstream(be))
			}
			b.WriteString("}\n\n")
			pass = v.routeVariable()
		}
		b.WriteString("server {\n")
		fmt.Fprintf(&b, "    listen %d;\n", v.Listen)
		if v.ServerName != "" {
			fmt.Fprintf(&b, "    server_name %s;\n", v.ServerName)
		}
		fmt.Fprintf(&b, "    root %s;\n", v.Root)
		for _, p := range v.StaticPaths {
			fmt.Fprintf(&b, "\n    location %s {\n", p)
			b.WriteString("        try_files $uri =404;\n")
			b.WriteString("    }\n")
		}
		if v.CheckPath != "" {
			// The web host's own answer to HAProxy's check: see WebCheckPath.
			fmt.Fprintf(&b, "\n    location = %s {\n", v.CheckPath)
			b.WriteString("        access_log off;\n")
			b.WriteString("        try_files $uri =404;\n")
			b.WriteString("    }\n")
		}
		b.WriteString("\n    location / {\n")
		fmt.Fprintf(&b, "        proxy_pass http://%s;\n", pass)
		if len(v.NextUpstream) > 0 {
			fmt.Fprintf(&b, "        proxy_next_upstream %s;\n", strings.Join(v.NextUpstream, " "))
		}
		if v.NextUpstreamTimeoutSeconds > 0 {
			fmt.Fprintf(&b, "        proxy_next_upstream_timeout %ds;\n", v.NextUpstreamTimeoutSeconds)
		}
		if v.ConnectTimeoutSeconds > 0 {
			fmt.Fprintf(&b, "        proxy_connect_timeout %ds;\n", v.ConnectTimeoutSeconds)
		}
		if v.ReadTimeoutSeconds > 0 {
			fmt.Fprintf(&b, "        proxy_read_timeout %ds;\n", v.ReadTimeoutSeconds)
			fmt.Fprintf(&b, "        proxy_send_timeout %ds;\n", v.ReadTimeoutSeconds)
		}
		b.WriteString("        proxy_set_header Host $http_host;\n")
		b.WriteString("        proxy_set_header X-Real-IP $remote_addr;\n")
		b.WriteString("        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n")
		b.WriteString("        proxy_set_header X-Forwarded-Proto $scheme;\n")
		b.WriteString("    }\n")
		b.WriteString("}\n")
	}
	return b.Bytes(), nil
}
