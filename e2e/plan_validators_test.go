package e2e_test

import (
	"crypto/sha256"
	"slices"
	"strings"
	"testing"

	"github.com/cauldron-go/cauldron/recipes"
	"github.com/cauldron-go/cauldron/runner"
)

// TestAPlanSaysWhichConfigTheServerWouldReject plans a haproxy.cfg that haproxy -c
// rejects: the plan fails that one step with haproxy's own message, checked on a copy,
// and leaves the live file, the services and the host's temporary folder as they were.
func TestAPlanSaysWhichConfigTheServerWouldReject(t *testing.T) {
	l := needDeployed(t)
	evidenceOnFailure(t, l)
	broken := variantInventory(t, l.SSHInventory, "inventory-ssh-plan-broken-haproxy.yaml", func(s string) string {
		return strings.Replace(s, "\nvars:\n", "\nvars:\n  haproxy_extra: [\"this-is-not-an-option 1\"]\n", 1)
	})
	sum := func() [32]byte { return sha256.Sum256(readHostFile(t, l, "haproxy", recipes.HAProxyConfigPath)) }
	was := sum()
	units := unitStates(t, l)

	d := deploy(t, broken, runner.Plan)
	if d.err == nil || !d.rep.Failed() {
		t.Fatalf("the plan of a broken haproxy.cfg did not fail: %v\n%s", d.err, d.progress)
	}
	var failed []string
	for _, h := range d.rep.Hosts {
		for _, s := range h.Steps {
			if s.Status == runner.StatusFailed {
				failed = append(failed, h.Host+": "+s.Step)
				for _, want := range []string{"this-is-not-an-option", "unknown keyword", "nothing was changed"} {
					if !strings.Contains(s.Error, want) {
						t.Errorf("the plan's error lacks %q: %s", want, s.Error)
					}
				}
			}
		}
	}
	if want := []string{"haproxy: file " + recipes.HAProxyConfigPath}; !slices.Equal(failed, want) {
		t.Errorf("failed steps %v, want %v\n%s", failed, want, d.progress)
	}
	if !strings.Contains(d.progress, "unknown keyword") {
		t.Errorf("the plan's output lacks haproxy's message:\n%s", d.progress)
	}
	if sum() != was {
		t.Errorf("the live haproxy.cfg changed")
	}
	if now := unitStates(t, l); !mapsEqual(now, units) {
		t.Errorf("a service was restarted or reloaded:\nbefore %v\nafter  %v", units, now)
	}
	if left := mustHost(t, l, "haproxy", "ls -a /tmp | grep -c cauldron-check || true"); left != "0\n" {
		t.Errorf("the plan left %s temporary copies in /tmp", strings.TrimSpace(left))
	}
}
