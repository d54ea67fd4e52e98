package inventory_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cauldron-go/cauldron/inventory"
)

// FuzzParse feeds Parse mutated inventories. Beyond not panicking, it checks that an error
// never shows a secret the input did not itself contain, and that whatever Parse accepts
// keeps the promises the package makes about a loaded inventory.
func FuzzParse(f *testing.F) {
	seeds, err := filepath.Glob(filepath.Join(testdata, "*.yaml"))
	if err != nil || len(seeds) == 0 {
		f.Fatalf("no seed files in %s: %v", testdata, err)
	}
	for _, s := range seeds {
		data, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, c := range errorCases {
		f.Add([]byte(c.yaml))
	}

	const envSecret = "env-Secret-55aa"
	secrets := []string{envSecret}
	for _, name := range []string{"ajp", "db", "sudo"} {
		data, err := os.ReadFile(filepath.Join(testdata, "secrets", name))
		if err != nil {
			f.Fatal(err)
		}
		secrets = append(secrets, strings.TrimSpace(string(data)))
	}
	opts := inventory.LoadOptions{
		SSHConfig: filepath.Join(testdata, "ssh_config"),
		LookupEnv: func(name string) (string, bool) { return envSecret, name != "UNSET" },
	}
	file := filepath.Join(testdata, "fuzz.yaml")

	f.Fuzz(func(t *testing.T, data []byte) {
		inv, err := opts.Parse(file, data)
		var shown string
		if err != nil {
			shown = err.Error()
		} else {
			shown = fmt.Sprint(inv.Vars)
			checkInventory(t, inv)
			for _, h := range inv.Hosts {
				shown += fmt.Sprintf("%v %#v", h.Vars, h.Vars)
			}
		}
		for _, s := range secrets {
			if strings.Contains(shown, s) && !bytes.Contains(data, []byte(s)) {
				t.Fatalf("a secret is shown:\n%s", shown)
			}
		}
	})
}

func checkInventory(t *testing.T, inv *inventory.Inventory) {
	t.Helper()
	if len(inv.Hosts) == 0 {
		t.Fatalf("an inventory with no hosts was accepted")
	}
	for _, s := range inv.Secrets() {
		if s == "" {
			t.Fatalf("Secrets() holds an empty string")
		}
	}
	for _, h := range inv.Hosts {
		if got, ok := inv.Host(h.Name); !ok || got != h {
			t.Fatalf("Host(%q) does not find the host", h.Name)
		}
		switch h.Transport {
		case "ssh":
			if h.SSH.Port < 1 || h.SSH.Port > 65535 {
				t.Fatalf("host %s: port %d", h.Name, h.SSH.Port)
			}
			if h.Address == "" && h.SSH.Host == "" {
				t.Fatalf("host %s: nothing to connect to", h.Name)
			}
			if h.SSH.HostKey != "strict" && h.SSH.HostKey != "accept-new" {
				t.Fatalf("host %s: host_key %q", h.Name, h.SSH.HostKey)
			}
		case "docker":
			if h.Docker.Container == "" {
				t.Fatalf("host %s: no container", h.Name)
			}
		case "local":
		default:
			t.Fatalf("host %s: transport %q", h.Name, h.Transport)
		}
		for _, name := range h.Vars.Names() {
			v, _ := h.Vars.Lookup(name)
			if v.File == "" || v.Line < 1 {
				t.Fatalf("host %s: var %s has no place: %s:%d", h.Name, name, v.File, v.Line)
			}
		}
	}
	for _, g := range inv.Groups {
		if _, err := inv.GroupHosts(g.Name); err != nil {
			t.Fatalf("GroupHosts(%q): %v", g.Name, err)
		}
	}
}
