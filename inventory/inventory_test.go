package inventory_test

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/cauldron-go/cauldron/inventory"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/inventory")

const testdata = "../testdata/inventory"

// labEnv is the environment the lab inventory's from_env secrets read.
func labEnv(name string) (string, bool) {
	if name == "CAULDRON_STATS_PASSWORD" {
		return "stats-Secret-0b8a", true
	}
	return "", false
}

// labOptions keep the tests away from the user's own ~/.ssh/config and environment.
var labOptions = inventory.LoadOptions{SSHConfig: os.DevNull, LookupEnv: labEnv}

func loadLab(t *testing.T) *inventory.Inventory {
	t.Helper()
	inv, err := labOptions.Load(filepath.Join(testdata, "lab.yaml"))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return inv
}

// dump prints everything Load produced, paths shown relative to dir, secrets masked.
func dump(inv *inventory.Inventory, dir string) string {
	var b strings.Builder
	rel := func(p string) string {
		if r, err := filepath.Rel(dir, p); err == nil && !strings.HasPrefix(r, "..") {
			return "<inventory dir>/" + r
		}
		return p
	}
	vars := func(indent string, vs inventory.Vars) {
		for _, name := range vs.Names() {
			v, _ := vs.Lookup(name)
			fmt.Fprintf(&b, "%s%s = %v (%s:%d)\n", indent, name, v, filepath.Base(v.File), v.Line)
		}
	}
	fmt.Fprintf(&b, "file %s\n", filepath.Base(inv.File))
	b.WriteString("vars\n")
	vars("  ", inv.Vars)
	for _, g := range inv.Groups {
		fmt.Fprintf(&b, "group %s hosts=%v\n", g.Name, g.Hosts)
		vars("  ", g.Vars)
	}
	for _, h := range inv.Hosts {
		fmt.Fprintf(&b, "host %s address=%q transport=%s groups=%v\n", h.Name, h.Address, h.Transport, h.Groups)
		s := h.SSH
		var ids []string
		for _, id := range s.IdentityFiles {
			ids = append(ids, rel(id))
		}
		fmt.Fprintf(&b, "  ssh host=%q port=%d user=%q identity_files=%q known_hosts=%q host_key=%q proxy_jump=%q become=%t become_password_env=%q become_password_file=%q\n",
			s.Host, s.Port, s.User, ids, rel(s.KnownHosts), s.HostKey, s.ProxyJump, s.Become, s.BecomePasswordEnv, rel(s.BecomePasswordFile))
		fmt.Fprintf(&b, "  docker container=%q\n", h.Docker.Container)
		vars("  ", h.Vars)
	}
	return b.String()
}

func TestTheLabInventoryLoadsAsTheGoldenFileSays(t *testing.T) {
	inv := loadLab(t)
	dir, err := filepath.Abs(testdata)
	if err != nil {
		t.Fatal(err)
	}
	got := dump(inv, dir)
	golden := filepath.Join(testdata, "lab.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./inventory -update to write it)", err)
	}
	if got != string(want) {
		t.Errorf("the loaded lab inventory differs from %s (-update rewrites it):\n--- got\n%s--- want\n%s", golden, got, want)
	}
}

func TestVarsMergeHostOverGroupsOverGlobals(t *testing.T) {
	inv, err := labOptions.Parse("merge.yaml", []byte(`vars:
  heap: 256m
  color: global
  only_global: yes
groups:
  first:
    hosts: [a, b]
    vars: {color: first, from_first: 1}
  second:
    hosts: [b]
    vars: {color: second}
hosts:
  a: {transport: local}
  b:
    transport: local
    vars:
      heap: 1g
  c: {transport: local}
`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		host, key, want string
		line            int
	}{
		{"a", "heap", "256m", 2},
		{"a", "color", "first", 8},
		{"b", "color", "second", 11},
		{"b", "heap", "1g", 17},
		{"b", "from_first", "1", 8},
		{"c", "color", "global", 3},
		{"c", "only_global", "yes", 4},
	}
	for _, tt := range tests {
		h, ok := inv.Host(tt.host)
		if !ok {
			t.Fatalf("no host %s", tt.host)
		}
		got, ok := h.Vars.String(tt.key)
		if !ok || got != tt.want {
			t.Errorf("%s: %s = %q, %t; want %q", tt.host, tt.key, got, ok, tt.want)
		}
		v, _ := h.Vars.Lookup(tt.key)
		if v.File != "merge.yaml" || v.Line != tt.line {
			t.Errorf("%s: %s set at %s:%d; want merge.yaml:%d", tt.host, tt.key, v.File, v.Line, tt.line)
		}
	}
	if _, ok := inv.Hosts[0].Vars.String("from_second"); ok {
		t.Errorf("a has a var it has no group for")
	}
	b, _ := inv.Host("b")
	if !reflect.DeepEqual(b.Groups, []string{"first", "second"}) {
		t.Errorf("b.Groups = %v; want [first second]", b.Groups)
	}
}

func TestVarsStringReadsScalarsAsWritten(t *testing.T) {
	inv, err := labOptions.Parse("s.yaml", []byte(`vars:
  int: 0042
  float: 1.50
  flag: true
  empty: ~
  list: [1]
  map: {a: 1}
hosts: {a: {transport: local}}
`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		key, want string
		ok        bool
	}{
		{"int", "0042", true},
		{"float", "1.50", true},
		{"flag", "true", true},
		{"empty", "", true},
		{"list", "", false},
		{"map", "", false},
		{"unset", "", false},
	}
	for _, tt := range tests {
		got, ok := inv.Vars.String(tt.key)
		if got != tt.want || ok != tt.ok {
			t.Errorf("String(%q) = %q, %t; want %q, %t", tt.key, got, ok, tt.want, tt.ok)
		}
	}
}

func TestSecretsAreResolvedAndListedForMasking(t *testing.T) {
	inv := loadLab(t)
	want := []string{"stats-Secret-0b8a", "sudo-Secret-4d1a", "ajp-Secret-7f3e", "db-Secret-91c2"}
	if got := inv.Secrets(); !reflect.DeepEqual(got, want) {
		t.Errorf("Secrets() = %q; want %q", got, want)
	}
	ajp, ok := inv.Vars.Lookup("ajp_secret")
	if !ok || ajp.Value != "ajp-Secret-7f3e" || !ajp.Secret {
		t.Errorf("ajp_secret = %#v; want the secret file's line, marked secret", ajp)
	}
	db, _ := inv.Vars.Lookup("database")
	if !db.Secret {
		t.Errorf("database holds a secret but is not marked")
	}
	if pw := db.Value.(map[string]any)["password"]; pw != "db-Secret-91c2" {
		t.Errorf("database.password = %v", pw)
	}
	type database struct {
		Password string `yaml:"password"`
	}
	var into struct {
		DB database `yaml:"database"`
	}
	if err := inv.Vars.Decode(&into); err != nil || into.DB.Password != "db-Secret-91c2" {
		t.Errorf("decoding a mapping holding a secret: %v", err)
	}
	printed := fmt.Sprintf("%v %+v %#v %s", inv.Vars, inv.Vars, inv.Vars, inv.Vars["ajp_secret"])
	for _, s := range want {
		if strings.Contains(printed, s) {
			t.Errorf("printing Vars shows the secret %q:\n%s", s, printed)
		}
	}
}

func TestDecodingASecretIntoTheWrongTypeDoesNotShowIt(t *testing.T) {
	inv := loadLab(t)
	var into struct {
		AJP int `yaml:"ajp_secret"`
	}
	err := inv.Vars.Decode(&into)
	want := "../testdata/inventory/lab.yaml:6: vars.ajp_secret: cannot decode a string into int"
	if err == nil || err.Error() != want {
		t.Fatalf("Decode error = %v; want %s", err, want)
	}
	if strings.Contains(err.Error(), "ajp-Sec") {
		t.Errorf("the error shows part of the secret: %v", err)
	}
}

func TestDecodeFillsStructsAndMapsAndNamesMismatches(t *testing.T) {
	inv, err := labOptions.Parse("d.yaml", []byte(`vars:
  name: web
  port: 8080
  heap: big
  tags: [a, b]
  limits: {files: many}
  unused: 1
hosts: {a: {transport: local}}
`))
	if err != nil {
		t.Fatal(err)
	}
	type Common struct {
		Name string
	}
	var got struct {
		Common `yaml:",inline"`
		Port   int      `yaml:"port"`
		Tags   []string `yaml:"tags"`
		Skip   string   `yaml:"-"`
	}
	if err := inv.Vars.Decode(&got); err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if got.Name != "web" || got.Port != 8080 || !reflect.DeepEqual(got.Tags, []string{"a", "b"}) {
		t.Errorf("Decode gave %+v", got)
	}

	var bad struct {
		Heap   int `yaml:"heap"`
		Limits struct {
			Files int `yaml:"files"`
		} `yaml:"limits"`
		Tags string `yaml:"tags"`
	}
	err = inv.Vars.Decode(&bad)
	want := "d.yaml:4: vars.heap: cannot decode a string into int\n" +
		"d.yaml:6: vars.limits: cannot decode a string into int\n" +
		"d.yaml:5: vars.tags: cannot decode a list into string"
	if err == nil || err.Error() != want {
		t.Errorf("Decode error:\n%v\nwant:\n%s", err, want)
	}
	var e *inventory.Error
	if !errors.As(err, &e) || e.Line != 4 || e.Path != "vars.heap" {
		t.Errorf("errors.As found %+v; want the heap error", e)
	}

	m := map[string]string{}
	err = inventory.Vars{"name": inv.Vars["name"], "port": inv.Vars["port"]}.Decode(&m)
	if err != nil || !reflect.DeepEqual(m, map[string]string{"name": "web", "port": "8080"}) {
		t.Errorf("Decode into a map = %v, %v", m, err)
	}
	if err := inv.Vars.Decode(got); err == nil {
		t.Errorf("Decode into a struct value, not a pointer, succeeded")
	}
}

func TestAVarMadeByHandDecodes(t *testing.T) {
	vs := inventory.Vars{"port": {Value: 22, File: "hand", Line: 1}}
	var into struct {
		Port int `yaml:"port"`
	}
	if err := vs.Decode(&into); err != nil || into.Port != 22 {
		t.Errorf("Decode = %v, port %d", err, into.Port)
	}
}

func TestSSHConfigFillsWhatTheInventoryLeavesEmpty(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	opts := inventory.LoadOptions{SSHConfig: filepath.Join(testdata, "ssh_config"), LookupEnv: labEnv}
	inv, err := opts.Parse("c.yaml", []byte(`hosts:
  web3:
    address: 172.30.0.13
  web4:
    address: 172.30.0.14
    ssh:
      user: gaia3d
      port: 2214
      identity_file: /keys/web4
      proxy_jump: other
  pg:
    ssh:
      host: db-alias
  jump:
    ssh: {host: bastion}
`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		host string
		want inventory.SSH
	}{
		{"web3", inventory.SSH{User: "deploy", Port: 2299, IdentityFiles: []string{home + "/.ssh/lab_web3", home + "/.ssh/id_default"}, ProxyJump: "bastion", HostKey: "strict"}},
		{"web4", inventory.SSH{User: "gaia3d", Port: 2214, IdentityFiles: []string{"/keys/web4"}, ProxyJump: "other", HostKey: "strict"}},
		{"pg", inventory.SSH{Host: "127.0.0.5", User: "postgres", Port: 22, IdentityFiles: []string{home + "/.ssh/id_default"}, HostKey: "strict"}},
		{"jump", inventory.SSH{Host: "127.0.0.1", Port: 2200, IdentityFiles: []string{home + "/.ssh/id_default"}, HostKey: "strict"}},
	}
	for _, tt := range tests {
		h, _ := inv.Host(tt.host)
		if !reflect.DeepEqual(h.SSH, tt.want) {
			t.Errorf("%s: SSH =\n%+v\nwant\n%+v", tt.host, h.SSH, tt.want)
		}
	}
}

func TestAMissingOrBadSSHConfigIsAnError(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad_config")
	if err := os.WriteFile(bad, []byte("Host web1\n  Port twenty\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		config, want string
	}{
		{filepath.Join(dir, "missing"), dir + "/missing: cannot read ssh config: no such file or directory"},
		{bad, bad + `: Host web1: Port "twenty": not a port number 1-65535 (for hosts.web1 at c.yaml:2)`},
	}
	for _, tt := range tests {
		_, err := inventory.LoadOptions{SSHConfig: tt.config}.Parse("c.yaml", []byte("hosts:\n  web1: {address: 10.0.0.1}\n"))
		if err == nil || err.Error() != tt.want {
			t.Errorf("with %s: error = %v; want %s", tt.config, err, tt.want)
		}
	}
}

func TestHostAndGroupHostsFindWhatTheFileNames(t *testing.T) {
	inv := loadLab(t)
	if h, ok := inv.Host("web2"); !ok || h.Address != "172.30.0.12" {
		t.Errorf("Host(web2) = %+v, %t", h, ok)
	}
	if _, ok := inv.Host("web9"); ok {
		t.Errorf("Host(web9) found a host")
	}
	names := func(hs []*inventory.Host) []string {
		var out []string
		for _, h := range hs {
			out = append(out, h.Name)
		}
		return out
	}
	tests := []struct {
		group   string
		want    []string
		wantErr string
	}{
		{"tomcat", []string{"web1", "web2"}, ""},
		{"lb", []string{"haproxy"}, ""},
		{"all", []string{"haproxy", "web1", "web2", "db", "control"}, ""},
		{"tomact", nil, `../testdata/inventory/lab.yaml: unknown group "tomact" (did you mean "tomcat"?)`},
	}
	for _, tt := range tests {
		hs, err := inv.GroupHosts(tt.group)
		if tt.wantErr != "" {
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("GroupHosts(%s) error = %v; want %s", tt.group, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(names(hs), tt.want) {
			t.Errorf("GroupHosts(%s) = %v, %v; want %v", tt.group, names(hs), err, tt.want)
		}
	}
}

func TestLoadOfAMissingFileNamesIt(t *testing.T) {
	_, err := inventory.Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if err == nil || !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "nope.yaml") {
		t.Errorf("Load of a missing file: %v", err)
	}
}

// A Match block that the inventory cannot evaluate without running something is skipped,
// never executed, and does not stop the inventory from loading; Match all and Match host
// apply as ssh would apply them to the host's alias.
func TestMatchBlocksInSSHConfigAreSkippedNeverRun(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "ran")
	config := filepath.Join(dir, "config")
	text := "Match exec \"touch " + marker + "\"\n" +
		"    User evil\n" +
		"Match host web1,web2 # the two web nodes\n" +
		"    Port 2301\n" +
		"Match user root host web3\n" +
		"    Port 9999\n" +
		"Match final\n" +
		"    Port 9998\n" +
		"match=canonical all\n" +
		"    User evil\n" +
		"Match all\n" +
		"    User deploy\n"
	if err := os.WriteFile(config, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	inv, err := inventory.LoadOptions{SSHConfig: config}.Parse("c.yaml", []byte(
		"hosts:\n  web1: {address: 10.0.0.1}\n  web2: {address: 10.0.0.2}\n  web3: {address: 10.0.0.3}\n"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		host string
		port int
	}{{"web1", 2301}, {"web2", 2301}, {"web3", 22}}
	for _, tt := range tests {
		h, _ := inv.Host(tt.host)
		if h.SSH.Port != tt.port || h.SSH.User != "deploy" {
			t.Errorf("%s: port %d, user %q; want port %d, user deploy", tt.host, h.SSH.Port, h.SSH.User, tt.port)
		}
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("the Match exec command ran")
	}
}
