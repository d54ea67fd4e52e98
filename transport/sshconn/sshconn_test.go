package sshconn_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cauldron-go/cauldron/shell"
	"github.com/cauldron-go/cauldron/transport"
	"github.com/cauldron-go/cauldron/transport/sshconn"
)

func dial(t testing.TB, cfg sshconn.Config) *sshconn.Conn {
	t.Helper()
	c, err := sshconn.Dial(context.Background(), cfg)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestRunGivesOutputStderrExitStatusAndStdin(t *testing.T) {
	srv := startSSHD(t)
	c := dial(t, srv.config(t))

	tests := []struct {
		name       string
		line       string
		stdin      string
		wantOut    string
		wantErr    string
		wantStatus int
	}{
		{"stdout", shell.Join("printf", "%s|", "a b", "c'd"), "", "a b|c'd|", "", 0},
		{"stderr", "echo oops >&2", "", "", "oops\n", 0},
		{"exit status", "echo failing >&2; exit 3", "", "", "failing\n", 3},
		{"stdin", "tr a-z A-Z", "hello\nworld\n", "HELLO\nWORLD\n", "", 0},
		{"runs under sh", `test -z "$BASH_VERSION" && echo sh`, "", "sh\n", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			cmd := transport.Command{Line: tt.line, Stdout: &out, Stderr: &errb}
			if tt.stdin != "" {
				cmd.Stdin = strings.NewReader(tt.stdin)
			}
			err := c.Run(context.Background(), cmd)
			if got := transport.ExitStatus(err); got != tt.wantStatus {
				t.Fatalf("exit status %d (%v), want %d", got, err, tt.wantStatus)
			}
			if out.String() != tt.wantOut || errb.String() != tt.wantErr {
				t.Errorf("stdout %q stderr %q, want %q and %q", out.String(), errb.String(), tt.wantOut, tt.wantErr)
			}
		})
	}
}

func TestExitErrorCarriesTheStderrTailWhenNotCaptured(t *testing.T) {
	srv := startSSHD(t)
	c := dial(t, srv.config(t))

	err := c.Run(context.Background(), transport.Command{Line: "echo first >&2; echo 'no such thing' >&2; exit 7"})
	var ee *transport.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("got %v, want *transport.ExitError", err)
	}
	if ee.Status != 7 || !strings.Contains(ee.Stderr, "no such thing") {
		t.Errorf("got status %d stderr %q", ee.Status, ee.Stderr)
	}

	// A long stderr keeps its end, not its start.
	err = c.Run(context.Background(), transport.Command{Line: "seq 1 5000 >&2; echo the-end >&2; exit 1"})
	if !errors.As(err, &ee) || !strings.HasSuffix(ee.Stderr, "the-end\n") || len(ee.Stderr) > 5000 {
		t.Errorf("got %v", err)
	}
}

func TestPutThenReadRoundTripsContentModeAndOwner(t *testing.T) {
	srv := startSSHD(t)
	c := dial(t, srv.config(t))
	dir := t.TempDir()
	ctx := context.Background()

	tests := []struct {
		name         string
		file         transport.File
		wantMode     fs.FileMode
		wantUID      uint32
		wantGID      uint32
		existingFile bool
	}{
		{"default mode, login user", transport.File{Content: []byte("one\n")}, 0o644, 0, 0, false},
		{"names", transport.File{Content: []byte("two\n"), Mode: 0o640, Owner: "nobody", Group: "nogroup"}, 0o640, 65534, 65534, false},
		{"ids", transport.File{Content: []byte("three\n"), Mode: 0o600, Owner: "65534", Group: "0"}, 0o600, 65534, 0, false},
		{"owner only keeps the group", transport.File{Content: []byte("four\n"), Mode: 0o600, Owner: "nobody"}, 0o600, 65534, 0, false},
		{"over an existing file", transport.File{Content: bytes.Repeat([]byte("five"), 300000), Mode: 0o755, Group: "nogroup"}, 0o755, 0, 65534, true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := tt.file
			f.Path = filepath.Join(dir, "file"+string(rune('a'+i)))
			if tt.existingFile {
				writeFile(t, f.Path, "old content", 0o600)
			}
			if err := c.Put(ctx, f); err != nil {
				t.Fatal(err)
			}
			st, err := os.Stat(f.Path)
			if err != nil {
				t.Fatal(err)
			}
			sys := st.Sys().(*syscall.Stat_t)
			if st.Mode().Perm() != tt.wantMode || sys.Uid != tt.wantUID || sys.Gid != tt.wantGID {
				t.Errorf("mode %v owner %d:%d, want %v %d:%d", st.Mode().Perm(), sys.Uid, sys.Gid, tt.wantMode, tt.wantUID, tt.wantGID)
			}
			got, err := c.Read(ctx, f.Path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, f.Content) {
				t.Errorf("read back %d bytes, want %d", len(got), len(f.Content))
			}
		})
	}
	assertNoTempFiles(t, dir)
}

func TestReadOfAMissingFileIsErrNotExist(t *testing.T) {
	srv := startSSHD(t)
	c := dial(t, srv.config(t))
	_, err := c.Read(context.Background(), filepath.Join(t.TempDir(), "absent"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("got %v, want fs.ErrNotExist", err)
	}
}

func TestPutWithAnUnknownOwnerFailsAndLeavesNothing(t *testing.T) {
	srv := startSSHD(t)
	c := dial(t, srv.config(t))
	dir := t.TempDir()
	err := c.Put(context.Background(), transport.File{Path: filepath.Join(dir, "f"), Content: []byte("x"), Owner: "no-such-user-here"})
	if err == nil || !strings.Contains(err.Error(), `no user "no-such-user-here"`) {
		t.Fatalf("got %v", err)
	}
	err = c.Put(context.Background(), transport.File{Path: filepath.Join(dir, "f"), Content: []byte("x"), Group: "no-such-group-here"})
	if err == nil || !strings.Contains(err.Error(), `no group "no-such-group-here"`) {
		t.Fatalf("got %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Errorf("left %v", entries)
	}
}

func TestCancelDuringALongCommandReturnsPromptly(t *testing.T) {
	srv := startSSHD(t)
	c := dial(t, srv.config(t))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	marker := "cauldron-cancel-" + randomWord(t)
	// The command says it started, then waits forever; the writer cancels on that word.
	out := &cancelOnWrite{word: "started", cancel: cancel}
	err := c.Run(ctx, transport.Command{
		Line:   "echo started; exec sleep 3600 " + marker,
		Stdout: out,
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	// The connection still serves commands afterwards.
	if _, err := transport.Output(context.Background(), c, "true"); err != nil {
		t.Fatalf("after cancel: %v", err)
	}
}

type cancelOnWrite struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	word   string
	cancel func()
}

func (w *cancelOnWrite) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if strings.Contains(w.buf.String(), w.word) {
		w.cancel()
	}
	return len(p), nil
}

func TestCutConnectionDuringUploadKeepsTheOldContent(t *testing.T) {
	srv := startSSHD(t)
	c := dial(t, srv.config(t))
	target := filepath.Join(t.TempDir(), "target")
	writeFile(t, target, "old content\n", 0o644)

	sshconn.CutConnectionHalfwayThroughUploads(c)
	err := c.Put(context.Background(), transport.File{Path: target, Content: bytes.Repeat([]byte("new content\n"), 1<<20)})
	if err == nil {
		t.Fatal("put over a cut connection succeeded")
	}
	got, rerr := os.ReadFile(target)
	if rerr != nil || string(got) != "old content\n" {
		t.Fatalf("target now holds %d bytes (%v), want the old content; put said %v", len(got), rerr, err)
	}
}

func assertNoTempFiles(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.Contains(e.Name(), ".cauldron-") {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}
}

func randomWord(t testing.TB) string {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func TestCancelDuringTheHandshakeStopsDial(t *testing.T) {
	// A server that accepts and then says nothing: only ctx can end the handshake.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		conn, err := l.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		// The client's version line has arrived: the handshake is under way.
		conn.Read(make([]byte, 1))
		cancel()
		io.Copy(io.Discard, conn)
	}()

	_, err = sshconn.Dial(ctx, sshconn.Config{
		Addr:           l.Addr().String(),
		User:           "root",
		IdentityFiles:  []string{writeKeyFile(t)},
		KnownHostsFile: filepath.Join(t.TempDir(), "known_hosts"),
		DialTimeout:    time.Hour,
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

func writeKeyFile(t testing.TB) string {
	file := filepath.Join(t.TempDir(), "id_ed25519")
	writeKey(t, file, "ed25519")
	return file
}

func ExampleDial() {
	ctx := context.Background()
	c, err := sshconn.Dial(ctx, sshconn.Config{
		Addr:          "web1.example:22",
		User:          "deploy",
		IdentityFiles: []string{"/home/deploy/.ssh/id_ed25519"},
		ProxyJump:     "bastion.example",
		Become:        true, // sudo without a password
	})
	if err != nil {
		fmt.Println(err) // e.g. an unknown host key: *sshconn.HostKeyError
		return
	}
	defer c.Close()
	out, err := transport.Output(ctx, c, shell.Join("systemctl", "is-active", "tomcat10"))
	fmt.Println(out, err)
}

func TestAClosedConnRefusesWork(t *testing.T) {
	srv := startSSHD(t)
	c := dial(t, srv.config(t))
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
	ctx := context.Background()
	if err := c.Run(ctx, transport.Command{Line: "true"}); err == nil || transport.ExitStatus(err) != -1 {
		t.Errorf("run after close: %v", err)
	}
	if err := c.Put(ctx, transport.File{Path: filepath.Join(t.TempDir(), "f")}); err == nil {
		t.Error("put after close succeeded")
	}
	if _, err := c.Read(ctx, "/etc/hostname"); err == nil {
		t.Error("read after close succeeded")
	}
}

// Every SFTP session is a round trip and a server process more on the host: a
// connection's reads and uploads share one, started once.
func TestAConnectionStartsOneSFTPSessionForAllItsFiles(t *testing.T) {
	srv := startSSHD(t)
	c := dial(t, srv.config(t))
	dir := t.TempDir()
	ctx := context.Background()
	big := bytes.Repeat([]byte("0123456789abcdef"), 64*1024) // 1 MiB: writes bigger than 32 KiB
	for i, content := range [][]byte{[]byte("small\n"), big} {
		p := filepath.Join(dir, fmt.Sprintf("file%d", i))
		if err := c.Put(ctx, transport.File{Path: p, Content: content, Mode: 0o600}); err != nil {
			t.Fatal(err)
		}
		got, err := c.Read(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, content) {
			t.Errorf("file %d: read back %d bytes, want %d", i, len(got), len(content))
		}
	}
	if n := strings.Count(srv.log.String(), "Starting session: subsystem 'sftp'"); n != 1 {
		t.Errorf("sshd started %d SFTP sessions for two uploads and two reads, want 1", n)
	}
}
