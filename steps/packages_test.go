package steps_test

import (
	"strings"
	"testing"

	"github.com/cauldron-go/cauldron/shell"
	"github.com/cauldron-go/cauldron/steps"
)

// stanza is a dpkg status entry for a package that is not really there.
func stanza(name, status string) string {
	return "Package: " + name + "\nStatus: " + status + "\nPriority: optional\nSection: misc\n" +
		"Maintainer: cauldron <cauldron@example.invalid>\nArchitecture: all\nVersion: 1.0\n" +
		"Description: a package only the status file has\n\n"
}

// A Packages check on a dpkg host reads dpkg's status file with one awk, and tells
// what dpkg-query would: installed, removed with its config files left, unknown. Where
// an interrupted dpkg left an update journal, which only dpkg-query merges into the
// status, dpkg-query answers; so it does for a name with an architecture.
func TestPackagesAreLookedUpInDpkgsStatusFileAsDpkgQueryWouldAnswer(t *testing.T) {
	needHost(t)
	sh(t, `cp /var/lib/dpkg/status /tmp/cauldron-dpkg-status
cat > /usr/local/bin/dpkg-query <<'EOS'
#!/bin/sh
echo x >> /tmp/cauldron-dpkg-query-calls
exec /usr/bin/dpkg-query "$@"
EOS
chmod 0755 /usr/local/bin/dpkg-query; rm -f /tmp/cauldron-dpkg-query-calls`)
	t.Cleanup(func() {
		sh(t, "cp /tmp/cauldron-dpkg-status /var/lib/dpkg/status; rm -f /var/lib/dpkg/updates/0000 /usr/local/bin/dpkg-query /tmp/cauldron-dpkg-query-calls /tmp/cauldron-dpkg-status")
	})
	sh(t, "printf '%s' "+shell.Quote(stanza("cauldron-removed", "deinstall ok config-files"))+" >> /var/lib/dpkg/status")
	calls := func() int {
		return strings.Count(sh(t, "cat /tmp/cauldron-dpkg-query-calls 2>/dev/null; rm -f /tmp/cauldron-dpkg-query-calls"), "x")
	}
	libc := "libc6:" + strings.TrimSpace(sh(t, "dpkg --print-architecture"))
	for _, tc := range []struct {
		name    string
		journal string // the update journal's entry, if any
		names   []string
		want    string // the check's summary, "" for none
		queries int    // dpkg-query's runs
	}{
		{"all installed", "", []string{"coreutils", "dash"}, "", 0},
		{"removed and unknown", "", []string{"coreutils", "cauldron-removed", "cauldron-nosuch"}, "install cauldron-removed cauldron-nosuch with apt", 0},
		{"installed in the journal", stanza("cauldron-removed", "install ok installed"), []string{"coreutils", "cauldron-removed", "cauldron-nosuch"}, "install cauldron-nosuch with apt", 1},
		{"an architecture", "", []string{libc, "coreutils"}, "", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sh(t, "rm -f /var/lib/dpkg/updates/0000")
			if tc.journal != "" {
				sh(t, "printf '%s' "+shell.Quote(tc.journal)+" > /var/lib/dpkg/updates/0000")
			}
			calls()
			ch := check(t, steps.Packages{Names: tc.names})
			got := ""
			if ch != nil {
				got = ch.Summary
			}
			if got != tc.want {
				t.Errorf("check: %q, want %q", got, tc.want)
			}
			if n := calls(); n != tc.queries {
				t.Errorf("dpkg-query ran %d times, want %d", n, tc.queries)
			}
		})
	}
}
