package steps_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/cauldron-go/cauldron/steps"
	"github.com/cauldron-go/cauldron/transport"
)

// Hashes made with `openssl passwd -6` of "correct horse" and "other pass".
const (
	hash      = "$6$cauldronsalt1$TRPRJ3MRYyqFGzZLzTzJ8SAPoSJ5KUJBCFhRoQBf03fYXGLWd3nvfb6H/Pt48mjeICdsWY1XkCZU/8bMQ1lKg."
	otherHash = "$6$othersalt2$xnr7VwhUf8cmssc7KEOmayksKWR3/m2av33El43GOZbMEIEhIl4YWg.BqDsrrOcaFCVOc84sjzAMg3wgJjpJW."
)

// passwordWorks asks the host's libc crypt, through perl, whether password matches the
// account's shadow entry: what a login would check. The password goes in on stdin.
func passwordWorks(t *testing.T, user, password string) bool {
	t.Helper()
	out, err := transport.OutputWithInput(context.Background(), host,
		`perl -e '$p = <STDIN>; chomp $p; $h = (getpwnam($ARGV[0]))[1]; print crypt($p, $h) eq $h ? "yes" : "no"' `+user,
		strings.NewReader(password+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	return out == "yes"
}

func TestUserIsCreatedAndFixedAndItsHashIsNeverShown(t *testing.T) {
	needHost(t)
	sh(t, "getent group tomcat >/dev/null || groupadd tomcat")
	u := steps.AddUser{Name: "appuser", Home: "/home/appuser", Shell: "/bin/bash", PasswordHash: hash, Groups: []string{"tomcat", "daemon"}}
	var shown []string
	record := func(ch *steps.Change) { shown = append(shown, ch.Summary, ch.Diff) }

	record(converges(t, u))
	if got := sh(t, "getent shadow appuser | cut -d: -f2"); got != hash+"\n" {
		t.Fatal("the shadow entry does not hold the hash")
	}
	if !passwordWorks(t, "appuser", "correct horse") || passwordWorks(t, "appuser", "wrong") {
		t.Fatal("the password does not log in, or a wrong one does")
	}
	if got := strings.Fields(sh(t, "id -nG appuser")); !slices.Contains(got, "tomcat") || !slices.Contains(got, "daemon") {
		t.Fatalf("groups %v", got)
	}
	sh(t, "test -d /home/appuser")

	drifts := []struct{ name, line, want string }{
		{"shell", "usermod -s /bin/sh appuser", "shell /bin/sh -> /bin/bash"},
		{"group", "gpasswd -d appuser tomcat", "add to groups tomcat"},
		{"password", "echo 'appuser:" + otherHash + "' | chpasswd -e", "set password"},
	}
	for _, d := range drifts {
		t.Run(d.name, func(t *testing.T) {
			sh(t, d.line)
			ch := converges(t, u)
			record(ch)
			contains(t, "summary", ch.Summary, d.want)
		})
	}
	if !passwordWorks(t, "appuser", "correct horse") {
		t.Fatal("the password was not put back")
	}

	// A failing apply must not carry the hash either: a group that does not exist.
	bad := u
	bad.Name, bad.Groups = "appuser2", []string{"nosuchgroup"}
	_, err := steps.Converge(context.Background(), host, bad)
	if err == nil {
		t.Fatal("useradd with a missing group succeeded")
	}
	shown = append(shown, err.Error())
	// And neither a validation error about the hash.
	badHash := steps.AddUser{Name: "x", PasswordHash: hash + ":extra"}
	verr := badHash.Validate()
	if verr == nil {
		t.Fatal("a hash with ':' was accepted")
	}
	shown = append(shown, verr.Error())

	for _, s := range shown {
		if strings.Contains(s, "$6$") || strings.Contains(s, "cauldronsalt1") || strings.Contains(s, "othersalt2") {
			t.Fatalf("a hash appears in %q", s)
		}
	}
}
