package recipes

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/cauldron-go/cauldron/configs"
	"github.com/cauldron-go/cauldron/inventory"
	"github.com/cauldron-go/cauldron/runner"
)

// hostVarNames are the variables that may differ from host to host; every other
// variable of Vars is cluster-wide and must have one value for the whole cluster.
var hostVarNames = []string{"node", "heap", "haproxy_bind", "haproxy_extra"}

// SecretVars are the variables that hold secrets. The inventory must read them with
// from_file or from_env: a secret written in its text is refused.
var SecretVars = []string{"ajp_secret", "db_password", "haproxy_stats_password", "tomcat_password_hash"}

var declared struct {
	sync.Mutex
	names []string
}

// DeclareVars adds the names of variables that recipes of your own read, so that an
// inventory shared with the cluster's recipes may set them: any other variable the
// cluster's recipes do not read is refused as a likely misspelling (heap_size for heap).
// inventory.VarNames lists a struct's variables: DeclareVars(inventory.VarNames(&v)...).
func DeclareVars(names ...string) {
	declared.Lock()
	defer declared.Unlock()
	declared.names = append(declared.names, names...)
}

// KnownVars are the variables an inventory for the cluster may set: those of Vars, the
// runner's own (runner.StateDirVar) and those declared with DeclareVars.
func KnownVars() []string {
	declared.Lock()
	defer declared.Unlock()
	return append(append(inventory.VarNames(&Vars{}), runner.StateDirVar), declared.names...)
}

// clusterHosts are the cluster's hosts, each once, in the order the groups list them.
func (t *Topology) clusterHosts() []*inventory.Host {
	var hs []*inventory.Host
	for _, group := range [][]*inventory.Host{{t.DB}, t.Tomcats, t.Webs, t.HAProxys} {
		for _, h := range group {
			if !slices.Contains(hs, h) {
				hs = append(hs, h)
			}
		}
	}
	return hs
}

// readVars reads the cluster-wide variables into t.Global from every host's view, and
// each host's own ones into t.hostVars, checking every value before anything connects.
// A cluster-wide variable may be set anywhere (globally, on a group, on a host); every
// host that sees it must see the same value, or the error names both places.
func (t *Topology) readVars(inv *inventory.Inventory) error {
	var errs []error
	if err := inv.CheckVars(inventory.VarRules{Known: KnownVars(), Secrets: SecretVars}); err != nil {
		errs = append(errs, err)
	}
	hosts := t.clusterHosts()
	wide := inventory.Vars{}
	for _, name := range inventory.VarNames(&Vars{}) {
		if slices.Contains(hostVarNames, name) {
			continue
		}
		var first *inventory.Host
		reported := map[string]bool{}
		for _, h := range hosts {
			v, ok := h.Vars.Lookup(name)
			if !ok {
				continue
			}
			if first == nil {
				first, wide[name] = h, v
				continue
			}
			w := wide[name]
			place := fmt.Sprintf("%s:%d", v.File, v.Line)
			if reflect.DeepEqual(v.Value, w.Value) || reported[place] {
				continue
			}
			reported[place] = true
			errs = append(errs, v.Errorf(name, "host %s sees a value other than host %s, which sees the one set at %s:%d (%s); "+
				"%s is cluster-wide: set it once, or the same everywhere", h.Name, first.Name, w.File, w.Line, where(w, name), name))
		}
		// Hosts of one group do one job: set for some of them and not for others, the
		// others would silently take a value they do not see.
		if first != nil && len(reported) == 0 {
			errs = append(errs, t.partlySet(name)...)
		}
	}
	if err := wide.Decode(&t.Global); err != nil {
		errs = append(errs, err)
	}
	dbPortSet := t.Global.DBPort
	t.Global.defaults()
	errs = append(errs, checkClusterVars(inv, wide, &t.Global)...)
	if _, ok := wide["db_port"]; ok && (dbPortSet < 1 || dbPortSet > 65535) {
		errs = append(errs, wide["db_port"].Errorf("db_port", "%d is not a port number 1-65535", dbPortSet))
	}

	t.hostVars = map[string]Vars{}
	for _, h := range hosts {
		own := inventory.Vars{}
		for _, name := range hostVarNames {
			if v, ok := h.Vars.Lookup(name); ok {
				own[name] = v
			}
		}
		v := t.Global
		v.HAProxyExtra = slices.Clone(v.HAProxyExtra)
		if err := own.Decode(&v); err != nil {
			errs = append(errs, err) // each names the host: hosts.H.vars.X, or the group's or global place
			continue
		}
		v.defaults()
		errs = append(errs, checkHostVars(h, own, &v)...)
		t.hostVars[h.Name] = v
	}
	return errors.Join(errs...)
}

// partlySet reports a cluster-wide variable that some hosts of a cluster group see and
// others of the same group do not.
func (t *Topology) partlySet(name string) []error {
	groups := []struct {
		name  string
		hosts []*inventory.Host
	}{{GroupTomcat, t.Tomcats}, {GroupWeb, t.Webs}, {GroupHAProxy, t.HAProxys}}
	for _, g := range groups {
		var with, without *inventory.Host
		for _, h := range g.hosts {
			if _, ok := h.Vars.Lookup(name); ok {
				with = cmp.Or(with, h)
			} else {
				without = cmp.Or(without, h)
			}
		}
		if with != nil && without != nil {
			v, _ := with.Vars.Lookup(name)
			return []error{v.Errorf(name, "set for host %s but not for host %s of group %s; %s is cluster-wide: "+
				"set it globally, or on every host of the group", with.Name, without.Name, g.name, name)}
		}
	}
	return nil
}

// where is the key path an inventory error names for v.
func where(v inventory.Var, name string) string { return v.Errorf(name, "").Path }

// Vars returns the variables the recipes use for h: the cluster-wide values, with h's
// own node, heap, haproxy_bind and haproxy_extra.
func (t *Topology) Vars(h *inventory.Host) (Vars, error) {
	v, ok := t.hostVars[h.Name]
	if !ok {
		return Vars{}, fmt.Errorf("host %s is not in the cluster's groups", h.Name)
	}
	return v, nil
}

var (
	// accountRE is Debian's rule for a user name (adduser's NAME_REGEX, without '$').
	accountRE = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`)
	// ajpSecretRE is the alphabet of an AJP secret that means the same at both ends:
	// Tomcat expands ${...} in server.xml, mod_jk ends a value at '#', and quotes,
	// '&' and '<' would need escaping that only one end undoes.
	ajpSecretRE = regexp.MustCompile(`^[A-Za-z0-9._~+/=-]+$`)
	// cryptRE is a crypt(3) hash as chpasswd -e takes it: $id$[params$]salt$hash.
	cryptRE = regexp.MustCompile(`^\$[0-9a-z]+\$[A-Za-z0-9./$=,-]+$`)
	// heapRE is the JVM's size syntax for -Xms and -Xmx.
	heapRE            = regexp.MustCompile(`^([1-9][0-9]{0,12})([kKmMgGtT]?)$`)
	postgresVersionRE = regexp.MustCompile(`^[1-9][0-9]?(\.[0-9])?$`)
	// sqlNameRE is the name the PostgreSQL steps take: a plain SQL identifier.
	sqlNameRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)
)

// systemAccounts are accounts Debian and its packages create for themselves: Tomcat's
// account gets a new home (usermod -m) and a password, which must never happen to one
// of these. The Tomcat recipe also refuses any account below the host's UID_MIN.
var systemAccounts = []string{
	"root", "daemon", "bin", "sys", "sync", "games", "man", "lp", "mail", "news", "uucp",
	"proxy", "www-data", "backup", "list", "irc", "gnats", "nobody", "nogroup", "messagebus",
	"sshd", "postgres", "haproxy", "tomcat", "ntp", "syslog", "tss", "polkitd", "statd",
	"dnsmasq", "avahi", "colord", "mysql", "redis", "nginx", "apache", "httpd", "operator",
}

// Heap sizes the recipes accept: below the minimum the JVM (or Tomcat with the two
// apps) does not start; above the maximum it cannot reserve the space.
const (
	minHeap = 16 << 20
	maxHeap = 1 << 40
)

// heapBytes reads a JVM size (512m, 2g, 1048576) as bytes.
func heapBytes(s string) (int64, bool) {
	m := heapRE.FindStringSubmatch(s)
	if m == nil {
		return 0, false
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return 0, false
	}
	shift := map[string]uint{"": 0, "k": 10, "m": 20, "g": 30, "t": 40}[strings.ToLower(m[2])]
	if n > maxHeap>>shift {
		return 0, false
	}
	return n << shift, true
}

// checkClusterVars checks the cluster-wide values, each error at the place the value is
// set (a default is always good). Values that reach a file or a command are held to
// what every file they go into reads the same way.
func checkClusterVars(inv *inventory.Inventory, set inventory.Vars, v *Vars) []error {
	var errs []error
	bad := func(name, format string, args ...any) {
		if w, ok := set[name]; ok {
			errs = append(errs, w.Errorf(name, format, args...))
		} else {
			errs = append(errs, fmt.Errorf("%s: %s: %s", inv.File, name, fmt.Sprintf(format, args...)))
		}
	}
	switch v.WebServer {
	case "apache", "nginx":
	default:
		bad("web_server", "%q is not apache or nginx", v.WebServer)
	}
	switch {
	case !accountRE.MatchString(v.TomcatUser):
		bad("tomcat_user", "%q is not a user name (a-z, 0-9, '_' and '-', starting with a letter or '_', at most 32)", v.TomcatUser)
	case isSystemAccountName(v.TomcatUser):
		bad("tomcat_user", "%q is a system account; Tomcat's account gets a new home and a password, so use an account of its own", v.TomcatUser)
	}
	if v.TomcatPasswordHash != "" && !cryptRE.MatchString(v.TomcatPasswordHash) {
		bad("tomcat_password_hash", "not a crypt(3) hash such as `openssl passwd -6` prints (hash not shown)")
	}
	if _, err := parseMembership(v.Membership); err != nil {
		bad("session_membership", "%v", err)
	}
	if _, err := configs.ParseReplication(v.Replication); v.Replication != "" && err != nil {
		bad("session_replication", "%v", err)
	}
	if _, ok := set["ajp_secret"]; ok && !ajpSecretRE.MatchString(v.AJPSecret) {
		bad("ajp_secret", "the AJP secret may hold only letters, digits and . _ ~ + / = - (Tomcat expands ${...} and mod_jk ends it at #; secret not shown)")
	}
	if v.HAProxyStatsPassword != "" && !isConfigWord(v.HAProxyStatsPassword) {
		bad("haproxy_stats_password", "the password may not hold whitespace, quotes, '\\', '#' or control characters (secret not shown)")
	}
	if !accountRE.MatchString(v.HAProxyStatsUser) {
		bad("haproxy_stats_user", "%q is not a user name (a-z, 0-9, '_' and '-')", v.HAProxyStatsUser)
	}
	for _, n := range []struct{ name, value string }{{"db_name", v.DBName}, {"db_user", v.DBUser}} {
		if !sqlNameRE.MatchString(n.value) {
			bad(n.name, "%q is not a plain SQL name (a-z, 0-9, _; at most 63)", n.value)
		}
	}
	// The apps send the password as Java reads it from application.properties (UTF-8
	// text), and PostgreSQL's verifier is made here from its bytes: both must be the same.
	if _, ok := set["db_password"]; ok && (!utf8.ValidString(v.DBPassword) || strings.ContainsAny(v.DBPassword, "\x00\r\n")) {
		bad("db_password", "the password must be UTF-8 text without a line break or NUL (secret not shown)")
	}
	if !postgresVersionRE.MatchString(v.PostgresVersion) {
		bad("postgres_version", "%q is not a PostgreSQL major version such as 15", v.PostgresVersion)
	}
	if w, ok := set["artifacts"]; ok {
		a := &v.Artifacts
		// Relative to the inventory's folder, as its other paths are, not to the
		// working directory the deploy happens to run in.
		resolve := func(key string, p *string) {
			if *p == "" {
				return
			}
			abs, err := inv.LocalPath(*p)
			if err != nil {
				errs = append(errs, w.Errorf("artifacts", "%s: %v", key, err))
				return
			}
			*p = abs
		}
		resolve("tomcat", &a.Tomcat)
		resolve("jdk", &a.JDK)
		apps := make(map[string]string, len(a.Apps))
		for name, p := range a.Apps {
			resolve("apps."+name, &p)
			apps[name] = p
		}
		a.Apps = apps
	}
	return errs
}

// haproxySections are the keywords that start a section of haproxy.cfg.
var haproxySections = []string{"global", "defaults", "frontend", "backend", "listen", "resolvers", "peers",
	"userlist", "mailers", "program", "http-errors", "ring", "cache", "fcgi-app", "crt-store", "traces"}

// checkHostVars checks h's own values, each error at the place it is set.
func checkHostVars(h *inventory.Host, set inventory.Vars, v *Vars) []error {
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, set[name].Errorf(name, format, args...))
	}
	if _, ok := set["node"]; ok && v.Node < 1 {
		bad("node", "%d is not a node number (1, 2, 3, ...)", v.Node)
	}
	if _, ok := set["heap"]; ok {
		if n, ok := heapBytes(v.Heap); !ok || n < minHeap {
			bad("heap", "%q is not a JVM heap size from 16m to 1t (digits and k, m, g or t, as java -Xmx takes it)", v.Heap)
		}
	}
	if _, ok := set["haproxy_bind"]; ok && v.HAProxyBind != "" {
		if _, err := netip.ParseAddr(v.HAProxyBind); err != nil {
			bad("haproxy_bind", "%q is not an IP address or *", v.HAProxyBind)
		}
	}
	for i, l := range v.HAProxyExtra {
		switch {
		case strings.TrimSpace(l) == "" || strings.ContainsFunc(l, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }):
			bad("haproxy_extra", "line %d is empty or holds a line break or control character: each entry is one line", i+1)
		case slices.Contains(haproxySections, strings.Fields(l)[0]):
			bad("haproxy_extra", "line %d starts a section of its own (%s): the lines go into the defaults section", i+1, strings.Fields(l)[0])
		}
	}
	return errs
}

// isConfigWord is a value that haproxy.cfg (and a shell, and a properties file) reads as
// one word as it is: printable ASCII without whitespace, quotes, backslash or '#'.
func isConfigWord(s string) bool {
	for _, r := range s {
		if r <= ' ' || r >= 0x7f || strings.ContainsRune("\"'\\#", r) {
			return false
		}
	}
	return true
}
