// Package configs models the cluster's configuration files as typed Go values: Tomcat's
// server.xml, setenv.sh and systemd unit, the app's application.properties, mod_jk's
// workers.properties, the Apache and Nginx sites, haproxy.cfg and PostgreSQL's pg_hba.conf.
//
// Each file is one type with Validate, which reports every mistake it finds before
// anything connects to a host, and Render, which validates and returns the file's bytes.
// The New… constructors build each file from one small Cluster description with the
// runbook's defaults; recipes may change any field of the result before rendering.
package configs

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path"
	"regexp"
	"strconv"
	"strings"
)

// File is what every model in this package is.
type File interface {
	Validate() error
	Render() ([]byte, error)
}

// Node is one web node: it runs a web server (Apache or Nginx) and one Tomcat.
type Node struct {
	// Name is the inventory host name, e.g. "web1"; HAProxy's server lines use it.
	Name string
	// Address is the node's private address: AJP listens there, the web servers and
	// HAProxy reach the node there, and session replication runs there.
	Address string
	// Index numbers the node from 1; its Engines' jvmRoutes are admin<Index> and user<Index>.
	Index int
}

// Membership says how the Tomcat nodes of one app find each other.
type Membership int

const (
	// Multicast membership (McastService): the runbook's choice, and the zero value.
	//
	// It does not come back from a network interface that goes away and returns (a
	// host cut off with docker network disconnect, measured on the lab): the kernel
	// drops the interface's group memberships with it, and Tribes rejoins only from a
	// recovery thread that sending or receiving errors start, one at a time per JVM.
	// The first app's channel recovers once the interface is back; the second app's,
	// whose recovery was refused meanwhile, sends without errors again but never
	// rejoins its group, so it hears no other member until its Tomcat restarts: its
	// sessions stop replicating (8 counts broken in the next rolling restart).
	Multicast Membership = iota
	// Static membership (StaticMembershipService) lists every node and pings them over
	// TCP: for networks without multicast, and the default of an inventory
	// (recipes.Vars.Membership): it needs no group to rejoin, so a node that comes back
	// is a member again at the next ping.
	Static
	// NoReplication leaves session clustering out of server.xml.
	NoReplication
)

func (m Membership) String() string {
	switch m {
	case Multicast:
		return "multicast"
	case Static:
		return "static"
	case NoReplication:
		return "none"
	}
	return fmt.Sprintf("Membership(%d)", int(m))
}

// App is one of the two web applications, each served by its own Tomcat Service.
type App struct {
	// Name is "admin" or "user": the mod_jk load-balancer worker, the HAProxy backend and
	// the prefix of the jvmRoutes.
	Name string
	// Service is the Tomcat Service and Engine name ("Catalina", "Catalina2").
	Service string
	// HTTPPort is the Tomcat HTTP connector; Nginx proxies to it.
	HTTPPort int
	// AJPPort is the Tomcat AJP connector; mod_jk connects to it.
	AJPPort int
	// RedirectPort is where Tomcat sends requests that need TLS.
	RedirectPort int
	// SitePort is the port the web servers and HAProxy serve the app on.
	SitePort int
	// DocBase is the absolute path of the unpacked app as people know it (the runbook's
	// source/mago3d-admin). With a Release it is a symbolic link to the release Tomcat
	// runs, for people only: server.xml names the release folder itself.
	DocBase string
	// Release names the unpacked WAR Tomcat serves (the first 12 hex digits of its
	// SHA-256, as recipes.TomcatNode sets it): each release has a folder of its own,
	// ReleaseDir, so a new one is unpacked beside the one a running Tomcat serves and
	// reaches Tomcat only through server.xml, at the restart. Empty: DocBase itself.
	Release string
	// StaticRoot is the folder the web server serves StaticPaths from.
	StaticRoot string
	// StaticPaths are URL path prefixes ("/static/") the web server serves itself.
	StaticPaths []string
	// AccessLogPrefix names the Service's access log files.
	AccessLogPrefix string
	// MulticastAddress and MulticastPort are the app's membership group; the two apps
	// must not share one, or admin and user sessions mix.
	MulticastAddress string
	MulticastPort    int
	// ReceiverPort is where the app's NioReceiver listens for replication traffic.
	ReceiverPort int
}

// ReleaseSeparator joins an app's DocBase and its Release into the release's folder.
const ReleaseSeparator = "@"

// ReleaseDir is the folder of a's release, the Context docBase in server.xml:
// DocBase@Release (source/mago3d-admin@3f2a9c01b2d4), or DocBase without a Release.
func (a App) ReleaseDir() string {
	if a.Release == "" {
		return a.DocBase
	}
	return a.DocBase + ReleaseSeparator + a.Release
}

// JvmRoute is the Engine's jvmRoute on n, which is also n's mod_jk worker name.
func (a App) JvmRoute(n Node) string { return fmt.Sprintf("%s%d", a.Name, n.Index) }

// Cluster is the small description every file is built from.
type Cluster struct {
	// Nodes are the web nodes, in order.
	Nodes []Node
	// Apps are admin and user, in that order.
	Apps []App
	// AJPSecret is shared by every AJP connector and every mod_jk worker.
	AJPSecret string
	// Membership is how each app's Tomcats find each other.
	Membership Membership
	// Replication is when a request's session change is sent to the other nodes.
	Replication Replication
	// TomcatHome is the absolute path of the Tomcat installation (CATALINA_HOME).
	TomcatHome string
}

// DefaultTomcatHome is the runbook's Tomcat folder, in the gaia3d account's home.
const DefaultTomcatHome = "/home/gaia3d/tools/mago3d-tomcat"

// DefaultApps returns the runbook's two apps with docBases under tomcatHome.
//
// The runbook gives the admin Service's HTTP connector port 9090, the port the admin site
// is served on; since Apache or Nginx listens on 9090 on the same node, Tomcat's admin
// HTTP connector defaults to 8080 here instead.
func DefaultApps(tomcatHome string) []App {
	return []App{
		{
			Name: "admin", Service: "Catalina",
			HTTPPort: 8080, AJPPort: 8019, RedirectPort: 8443, SitePort: 9090,
			DocBase:          path.Join(tomcatHome, "source", "mago3d-admin"),
			StaticRoot:       "/var/www/mago3d-admin",
			StaticPaths:      []string{"/static/"},
			AccessLogPrefix:  "admin_access_log",
			MulticastAddress: "228.0.0.4", MulticastPort: 45564,
			ReceiverPort: 4000,
		},
		{
			Name: "user", Service: "Catalina2",
			HTTPPort: 8081, AJPPort: 8029, RedirectPort: 8443, SitePort: 80,
			DocBase:          path.Join(tomcatHome, "source", "mago3d-user"),
			StaticRoot:       "/var/www/mago3d-user",
			StaticPaths:      []string{"/static/"},
			AccessLogPrefix:  "user_access_log",
			MulticastAddress: "228.0.0.5", MulticastPort: 45564,
			ReceiverPort: 4010,
		},
	}
}

// NewCluster returns a cluster of nodes with the runbook's apps and multicast membership.
func NewCluster(nodes []Node, ajpSecret string) Cluster {
	return Cluster{
		Nodes:      nodes,
		Apps:       DefaultApps(DefaultTomcatHome),
		AJPSecret:  ajpSecret,
		Membership: Multicast,
		TomcatHome: DefaultTomcatHome,
	}
}

// Validate checks what every file built from c relies on.
func (c Cluster) Validate() error {
	var errs []error
	if len(c.Nodes) == 0 {
		errs = append(errs, errors.New("cluster: no nodes"))
	}
	names, addrs, indexes := map[string]bool{}, map[string]bool{}, map[int]bool{}
	for i, n := range c.Nodes {
		at := fmt.Sprintf("cluster: node %d (%q)", i+1, n.Name)
		if !isName(n.Name) {
			errs = append(errs, fmt.Errorf("%s: name must be letters, digits, '-' or '_'", at))
		}
		if !isHost(n.Address) {
			errs = append(errs, fmt.Errorf("%s: address %q is not an IP address or host name", at, n.Address))
		}
		if n.Index < 1 {
			errs = append(errs, fmt.Errorf("%s: index %d must be 1 or more", at, n.Index))
		}
		errs = appendIfSeen(errs, names, n.Name, at+": name used twice")
		errs = appendIfSeen(errs, addrs, n.Address, at+": address used twice")
		if indexes[n.Index] {
			errs = append(errs, fmt.Errorf("%s: index %d used twice (jvmRoutes would clash)", at, n.Index))
		}
		indexes[n.Index] = true
	}
	if len(c.Apps) == 0 {
		errs = append(errs, errors.New("cluster: no apps"))
	}
	appNames := map[string]bool{}
	ports := portSet{}
	for _, a := range c.Apps {
		at := fmt.Sprintf("cluster: app %q", a.Name)
		if !isName(a.Name) {
			errs = append(errs, fmt.Errorf("%s: name must be letters, digits, '-' or '_'", at))
		}
		errs = appendIfSeen(errs, appNames, a.Name, at+": name used twice")
		// Tomcat and the web server share each node, so none of these may clash.
		errs = ports.add(errs, at+": HTTP port", a.HTTPPort)
		errs = ports.add(errs, at+": AJP port", a.AJPPort)
		errs = ports.add(errs, at+": site port", a.SitePort)
		if c.Membership != NoReplication {
			errs = ports.add(errs, at+": receiver port", a.ReceiverPort)
		}
		if !path.IsAbs(a.StaticRoot) {
			errs = append(errs, fmt.Errorf("%s: static root %q is not an absolute path", at, a.StaticRoot))
		}
		errs = append(errs, validateStaticPaths(at, a.StaticPaths)...)
		if !path.IsAbs(a.DocBase) || path.Clean(a.DocBase) != a.DocBase || a.DocBase == "/" {
			errs = append(errs, fmt.Errorf("%s: docBase %q is not a clean absolute path of a folder", at, a.DocBase))
		}
		if a.Release != "" && !releaseRE.MatchString(a.Release) {
			errs = append(errs, fmt.Errorf("%s: release %q is not 1 to 64 letters, digits, '.', '_' or '-'", at, a.Release))
		}
	}
	if c.AJPSecret == "" {
		errs = append(errs, errors.New("cluster: the AJP secret is empty"))
	} else if !isSecret(c.AJPSecret) {
		errs = append(errs, errors.New("cluster: the AJP secret holds whitespace, quotes, '\\', '<', '>', '&' or control characters"))
	}
	if !path.IsAbs(c.TomcatHome) {
		errs = append(errs, fmt.Errorf("cluster: Tomcat home %q is not an absolute path", c.TomcatHome))
	}
	return errors.Join(errs...)
}

// releaseRE is what a release name may be: part of a folder name, never a path.
var releaseRE = regexp.MustCompile(`^[0-9A-Za-z][0-9A-Za-z._-]{0,63}$`)

// portSet finds ports used twice.
type portSet map[int]string

func (s portSet) add(errs []error, what string, port int) []error {
	if err := checkPort(what, port); err != nil {
		return append(errs, err)
	}
	if other, ok := s[port]; ok {
		return append(errs, fmt.Errorf("%s %d is also %s", what, port, other))
	}
	s[port] = what
	return errs
}

func checkPort(what string, port int) error {
	if port < 1 || port > 65535 {
		return fmt.Errorf("%s %d is not in 1-65535", what, port)
	}
	return nil
}

func appendIfSeen(errs []error, seen map[string]bool, key, msg string) []error {
	if seen[key] {
		errs = append(errs, errors.New(msg))
	}
	seen[key] = true
	return errs
}

var (
	nameRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	hostRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$`)
)

func isName(s string) bool { return nameRE.MatchString(s) }

// isHost accepts an IP address or a DNS host name: nothing a config file could misread.
func isHost(s string) bool {
	if _, err := netip.ParseAddr(s); err == nil {
		return true
	}
	return len(s) <= 253 && hostRE.MatchString(s)
}

// isSecret accepts a secret that every file it goes into holds without quoting: printable
// ASCII other than whitespace, quotes, backslash and XML's special characters.
func isSecret(s string) bool {
	for _, r := range s {
		if r <= ' ' || r >= 0x7f || strings.ContainsRune("\"'\\<>&", r) {
			return false
		}
	}
	return s != ""
}

// hostPort is host:port as every file here writes it, an IPv6 address in brackets.
func hostPort(host string, port int) string { return net.JoinHostPort(host, strconv.Itoa(port)) }

// isLine is true when s fits on one line of a config file.
func isLine(s string) bool {
	return !strings.ContainsAny(s, "\r\n\x00")
}
