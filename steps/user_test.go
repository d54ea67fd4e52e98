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

// What getent and id say of an account is what AccountRead must print. Where
// nsswitch.conf has the passwd, group and shadow databases in the local files alone,
// one awk answers (with awk the only program on the PATH, the answer is whole); where
// it names another source too, getent and id answer (without them, nothing).
func TestTheAccountReadFromTheLocalFilesAnswersAsGetentAndIdDo(t *testing.T) {
	needHost(t)
	sh(t, `cp /etc/nsswitch.conf /tmp/cauldron-nsswitch.conf
for g in cauldron-g1 cauldron-g2; do getent group $g >/dev/null || groupadd $g; done
id acctread >/dev/null 2>&1 || useradd -m -G cauldron-g1,cauldron-g2 acctread
gpasswd -a root cauldron-g2 >/dev/null
grep -q '^acctghost:' /etc/passwd || echo 'acctghost:x:4242:4343::/nonexistent:/usr/sbin/nologin' >> /etc/passwd
mkdir -p /tmp/cauldron-onlyawk && ln -sf "$(command -v awk)" /tmp/cauldron-onlyawk/awk`)
	t.Cleanup(func() {
		sh(t, `cp /tmp/cauldron-nsswitch.conf /etc/nsswitch.conf; sed -i '/^acctghost:/d' /etc/passwd
userdel -r acctread 2>/dev/null; gpasswd -d root cauldron-g2 >/dev/null; groupdel cauldron-g1; groupdel cauldron-g2; rm -rf /tmp/cauldron-onlyawk; true`)
	})
	truth := func(name string) string {
		return sh(t, "getent passwd "+name+" || echo; getent shadow "+name+" 2>/dev/null || echo; id -nG "+name+" 2>/dev/null || echo")
	}
	for _, tc := range []struct {
		sources string // of passwd and group in nsswitch.conf
		local   bool   // whether the awk answers
	}{
		{"files", true},
		{"files systemd", false},
		{"compat", false},
	} {
		sh(t, "sed -i -E 's/^(passwd|group):.*/\\1: "+tc.sources+"/' /etc/nsswitch.conf")
		for _, name := range []string{"acctread", "root", "nobody", "acctghost", "cauldron-nosuch"} {
			want := truth(name)
			if got := sh(t, steps.AccountRead(name)); got != want {
				t.Errorf("%s, %s: AccountRead printed %q, getent and id %q", tc.sources, name, got, want)
			}
			if got := sh(t, steps.AccountRead(name)+"; echo after"); got != want+"after\n" {
				t.Errorf("%s, %s: AccountRead followed by an echo printed %q", tc.sources, name, got)
			}
			onlyAwk := sh(t, "PATH=/tmp/cauldron-onlyawk; "+steps.AccountRead(name))
			if tc.local && onlyAwk != want {
				t.Errorf("%s, %s: the awk alone printed %q, getent and id %q", tc.sources, name, onlyAwk, want)
			}
			if !tc.local && onlyAwk != "\n\n\n" {
				t.Errorf("%s, %s: the awk answered %q where nsswitch.conf has more than the files", tc.sources, name, onlyAwk)
			}
		}
	}
}
