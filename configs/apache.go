package configs

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"path"
	"strings"
)

// ApacheSite is a Debian apache2 site file (sites-available/mago3d.conf) with one
// VirtualHost per app.
type ApacheSite struct {
	VirtualHosts []ApacheVirtualHost
	// Status, when set, mounts mod_jk's status worker on a loopback-only VirtualHost,
	// for the drained restart; ports.conf must listen there (ApachePorts.Loopback).
	Status *ApacheStatus
}

// ApacheStatus is the VirtualHost of mod_jk's status worker. It listens on the loopback
// address only and admits local clients only: the status worker can stop every node.
type ApacheStatus struct {
	// Address is 127.0.0.1 or ::1.
	Address string
	Port    int
	// Path is the URL the status worker answers at ("/jkstatus").
	Path string
	// Worker is Workers.StatusWorker.
	Worker string
}

// The status worker's place on every Apache node: what the drain asks.
const (
	DefaultJkStatusPort = 8099
	DefaultJkStatusPath = "/jkstatus"
)

// NewApacheStatus returns the status VirtualHost on 127.0.0.1:8099/jkstatus.
func NewApacheStatus() *ApacheStatus {
	return &ApacheStatus{Address: "127.0.0.1", Port: DefaultJkStatusPort, Path: DefaultJkStatusPath, Worker: DefaultJkStatusWorker}
}

// URL is where a client on the node reaches the status worker.
func (s *ApacheStatus) URL() string {
	return "http://" + hostPort(s.Address, s.Port) + s.Path
}

// validate reports every mistake in s.
func (s *ApacheStatus) validate() []error {
	var errs []error
	if ip := net.ParseIP(s.Address); ip == nil || !ip.IsLoopback() {
		errs = append(errs, fmt.Errorf("apache site: status worker address %q is not a loopback address: the status worker must never be reachable from outside", s.Address))
	}
	if err := checkPort("apache site: status worker port", s.Port); err != nil {
		errs = append(errs, err)
	}
	if !strings.HasPrefix(s.Path, "/") || !isPlainPath(s.Path) || strings.ContainsAny(s.Path, "*{};") {
		errs = append(errs, fmt.Errorf("apache site: status worker path %q must start with / and hold no spaces, quotes, '*', braces or ';'", s.Path))
	}
	if !isName(s.Worker) {
		errs = append(errs, fmt.Errorf("apache site: status worker %q must be letters, digits, '-' or '_'", s.Worker))
	}
	return errs
}

// ApacheVirtualHost is one *:Port VirtualHost that hands everything to a mod_jk worker
// except the static paths, which Apache serves from DocumentRoot.
type ApacheVirtualHost struct {
	Port         int
	ServerName   string // optional
	DocumentRoot string
	// Worker is the mod_jk worker JkMount names for "/*".
	Worker string
	// StaticPaths are URL prefixes ending in "/" that are unmounted.
	StaticPaths []string
	// CheckPath, when set, is a file Apache serves itself from DocumentRoot, unmounted:
	// HAProxy's health check of the web host (WebCheckPath).
	CheckPath string
	// LogName names the vhost's error and access logs in ${APACHE_LOG_DIR}.
	LogName string
}

// NewApacheSite returns the site serving every app of c.
func NewApacheSite(c Cluster) *ApacheSite {
	s := &ApacheSite{}
	for _, a := range c.Apps {
		s.VirtualHosts = append(s.VirtualHosts, ApacheVirtualHost{
			Port: a.SitePort, DocumentRoot: a.StaticRoot, Worker: a.Name,
			StaticPaths: a.StaticPaths, LogName: "mago3d-" + a.Name, CheckPath: WebCheckPath,
		})
	}
	s.Status = NewApacheStatus()
	return s
}

// Validate reports every mistake in s.
func (s *ApacheSite) Validate() error {
	var errs []error
	if len(s.VirtualHosts) == 0 {
		errs = append(errs, errors.New("apache site: no VirtualHost"))
	}
	ports := portSet{}
	for _, v := range s.VirtualHosts {
		at := fmt.Sprintf("apache site: VirtualHost *:%d", v.Port)
		errs = ports.add(errs, at+": port", v.Port)
		if v.ServerName != "" && !isHost(v.ServerName) {
			errs = append(errs, fmt.Errorf("%s: ServerName %q is not a host name", at, v.ServerName))
		}
		if !isPlainPath(v.DocumentRoot) {
			errs = append(errs, fmt.Errorf("%s: DocumentRoot %q is not an absolute path without spaces or quotes", at, v.DocumentRoot))
		}
		if !isName(v.Worker) {
			errs = append(errs, fmt.Errorf("%s: worker %q must be letters, digits, '-' or '_'", at, v.Worker))
		}
		if !isName(v.LogName) {
			errs = append(errs, fmt.Errorf("%s: log name %q must be letters, digits, '-' or '_'", at, v.LogName))
		}
		errs = append(errs, validateStaticPaths(at, v.StaticPaths)...)
		errs = append(errs, validateCheckPath(at, v.CheckPath)...)
	}
	if s.Status != nil {
		errs = append(errs, s.Status.validate()...)
		errs = ports.add(errs, "apache site: status worker port", s.Status.Port)
	}
	return errors.Join(errs...)
}

// validateCheckPath checks a web server's own check file: one path under the root.
func validateCheckPath(at, p string) []error {
	if p == "" {
		return nil
	}
	if !strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") || strings.Count(p, "/") != 1 || !isPlainPath(p) || strings.ContainsAny(p, "*?{};") {
		return []error{fmt.Errorf("%s: check path %q must be one file name after / with no spaces, quotes, '*', '?', braces or ';'", at, p)}
	}
	return nil
}

func validateStaticPaths(at string, paths []string) []error {
	var errs []error
	for _, p := range paths {
		if !strings.HasPrefix(p, "/") || !strings.HasSuffix(p, "/") || !isPlainPath(p) || strings.ContainsAny(p, "*{};") {
			errs = append(errs, fmt.Errorf("%s: static path %q must start and end with / and hold no spaces, quotes, '*', braces or ';'", at, p))
		}
	}
	return errs
}

// isPlainPath is an absolute path that no config syntax needs to quote.
func isPlainPath(p string) bool {
	return path.IsAbs(p) && !strings.ContainsAny(p, " \t\r\n\"'\\$#<>`")
}

// Render validates s and returns the site file.
func (s *ApacheSite) Render() ([]byte, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteString("# Generated by cauldron; changes here are overwritten.\n")
	for i, v := range s.VirtualHosts {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "<VirtualHost *:%d>\n", v.Port)
		if v.ServerName != "" {
			fmt.Fprintf(&b, "    ServerName %s\n", v.ServerName)
		}
		fmt.Fprintf(&b, "    DocumentRoot %s\n", v.DocumentRoot)
		fmt.Fprintf(&b, "    <Directory %s>\n", v.DocumentRoot)
		b.WriteString("        Options -Indexes\n")
		b.WriteString("        AllowOverride None\n")
		b.WriteString("        Require all granted\n")
		b.WriteString("    </Directory>\n")
		fmt.Fprintf(&b, "    JkMount /* %s\n", v.Worker)
		for _, p := range v.StaticPaths {
			fmt.Fprintf(&b, "    JkUnMount %s* %s\n", p, v.Worker)
		}
		if v.CheckPath != "" {
			fmt.Fprintf(&b, "    JkUnMount %s %s\n", v.CheckPath, v.Worker)
		}
		fmt.Fprintf(&b, "    ErrorLog ${APACHE_LOG_DIR}/%s-error.log\n", v.LogName)
		fmt.Fprintf(&b, "    CustomLog ${APACHE_LOG_DIR}/%s-access.log combined\n", v.LogName)
		b.WriteString("</VirtualHost>\n")
	}
	if st := s.Status; st != nil {
		b.WriteString("\n# mod_jk's status worker, for drained restarts: loopback only.\n")
		fmt.Fprintf(&b, "<VirtualHost %s>\n", hostPort(st.Address, st.Port))
		fmt.Fprintf(&b, "    <Location %s>\n", st.Path)
		b.WriteString("        Require local\n")
		b.WriteString("    </Location>\n")
		fmt.Fprintf(&b, "    JkMount %s %s\n", st.Path, st.Worker)
		b.WriteString("</VirtualHost>\n")
	}
	return b.Bytes(), nil
}

// JkConf is mod_jk's module configuration. On Debian it replaces
// /etc/apache2/mods-available/jk.conf, whose jk-status mounts name workers that
// NewWorkers does not define.
type JkConf struct {
	WorkersFile string
	ShmFile     string
	LogFile     string
	LogLevel    string // error, warn, info, debug or trace
	// WatchdogIntervalSeconds, when set, runs mod_jk's upkeep (a member's recovery after
	// its recover_time) from a thread every that many seconds (JkWatchdogInterval),
	// not only when a request comes: a web host that was cut off took no requests, so
	// on its return its balancer still held the other node in error and sent that
	// node's sessions to its own node, whose copies had missed every change while it was
	// away (a count of 246 after 2062 on the lab).
	WatchdogIntervalSeconds int
}

// Debian's places for mod_jk's files.
const (
	DefaultJkWorkersFile = "/etc/libapache2-mod-jk/workers.properties"
	DefaultJkShmFile     = "/run/apache2/jk-runtime-status"
	DefaultJkLogFile     = "/var/log/apache2/mod_jk.log"
)

// NewJkConf returns the mod_jk settings with Debian's paths.
func NewJkConf() *JkConf {
	return &JkConf{
		WorkersFile: DefaultJkWorkersFile, ShmFile: DefaultJkShmFile,
		LogFile: DefaultJkLogFile, LogLevel: "info", WatchdogIntervalSeconds: 1,
	}
}

// Validate reports every mistake in j.
func (j *JkConf) Validate() error {
	var errs []error
	for _, f := range []struct{ what, path string }{
		{"JkWorkersFile", j.WorkersFile}, {"JkShmFile", j.ShmFile}, {"JkLogFile", j.LogFile},
	} {
		if !isPlainPath(f.path) {
			errs = append(errs, fmt.Errorf("jk.conf: %s %q is not an absolute path without spaces or quotes", f.what, f.path))
		}
	}
	switch j.LogLevel {
	case "error", "warn", "info", "debug", "trace":
	default:
		errs = append(errs, fmt.Errorf("jk.conf: JkLogLevel %q is not error, warn, info, debug or trace", j.LogLevel))
	}
	if j.WatchdogIntervalSeconds < 0 {
		errs = append(errs, fmt.Errorf("jk.conf: JkWatchdogInterval %d must not be negative", j.WatchdogIntervalSeconds))
	}
	return errors.Join(errs...)
}

// Render validates j and returns the file.
func (j *JkConf) Render() ([]byte, error) {
	if err := j.Validate(); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteString("# Generated by cauldron; changes here are overwritten.\n")
	b.WriteString("<IfModule jk_module>\n")
	fmt.Fprintf(&b, "    JkWorkersFile %s\n", j.WorkersFile)
	fmt.Fprintf(&b, "    JkShmFile %s\n", j.ShmFile)
	fmt.Fprintf(&b, "    JkLogFile %s\n", j.LogFile)
	fmt.Fprintf(&b, "    JkLogLevel %s\n", j.LogLevel)
	if j.WatchdogIntervalSeconds > 0 {
		fmt.Fprintf(&b, "    JkWatchdogInterval %d\n", j.WatchdogIntervalSeconds)
	}
	b.WriteString("</IfModule>\n")
	return b.Bytes(), nil
}

// ApachePorts is Debian's /etc/apache2/ports.conf.
type ApachePorts struct {
	Listen []int
	// Loopback are ports listened on 127.0.0.1 only (the status worker's).
	Loopback []int
}

// NewApachePorts returns a ports.conf listening on every app's site port.
func NewApachePorts(c Cluster) *ApachePorts {
	p := &ApachePorts{}
	for _, a := range c.Apps {
		p.Listen = append(p.Listen, a.SitePort)
	}
	p.Loopback = []int{DefaultJkStatusPort}
	return p
}

// Validate reports every mistake in p.
func (p *ApachePorts) Validate() error {
	var errs []error
	if len(p.Listen) == 0 {
		errs = append(errs, errors.New("ports.conf: no Listen"))
	}
	ports := portSet{}
	for _, port := range p.Listen {
		errs = ports.add(errs, "ports.conf: Listen", port)
	}
	for _, port := range p.Loopback {
		errs = ports.add(errs, "ports.conf: Listen 127.0.0.1", port)
	}
	return errors.Join(errs...)
}

// Render validates p and returns the file.
func (p *ApachePorts) Render() ([]byte, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteString("# Generated by cauldron; changes here are overwritten.\n")
	for _, port := range p.Listen {
		fmt.Fprintf(&b, "Listen %d\n", port)
	}
	for _, port := range p.Loopback {
		fmt.Fprintf(&b, "Listen 127.0.0.1:%d\n", port)
	}
	return b.Bytes(), nil
}
