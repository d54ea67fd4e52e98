package inventory_test

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/cauldron-go/cauldron/inventory"
)

func TestCheckVarsNamesEachUnknownOrInlineSecretVariableOnce(t *testing.T) {
	t.Setenv("CHECK_TEST_SECRET", "s3cret-value")
	rules := inventory.VarRules{Known: []string{"heap", "ajp_secret", "node", "db_password"}, Secrets: []string{"ajp_secret", "db_password"}}
	cases := []struct {
		name, yaml, want string
	}{
		{"all known, secrets from the environment", `vars:
  heap: 512m
  ajp_secret: {from_env: CHECK_TEST_SECRET}
hosts:
  web1: {address: 10.0.0.1, vars: {node: 1}}
`, ""},
		{"a misspelled global, reported once for two hosts", `vars:
  heap_size: 512m
hosts:
  web1: {address: 10.0.0.1}
  web2: {address: 10.0.0.2}
`, `c.yaml:2: vars.heap_size: unknown variable (did you mean "heap"?)`},
		{"misspelled in a group and a host", `groups:
  tomcat:
    hosts: [web1]
    vars: {ajp_secet: {from_env: CHECK_TEST_SECRET}}
hosts:
  web1:
    address: 10.0.0.1
    vars: {nodes: 1, colour: blue}
`, "c.yaml:4: groups.tomcat.vars.ajp_secet: unknown variable (did you mean \"ajp_secret\"?)\n" +
			"c.yaml:8: hosts.web1.vars.colour: unknown variable (no recipe reads it; a recipe of your own declares the variables it reads)\n" +
			"c.yaml:8: hosts.web1.vars.nodes: unknown variable (did you mean \"node\"?)"},
		{"a secret written inline", `vars:
  db_password: hunter2-hunter2
hosts:
  web1: {address: 10.0.0.1, vars: {ajp_secret: abc}}
`, "c.yaml:2: vars.db_password: a secret written in the inventory: use {from_file: PATH} or {from_env: NAME}\n" +
			"c.yaml:4: hosts.web1.vars.ajp_secret: a secret written in the inventory: use {from_file: PATH} or {from_env: NAME}"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			inv, err := inventory.LoadOptions{SSHConfig: os.DevNull}.Parse("c.yaml", []byte(tc.yaml))
			if err != nil {
				t.Fatal(err)
			}
			err = inv.CheckVars(rules)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Errorf("CheckVars:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

func TestANumberWithAFractionIsNotCutToAnInteger(t *testing.T) {
	inv, err := inventory.LoadOptions{SSHConfig: os.DevNull}.Parse("c.yaml", []byte(`hosts:
  web1:
    address: 10.0.0.1
    vars:
      node: 2.7
      ports: [80, 1e3]
      good: 3
`))
	if err != nil {
		t.Fatal(err)
	}
	h, _ := inv.Host("web1")
	var v struct {
		Node  int   `yaml:"node"`
		Ports []int `yaml:"ports"`
		Good  int   `yaml:"good"`
	}
	err = h.Vars.Decode(&v)
	want := "c.yaml:5: hosts.web1.vars.node: cannot decode a number with a fraction into int: write a whole number\n" +
		"c.yaml:6: hosts.web1.vars.ports: cannot decode a number with a fraction into []int: write a whole number"
	if err == nil || err.Error() != want {
		t.Errorf("Decode error:\n%v\nwant:\n%s", err, want)
	}
	if v.Node != 0 || v.Good != 3 {
		t.Errorf("decoded node %d, good %d; want 0 (not set) and 3", v.Node, v.Good)
	}
}

func TestVarNamesAreTheNamesDecodeFills(t *testing.T) {
	type Inner struct {
		B string `yaml:"b_name"`
	}
	var v struct {
		A       int `yaml:"a_name"`
		Plain   string
		Skipped string `yaml:"-"`
		Inner   `yaml:",inline"`
		hidden  string
	}
	_ = v.hidden
	if got, want := inventory.VarNames(&v), []string{"a_name", "plain", "b_name"}; !reflect.DeepEqual(got, want) {
		t.Errorf("VarNames = %v; want %v", got, want)
	}
}

func TestLocalPathIsRelativeToTheInventorysFolder(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "site", "inventory.yaml")
	inv, err := inventory.LoadOptions{SSHConfig: os.DevNull}.Parse(file, []byte("hosts:\n  web1: {address: 10.0.0.1}\n"))
	if err != nil {
		t.Fatal(err)
	}
	home, _ := os.UserHomeDir()
	cases := []struct{ in, want string }{
		{"setup/tomcat.tar.gz", filepath.Join(dir, "site", "setup", "tomcat.tar.gz")},
		{"../x.war", filepath.Join(dir, "x.war")},
		{"/srv/a.tar.gz", "/srv/a.tar.gz"},
		{"~/b.tar.gz", filepath.Join(home, "b.tar.gz")},
	}
	for _, tc := range cases {
		if got, err := inv.LocalPath(tc.in); err != nil || got != tc.want {
			t.Errorf("LocalPath(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}
