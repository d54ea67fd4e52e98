package runner_test

import (
	"bytes"
	"context"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/cauldron-go/cauldron/inventory"
	"github.com/cauldron-go/cauldron/runner"
	"github.com/cauldron-go/cauldron/steps"
	"github.com/cauldron-go/cauldron/transport"
)

// gatedUpload is a step whose apply streams size bytes through steps.ProgressReader,
// as Upload does: half of them, then, when gated, the rest only once open is closed.
func gatedUpload(size int, open <-chan struct{}) steps.Step {
	return steps.Func{Name: "upload /srv/big.tar.gz", CheckFunc: func(ctx context.Context, c transport.Conn) (*steps.Change, error) {
		return &steps.Change{Summary: "create /srv/big.tar.gz", Apply: func(ctx context.Context) error {
			r, stop := steps.ProgressReader(ctx, &gate{left: size, half: size / 2, open: open}, "upload /srv/big.tar.gz", int64(size))
			defer stop()
			_, err := io.Copy(io.Discard, r)
			return err
		}}, nil
	}}
}

type gate struct {
	left, half int
	open       <-chan struct{}
}

func (g *gate) Read(p []byte) (int, error) {
	if g.left == 0 {
		return 0, io.EOF
	}
	if g.left == g.half && g.open != nil {
		<-g.open
	}
	n := min(len(p), g.left)
	if g.left > g.half {
		n = min(n, g.left-g.half)
	}
	g.left -= n
	return n, nil
}

// watcher is the run's progress output; it opens the gate once the transfer showed.
type watcher struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	once sync.Once
	open chan struct{}
}

func (w *watcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if bytes.Contains(p, []byte("iB/s")) {
		w.once.Do(func() { close(w.open) })
	}
	return w.buf.Write(p)
}

func TestALongUploadShowsItsBytesAndRateOnTheLiveLine(t *testing.T) {
	for _, tc := range []struct {
		name  string
		live  bool
		gated bool
		want  []string
		not   []string
	}{
		{"terminal", true, true,
			[]string{"h1: upload /srv/big.tar.gz  1.0 MiB of 2.0 MiB (50%), ", "iB/s\r\x1b[Kh1  changed       upload /srv/big.tar.gz"}, nil},
		{"log", false, true,
			[]string{"h1  in progress   upload /srv/big.tar.gz  1.0 MiB of 2.0 MiB (50%), ", "iB/s\n"}, []string{"\r"}},
		{"under a second", true, false, nil, []string{"in progress", "\r", "iB/s"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := &watcher{open: make(chan struct{})}
			var open <-chan struct{}
			if tc.gated {
				open = out.open
			}
			play := runner.Play{Name: "p", Hosts: hosts("h1"), Recipe: same(func(*inventory.Host) *steps.Recipe {
				return steps.NewRecipe("r", gatedUpload(2<<20, open))
			})}
			_, err := runner.Run(context.Background(), []runner.Play{play}, runner.Options{StateDir: stateDirIn(t), Mode: runner.Apply,
				Dial: newDialer().Dial, Progress: out, Live: tc.live})
			if err != nil {
				t.Fatal(err)
			}
			got := out.buf.String()
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("output lacks %q:\n%q", w, got)
				}
			}
			for _, w := range tc.not {
				if strings.Contains(got, w) {
					t.Errorf("output has %q:\n%q", w, got)
				}
			}
		})
	}
}
