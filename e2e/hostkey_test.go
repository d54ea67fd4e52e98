package e2e_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/cauldron-go/cauldron/runner"
)

// A changed host key stops that host, an unknown one too (strict is the default), and
// the other hosts go on; nothing changes anywhere (a dry run, so a host that went
// through would only have been read).
func TestAChangedOrUnknownHostKeyStopsThatHostOnly(t *testing.T) {
	l := needDeployed(t)
	known, err := os.ReadFile(l.KnownHostsFile)
	if err != nil {
		t.Fatal(err)
	}
	web1, err := l.Host("web1")
	if err != nil {
		t.Fatal(err)
	}
	web2, err := l.Host("web2")
	if err != nil {
		t.Fatal(err)
	}
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	other, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	marker := func(port int) string { return "[127.0.0.1]:" + strconv.Itoa(port) + " " }
	var lines []string
	for _, line := range strings.Split(strings.TrimSpace(string(known)), "\n") {
		switch {
		case strings.HasPrefix(line, marker(web1.SSHPort)):
			lines = append(lines, marker(web1.SSHPort)+strings.TrimSpace(string(ssh.MarshalAuthorizedKey(other))))
		case strings.HasPrefix(line, marker(web2.SSHPort)):
			// web2's key is left out: unknown.
		default:
			lines = append(lines, line)
		}
	}
	tampered := filepath.Join(filepath.Dir(l.KnownHostsFile), "known_hosts-tampered")
	if err := os.WriteFile(tampered, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	inv := variantInventory(t, l.SSHInventory, "inventory-ssh-tampered-keys.yaml", func(s string) string {
		return strings.ReplaceAll(s, l.KnownHostsFile, tampered)
	})

	d := deploy(t, inv, runner.Plan)
	if d.err == nil {
		t.Fatalf("a run with a changed and an unknown host key succeeded\n%s", d.progress)
	}
	want := map[string]string{"web1": "HOST KEY CHANGED", "web2": "not in"}
	for _, h := range d.rep.Hosts {
		msg, stopped := want[h.Host]
		if h.Failed != stopped {
			t.Errorf("%s: failed %v, want %v\n%s", h.Host, h.Failed, stopped, d.progress)
		}
		if stopped && !strings.Contains(h.Error, msg) {
			t.Errorf("%s: the error does not say %q: %s", h.Host, msg, h.Error)
		}
	}
	if ch := changedSteps(d.rep); len(ch) != 0 {
		t.Errorf("a converged cluster would change: %v", ch)
	}
}
