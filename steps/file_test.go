package steps_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"text/template"

	"github.com/bitfield/script"

	"github.com/cauldron-go/cauldron/steps"
	"github.com/cauldron-go/cauldron/transport"
	"github.com/cauldron-go/cauldron/transport/local"
)

func TestFileIsWrittenThenConvergedAndDriftIsPutBack(t *testing.T) {
	needHost(t)
	tmpl := template.Must(template.New("conf").Parse("port={{.Port}}\nname={{.Name}}\n"))
	cases := []struct {
		name    string
		content steps.Content
		want    string
		mode    string
	}{
		{"text", steps.Text("hello\nworld\n"), "hello\nworld\n", "644"},
		{"bytes", steps.Bytes([]byte("a\x00b")), "a\x00b", "600"},
		{"template", steps.Template(tmpl, map[string]any{"Port": 8009, "Name": "ajp"}), "port=8009\nname=ajp\n", "640"},
		{"pipe", steps.Pipe(func() *script.Pipe { return script.Echo("one\ntwo\nthree\n").Match("t") }), "two\nthree\n", "755"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := "/srv/file-" + tc.name + ".conf"
			var mode uint32
			fmt.Sscanf(tc.mode, "%o", &mode)
			f := steps.File{Path: path, Content: tc.content, Mode: fsMode(mode), Owner: "root", Group: "daemon"}
			sh(t, "mkdir -p /srv")

			first := converges(t, f)
			contains(t, "summary", first.Summary, "create "+path)
			if tc.name != "bytes" {
				contains(t, "diff", first.Diff, "--- "+path+" (on host)\n+++ "+path+" (wanted)\n")
			}
			if got := sh(t, "cat "+path); got != tc.want {
				t.Fatalf("content %q, want %q", got, tc.want)
			}
			if got := sh(t, "stat -c '%a %U %G' "+path); got != tc.mode+" root daemon\n" {
				t.Fatalf("stat: %q", got)
			}

			sh(t, "echo drift >> "+path)
			ch := converges(t, f)
			contains(t, "summary", ch.Summary, "update "+path)
			if tc.name != "bytes" {
				contains(t, "diff", ch.Diff, "-drift")
			}

			sh(t, "chmod 604 "+path+" && chown nobody "+path)
			ch = converges(t, f)
			contains(t, "summary", ch.Summary, "mode 0604 -> 0"+tc.mode)
			contains(t, "summary", ch.Summary, "owner nobody -> root")
			if ch.Diff != "" {
				t.Fatalf("a mode change has no content diff, got %q", ch.Diff)
			}
			if got := sh(t, "stat -c '%a %U %G' "+path+"; ls -a /srv | grep -c cauldron- || true"); got != tc.mode+" root daemon\n0\n" {
				t.Fatalf("stat and leftovers: %q", got)
			}
		})
	}
}

func TestFileWithoutModeOrOwnerKeepsThoseOfTheFileItReplaces(t *testing.T) {
	needHost(t)
	sh(t, "mkdir -p /srv && printf old > /srv/keep.conf && chmod 600 /srv/keep.conf && chown nobody:daemon /srv/keep.conf")
	converges(t, steps.File{Path: "/srv/keep.conf", Content: steps.Text("new\n")})
	if got := sh(t, "stat -c '%a %U %G' /srv/keep.conf"); got != "600 nobody daemon\n" {
		t.Fatalf("stat: %q", got)
	}
}

// A validator runs twice: on a private copy when the step is checked (so a plan says
// the server would reject the file), and on the temporary file beside the target just
// before the rename (so content that went bad between check and apply never goes live).
func TestFileWithAFailingValidatorKeepsTheOldFile(t *testing.T) {
	needHost(t)
	ctx := context.Background()
	const path = "/srv/validated.sh"
	sh(t, "mkdir -p /srv; rm -f /srv/reject-now")
	good := steps.File{Path: path, Content: steps.Text("echo fine\n"), ValidateCmd: "test ! -e /srv/reject-now && sh -n %s"}
	converges(t, good)

	t.Run("a command", func(t *testing.T) {
		bad := good
		bad.Content = steps.Text("if then fi (\n")
		_, err := bad.Check(ctx, host)
		if err == nil {
			t.Fatal("the check did not run the validator")
		}
		contains(t, "check error", err.Error(), `Syntax error: "then" unexpected`)
		contains(t, "check error", err.Error(), "nothing was changed")

		later := good
		later.Content = steps.Text("echo later\n")
		ch := check(t, later)
		sh(t, "touch /srv/reject-now")
		defer sh(t, "rm -f /srv/reject-now")
		err = ch.Apply(ctx)
		if err == nil {
			t.Fatal("the validator did not stop the new content at apply")
		}
		contains(t, "apply error", err.Error(), "the old file stays")
	})

	t.Run("a function", func(t *testing.T) {
		var seen []string
		rejectAll := false
		bad := steps.File{Path: path, Content: steps.Text("rejected\n"),
			ValidateFunc: func(ctx context.Context, c transport.Conn, tmp string) error {
				seen = append(seen, tmp)
				b, err := c.Read(ctx, tmp)
				if err != nil {
					return err
				}
				if rejectAll || strings.Contains(string(b), "rejected") {
					return errors.New("the word rejected is not allowed")
				}
				return nil
			}}
		_, err := bad.Check(ctx, host)
		if err == nil || !strings.Contains(err.Error(), "the word rejected is not allowed") {
			t.Fatalf("check: got %v", err)
		}
		if len(seen) != 1 || !strings.HasPrefix(seen[0], "/tmp/.cauldron-check-") {
			t.Fatalf("the check's validator saw %q, not one private temporary file", seen)
		}
		if got := sh(t, "test -e "+seen[0]+" && echo left || echo removed"); got != "removed\n" {
			t.Fatalf("the checked copy was %s", got)
		}
		okay := bad
		okay.Content = steps.Text("accepted\n")
		ch := check(t, okay)
		rejectAll = true
		if err := ch.Apply(ctx); err == nil || !strings.Contains(err.Error(), "the word rejected is not allowed") {
			t.Fatalf("apply: got %v", err)
		}
		if last := seen[len(seen)-1]; !strings.HasPrefix(last, "/srv/.validated.sh.cauldron-") {
			t.Fatalf("the apply's validator saw %q, not a temporary file beside the target", last)
		}
		rejectAll = false
		converges(t, okay)
		converges(t, good)
	})

	if got := sh(t, "cat "+path+"; ls -a /srv /tmp | grep -c cauldron- || true"); got != "echo fine\n0\n" {
		t.Fatalf("old content and leftovers: %q", got)
	}
}

// TestAPlanRunsTheRealValidatorsOnACopy checks files against the real haproxy -c, visudo
// -c and sh -n of this machine: content they reject fails the check with their
// message, content they accept is a change, a validator not installed yet is said in
// the summary, and neither the live file nor a temporary file is left changed.
func TestAPlanRunsTheRealValidatorsOnACopy(t *testing.T) {
	const haproxyOK = "global\n    maxconn 100\ndefaults\n    mode http\n    timeout connect 1s\n    timeout client 1s\n    timeout server 1s\nfrontend f\n    bind 127.0.0.1:18080\n    default_backend b\nbackend b\n    server s1 127.0.0.1:18081\n"
	for _, tc := range []struct {
		name, validate, content string
		message                 string // empty: accepted
		note                    string
	}{
		{"haproxy rejects an unknown keyword", "haproxy -c -f %s", haproxyOK + "    balance sometimes\n", "balance", ""},
		{"haproxy accepts a good file", "haproxy -c -f %s", haproxyOK, "", ""},
		{"visudo rejects a broken rule", "visudo -cf %s", "deployer ALL=(root NOPASSWD /usr/bin/systemctl\n", "syntax error", ""},
		{"visudo accepts a good rule", "visudo -cf %s", "deployer ALL=(root) NOPASSWD: /usr/bin/systemctl\n", "", ""},
		{"sh rejects a broken script", "sh -n %s", "if then fi (\n", "Syntax error", ""},
		{"a validator not on the host", "no-such-validator -c %s", "anything\n", "", " (not validated: no-such-validator is not on the host yet)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if prog := strings.Fields(tc.validate)[0]; tc.note == "" {
				if _, err := exec.LookPath(prog); err != nil {
					t.Skipf("%s is not installed here: %v", prog, err)
				}
			}
			tmp := t.TempDir()
			t.Setenv("TMPDIR", tmp)
			live := filepath.Join(t.TempDir(), "live.conf")
			writeLocal(t, live, "the working file\n")
			f := steps.File{Path: live, Content: steps.Text(tc.content), Mode: 0o440, Owner: "root", Group: "root", ValidateCmd: tc.validate}
			ch, err := f.Check(context.Background(), local.New())
			switch {
			case tc.message != "":
				if err == nil || !strings.Contains(err.Error(), tc.message) || !strings.Contains(err.Error(), "rejects the new content") {
					t.Errorf("got %v, want the validator's message (%s)", err, tc.message)
				}
			case err != nil:
				t.Errorf("accepted content failed the check: %v", err)
			case ch == nil:
				t.Error("no change found")
			case ch.Summary != "update "+live+" (mode 0644 -> 0440)"+tc.note:
				t.Errorf("summary %q", ch.Summary)
			}
			if b, err := os.ReadFile(live); err != nil || string(b) != "the working file\n" {
				t.Errorf("the live file is now %q (%v)", b, err)
			}
			if left, _ := os.ReadDir(tmp); len(left) != 0 {
				t.Errorf("the check left %d temporary files", len(left))
			}
		})
	}
}

func TestSensitiveFileShowsNoContentInItsDiff(t *testing.T) {
	needHost(t)
	sh(t, "mkdir -p /srv")
	f := steps.File{Path: "/srv/secret.key", Content: steps.Text("s3cr3t-value\n"), Mode: 0o600, Sensitive: true}
	ch := converges(t, f)
	if ch.Diff != "content differs (sensitive, diff not shown)" || strings.Contains(ch.Summary, "s3cr3t") {
		t.Fatalf("summary %q, diff %q", ch.Summary, ch.Diff)
	}
}

func TestContentErrorsAreTheChecksError(t *testing.T) {
	needHost(t)
	f := steps.File{Path: "/srv/x", Content: steps.Pipe(func() *script.Pipe { return script.File("/no/such/local/file").Match("x") })}
	if _, err := f.Check(context.Background(), host); err == nil || !strings.Contains(err.Error(), "/no/such/local/file") {
		t.Fatalf("got %v", err)
	}
	tmpl := template.Must(template.New("t").Option("missingkey=error").Parse("{{.Missing}}"))
	f.Content = steps.Template(tmpl, map[string]string{})
	if _, err := f.Check(context.Background(), host); err == nil || !strings.Contains(err.Error(), "template t") {
		t.Fatalf("got %v", err)
	}
}

func TestSudoersInstallsOnlyRulesVisudoAccepts(t *testing.T) {
	needHost(t)
	ctx := context.Background()
	converges(t, steps.AddUser{Name: "deployer"})
	good := steps.Sudoers{Name: "deployer", Content: steps.Text("deployer ALL=(root) NOPASSWD: /usr/bin/systemctl\n")}
	converges(t, good)
	if got := sh(t, "stat -c '%a %U %G' /etc/sudoers.d/deployer"); got != "440 root root\n" {
		t.Fatalf("stat: %q", got)
	}
	contains(t, "sudo -l", sh(t, "sudo -l -U deployer"), "/usr/bin/systemctl")

	bad := steps.Sudoers{Name: "deployer", Content: steps.Text("deployer ALL=(root NOPASSWD /usr/bin/systemctl\n")}
	_, err := bad.Check(ctx, host)
	if err == nil {
		t.Fatal("visudo did not stop an invalid rule at the check")
	}
	contains(t, "error", err.Error(), "syntax error")
	converged(t, good)
	contains(t, "sudo -l after the invalid rule", sh(t, "sudo -l -U deployer"), "/usr/bin/systemctl")
	if got := sh(t, "ls -a /etc/sudoers.d | grep -c cauldron- || true"); got != "0\n" {
		t.Fatalf("leftover temporary files: %q", got)
	}
}

func TestDirIsCreatedAndItsOwnersHoldBelowIt(t *testing.T) {
	needHost(t)
	d := steps.Dir{Path: "/opt/app/data", Mode: 0o750, Owner: "nobody", Group: "daemon", Recurse: true}
	converges(t, d)
	if got := sh(t, "stat -c '%a %U %G' /opt/app/data"); got != "750 nobody daemon\n" {
		t.Fatalf("stat: %q", got)
	}
	sh(t, "mkdir -p /opt/app/data/a/b && touch /opt/app/data/a/b/f && chown -R nobody:daemon /opt/app/data/a && chown root /opt/app/data/a/b/f")
	ch := converges(t, d)
	contains(t, "summary", ch.Summary, "/opt/app/data/a/b/f")
	if got := sh(t, "stat -c '%U %G' /opt/app/data/a/b/f"); got != "nobody daemon\n" {
		t.Fatalf("stat: %q", got)
	}
	sh(t, "chmod 777 /opt/app/data")
	contains(t, "summary", converges(t, d).Summary, "mode 0777 -> 0750")

	sh(t, "touch /opt/app/plainfile")
	if _, err := (steps.Dir{Path: "/opt/app/plainfile"}).Check(context.Background(), host); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Fatalf("got %v", err)
	}
}

func TestLineInFileAndKeyValueEditOneLine(t *testing.T) {
	needHost(t)
	const start = "# setenv\nJAVA_OPTS=-Xmx256m\nCATALINA_OUT=/var/log/x\nCATALINA_OUT=/var/log/y\n"
	cases := []struct {
		name string
		step steps.Step
		want string
	}{
		{"replace the last match", steps.LineInFile{Regexp: `^CATALINA_OUT=`, Line: "CATALINA_OUT=/dev/null"},
			"# setenv\nJAVA_OPTS=-Xmx256m\nCATALINA_OUT=/var/log/x\nCATALINA_OUT=/dev/null\n"},
		{"append when nothing matches", steps.LineInFile{Regexp: `^UMASK=`, Line: "UMASK=0027"}, start + "UMASK=0027\n"},
		{"append without a regexp", steps.LineInFile{Line: "export LANG=C"}, start + "export LANG=C\n"},
		{"a key with =", steps.KeyValue{Key: "JAVA_OPTS", Value: "-Xmx512m"},
			"# setenv\nJAVA_OPTS=-Xmx512m\nCATALINA_OUT=/var/log/x\nCATALINA_OUT=/var/log/y\n"},
		{"a new key with a spaced separator", steps.KeyValue{Key: "port", Value: "8080", Separator: " = "}, start + "port = 8080\n"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := fmt.Sprintf("/srv/setenv-%d.sh", i)
			sh(t, "mkdir -p /srv && printf '"+strings.ReplaceAll(start, "\n", `\n`)+"' > "+path)
			var s steps.Step
			switch x := tc.step.(type) {
			case steps.LineInFile:
				x.Path = path
				s = x
			case steps.KeyValue:
				x.Path = path
				s = x
			}
			ch := converges(t, s)
			contains(t, "diff", ch.Diff, "--- "+path+" (on host)")
			if got := sh(t, "cat "+path); got != tc.want {
				t.Fatalf("got\n%s\nwant\n%s", got, tc.want)
			}
		})
	}

	t.Run("a missing file is created with the line", func(t *testing.T) {
		converges(t, steps.KeyValue{Path: "/srv/new.properties", Key: "a.b", Value: "c"})
		if got := sh(t, "cat /srv/new.properties"); got != "a.b=c\n" {
			t.Fatalf("got %q", got)
		}
	})
}

func TestUploadStreamsOnlyWhenSizeTimeOrSumsDiffer(t *testing.T) {
	needHost(t)
	local := t.TempDir() + "/setup.bin"
	writeLocal(t, local, strings.Repeat("0123456789abcdef", 1<<16)) // 1 MiB
	u := steps.Upload{Src: local, Dest: "/srv/setup.bin", Mode: 0o640, Owner: "root", Group: "daemon"}
	sh(t, "rm -f /srv/setup.bin")
	contains(t, "summary", converges(t, u).Summary, "1048576 bytes")
	contains(t, "remote sum", sh(t, "sha256sum /srv/setup.bin"), sha256Hex(t, local))

	sh(t, "echo x >> /srv/setup.bin")
	contains(t, "summary", converges(t, u).Summary, "replace /srv/setup.bin")
	sh(t, "chmod 666 /srv/setup.bin")
	contains(t, "summary", converges(t, u).Summary, "mode 0666 -> 0640")

	// Same size, other bytes, a new mtime: the sums decide.
	sh(t, "printf X | dd of=/srv/setup.bin bs=1 seek=10 conv=notrunc 2>/dev/null")
	contains(t, "summary", converges(t, u).Summary, "replace /srv/setup.bin")
	contains(t, "remote sum", sh(t, "sha256sum /srv/setup.bin"), sha256Hex(t, local))

	// Same content, another mtime: only the time is put right, for quick checks after.
	sh(t, "touch -m -d @1000000000 /srv/setup.bin")
	contains(t, "summary", converges(t, u).Summary, "modification time")

	// Same size and mtime kept by hand: only Checksum finds it, as with rsync.
	sh(t, "m=$(stat -c %Y /srv/setup.bin); printf X | dd of=/srv/setup.bin bs=1 seek=10 conv=notrunc 2>/dev/null; touch -m -d @$m /srv/setup.bin")
	u.Checksum = true
	contains(t, "summary", converges(t, u).Summary, "replace /srv/setup.bin")
}

func TestMoveIsDoneWhenOnlyTheTargetExists(t *testing.T) {
	needHost(t)
	sh(t, "mkdir -p /srv/move-from/sub && touch /srv/move-from/sub/f && rm -rf /srv/move-to")
	m := steps.Move{From: "/srv/move-from", To: "/srv/move-to"}
	converges(t, m)
	sh(t, "test -f /srv/move-to/sub/f")
	sh(t, "mkdir /srv/move-from")
	if _, err := m.Check(context.Background(), host); err == nil || !strings.Contains(err.Error(), "both exist") {
		t.Fatalf("got %v", err)
	}
}

func TestCommandGuards(t *testing.T) {
	needHost(t)
	sh(t, "rm -f /srv/cmd-*; mkdir -p /srv")
	cases := []struct {
		name   string
		cmd    steps.Command
		always bool
	}{
		{"creates", steps.Command{Line: "touch /srv/cmd-creates", Creates: "/srv/cmd-creates"}, false},
		{"unless", steps.Command{Line: "echo on >> /srv/cmd-unless", Unless: "grep -q on /srv/cmd-unless"}, false},
		{"no guard", steps.Command{Name: "count", Line: "echo x >> /srv/cmd-always"}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.always {
				for range 2 {
					changed, err := steps.Converge(context.Background(), host, tc.cmd)
					if err != nil || !changed {
						t.Fatalf("changed %v, %v", changed, err)
					}
				}
				if got := sh(t, "wc -l < /srv/cmd-always"); got != "2\n" {
					t.Fatalf("ran %q times", got)
				}
				return
			}
			converges(t, tc.cmd)
		})
	}
	if _, err := steps.Converge(context.Background(), host, steps.Command{Line: "echo bad output; exit 4"}); err == nil ||
		!strings.Contains(err.Error(), "bad output") || !strings.Contains(err.Error(), "exit status 4") {
		t.Fatalf("a failing command: %v", err)
	}
}

func BenchmarkCheckConvergedFile(b *testing.B) {
	f := steps.File{Path: "/srv/bench.conf", Content: steps.Text(strings.Repeat("key = value\n", 200)), Mode: 0o644, Owner: "root", Group: "root"}
	sh(b, "mkdir -p /srv")
	if _, err := steps.Converge(context.Background(), host, f); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		ch, err := f.Check(context.Background(), host)
		if err != nil || ch != nil {
			b.Fatalf("%v %v", ch, err)
		}
	}
}
