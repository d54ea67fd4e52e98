package shell_test

import (
	"os/exec"
	"testing"

	"github.com/cauldron-go/cauldron/shell"
)

func TestQuoteKeepsEveryArgumentIntactThroughARealShell(t *testing.T) {
	cases := []string{
		"", "plain", "two words", "it's", `"double"`, "$HOME", "`id`", "a\nb", "semi;colon",
		"back\\slash", "glob*", "~tilde", "-dash", "'", "''", "tab\there", "ünïcödé", "a|b&c>d<e",
	}
	for _, c := range cases {
		got := echoThroughShell(t, c)
		if got != c {
			t.Errorf("Quote(%q) came back from sh as %q", c, got)
		}
	}
}

func TestJoinQuotesEachArgumentOnItsOwn(t *testing.T) {
	got := shell.Join("printf", "%s|", "a b", "c'd")
	want := `printf '%s|' 'a b' 'c'\''d'`
	if got != want {
		t.Fatalf("Join = %s, want %s", got, want)
	}
}

func FuzzQuoteRoundTripsThroughSh(f *testing.F) {
	for _, s := range []string{"", "a b", "it's", "$(rm -rf /)", "\x01\x7f", "'\"\\"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if containsNUL(s) {
			t.Skip("a NUL byte cannot be part of an argv string")
		}
		if got := echoThroughShell(t, s); got != s {
			t.Fatalf("Quote(%q) came back from sh as %q", s, got)
		}
	})
}

func containsNUL(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return true
		}
	}
	return false
}

// echoThroughShell has /bin/sh print the quoted word back, byte for byte.
func echoThroughShell(t *testing.T, s string) string {
	t.Helper()
	out, err := exec.Command("/bin/sh", "-c", "printf %s "+shell.Quote(s)).Output()
	if err != nil {
		t.Fatalf("sh failed for %q: %v", s, err)
	}
	return string(out)
}
