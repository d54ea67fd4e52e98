package sshconn_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/cauldron-go/cauldron/transport"
	"github.com/cauldron-go/cauldron/transport/sshconn"
)

func TestUnknownHostKeyStopsTheHost(t *testing.T) {
	srv := startSSHD(t)
	cfg := srv.config(t)
	cfg.KnownHostsFile = filepath.Join(t.TempDir(), "known_hosts")

	c, err := sshconn.Dial(context.Background(), cfg)
	if err == nil {
		c.Close()
		t.Fatal("dial to an unknown host succeeded")
	}
	var hke *sshconn.HostKeyError
	if !errors.As(err, &hke) || !hke.Unknown {
		t.Fatalf("got %v, want an unknown *HostKeyError", err)
	}
	fingerprint := ssh.FingerprintSHA256(srv.HostKeys["ed25519"])
	for _, want := range []string{srv.Addr, fingerprint, cfg.KnownHostsFile,
		fmt.Sprintf("ssh-keyscan -p %d 127.0.0.1 >> %s", srv.Port, cfg.KnownHostsFile), "host_key: accept-new"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if _, err := os.Stat(cfg.KnownHostsFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("known_hosts was written: %v", err)
	}
	if strings.Contains(srv.log.String(), "Accepted publickey") {
		t.Errorf("the client logged in although the host key was unknown")
	}
}

func TestAcceptNewRecordsTheKeyAndTheNextDialTrustsIt(t *testing.T) {
	srv := startSSHD(t)
	cfg := srv.config(t)
	cfg.KnownHostsFile = filepath.Join(t.TempDir(), "ssh", "known_hosts")
	cfg.AcceptNewHostKey = true

	c := dial(t, cfg)
	if _, err := transport.Output(context.Background(), c, "true"); err != nil {
		t.Fatal(err)
	}
	want := knownhosts.Line([]string{srv.Addr}, srv.HostKeys["ed25519"]) + "\n"
	got, err := os.ReadFile(cfg.KnownHostsFile)
	if err != nil || string(got) != want {
		t.Fatalf("known_hosts holds %q (%v), want %q", got, err, want)
	}

	cfg.AcceptNewHostKey = false
	dial(t, cfg)
	if got, _ := os.ReadFile(cfg.KnownHostsFile); string(got) != want {
		t.Errorf("second dial changed known_hosts to %q", got)
	}
}

func TestAcceptNewAppendsBelowALastLineWithoutNewline(t *testing.T) {
	srv := startSSHD(t)
	other := startSSHD(t)
	cfg := srv.config(t)
	cfg.AcceptNewHostKey = true
	first := knownhosts.Line([]string{other.Addr}, other.HostKeys["ed25519"])
	writeFile(t, cfg.KnownHostsFile, first, 0o600) // no final newline

	dial(t, cfg)
	got, _ := os.ReadFile(cfg.KnownHostsFile)
	want := first + "\n" + knownhosts.Line([]string{srv.Addr}, srv.HostKeys["ed25519"]) + "\n"
	if string(got) != want {
		t.Errorf("known_hosts holds %q, want %q", got, want)
	}
}

func TestChangedHostKeyIsRefusedEvenWithAcceptNew(t *testing.T) {
	srv := startSSHD(t)
	impostor := writeKey(t, filepath.Join(t.TempDir(), "old_host_key"), "ed25519")
	known := filepath.Join(t.TempDir(), "known_hosts")
	content := "# a comment\n" + knownhosts.Line([]string{srv.Addr}, impostor) + "\n"
	writeFile(t, known, content, 0o600)

	for _, acceptNew := range []bool{false, true} {
		t.Run(fmt.Sprintf("accept-new %v", acceptNew), func(t *testing.T) {
			cfg := srv.config(t)
			cfg.KnownHostsFile = known
			cfg.AcceptNewHostKey = acceptNew
			c, err := sshconn.Dial(context.Background(), cfg)
			if err == nil {
				c.Close()
				t.Fatal("dial to a host with a changed key succeeded")
			}
			var hke *sshconn.HostKeyError
			if !errors.As(err, &hke) || hke.Unknown {
				t.Fatalf("got %v, want a changed-key *HostKeyError", err)
			}
			for _, want := range []string{"HOST KEY CHANGED", srv.Addr, known + ":2", ssh.FingerprintSHA256(srv.HostKeys["ed25519"])} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			if got, _ := os.ReadFile(known); string(got) != content {
				t.Errorf("known_hosts changed to %q", got)
			}
		})
	}
}

// A host with several host keys must be asked for the kind that known_hosts holds;
// x/crypto would otherwise prefer rsa-sha2 and see a "changed" key.
func TestTheRecordedKeyTypeIsNegotiated(t *testing.T) {
	srv := startSSHD(t, "rsa", "ecdsa", "ed25519")
	for _, typ := range []string{"ed25519", "ecdsa", "rsa"} {
		t.Run(typ, func(t *testing.T) {
			cfg := srv.config(t)
			cfg.KnownHostsFile = srv.knownHosts(t, typ)
			dial(t, cfg)
		})
	}
}

func TestAWrongClientKeyNamesUserAndAddress(t *testing.T) {
	srv := startSSHD(t)
	cfg := srv.config(t)
	cfg.IdentityFiles = []string{filepath.Join(t.TempDir(), "id_other")}
	writeKey(t, cfg.IdentityFiles[0], "ed25519")

	c, err := sshconn.Dial(context.Background(), cfg)
	if err == nil {
		c.Close()
		t.Fatal("dial with an unauthorized key succeeded")
	}
	for _, want := range []string{"root@" + srv.Addr, cfg.IdentityFiles[0], "refused"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	var hke *sshconn.HostKeyError
	if errors.As(err, &hke) {
		t.Errorf("an auth failure reported as a host key error: %v", err)
	}
}

// known_hosts is parsed again only when its content changed: a rewrite that keeps the
// file's size and modification time, with another key for the host, is seen all the
// same by the next dial of the same process.
func TestAKnownHostsFileRewrittenInPlaceIsReadAgain(t *testing.T) {
	srv := startSSHD(t)
	cfg := srv.config(t)
	c, err := sshconn.Dial(context.Background(), cfg)
	if err != nil {
		t.Fatalf("first dial: %v", err)
	}
	c.Close()
	st, err := os.Stat(cfg.KnownHostsFile)
	if err != nil {
		t.Fatal(err)
	}
	impostor := writeKey(t, filepath.Join(t.TempDir(), "impostor"), "ed25519")
	line := knownhosts.Line([]string{srv.Addr}, impostor) + "\n"
	if int64(len(line)) != st.Size() {
		t.Fatalf("the rewritten file has %d bytes, the first %d: the test wants the same size", len(line), st.Size())
	}
	writeFile(t, cfg.KnownHostsFile, line, 0o600)
	if err := os.Chtimes(cfg.KnownHostsFile, st.ModTime(), st.ModTime()); err != nil {
		t.Fatal(err)
	}
	c, err = sshconn.Dial(context.Background(), cfg)
	if err == nil {
		c.Close()
		t.Fatal("the dial after the rewrite trusted the key known_hosts no longer holds")
	}
	var hke *sshconn.HostKeyError
	if !errors.As(err, &hke) || hke.Unknown {
		t.Fatalf("got %v, want a changed-key *HostKeyError", err)
	}
}
