package configs

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// HAProxy is HAProxy 2.6's haproxy.cfg: one frontend and one backend per app.
type HAProxy struct {
	Global    HAProxyGlobal
	Defaults  HAProxyDefaults
	Frontends []HAProxyFrontend
	Backends  []HAProxyBackend
}

// HAProxyGlobal is the global section.
type HAProxyGlobal struct {
	// Log lines, e.g. "/dev/log local0".
	Log []string
	// StatsSocket is the runtime API socket path; empty leaves it out.
	StatsSocket string
	User, Group string
	// Extra lines are written as they are.
	Extra []string
}

// HAProxyDefaults is the defaults section.
type HAProxyDefaults struct {
	Mode           string // http
	Options        []string
	TimeoutConnect time.Duration
	TimeoutClient  time.Duration
	TimeoutServer  time.Duration
	// TimeoutCheck bounds a health check's answer once it connected (its connect is
	// bounded by min(timeout connect, inter)); 0 leaves it out, and inter bounds both.
	TimeoutCheck time.Duration
	// Retries is how many times a failed request is tried again (0 leaves HAProxy's 3).
	Retries int
	// RetryOn lists the failures a request is retried on (retry-on); empty leaves
	// HAProxy's conn-failure only.
	RetryOn []string
	Extra   []string
}

// HAProxyFrontend is a frontend: what it binds and which backend it feeds.
type HAProxyFrontend struct {
	Name string
	// BindAddress is the address to bind; empty binds every address.
	BindAddress    string
	Port           int
	DefaultBackend string
	// Stats, when set, serves the stats page on this frontend.
	Stats *HAProxyStats
	Extra []string
}

// HAProxyStats is a password-protected stats page.
type HAProxyStats struct {
	URI      string // "/haproxy?stats"
	User     string
	Password string
}

// HAProxyBackend balances over the web nodes.
type HAProxyBackend struct {
	Name    string
	Balance string // roundrobin
	// HealthCheck is the request of "option httpchk", e.g. "GET /health"; empty checks
	// TCP connects only.
	HealthCheck string
	// RetrySafeMethodsOnly limits retry-on beyond a failed connect to GET and HEAD: a
	// request that may have changed something is never sent twice.
	RetrySafeMethodsOnly bool
	// Fallback adds each server a second time as an unchecked backup ("<name>_fallback
	// ... backup", with option allbackups): HAProxy uses backups only while every
	// checked server is down, so health checks that time out on an overloaded machine
	// for every web host at once leave the site served by all of them, not answered
	// 503 by HAProxy. A backup that is really gone fails its connect, which is retried
	// on another (retry-on conn-failure, redispatch).
	Fallback bool
	// NoLinger closes a connection to a web host with a reset when HAProxy gives up on
	// it (option nolinger): the kernel drops the request bytes it could not deliver
	// instead of sending them again for up to a minute. A host cut off the network got
	// those retransmitted requests seconds after it came back, and ran them with its
	// stale copies of sessions that had moved on (a session lost 3 s after the return,
	// 6 requests done late).
	NoLinger bool
	// StampDeadline sets RequestDeadlineHeader on every request to the moment HAProxy
	// has given up on it for sure (HAProxyDefaults.GivesUpWithin after it arrived), so
	// that a host that held it past that refuses it instead of running it
	// (configs.ClassAbandonedRequestValve). A client's own header of that name is
	// replaced.
	StampDeadline bool
	Servers       []HAProxyServer
	Extra         []string
}

// RequestDeadlineHeader carries the moment, in milliseconds since the epoch, after
// which the balancer in front no longer waits for a request's answer
// (HAProxyBackend.StampDeadline, configs.ClassAbandonedRequestValve).
const RequestDeadlineHeader = "X-Request-Deadline"

// GivesUpWithin is the longest HAProxy may still wait for an answer to a request after
// it arrived: every try (the first and Retries more, HAProxy's 3 when 0) may spend
// timeout connect on its connect and timeout server on its answer, with HAProxy's turn-around
// (min(timeout connect, 1 s)) before each retry. Lines of Extra that set timeout
// connect, timeout server or retries count over the typed fields, as in HAProxy (the
// last one wins). It is a bound, not a guess: real requests end far sooner (the lab's:
// 3.5 s); what it is for is to tell the requests nobody waits for any more.
func (d HAProxyDefaults) GivesUpWithin() time.Duration {
	connect, server, retries := d.TimeoutConnect, d.TimeoutServer, d.Retries
	if retries == 0 {
		retries = 3
	}
	for _, l := range d.Extra {
		f := strings.Fields(l)
		switch {
		case len(f) == 3 && f[0] == "timeout" && f[1] == "connect":
			if v, ok := parseHAProxyDuration(f[2]); ok {
				connect = v
			}
		case len(f) == 3 && f[0] == "timeout" && f[1] == "server":
			if v, ok := parseHAProxyDuration(f[2]); ok {
				server = v
			}
		case len(f) == 2 && f[0] == "retries":
			if v, err := strconv.Atoi(f[1]); err == nil && v >= 0 {
				retries = v
			}
		}
	}
	return time.Duration(retries+1)*(connect+server) + time.Duration(retries)*min(connect, time.Second)
}

// parseHAProxyDuration reads a time as HAProxy does: a number with an optional unit
// (us, ms, s, m, h, d), milliseconds without one.
func parseHAProxyDuration(s string) (time.Duration, bool) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	n, err := strconv.ParseInt(s[:i], 10, 64)
	if i == 0 || err != nil {
		return 0, false
	}
	unit, ok := map[string]time.Duration{"": time.Millisecond, "us": time.Microsecond, "ms": time.Millisecond,
		"s": time.Second, "m": time.Minute, "h": time.Hour, "d": 24 * time.Hour}[s[i:]]
	return time.Duration(n) * unit, ok
}

// fallbackSuffix names a server's unchecked backup twin (HAProxyBackend.Fallback).
const fallbackSuffix = "_fallback"

// HAProxyServer is one web node.
type HAProxyServer struct {
	Name    string
	Address string
	Port    int
	Fall    int
	Rise    int
	// Inter is the time between health checks; FastInter between the checks of a
	// server that began to fail or to recover; DownInter between the checks of a
	// server that is down. 0 leaves each out (HAProxy: 2 s, and inter for the others).
	Inter, FastInter, DownInter time.Duration
}

// HealthPath is the apps' health page: it answers 200 without making a session.
const HealthPath = "/health"

// WebCheckPath is the file every web server serves itself from each site's static
// root (WebCheckBody), never through to a Tomcat: HAProxy's health check of a web
// host. A check through to a Tomcat measured the slowest layer under load (hundreds of
// milliseconds on a busy machine) and so needed a timeout check of 1 s, which left a
// frozen web host in rotation for about 3.5 s; a static answer comes in a few
// milliseconds even on a loaded machine, so the check can give up after
// HAProxyTimeoutCheck. A dead or hung Tomcat behind a web host is the web server's own
// balancer's business (mod_jk's CPing, Nginx's timeouts), and a web host with no node
// left answers 503, which HAProxy retries on another host (retry-on 503).
const WebCheckPath = "/web-check.txt"

// WebCheckBody is WebCheckPath's content.
const WebCheckBody = "ok\n"

// HAProxyTimeoutCheck bounds a health check's answer (WebCheckPath); with a check every
// 500 ms and fall 1, a frozen web host is out within about 1 s of its freeze, and the
// requests HAProxy sent it until then fail at HAProxyTimeoutServer, within 5 s of the
// fault.
const HAProxyTimeoutCheck = 500 * time.Millisecond

// HAProxyTimeoutServer is how long HAProxy waits for a web host's answer. The requests
// a host took in before it froze or dropped off fail after this (they are not retried:
// the host may still do them), and the health checks take such a host out within about
// 1 s (HAProxyTimeoutCheck), so 3.5 s makes the last of them fail within 5 s of the
// fault. It stays above the web servers' own timeouts for a node
// (DefaultAJPReplyTimeoutMS, the Nginx read timeout), which retry a safe request on
// another node first, and as far above the slowest answer of a loaded machine as that
// allows: with 3 s, 5 of 10,553 requests failed while a killed Tomcat restarted on the
// lab at a load average of 40-86 (the slowest answered request took 2.9 s).
const HAProxyTimeoutServer = 3500 * time.Millisecond

// HostReturnRise is how many checks in a row a web host that was out must pass before
// it takes requests again: about 7 s at fastinter 250 ms. A host that was frozen or cut
// off wakes with its web server's view of the nodes from before: the requests it held
// timed out all at once (its clock jumped), so it holds the other node failed (Nginx's
// fail_timeout 5 s, mod_jk's recover_time 3 s after its upkeep) and sends that node's
// sessions to its own node, whose copies missed every change made while it was away
// (127 counts broken behind Nginx within a second of a frozen host's return, with rise
// 2). Kept out a little longer than those, it comes back with a sane view.
const HostReturnRise = 28

// retryOnKeywords are what retry-on takes besides status codes.
var retryOnKeywords = []string{"none", "conn-failure", "empty-response", "junk-response", "response-timeout", "0rtt-rejected", "all-retryable-errors"}

// retryOnStatuses are the statuses retry-on takes (HAProxy 2.6).
var retryOnStatuses = []string{"401", "403", "404", "408", "425", "500", "501", "502", "503", "504"}

// NewHAProxy returns the load balancer over c's nodes. statsUser and statsPassword
// guard the stats page on the first app's frontend.
func NewHAProxy(c Cluster, statsUser, statsPassword string) *HAProxy {
	h := &HAProxy{
		Global: HAProxyGlobal{
			Log:         []string{"/dev/log local0", "/dev/log local1 notice"},
			StatsSocket: "/run/haproxy/admin.sock",
			User:        "haproxy", Group: "haproxy",
		},
		Defaults: HAProxyDefaults{
			// redispatch 1: a request whose server does not accept the connection goes to
			// another server on its first retry, instead of waiting out every retry on a
			// node that vanished before the health checks marked it down.
			Mode: "http", Options: []string{"httplog", "dontlognull", "forwardfor", "redispatch 1"},
			// A hung web host (frozen, or cut off with its connections open) answers
			// nothing: a request to it is given up after timeout server. That request is
			// not sent again: the host may have done it, and does it when it wakes (a
			// frozen host runs the requests it held, a second count for a retried one).
			// What is sure not to have been done (no connection, the connection closed
			// before any answer, a 503 from a web server with no node left) is retried on
			// another host when it is safe to repeat (GET, HEAD: RetrySafeMethodsOnly).
			// timeout server stays above the slowest layer under it (mod_jk's reply
			// timeout, Nginx's read timeout) and short enough that the requests a host
			// hung fail within a few seconds; an app with slower pages raises it with
			// haproxy_extra ("timeout server 60s").
			TimeoutConnect: 2 * time.Second, TimeoutClient: 50 * time.Second, TimeoutServer: HAProxyTimeoutServer,
			// The check of a hung host fails after HAProxyTimeoutCheck instead of inter;
			// fall 1 takes it out at once.
			TimeoutCheck: HAProxyTimeoutCheck,
			//
			// A 502 from a web host is retried too (GET only, RetrySafeMethodsOnly): its
			// balancer says the node broke the connection in the middle of its answer
			// (kill -9 of a Tomcat that had sent its headers, which mod_jk never
			// recovers, whatever recovery_options says). Such a node can no longer do
			// the request later, the way a hung one can: it did it before it died or
			// never will. It is the GET that mod_jk's recovery_options 16 already sends
			// again when the node dies before its headers; an app that counts repeats
			// tells them apart by the request's Idempotency-Key, as the lab's does.
			RetryOn: []string{"conn-failure", "empty-response", "502", "503"},
		},
	}
	for _, a := range c.Apps {
		h.Frontends = append(h.Frontends, HAProxyFrontend{Name: a.Name, Port: a.SitePort, DefaultBackend: a.Name})
		b := HAProxyBackend{Name: a.Name, Balance: "roundrobin", HealthCheck: "GET " + WebCheckPath, RetrySafeMethodsOnly: true, Fallback: true, NoLinger: true, StampDeadline: true}
		for _, n := range c.Nodes {
			// Frequent checks, and one failed check takes a host out: a web host that is
			// out by mistake costs nothing but its share for a few seconds (HAProxy keeps
			// no session on it and lets its requests finish: the web servers route each
			// session to its node), and Fallback keeps the site up if every host is out.
			// A host comes back only after HostReturnRise checks in a row.
			b.Servers = append(b.Servers, HAProxyServer{Name: n.Name, Address: n.Address, Port: a.SitePort, Fall: 1, Rise: HostReturnRise,
				Inter: 500 * time.Millisecond, FastInter: 250 * time.Millisecond, DownInter: 500 * time.Millisecond})
		}
		h.Backends = append(h.Backends, b)
	}
	// The user site is the one the public reaches on port 80; the stats page rides on it.
	for i := range h.Frontends {
		if h.Frontends[i].Name == "user" || i == len(h.Frontends)-1 {
			h.Frontends[i].Stats = &HAProxyStats{URI: "/haproxy?stats", User: statsUser, Password: statsPassword}
			break
		}
	}
	return h
}

// Validate reports every mistake in h that this package can see; haproxy -c sees more.
func (h *HAProxy) Validate() error {
	var errs []error
	errs = append(errs, validateLines("haproxy.cfg: global: log", h.Global.Log)...)
	if h.Global.StatsSocket != "" && !isPlainPath(h.Global.StatsSocket) {
		errs = append(errs, fmt.Errorf("haproxy.cfg: global: stats socket %q is not an absolute path", h.Global.StatsSocket))
	}
	for _, id := range []string{h.Global.User, h.Global.Group} {
		if id != "" && !isName(id) {
			errs = append(errs, fmt.Errorf("haproxy.cfg: global: user or group %q is not a name", id))
		}
	}
	errs = append(errs, validateLines("haproxy.cfg: global: extra", h.Global.Extra)...)
	d := h.Defaults
	if d.Mode != "http" && d.Mode != "tcp" {
		errs = append(errs, fmt.Errorf("haproxy.cfg: defaults: mode %q is not http or tcp", d.Mode))
	}
	for _, t := range []struct {
		what string
		d    time.Duration
	}{{"connect", d.TimeoutConnect}, {"client", d.TimeoutClient}, {"server", d.TimeoutServer}} {
		if t.d < time.Millisecond {
			errs = append(errs, fmt.Errorf("haproxy.cfg: defaults: timeout %s %v must be 1ms or more", t.what, t.d))
		}
	}
	if d.TimeoutCheck < 0 || d.Retries < 0 {
		errs = append(errs, fmt.Errorf("haproxy.cfg: defaults: timeout check %v and retries %d must not be negative", d.TimeoutCheck, d.Retries))
	}
	for _, r := range d.RetryOn {
		if !slices.Contains(retryOnKeywords, r) && !slices.Contains(retryOnStatuses, r) {
			errs = append(errs, fmt.Errorf("haproxy.cfg: defaults: retry-on %q is not one of %s or a status of %s", r, strings.Join(retryOnKeywords, ", "), strings.Join(retryOnStatuses, ", ")))
		}
	}
	errs = append(errs, validateLines("haproxy.cfg: defaults: option", d.Options)...)
	errs = append(errs, validateLines("haproxy.cfg: defaults: extra", d.Extra)...)

	// Frontends and backends have a name space each.
	names := map[string]bool{}
	backends := map[string]bool{}
	for _, b := range h.Backends {
		backends[b.Name] = true
	}
	binds := map[string]bool{}
	if len(h.Frontends) == 0 {
		errs = append(errs, errors.New("haproxy.cfg: no frontend"))
	}
	for _, f := range h.Frontends {
		at := fmt.Sprintf("haproxy.cfg: frontend %q", f.Name)
		if !isName(f.Name) {
			errs = append(errs, fmt.Errorf("%s: name must be letters, digits, '-' or '_'", at))
		}
		errs = appendIfSeen(errs, names, f.Name, at+": name used twice")
		if f.BindAddress != "" {
			if _, err := netip.ParseAddr(f.BindAddress); err != nil {
				errs = append(errs, fmt.Errorf("%s: bind address %q is not an IP address", at, f.BindAddress))
			}
		}
		if err := checkPort(at+": bind port", f.Port); err != nil {
			errs = append(errs, err)
		}
		errs = appendIfSeen(errs, binds, bindString(f.BindAddress, f.Port), at+": bind "+bindString(f.BindAddress, f.Port)+" used twice")
		if !backends[f.DefaultBackend] {
			errs = append(errs, fmt.Errorf("%s: default backend %q is not defined", at, f.DefaultBackend))
		}
		if s := f.Stats; s != nil {
			if !strings.HasPrefix(s.URI, "/") || strings.ContainsAny(s.URI, " \t\r\n#") {
				errs = append(errs, fmt.Errorf("%s: stats uri %q must start with / and hold no spaces or '#'", at, s.URI))
			}
			if s.User == "" || strings.ContainsAny(s.User, ": \t\r\n#\"'\\") {
				errs = append(errs, fmt.Errorf("%s: stats user %q is empty or holds ':', whitespace, quotes or '#'", at, s.User))
			}
			// The password is never quoted back.
			if s.Password == "" || strings.ContainsAny(s.Password, " \t\r\n#\"'\\") {
				errs = append(errs, fmt.Errorf("%s: the stats password is empty or holds whitespace, quotes, '\\' or '#'", at))
			}
		}
		errs = append(errs, validateLines(at+": extra", f.Extra)...)
	}
	if len(h.Backends) == 0 {
		errs = append(errs, errors.New("haproxy.cfg: no backend"))
	}
	backendNames := map[string]bool{}
	for _, b := range h.Backends {
		at := fmt.Sprintf("haproxy.cfg: backend %q", b.Name)
		if !isName(b.Name) {
			errs = append(errs, fmt.Errorf("%s: name must be letters, digits, '-' or '_'", at))
		}
		errs = appendIfSeen(errs, backendNames, b.Name, at+": name used twice")
		switch b.Balance {
		case "roundrobin", "static-rr", "leastconn", "first", "source":
		default:
			errs = append(errs, fmt.Errorf("%s: balance %q is not roundrobin, static-rr, leastconn, first or source", at, b.Balance))
		}
		if b.HealthCheck != "" {
			method, uri, ok := strings.Cut(b.HealthCheck, " ")
			if !ok || !isName(method) || !strings.HasPrefix(uri, "/") || strings.ContainsAny(uri, " \t\r\n#") {
				errs = append(errs, fmt.Errorf("%s: health check %q is not \"METHOD /path\"", at, b.HealthCheck))
			}
		}
		if len(b.Servers) == 0 {
			errs = append(errs, fmt.Errorf("%s: no server", at))
		}
		servers := map[string]bool{}
		for _, s := range b.Servers {
			sat := fmt.Sprintf("%s: server %q", at, s.Name)
			if !isName(s.Name) {
				errs = append(errs, fmt.Errorf("%s: name must be letters, digits, '-' or '_'", sat))
			}
			errs = appendIfSeen(errs, servers, s.Name, sat+": name used twice")
			if b.Fallback {
				errs = appendIfSeen(errs, servers, s.Name+fallbackSuffix, sat+": name "+s.Name+fallbackSuffix+" is also its fallback's")
			}
			if !isHost(s.Address) {
				errs = append(errs, fmt.Errorf("%s: address %q is not an IP address or host name", sat, s.Address))
			}
			if err := checkPort(sat+": port", s.Port); err != nil {
				errs = append(errs, err)
			}
			if s.Fall < 1 || s.Rise < 1 {
				errs = append(errs, fmt.Errorf("%s: fall %d and rise %d must be 1 or more", sat, s.Fall, s.Rise))
			}
			if s.Inter < 0 || s.FastInter < 0 || s.DownInter < 0 {
				errs = append(errs, fmt.Errorf("%s: inter %v, fastinter %v and downinter %v must not be negative", sat, s.Inter, s.FastInter, s.DownInter))
			}
		}
		errs = append(errs, validateLines(at+": extra", b.Extra)...)
	}
	return errors.Join(errs...)
}

func bindString(addr string, port int) string {
	if addr == "" {
		addr = "*"
	}
	// HAProxy reads an IPv6 bind address up to the last colon, but brackets are clearer.
	return hostPort(addr, port)
}

// validateLines checks raw lines: each must fit on one non-empty line, so one entry
// cannot start a new section.
func validateLines(at string, lines []string) []error {
	var errs []error
	for _, l := range lines {
		if strings.TrimSpace(l) == "" || !isLine(l) {
			errs = append(errs, fmt.Errorf("%s: %q must be one non-empty line", at, l))
		}
	}
	return errs
}

// haproxyDuration writes d in the largest unit HAProxy reads that keeps it exact.
func haproxyDuration(d time.Duration) string {
	ms := d.Milliseconds()
	switch {
	case ms%60000 == 0:
		return fmt.Sprintf("%dm", ms/60000)
	case ms%1000 == 0:
		return fmt.Sprintf("%ds", ms/1000)
	}
	return fmt.Sprintf("%dms", ms)
}

// Render validates h and returns the file.
func (h *HAProxy) Render() ([]byte, error) {
	if err := h.Validate(); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	line := func(format string, args ...any) { fmt.Fprintf(&b, "    "+format+"\n", args...) }
	b.WriteString("# Generated by cauldron; changes here are overwritten.\n")
	b.WriteString("global\n")
	for _, l := range h.Global.Log {
		line("log %s", l)
	}
	if h.Global.StatsSocket != "" {
		line("stats socket %s mode 660 level admin", h.Global.StatsSocket)
	}
	if h.Global.User != "" {
		line("user %s", h.Global.User)
	}
	if h.Global.Group != "" {
		line("group %s", h.Global.Group)
	}
	line("daemon")
	for _, l := range h.Global.Extra {
		line("%s", l)
	}

	b.WriteString("\ndefaults\n")
	line("log global")
	line("mode %s", h.Defaults.Mode)
	for _, o := range h.Defaults.Options {
		line("option %s", o)
	}
	line("timeout connect %s", haproxyDuration(h.Defaults.TimeoutConnect))
	line("timeout client %s", haproxyDuration(h.Defaults.TimeoutClient))
	line("timeout server %s", haproxyDuration(h.Defaults.TimeoutServer))
	if h.Defaults.TimeoutCheck > 0 {
		line("timeout check %s", haproxyDuration(h.Defaults.TimeoutCheck))
	}
	if h.Defaults.Retries > 0 {
		line("retries %d", h.Defaults.Retries)
	}
	if len(h.Defaults.RetryOn) > 0 {
		line("retry-on %s", strings.Join(h.Defaults.RetryOn, " "))
	}
	for _, l := range h.Defaults.Extra {
		line("%s", l)
	}

	for _, f := range h.Frontends {
		fmt.Fprintf(&b, "\nfrontend %s\n", f.Name)
		line("bind %s", bindString(f.BindAddress, f.Port))
		if s := f.Stats; s != nil {
			line("stats enable")
			line("stats uri %s", s.URI)
			line("stats realm HAProxy\\ Statistics")
			line("stats auth %s:%s", s.User, s.Password)
		}
		for _, l := range f.Extra {
			line("%s", l)
		}
		line("default_backend %s", f.DefaultBackend)
	}
	for _, be := range h.Backends {
		fmt.Fprintf(&b, "\nbackend %s\n", be.Name)
		line("balance %s", be.Balance)
		if be.HealthCheck != "" {
			line("option httpchk %s", be.HealthCheck)
		}
		if be.Fallback {
			line("option allbackups")
		}
		if be.NoLinger {
			line("option nolinger")
		}
		if be.RetrySafeMethodsOnly {
			line("http-request disable-l7-retry unless METH_GET")
		}
		if be.StampDeadline {
			// date(offset, ms): now plus offset, both in milliseconds.
			line("http-request set-header %s %%[date(%d,ms)]", RequestDeadlineHeader, h.Defaults.GivesUpWithin().Milliseconds())
		}
		for _, l := range be.Extra {
			line("%s", l)
		}
		for _, s := range be.Servers {
			check := fmt.Sprintf("check fall %d rise %d", s.Fall, s.Rise)
			for _, iv := range []struct {
				name string
				d    time.Duration
			}{{"inter", s.Inter}, {"fastinter", s.FastInter}, {"downinter", s.DownInter}} {
				if iv.d > 0 {
					check += " " + iv.name + " " + haproxyDuration(iv.d)
				}
			}
			line("server %s %s %s", s.Name, hostPort(s.Address, s.Port), check)
		}
		if be.Fallback {
			for _, s := range be.Servers {
				line("server %s%s %s backup", s.Name, fallbackSuffix, hostPort(s.Address, s.Port))
			}
		}
	}
	return b.Bytes(), nil
}
