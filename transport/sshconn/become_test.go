package sshconn_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/cauldron-go/cauldron/transport"
)

const becomeUser = "cauldron-sshtest"

// becomeHost prepares the local user cauldron-sshtest (created if missing) with the
// given password, lets it log in to srv with the server's client key, and installs
// sudoRule as /etc/sudoers.d/cauldron-sshtest until the test ends.
func becomeHost(t *testing.T, srv *testServer, password, sudoRule string) {
	t.Helper()
	if _, err := exec.LookPath("sudo"); err != nil {
		t.Skip("sudo is not installed")
	}
	if err := exec.Command("id", becomeUser).Run(); err != nil {
		if out, err := exec.Command("useradd", "--create-home", "--shell", "/bin/sh", becomeUser).CombinedOutput(); err != nil {
			t.Fatalf("useradd: %v: %s", err, out)
		}
	}
	chpasswd := exec.Command("chpasswd")
	chpasswd.Stdin = strings.NewReader(becomeUser + ":" + password + "\n")
	if out, err := chpasswd.CombinedOutput(); err != nil {
		t.Fatalf("chpasswd: %v: %s", err, out)
	}
	home := "/home/" + becomeUser
	priv, err := os.ReadFile(srv.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(home+"/.ssh", 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, home+"/.ssh/authorized_keys", string(ssh.MarshalAuthorizedKey(signer.PublicKey())), 0o600)
	if out, err := exec.Command("chown", "-R", becomeUser+":", home+"/.ssh").CombinedOutput(); err != nil {
		t.Fatalf("chown: %v: %s", err, out)
	}

	// A dotted name is ignored by sudo's @includedir: safe until visudo approves it.
	dropIn := "/etc/sudoers.d/" + becomeUser
	staged := "/etc/sudoers.d/." + becomeUser + ".new"
	writeFile(t, staged, sudoRule+"\n", 0o440)
	if out, err := exec.Command("visudo", "-cf", staged).CombinedOutput(); err != nil {
		os.Remove(staged)
		t.Fatalf("visudo -cf: %v: %s", err, out)
	}
	if err := os.Rename(staged, dropIn); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(dropIn) })
}

func TestBecomeRunsCommandsAndWritesFilesAsRoot(t *testing.T) {
	srv := startSSHD(t)
	password := "pw-" + randomWord(t) + "-secret"
	tests := []struct {
		name      string
		rule      string
		wantAsked int
	}{
		{"sudo without password", becomeUser + " ALL=(ALL:ALL) NOPASSWD: ALL", 0},
		{"sudo with password", becomeUser + " ALL=(ALL:ALL) ALL", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			becomeHost(t, srv, password, tt.rule)
			ctx := context.Background()
			cfg := srv.config(t)
			cfg.User = becomeUser
			cfg.Become = true
			asked := 0
			cfg.BecomePassword = func() (string, error) { asked++; return password, nil }
			c := dial(t, cfg)
			var seen []string // every output and error, to search for the password

			out, err := transport.Output(ctx, c, "id -u")
			seen = append(seen, out, errString(err))
			if err != nil || out != "0\n" {
				t.Fatalf("id -u gave %q, %v", out, err)
			}

			// The command's own stdin arrives whole after the password line.
			out, err = transport.OutputWithInput(ctx, c, "cat", strings.NewReader("first line\nsecond line\n"))
			seen = append(seen, out, errString(err))
			if err != nil || out != "first line\nsecond line\n" {
				t.Fatalf("cat gave %q, %v", out, err)
			}

			err = c.Run(ctx, transport.Command{Line: "echo as root >&2; exit 4"})
			seen = append(seen, errString(err))
			if transport.ExitStatus(err) != 4 || !strings.Contains(err.Error(), "as root") {
				t.Fatalf("got %v, want exit status 4 with stderr", err)
			}

			target := "/etc/cauldron-sshtest-" + randomWord(t) + ".conf"
			t.Cleanup(func() { os.Remove(target) })
			content := []byte("secret = 1\n")
			err = c.Put(ctx, transport.File{Path: target, Content: content, Mode: 0o640, Owner: "root", Group: "adm"})
			seen = append(seen, errString(err))
			if err != nil {
				t.Fatal(err)
			}
			st, err := os.Stat(target)
			if err != nil {
				t.Fatal(err)
			}
			sys := st.Sys().(*syscall.Stat_t)
			if st.Mode().Perm() != 0o640 || sys.Uid != 0 || sys.Gid != 4 {
				t.Errorf("%s: mode %v owner %d:%d, want 0640 0:4", target, st.Mode().Perm(), sys.Uid, sys.Gid)
			}
			got, err := c.Read(ctx, target)
			seen = append(seen, string(got), errString(err))
			if err != nil || !bytes.Equal(got, content) {
				t.Errorf("read back %q, %v", got, err)
			}
			_, err = c.Read(ctx, "/etc/cauldron-no-such-file")
			seen = append(seen, errString(err))
			if !errors.Is(err, os.ErrNotExist) {
				t.Errorf("read of a missing file: %v", err)
			}
			assertNoTempFiles(t, "/etc")
			if asked != tt.wantAsked {
				t.Errorf("the password was asked %d times, want %d", asked, tt.wantAsked)
			}
			for _, s := range seen {
				if strings.Contains(s, password) {
					t.Errorf("the password appears in %q", s)
				}
			}
			if err := c.Close(); err != nil {
				t.Errorf("close: %v", err)
			}
			if out, _ := exec.Command("find", "/tmp", "-maxdepth", "1", "-user", becomeUser).Output(); len(out) > 0 {
				t.Errorf("upload directories left: %s", out)
			}
		})
	}
}

func TestBecomeWithAWrongPasswordFailsWithoutShowingIt(t *testing.T) {
	srv := startSSHD(t)
	becomeHost(t, srv, "pw-"+randomWord(t), becomeUser+" ALL=(ALL:ALL) ALL")
	wrong := "wrong-" + randomWord(t)

	for _, tt := range []struct {
		name     string
		password func() (string, error)
		want     string
	}{
		{"wrong password", func() (string, error) { return wrong, nil }, "sudo refused the password"},
		{"no password", nil, "no become password is configured"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := srv.config(t)
			cfg.User = becomeUser
			cfg.Become = true
			cfg.BecomePassword = tt.password
			c := dial(t, cfg)
			var out bytes.Buffer
			err := c.Run(context.Background(), transport.Command{Line: "id -u", Stdout: &out, Stderr: &out})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error saying %q", err, tt.want)
			}
			if strings.Contains(err.Error(), wrong) || strings.Contains(out.String(), wrong) {
				t.Errorf("the password appears in %q / %q", err, out.String())
			}
			// The refusal is remembered: no second try that could lock the account.
			asked := 0
			if tt.password != nil {
				c2cfg := cfg
				c2cfg.BecomePassword = func() (string, error) { asked++; return tt.password() }
				c = dial(t, c2cfg)
				c.Run(context.Background(), transport.Command{Line: "true"})
			}
			perr := c.Put(context.Background(), transport.File{Path: "/etc/cauldron-sshtest-never", Content: []byte("x")})
			if perr == nil {
				os.Remove("/etc/cauldron-sshtest-never")
				t.Error("put succeeded without sudo")
			}
			if asked > 1 {
				t.Errorf("the password was asked %d times", asked)
			}
		})
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// A sudo that asks for a password in general but lets `sh` run without one must not
// get the password written into the command's input: it would land in every file or
// chpasswd line that goes through stdin.
func TestBecomeWritesThePasswordOnlyToSudosPrompt(t *testing.T) {
	srv := startSSHD(t)
	password := "pw-" + randomWord(t) + "-secret"
	becomeHost(t, srv, password, becomeUser+" ALL=(ALL:ALL) ALL\n"+
		becomeUser+" ALL=(root) NOPASSWD: /bin/sh, /usr/bin/sh")
	cfg := srv.config(t)
	cfg.User = becomeUser
	cfg.Become = true
	cfg.BecomePassword = func() (string, error) { return password, nil }
	c := dial(t, cfg)
	ctx := context.Background()

	tests := []struct {
		name  string
		input string
	}{
		{"content on stdin", "line one\nline two\n"},
		{"no input at all", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdin io.Reader
			if tt.input != "" {
				stdin = strings.NewReader(tt.input)
			}
			out, err := transport.OutputWithInput(ctx, c, "id -u >&2; cat", stdin)
			if err != nil {
				t.Fatalf("cat: %v", err)
			}
			if out != tt.input {
				t.Errorf("the command read %q, want %q", out, tt.input)
			}
			if strings.Contains(out, password) {
				t.Errorf("the password was written to the command's input")
			}
		})
	}
	target := "/etc/cauldron-sshtest-" + randomWord(t) + ".conf"
	t.Cleanup(func() { os.Remove(target) })
	if err := c.Put(ctx, transport.File{Path: target, Content: []byte("secret = 1\n"), Mode: 0o600}); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(target); err != nil || string(got) != "secret = 1\n" {
		t.Errorf("put wrote %q, %v", got, err)
	}
}
