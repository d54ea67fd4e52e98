package steps_test

import (
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cauldron-go/cauldron/steps"
)

// gatedReader gives half of its bytes, then waits for open before giving the rest: a
// transfer that takes as long as the test wants, whatever the machine's load.
type gatedReader struct {
	left, half int
	open       <-chan struct{}
}

func (g *gatedReader) Read(p []byte) (int, error) {
	if g.left == 0 {
		return 0, io.EOF
	}
	if g.left == g.half {
		<-g.open
	}
	n := min(len(p), g.left-g.half, g.left)
	if g.left <= g.half {
		n = min(len(p), g.left)
	}
	g.left -= n
	return n, nil
}

func TestATransferReportsItsProgressOnceItTakesMoreThanASecond(t *testing.T) {
	const size = 100 << 10
	open := make(chan struct{})
	var once sync.Once
	var got []steps.Progress
	var mu sync.Mutex
	ctx := steps.WithProgress(context.Background(), func(p steps.Progress) {
		mu.Lock()
		got = append(got, p)
		mu.Unlock()
		once.Do(func() { close(open) }) // the first report lets the transfer finish
	})
	start := time.Now()
	r, stop := steps.ProgressReader(ctx, &gatedReader{left: size, half: size / 2, open: open}, "upload /x", size)
	n, err := io.Copy(io.Discard, r)
	stop()
	if err != nil || n != size {
		t.Fatalf("copied %d bytes, %v", n, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) == 0 {
		t.Fatal("no report")
	}
	p := got[0]
	if p.What != "upload /x" || p.Total != size || p.Done != size/2 || p.Elapsed < time.Second || p.Rate() <= 0 {
		t.Errorf("first report %+v (rate %.0f B/s), want half of %d bytes after a second", p, p.Rate(), size)
	}
	if took := time.Since(start); took < steps.ProgressInterval {
		t.Errorf("the transfer was let through after %s, before any report was due", took)
	}
}

func TestATransferUnderASecondReportsNothing(t *testing.T) {
	reports := 0
	ctx := steps.WithProgress(context.Background(), func(steps.Progress) { reports++ })
	r, stop := steps.ProgressReader(ctx, strings.NewReader(strings.Repeat("x", 1<<20)), "upload /x", 1<<20)
	_, _ = io.Copy(io.Discard, r)
	stop()
	if reports != 0 {
		t.Errorf("%d reports from a transfer of a moment", reports)
	}
}

func TestWithoutAProgressFunctionTheReaderIsUntouched(t *testing.T) {
	src := strings.NewReader("abc")
	r, stop := steps.ProgressReader(context.Background(), src, "upload /x", 3)
	defer stop()
	if r != io.Reader(src) {
		t.Error("the reader was wrapped although nobody listens")
	}
}
