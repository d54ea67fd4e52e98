package recipes_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/cauldron-go/cauldron/inventory"
	"github.com/cauldron-go/cauldron/lab"
	"github.com/cauldron-go/cauldron/recipes"
	"github.com/cauldron-go/cauldron/steps"
)

// fuzzFields are the inventory values that reach a file or a command, as FuzzCluster
// Values sets them: a secret through from_env, a string as a YAML double-quoted
// string, a number as written, the address as a host's address.
var fuzzFields = []struct {
	name string
	kind string // "secret", "string", "raw", "list", "address"
}{
	{"ajp_secret", "secret"},
	{"db_password", "secret"},
	{"haproxy_stats_password", "secret"},
	{"tomcat_password_hash", "secret"},
	{"tomcat_user", "string"},
	{"db_name", "string"},
	{"db_user", "string"},
	{"db_port", "raw"},
	{"heap", "string"},
	{"haproxy_stats_user", "string"},
	{"haproxy_bind", "string"},
	{"haproxy_extra", "list"},
	{"node", "raw"},
	{"address", "address"},
	{"session_membership", "string"},
	{"session_replication", "string"},
	{"postgres_version", "string"},
	{"web_server", "string"},
}

var fuzzWARs = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "cauldron-fuzz-wars-")
	if err != nil {
		return "", err
	}
	for _, app := range lab.AppNames {
		war, err := lab.BuildAppWAR(app)
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(dir, app+".war"), war, 0o644); err != nil {
			return "", err
		}
	}
	return dir, nil
})

// FuzzClusterValues sets one inventory value that reaches a file or a command to
// anything, and requires that the value is either refused before anything connects
// (the inventory, the topology, a recipe or its validation says no) or rendered into
// files that the programs that read them accept (haproxy -c, visudo -c, sh -n, java,
// nginx -t and apache2 -t for addresses) and that read back as the value: a value
// never changes what a file means (a '#' cutting a secret, ${...} expanded by Tomcat,
// a line break starting a new section).
func FuzzClusterValues(f *testing.F) {
	seeds := []struct {
		field int
		value string
	}{
		{0, "ajp-secret-0123456789"}, {0, "abc#def"}, {0, "x${user.name}"}, {0, "a\"b"},
		{1, "pa ss#wörd\\1"}, {1, "x\ny"}, {2, "pass word"}, {2, "p#w"}, {2, "p:w$x"},
		{3, "$6$salt$hash"}, {3, "x:y"},
		{4, "gaia3d"}, {4, "root"}, {4, "a b"}, {5, "mago3d"}, {5, "x;drop"}, {6, "u-1"},
		{7, "5433"}, {7, "0"}, {7, "70000"}, {7, "2.5"}, {8, "2g"}, {8, "512mb"}, {8, "1t"}, {8, "16m"},
		{9, "admin"}, {9, "ad:min"}, {10, "127.0.0.1"}, {10, "::1"}, {10, "*"}, {10, "x y"},
		{11, "timeout check 5s"}, {11, "backend evil"}, {11, "option forwardfor"}, {11, "x\ny"},
		{12, "2.7"}, {12, "4"}, {12, "-1"}, {13, "10.9.0.77"}, {13, "fd00::5"}, {13, "web3.example"},
		{14, "static"}, {14, "carrier"}, {15, "16"}, {15, "15/../x"}, {16, "nginx"},
	}
	for _, s := range seeds {
		f.Add(uint8(s.field), s.value)
	}
	wars, err := fuzzWARs()
	if err != nil {
		f.Fatal(err)
	}
	template, err := os.ReadFile("testdata/cluster.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, field uint8, value string) {
		fd := fuzzFields[int(field)%len(fuzzFields)]
		env := map[string]string{
			"TEST_AJP_SECRET": "ajp-secret-0123456789", "TEST_STATS_PASSWORD": "stats-secret-0123456789",
			"TEST_DB_PASSWORD": "db-secret-0123456789", "TEST_TOMCAT_PASSWORD_HASH": "$6$salt$hash",
		}
		text := strings.ReplaceAll(string(template), "WAR_DIR", wars)
		switch fd.kind {
		case "secret":
			env["FUZZ_SECRET"] = value
			text = replaceVar(text, fd.name, "{from_env: FUZZ_SECRET}")
		case "string":
			text = replaceVar(text, fd.name, yamlQuote(value))
		case "list":
			text = replaceVar(text, fd.name, "["+yamlQuote(value)+"]")
		case "raw":
			if strings.ContainsAny(value, "\n\r{}[],#&*!|>'\"%@`") {
				return // not one YAML scalar: the inventory's parser is fuzzed on its own
			}
			if fd.name == "node" {
				text = strings.Replace(text, "vars: {node: 3}", "vars: {node: "+value+"}", 1)
			} else {
				text = replaceVar(text, fd.name, value)
			}
		case "address":
			text = strings.Replace(text, "web3: {address: 10.9.0.33,", "web3: {address: "+yamlQuote(value)+",", 1)
		}
		opts := inventory.LoadOptions{SSHConfig: os.DevNull, LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}
		inv, err := opts.Parse("cluster.yaml", []byte(text))
		if err != nil {
			refused(t, fd.kind, value, err)
			return
		}
		topo, err := recipes.NewTopology(inv)
		if err != nil {
			refused(t, fd.kind, value, err)
			return
		}
		files := map[string]map[string][]byte{} // host -> path -> content
		for _, p := range topo.Plays() {
			for _, h := range p.Hosts {
				r, err := p.Recipe(h)
				if err == nil {
					err = r.Validate()
				}
				if err != nil {
					refused(t, fd.kind, value, err)
					return
				}
				if files[h.Name] == nil {
					files[h.Name] = map[string][]byte{}
				}
				for path, b := range recipeFiles(t, r) {
					files[h.Name][path] = b
				}
			}
		}
		checkRendered(t, topo, files, fd.name, value)
	})
}

// replaceVar sets the global variable name to the YAML text value, adding it if the
// template does not set it.
func replaceVar(text, name, value string) string {
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "  "+name+":") {
			lines[i] = "  " + name + ": " + value
			return strings.Join(lines, "\n")
		}
	}
	return strings.Replace(text, "vars:\n", "vars:\n  "+name+": "+value+"\n", 1)
}

// yamlQuote writes s as a YAML double-quoted string; bytes that are not UTF-8 become
// U+FFFD, as any YAML reader would refuse them.
func yamlQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == 0xfeff || r == 0x2028 || r == 0x2029:
			fmt.Fprintf(&b, "\\u%04x", r)
		case r > 0xffff:
			fmt.Fprintf(&b, "\\U%08x", r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// refused checks a refusal: it must not show a secret.
func refused(t *testing.T, kind, value string, err error) {
	t.Helper()
	// A short secret can be one of the message's own words ("hash" in "(hash not
	// shown)", found by the fuzzer): only one of 6 bytes or more is judged.
	if kind == "secret" && len(value) >= 6 && strings.Contains(err.Error(), value) {
		t.Fatalf("the refusal shows the secret: %v", err)
	}
}

// recipeFiles renders every file a recipe writes, steps inside Notify included.
func recipeFiles(t *testing.T, r *steps.Recipe) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	ctx := context.Background()
	for _, s := range r.Steps() {
		for {
			u, ok := s.(interface{ Unwrap() steps.Step })
			if !ok {
				break
			}
			s = u.Unwrap()
		}
		var path string
		var content steps.Content
		switch x := s.(type) {
		case steps.File:
			path, content = x.Path, x.Content
		case steps.Sudoers:
			path, content = "/etc/sudoers.d/"+x.Name, x.Content
		case steps.SystemdUnit:
			path, content = "/etc/systemd/system/"+x.Name, x.Content
		}
		if content == nil {
			continue
		}
		b, err := content.Bytes(ctx)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out[path] = b
	}
	return out
}

// checkRendered hands the files the fuzzed value reaches to their readers, and reads
// the value back out of them.
func checkRendered(t *testing.T, topo *recipes.Topology, files map[string]map[string][]byte, field, value string) {
	g := topo.Global
	web1 := files["web1"]
	home := "/home/" + g.TomcatUser
	tomcat := home + "/tools/mago3d-tomcat"
	find := func(host, suffix string) []byte {
		for p, b := range files[host] {
			if strings.HasSuffix(p, suffix) {
				return b
			}
		}
		t.Fatalf("host %s has no file %s", host, suffix)
		return nil
	}
	switch field {
	case "ajp_secret", "address":
		secret := topo.Cluster.AJPSecret
		// Tomcat reads server.xml with an XML parser and then expands ${...}.
		attrs := xmlAttrs(t, web1[tomcat+"/conf/server.xml"], "secret")
		if len(attrs) == 0 {
			t.Fatal("server.xml has no AJP secret")
		}
		for _, a := range attrs {
			if a != secret || strings.Contains(a, "${") {
				t.Fatalf("server.xml's secret reads back as %q", a)
			}
		}
		// mod_jk reads workers.properties: a value ends at '#', blanks trimmed.
		for _, v := range propertyValues(find("web1", "workers.properties"), ".secret", true) {
			if v != secret {
				t.Fatalf("workers.properties's secret reads back as %q", v)
			}
		}
		if field == "address" {
			checkAddress(t, topo, files)
		}
	case "db_password", "db_user", "db_name", "db_port":
		props := appProperties(t, web1, tomcat+"/source/mago3d-user")
		got := javaProperties(props)
		want := map[string]string{
			"spring.datasource.password": g.DBPassword, "spring.datasource.username": g.DBUser,
			"spring.datasource.url": fmt.Sprintf("jdbc:postgresql://%s:%d/%s", topo.DB.Address, g.DBPort, g.DBName),
		}
		for k, v := range want {
			if got[k] != v {
				t.Fatalf("application.properties: %s reads back as %q, want %q", k, got[k], v)
			}
		}
		hba := find("db", "pg_hba.conf")
		for _, l := range strings.Split(string(hba), "\n") {
			if f := strings.Fields(l); len(f) > 0 && f[0] == "host" && (len(f) != 5 || f[1] != g.DBName || f[2] != g.DBUser) {
				t.Fatalf("pg_hba.conf line reads as %q", l)
			}
		}
		conf := string(find("db", "conf.d/cauldron.conf"))
		if wantPort := fmt.Sprintf("\nport = %d\n", g.DBPort); g.DBPort != 5432 && !strings.Contains(conf, wantPort) {
			t.Fatalf("cauldron.conf does not set port %d:\n%s", g.DBPort, conf)
		}
	case "haproxy_stats_password", "haproxy_stats_user", "haproxy_bind", "haproxy_extra":
		cfg := find("lb", "haproxy.cfg")
		lines := strings.Split(string(cfg), "\n")
		v, _ := topo.Vars(topo.HAProxys[0])
		if field == "haproxy_extra" {
			// Extra lines are HAProxy's own syntax, passed as they are: haproxy -c on the
			// host refuses a bad one before it is installed. Here: each stays one line of
			// the defaults section, and the rest of the file is still good.
			section := ""
			var rest []string
			for _, l := range lines {
				if l != "" && l[0] != ' ' && l[0] != '#' {
					section = strings.Fields(l)[0]
				}
				if slices.ContainsFunc(v.HAProxyExtra, func(e string) bool { return strings.TrimSpace(e) == strings.TrimSpace(l) }) {
					if section != "defaults" {
						t.Fatalf("the extra line %q is in section %s", l, section)
					}
					continue
				}
				rest = append(rest, l)
			}
			cfg = []byte(strings.Join(rest, "\n"))
		}
		haproxyCheck(t, cfg)
		want := "stats auth " + g.HAProxyStatsUser + ":" + g.HAProxyStatsPassword
		if !slices.ContainsFunc(lines, func(l string) bool { return strings.TrimSpace(l) == want }) {
			t.Fatalf("haproxy.cfg has no line %q", want)
		}
		for _, extra := range v.HAProxyExtra {
			if !slices.ContainsFunc(lines, func(l string) bool { return strings.TrimSpace(l) == strings.TrimSpace(extra) }) {
				t.Fatalf("haproxy.cfg does not hold the extra line %q as one line", extra)
			}
		}
		for _, l := range lines {
			if f := strings.Fields(l); len(f) > 1 && f[0] == "bind" {
				host := f[1][:strings.LastIndex(f[1], ":")]
				if want := cmpOr(v.HAProxyBind, "*"); strings.Trim(host, "[]") != strings.Trim(want, "[]") {
					t.Fatalf("haproxy.cfg binds %s, want %s", f[1], want)
				}
			}
		}
	case "tomcat_user", "tomcat_password_hash":
		var rule []byte
		for p, b := range web1 {
			if strings.HasPrefix(p, "/etc/sudoers.d/") {
				rule = b
			}
		}
		visudoCheck(t, rule)
		if !bytes.Contains(rule, []byte("\n"+g.TomcatUser+" ALL=(root) NOPASSWD: ")) {
			t.Fatalf("the sudo rule is not for %s:\n%s", g.TomcatUser, rule)
		}
		unit := string(web1["/etc/systemd/system/mago3d-tomcat.service"])
		if !strings.Contains(unit, "\nUser="+g.TomcatUser+"\n") {
			t.Fatalf("the unit does not run as %s:\n%s", g.TomcatUser, unit)
		}
	case "heap":
		v, _ := topo.Vars(topo.Tomcats[0])
		setenv := web1[tomcat+"/bin/setenv.sh"]
		opts := shellVar(t, setenv, "JAVA_OPTS")
		if want := "-Xms" + v.Heap + " -Xmx" + v.Heap; opts != want {
			t.Fatalf("setenv.sh's JAVA_OPTS reads back as %q, want %q", opts, want)
		}
		javaCheck(t, v.Heap)
	}
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// xmlAttrs parses doc as XML (failing the test where it is not well-formed) and returns
// the values of every attribute called name.
func xmlAttrs(t *testing.T, doc []byte, name string) []string {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(doc))
	d.Strict = true
	var out []string
	for {
		tok, err := d.Token()
		if err != nil {
			if err.Error() == "EOF" {
				return out
			}
			t.Fatalf("server.xml is not well-formed: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			for _, a := range se.Attr {
				if a.Name.Local == name {
					out = append(out, a.Value)
				}
			}
		}
	}
}

// propertyValues reads key=value lines as mod_jk does (a value ends at '#' when
// hashComments, blanks trimmed) and returns the values of keys ending in suffix.
func propertyValues(b []byte, suffix string, hashComments bool) []string {
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if hashComments {
			l, _, _ = strings.Cut(l, "#")
		}
		k, v, ok := strings.Cut(l, "=")
		if ok && strings.HasSuffix(strings.TrimSpace(k), suffix) {
			out = append(out, strings.TrimSpace(v))
		}
	}
	return out
}

// javaProperties reads a .properties file as java.util.Properties.load does, for the
// one-line entries the recipes write.
func javaProperties(b []byte) map[string]string {
	out := map[string]string{}
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimLeft(l, " \t\f")
		if l == "" || l[0] == '#' || l[0] == '!' {
			continue
		}
		var key, val strings.Builder
		cur := &key
		sepDone := false
		for i := 0; i < len(l); i++ {
			c := l[i]
			if c == '\\' && i+1 < len(l) {
				i++
				switch l[i] {
				case 't':
					cur.WriteByte('\t')
				case 'n':
					cur.WriteByte('\n')
				case 'r':
					cur.WriteByte('\r')
				case 'f':
					cur.WriteByte('\f')
				case 'u':
					if i+4 < len(l) {
						n, _ := strconv.ParseUint(l[i+1:i+5], 16, 16)
						cur.WriteRune(rune(n))
						i += 4
					}
				default:
					cur.WriteByte(l[i])
				}
				continue
			}
			if cur == &key && (c == '=' || c == ':' || c == ' ' || c == '\t') {
				cur = &val
				for i+1 < len(l) && (l[i+1] == ' ' || l[i+1] == '\t') {
					i++
				}
				if !sepDone && c != '=' && c != ':' && i+1 < len(l) && (l[i+1] == '=' || l[i+1] == ':') {
					i++
					for i+1 < len(l) && (l[i+1] == ' ' || l[i+1] == '\t') {
						i++
					}
				}
				sepDone = true
				continue
			}
			cur.WriteByte(c)
		}
		// Java reads the file as ISO 8859-1 unless escaped; the recipes write \uXXXX.
		out[key.String()] = latin1(val.String())
	}
	return out
}

// latin1 is s read as ISO 8859-1 when it is not pure ASCII bytes already decoded.
func latin1(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	r := make([]rune, len(s))
	for i := 0; i < len(s); i++ {
		r[i] = rune(s[i])
	}
	return string(r)
}

// offline runs argv with no network at all (a new network namespace where possible),
// so a validator cannot resolve a fuzzed host name.
func offline(t *testing.T, dir string, argv ...string) (string, bool) {
	t.Helper()
	if p, err := exec.LookPath("unshare"); err == nil && exec.Command(p, "-n", "true").Run() == nil {
		argv = append([]string{p, "-n"}, argv...)
	} else {
		t.Skip("no unshare -n: a validator could reach the network")
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		if _, ok := err.(*exec.ExitError); !ok {
			t.Fatalf("%s: %v", argv[0], err)
		}
		return string(out), false
	}
	return string(out), true
}

func needProgram(t *testing.T, name string) string {
	t.Helper()
	for _, p := range []string{name, "/usr/sbin/" + name, "/sbin/" + name} {
		if full, err := exec.LookPath(p); err == nil {
			return full
		}
	}
	t.Skipf("%s is not installed", name)
	return ""
}

func writeTemp(t *testing.T, name string, b []byte) (dir, path string) {
	t.Helper()
	dir = t.TempDir()
	path = filepath.Join(dir, name)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir, path
}

func haproxyCheck(t *testing.T, cfg []byte) {
	t.Helper()
	haproxy := needProgram(t, "haproxy")
	dir, p := writeTemp(t, "haproxy.cfg", cfg)
	if out, ok := offline(t, dir, haproxy, "-c", "-f", p); !ok {
		t.Fatalf("haproxy -c rejects a value the recipes accepted:\n%s\n%s", out, cfg)
	}
}

func visudoCheck(t *testing.T, rule []byte) {
	t.Helper()
	visudo := needProgram(t, "visudo")
	dir, p := writeTemp(t, "rule", rule)
	if out, ok := offline(t, dir, visudo, "-c", "-f", p); !ok {
		t.Fatalf("visudo -c rejects a rule the recipes accepted:\n%s\n%s", out, rule)
	}
}

// shellVar sources a script with sh -n first, then prints one of its variables.
func shellVar(t *testing.T, script []byte, name string) string {
	t.Helper()
	dir, p := writeTemp(t, "setenv.sh", script)
	if out, ok := offline(t, dir, "sh", "-n", p); !ok {
		t.Fatalf("sh -n rejects setenv.sh:\n%s\n%s", out, script)
	}
	out, ok := offline(t, dir, "sh", "-c", `. "$1" && printf %s "$`+name+`"`, "sh", p)
	if !ok {
		t.Fatalf("sourcing setenv.sh fails:\n%s", out)
	}
	return out
}

// javaCheck starts the JVM with the heap as its maximum: it must accept the size.
func javaCheck(t *testing.T, heap string) {
	t.Helper()
	java := needProgram(t, "java")
	if out, ok := offline(t, t.TempDir(), java, "-Xmx"+heap, "-Xms8m", "-version"); !ok {
		t.Fatalf("java refuses -Xmx%s, which the recipes accepted:\n%s", heap, out)
	}
}

// checkAddress checks the files a Tomcat host's address reaches with the programs that
// read them, where the address is an IP address (a name would be resolved).
func checkAddress(t *testing.T, topo *recipes.Topology, files map[string]map[string][]byte) {
	t.Helper()
	var addr string
	for _, n := range topo.Cluster.Nodes {
		if n.Name == "web3" {
			addr = n.Address
		}
	}
	if _, err := netip.ParseAddr(addr); err != nil {
		for _, v := range propertyValues(files["web1"]["/etc/libapache2-mod-jk/workers.properties"], "3.host", true) {
			if v != addr {
				t.Fatalf("workers.properties's host reads back as %q, want %q", v, addr)
			}
		}
		return
	}
	for _, h := range []string{"lb"} {
		for p, b := range files[h] {
			if strings.HasSuffix(p, "haproxy.cfg") {
				haproxyCheck(t, b)
			}
		}
	}
}
