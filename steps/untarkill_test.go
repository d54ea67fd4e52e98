package steps_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cauldron-go/cauldron/steps"
	"github.com/cauldron-go/cauldron/transport"
	"github.com/cauldron-go/cauldron/transport/local"
)

// stallingConn passes the first bytes of every input a step sends a host (a command's
// standard input, a file put), then stalls it until the run is cancelled, as a run
// killed mid-transfer does; stalled is closed once an input has stalled.
type stallingConn struct {
	transport.Conn
	after   int
	once    sync.Once
	stalled chan struct{}
}

func (c *stallingConn) Run(ctx context.Context, cmd transport.Command) error {
	if cmd.Stdin != nil {
		cmd.Stdin = &stallingInput{ctx: ctx, r: cmd.Stdin, left: c.after, conn: c}
	}
	return c.Conn.Run(ctx, cmd)
}

func (c *stallingConn) Put(ctx context.Context, f transport.File) error {
	r, _ := f.Reader()
	f.Body = &stallingInput{ctx: ctx, r: r, left: c.after, conn: c}
	return c.Conn.Put(ctx, f)
}

type stallingInput struct {
	ctx  context.Context
	r    io.Reader
	left int
	conn *stallingConn
}

func (s *stallingInput) Read(p []byte) (int, error) {
	if s.left <= 0 {
		s.conn.once.Do(func() { close(s.conn.stalled) })
		<-s.ctx.Done()
		return 0, s.ctx.Err()
	}
	n, err := s.r.Read(p[:min(len(p), s.left)])
	s.left -= n
	return n, err
}

func TestAnUntarKilledMidExtractLeavesNoTreeARerunTakesForDone(t *testing.T) {
	for _, plain := range []bool{false, true} {
		name := map[bool]string{false: "the archive unpacked as it arrives", true: "its plain tar sent"}[plain]
		t.Run(name, func(t *testing.T) {
			src := filepath.Join(t.TempDir(), "jdk.tgz")
			// jdk/bin/java (Creates) comes first in the archive, then 4 MB of lib/modules.
			writeTarball(t, src, 4<<20, true)
			dir := t.TempDir()
			u := steps.Untar{Upload: &steps.Upload{Src: src, Dest: filepath.Join(dir, "setup", "jdk.tgz"), Mode: 0o640},
				Dest: filepath.Join(dir, "tools", "jdk"), StripComponents: 1, Creates: filepath.Join(dir, "tools", "jdk", "bin", "java"),
				SendPlain: plain, CacheDir: t.TempDir()}
			for _, d := range []string{"setup", "tools"} {
				os.MkdirAll(filepath.Join(dir, d), 0o755)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			// 1 MB in: bin/java has reached tar, most of lib/modules has not.
			killed := &stallingConn{Conn: local.New(), after: 1 << 20, stalled: make(chan struct{})}
			ch, err := u.Check(ctx, killed)
			if err != nil || ch == nil {
				t.Fatalf("check: %+v, %v", ch, err)
			}
			go func() {
				<-killed.stalled
				time.Sleep(200 * time.Millisecond) // tar writes what it has
				cancel()
			}()
			if err := ch.Apply(ctx); err == nil {
				t.Fatal("an apply killed mid-transfer succeeded")
			}
			if _, err := os.Stat(u.Creates); err == nil {
				t.Fatalf("%s is there after a killed extract", u.Creates)
			}

			// The re-run finds the work undone and does it.
			again := context.Background()
			ch, err = u.Check(again, local.New())
			if err != nil || ch == nil {
				t.Fatalf("the re-run's check after a killed extract: %+v, %v; want the untar", ch, err)
			}
			if err := ch.Apply(again); err != nil {
				t.Fatalf("the re-run's apply: %v", err)
			}
			if ch, err := u.Check(again, local.New()); err != nil || ch != nil {
				t.Fatalf("check after the re-run: %+v, %v", ch, err)
			}
			if fi, err := os.Stat(filepath.Join(u.Dest, "lib", "modules")); err != nil || fi.Size() != 4<<20 {
				t.Fatalf("lib/modules after the re-run: %v, %v", fi, err)
			}
			if got, want := readLocal(t, u.Upload.Dest), readLocal(t, src); got != want {
				t.Fatal("the archive in setup/ is not the source after the re-run")
			}
		})
	}
}
