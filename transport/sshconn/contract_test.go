package sshconn_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cauldron-go/cauldron/shell"
	"github.com/cauldron-go/cauldron/transport"
	"github.com/cauldron-go/cauldron/transport/local"
)

// Every transport keeps the same Put contract: a validator sees the whole temporary
// file and a rejection keeps the old one; the modification time is the one asked for,
// to the nanosecond; streamed content arrives whole; nothing temporary is left. Here
// for the transports that need no Docker: local (the shell routine), SSH (SFTP), and
// SSH with become (an SFTP upload installed by sudo through the shell routine).
func TestEveryTransportPutsFilesByTheSameContract(t *testing.T) {
	srv := startSSHD(t)
	password := "pw-" + randomWord(t)
	becomeHost(t, srv, password, becomeUser+" ALL=(ALL:ALL) ALL")
	becomeCfg := srv.config(t)
	becomeCfg.User = becomeUser
	becomeCfg.Become = true
	becomeCfg.BecomePassword = func() (string, error) { return password, nil }
	conns := []struct {
		name string
		conn transport.Conn
	}{
		{"local", local.New()},
		{"ssh", dial(t, srv.config(t))},
		{"ssh with become", dial(t, becomeCfg)},
	}
	ctx := context.Background()
	mtime := time.Date(2024, 2, 29, 12, 30, 15, 123456789, time.UTC)
	for _, tc := range conns {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.conn
			// A directory only root can write: become must really install as root.
			dir, err := os.MkdirTemp("/etc", "cauldron-contract-")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(dir) })
			target := filepath.Join(dir, "app.conf")
			writeFile(t, target, "old = 1\n", 0o644)

			err = c.Put(ctx, transport.File{Path: target, Content: []byte("new = 2\nbroken\n"), Check: "! grep -q broken %s || { echo found broken in %s; exit 3; }"})
			var rejected *transport.RejectedError
			if !errors.As(err, &rejected) || !strings.Contains(rejected.Output, "found broken in") {
				t.Fatalf("a rejected content gave %v, want a *RejectedError with the check's output", err)
			}
			assertContent(t, target, "old = 1\n")

			var seen string
			err = c.Put(ctx, transport.File{Path: target, Content: []byte("new = 3\n"), CheckFunc: func(ctx context.Context, tmp string) error {
				out, err := transport.Output(ctx, c, "cat -- "+shell.Quote(tmp))
				seen = out
				if err != nil {
					return err
				}
				return errors.New("refused by the test")
			}})
			if !errors.As(err, &rejected) || !strings.Contains(err.Error(), "refused by the test") || seen != "new = 3\n" {
				t.Fatalf("CheckFunc saw %q and Put gave %v", seen, err)
			}
			assertContent(t, target, "old = 1\n")

			big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB, streamed
			err = c.Put(ctx, transport.File{Path: target, Body: bytes.NewReader(big), Mode: 0o600, ModTime: mtime, Check: "test -s %s"})
			if err != nil {
				t.Fatal(err)
			}
			assertContent(t, target, string(big))
			st, err := os.Stat(target)
			if err != nil {
				t.Fatal(err)
			}
			if !st.ModTime().Equal(mtime) || st.Mode().Perm() != 0o600 {
				t.Errorf("mode %v, time %v; want 0600, %v", st.Mode().Perm(), st.ModTime(), mtime)
			}
			assertNoTempFiles(t, dir)
		})
	}
}

func assertContent(t *testing.T, path, want string) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("%s holds %.60q, want %.60q", path, got, want)
	}
}
