package local_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cauldron-go/cauldron/transport"
	"github.com/cauldron-go/cauldron/transport/local"
)

func TestTheLocalTransportRunsPutsAndReads(t *testing.T) {
	c, ctx := local.New(), context.Background()
	var out, errb bytes.Buffer
	err := c.Run(ctx, transport.Command{Line: "cat; echo oops >&2; exit 4", Stdin: strings.NewReader("in"), Stdout: &out, Stderr: &errb})
	if transport.ExitStatus(err) != 4 || out.String() != "in" || errb.String() != "oops\n" {
		t.Fatalf("status %d, out %q, err %q", transport.ExitStatus(err), out.String(), errb.String())
	}
	p := filepath.Join(t.TempDir(), "f.conf")
	if err := c.Put(ctx, transport.File{Path: p, Content: []byte("x = 1\n"), Mode: 0o600}); err != nil {
		t.Fatal(err)
	}
	got, err := c.Read(ctx, p)
	if err != nil || string(got) != "x = 1\n" {
		t.Fatalf("read %q, %v", got, err)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode().Perm())
	}
	if _, err := c.Read(ctx, p+".missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestCancellingALocalCommandKillsEverythingItStarted(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	marker := "cauldron-local-cancel-" + strconv.Itoa(os.Getpid())
	var out bytes.Buffer
	err := local.New().Run(ctx, transport.Command{Line: "sh -c 'sleep 30; echo " + marker + "' & wait", Stdout: &out})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
	if ps, _ := exec.Command("pgrep", "-f", marker).Output(); len(ps) != 0 {
		t.Fatalf("processes left running after the cancel: %s", ps)
	}
}

// stalledBody gives some content, then blocks, as a transfer from a stalled source does,
// until released.
type stalledBody struct {
	first   *bytes.Reader
	release chan struct{}
}

func (b *stalledBody) Read(p []byte) (int, error) {
	if b.first.Len() > 0 {
		return b.first.Read(p)
	}
	<-b.release
	return 0, errors.New("released")
}

func TestCancellingALocalPutMidTransferLeavesNoTemporaryFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "jdk.tar.gz")
	body := &stalledBody{first: bytes.NewReader(make([]byte, 256<<10)), release: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		// Cancelled once the transfer is under way: the temporary file holds some content.
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if body.first.Len() == 0 {
				break
			}
		}
		time.Sleep(100 * time.Millisecond)
		cancel()
		// The source comes back later (or Put would wait for it as long as it stalls).
		time.Sleep(2 * time.Second)
		close(body.release)
	}()
	err := local.New().Put(ctx, transport.File{Path: p, Body: body, Mode: 0o640})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("put: %v, want the cancel", err)
	}
	if es, _ := os.ReadDir(dir); len(es) != 0 {
		t.Errorf("left in the folder after the cancel: %v", es)
	}
}
