package inventory_test

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/cauldron-go/cauldron/inventory"
)

// errorCases are inventories with mistakes and the exact report each must give.
// Secret files are named relative to this package's directory, where "lab.yaml" is.
var errorCases = []struct {
	name, yaml, want string
}{
	{
		"unknown ssh key with a likely spelling",
		`hosts:
  web1:
    address: 10.0.0.1
    ssh:
      prot: 2211
`,
		"lab.yaml:5: hosts.web1.ssh.prot: unknown key (did you mean \"port\"?)",
	},
	{
		"unknown key with no likely spelling",
		`hosts:
  web1: {address: 10.0.0.1}
inventory_version: 2
`,
		"lab.yaml:3: inventory_version: unknown key (expected one of: groups, hosts, vars)",
	},
	{
		"unknown keys in a host, a group and docker",
		`groups:
  tomcat:
    host: [web1]
hosts:
  web1:
    adress: 10.0.0.1
    transport: docker
    docker: {name: x}
`,
		"lab.yaml:3: groups.tomcat.host: unknown key (did you mean \"hosts\"?)\n" +
			"lab.yaml:6: hosts.web1.adress: unknown key (did you mean \"address\"?)\n" +
			"lab.yaml:8: hosts.web1.docker.name: unknown key (expected one of: container, persist)",
	},
	{
		"a host defined twice",
		`hosts:
  web1: {address: 10.0.0.1}
  web2: {address: 10.0.0.2}
  web1: {address: 10.0.0.3}
`,
		"lab.yaml:4: hosts.web1: duplicate key (first at line 2)",
	},
	{
		"a key set twice",
		`hosts:
  web1:
    address: 10.0.0.1
    ssh:
      port: 22
      user: root
      port: 2222
`,
		"lab.yaml:7: hosts.web1.ssh.port: duplicate key (first at line 5)",
	},
	{
		"a key set twice inside a var",
		`vars:
  db: {name: a, user: b, name: c}
hosts:
  web1: {address: 10.0.0.1}
`,
		"lab.yaml:2: vars.db.name: duplicate key (first at line 2)",
	},
	{
		"a group naming unknown hosts and one twice",
		`groups:
  tomcat:
    hosts: [web1, wbe2, web1, db]
hosts:
  web1: {address: 10.0.0.1}
  web2: {address: 10.0.0.2}
`,
		"lab.yaml:3: groups.tomcat.hosts[1]: unknown host \"wbe2\" (did you mean \"web2\"?)\n" +
			"lab.yaml:3: groups.tomcat.hosts[2]: host \"web1\" is listed twice\n" +
			"lab.yaml:3: groups.tomcat.hosts[3]: unknown host \"db\"",
	},
	{
		"bad ports",
		`hosts:
  a: {address: 10.0.0.1, ssh: {port: 70000}}
  b: {address: 10.0.0.2, ssh: {port: 0}}
  c: {address: 10.0.0.3, ssh: {port: twenty}}
  d: {address: 10.0.0.4, ssh: {port: -1}}
  e: {address: 10.0.0.5, ssh: {port: 22.5}}
  f: {address: 10.0.0.6, ssh: {port: [22]}}
`,
		"lab.yaml:2: hosts.a.ssh.port: port 70000 is out of range 1-65535\n" +
			"lab.yaml:3: hosts.b.ssh.port: port 0 is out of range 1-65535\n" +
			"lab.yaml:4: hosts.c.ssh.port: \"twenty\" is not a port number\n" +
			"lab.yaml:5: hosts.d.ssh.port: port -1 is out of range 1-65535\n" +
			"lab.yaml:6: hosts.e.ssh.port: \"22.5\" is not a port number\n" +
			"lab.yaml:7: hosts.f.ssh.port: expected a port number, got a list",
	},
	{
		"unknown transport",
		`hosts:
  web1:
    address: 10.0.0.1
    transport: dokcer
  web2:
    transport: telnet
`,
		"lab.yaml:4: hosts.web1.transport: unknown transport \"dokcer\" (did you mean \"docker\"?)\n" +
			"lab.yaml:6: hosts.web2.transport: unknown transport \"telnet\" (expected one of: ssh, docker, local)",
	},
	{
		"bad host_key",
		`hosts:
  web1:
    address: 10.0.0.1
    ssh: {host_key: yes}
  web2:
    address: 10.0.0.2
    ssh: {host_key: accept}
`,
		"lab.yaml:4: hosts.web1.ssh.host_key: unknown host_key mode \"yes\" (expected one of: strict, accept-new)\n" +
			"lab.yaml:7: hosts.web2.ssh.host_key: unknown host_key mode \"accept\" (expected one of: strict, accept-new)",
	},
	{
		"bad persist",
		`hosts:
  web1:
    address: 10.0.0.1
    ssh: {persist: 60}
  web2:
    address: 10.0.0.2
    ssh: {persist: -5s}
  web3:
    address: 10.0.0.3
    ssh: {persist: [60s]}
  box: {transport: docker, docker: {persist: 1 minute}}
`,
		"lab.yaml:4: hosts.web1.ssh.persist: \"60\" is not a duration such as 60s or 10m, nor off\n" +
			"lab.yaml:7: hosts.web2.ssh.persist: \"-5s\" is not a duration such as 60s or 10m, nor off\n" +
			"lab.yaml:10: hosts.web3.ssh.persist: expected a string, got a list\n" +
			"lab.yaml:11: hosts.box.docker.persist: \"1 minute\" is not a duration such as 60s or 10m, nor off",
	},
	{
		"an ssh host with no address",
		`hosts:
  web1:
    ssh: {user: root}
  box: {transport: docker}
`,
		"lab.yaml:2: hosts.web1: no address to connect to: set address or ssh.host",
	},
	{
		"bad addresses and names",
		`hosts:
  web1:
    address: "10.0.0.1; rm -rf /"
    ssh: {host: "-oProxyCommand=x"}
  "web 2": {address: 10.0.0.2}
  web3:
    transport: docker
    docker: {container: "a/b"}
groups:
  "": {hosts: [web1]}
`,
		"lab.yaml:3: hosts.web1.address: \"10.0.0.1; rm -rf /\" is not an IP address or host name\n" +
			"lab.yaml:4: hosts.web1.ssh.host: \"-oProxyCommand=x\" is not an IP address or host name\n" +
			"lab.yaml:5: hosts.\"web 2\": bad host name: use letters, digits, '.', '_' and '-', starting with a letter or digit\n" +
			"lab.yaml:8: hosts.web3.docker.container: bad container name \"a/b\": use letters, digits, '.', '_' and '-', starting with a letter or digit\n" +
			"lab.yaml:10: groups.\"\": bad group name: use letters, digits, '.', '_' and '-', starting with a letter or digit",
	},
	{
		"wrong YAML types",
		`vars: [a, b]
groups:
  tomcat: [web1]
hosts:
  web1:
    address: [10.0.0.1]
    ssh: root@10.0.0.1
    docker: []
    vars: 3
  web2:
    address: 10.0.0.2
    ssh:
      identity_files: key
      become: "yes"
`,
		"lab.yaml:1: vars: expected a mapping, got a list\n" +
			"lab.yaml:3: groups.tomcat: expected a mapping, got a list\n" +
			"lab.yaml:6: hosts.web1.address: expected a string, got a list\n" +
			"lab.yaml:7: hosts.web1.ssh: expected a mapping, got a string\n" +
			"lab.yaml:8: hosts.web1.docker: expected a mapping, got a list\n" +
			"lab.yaml:9: hosts.web1.vars: expected a mapping, got a number\n" +
			"lab.yaml:13: hosts.web2.ssh.identity_files: expected a list, got a string\n" +
			"lab.yaml:14: hosts.web2.ssh.become: expected true or false, got a string",
	},
	{
		"hosts is a list",
		`hosts:
  - web1
  - web2
`,
		"lab.yaml:2: hosts: expected a mapping, got a list",
	},
	{
		"empty file",
		``,
		"lab.yaml: file is empty",
	},
	{
		"a file of comments",
		`# nothing yet

`,
		"lab.yaml: file is empty",
	},
	{
		"an empty document",
		`---
`,
		"lab.yaml: file is empty",
	},
	{
		"no hosts key",
		`vars: {a: 1}
`,
		"lab.yaml:1: hosts: missing: an inventory needs at least one host",
	},
	{
		"no hosts",
		`vars: {a: 1}
hosts: {}
`,
		"lab.yaml:2: hosts: no hosts: an inventory needs at least one host",
	},
	{
		"YAML syntax error",
		`hosts:
  web1:
    address: 10.0.0.1
   ssh: {port: 22}
`,
		"lab.yaml:4: did not find expected key",
	},
	{
		"unclosed flow mapping",
		`hosts:
  web1: {address: 10.0.0.1
`,
		"lab.yaml:2: did not find expected ',' or '}'",
	},
	{
		"a second document",
		`hosts:
  web1: {address: 10.0.0.1}
---
hosts: {}
`,
		"lab.yaml:3: a second YAML document; an inventory is one document",
	},
	{
		"a secret file that cannot be read",
		`vars:
  ajp_secret: {from_file: secrets/missing}
  dir_secret: {from_file: ../testdata/inventory/secrets}
hosts:
  web1: {address: 10.0.0.1}
`,
		"lab.yaml:2: vars.ajp_secret: secret file \"secrets/missing\": no such file or directory\n" +
			"lab.yaml:3: vars.dir_secret: secret file \"../testdata/inventory/secrets\": not a regular file",
	},
	{
		"from_env naming unset or empty variables",
		`vars:
  stats_password: {from_env: UNSET}
  nested:
    list:
      - {from_env: EMPTY}
hosts:
  web1: {address: 10.0.0.1}
`,
		"lab.yaml:2: vars.stats_password: environment variable UNSET is not set\n" +
			"lab.yaml:5: vars.nested.list[0]: environment variable EMPTY is empty",
	},
	{
		"a secret with other keys or no name",
		`vars:
  a: {from_env: SET, default: x}
  b: {from_file: ""}
  c: {from_env: [SET]}
hosts:
  web1: {address: 10.0.0.1}
`,
		"lab.yaml:2: vars.a: a secret is {from_file: PATH} or {from_env: NAME} with no other keys\n" +
			"lab.yaml:3: vars.b.from_file: empty value\n" +
			"lab.yaml:4: vars.c.from_env: expected a string, got a list",
	},
	{
		"both identity keys, both password keys, password without become",
		`hosts:
  web1:
    address: 10.0.0.1
    ssh:
      identity_file: a
      identity_files: [b]
      become_password_env: SET
      become_password_file: ../testdata/inventory/secrets/sudo
`,
		"lab.yaml:6: hosts.web1.ssh.identity_files: set identity_file or identity_files, not both\n" +
			"lab.yaml:7: hosts.web1.ssh.become_password_env: a become password is set but become is not true\n" +
			"lab.yaml:8: hosts.web1.ssh.become_password_file: set become_password_env or become_password_file, not both",
	},
	{
		"a become password that cannot be read",
		`hosts:
  web1:
    address: 10.0.0.1
    ssh:
      become: true
      become_password_env: UNSET
  web2:
    address: 10.0.0.2
    ssh:
      become: true
      become_password_file: nope
`,
		"lab.yaml:6: hosts.web1.ssh.become_password_env: environment variable UNSET is not set\n" +
			"lab.yaml:11: hosts.web2.ssh.become_password_file: secret file \"nope\": no such file or directory",
	},
	{
		"a self-containing alias",
		`vars:
  a: &a [*a]
hosts:
  web1: {address: 10.0.0.1}
`,
		"lab.yaml:2: vars.a: nested too deeply (more than 64 levels, or an alias that contains itself)",
	},
	{
		"a billion laughs",
		`vars:
  a: &a [x, x, x, x, x, x, x, x, x, x]
  b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
  c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
  d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
  e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
  f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]
hosts:
  web1: {address: 10.0.0.1}
`,
		"lab.yaml:6: vars.e: too many nodes after expanding aliases (more than 65536)",
	},
	{
		"a bad merge key",
		`hosts:
  web1:
    <<: 3
    address: 10.0.0.1
`,
		"lab.yaml:3: hosts.web1: a merge key (<<) needs a mapping or a list of mappings, got a number",
	},
	{
		"a mapping as a key",
		`hosts:
  ? {a: 1}
  : {address: 10.0.0.1}
`,
		"lab.yaml:2: hosts: a key must be a string, got a mapping",
	},
}

func TestMistakesAreReportedWithFileLineAndKeyPath(t *testing.T) {
	env := func(name string) (string, bool) {
		switch name {
		case "SET":
			return "env-Secret-55aa", true
		case "EMPTY":
			return "", true
		}
		return "", false
	}
	opts := inventory.LoadOptions{SSHConfig: os.DevNull, LookupEnv: env}
	for _, tt := range errorCases {
		t.Run(tt.name, func(t *testing.T) {
			inv, err := opts.Parse("lab.yaml", []byte(tt.yaml))
			if err == nil {
				t.Fatalf("Parse succeeded (%d hosts); want:\n%s", len(inv.Hosts), tt.want)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("Parse error:\n%s\nwant:\n%s", got, tt.want)
			}
			if strings.Contains(err.Error(), "Secret-") {
				t.Errorf("the error shows a secret: %v", err)
			}
		})
	}
}

func TestEachMistakeIsAnErrorValueAndTheReportIsBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("hosts:\n  web1:\n    address: 10.0.0.1\n")
	for i := 0; i < 60; i++ {
		fmt.Fprintf(&b, "    unknown_%d: x\n", i)
	}
	_, err := inventory.LoadOptions{SSHConfig: os.DevNull}.Parse("lab.yaml", []byte(b.String()))
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("Parse error %T does not hold a list of errors", err)
	}
	errs := joined.Unwrap()
	if len(errs) != 51 {
		t.Fatalf("got %d errors; want the first 50 and a count of the rest", len(errs))
	}
	var first *inventory.Error
	if !errors.As(errs[0], &first) || first.File != "lab.yaml" || first.Line != 4 || first.Path != "hosts.web1.unknown_0" {
		t.Errorf("first error = %#v", first)
	}
	if got, want := errs[50].Error(), "lab.yaml: and 10 more errors"; got != want {
		t.Errorf("last error = %q; want %q", got, want)
	}
}
