package steps

import (
	"context"
	"io"
	"sync/atomic"
	"time"
)

// Progress is how far a long transfer (an upload of a big artifact) has got.
type Progress struct {
	// What is being transferred, as the step names it: "upload /home/gaia3d/setup/jdk.tar.gz".
	What string
	// Done and Total are bytes; Total is 0 when it is not known.
	Done, Total int64
	// Elapsed is the time since the transfer began.
	Elapsed time.Duration
}

// Rate is the mean speed so far, in bytes per second.
func (p Progress) Rate() float64 {
	if p.Elapsed <= 0 {
		return 0
	}
	return float64(p.Done) / p.Elapsed.Seconds()
}

type progressKey struct{}

// WithProgress returns a context under which long transfers report their progress to
// report: about once a second, once they have taken more than a second. The runner
// sets it around each apply, to show the transfer on its live line.
func WithProgress(ctx context.Context, report func(Progress)) context.Context {
	return context.WithValue(ctx, progressKey{}, report)
}

// ProgressInterval is how often a long transfer reports, and how long it must take
// before it reports at all.
const ProgressInterval = time.Second

// ProgressReader counts what is read through r and reports it to the context's
// progress function (see WithProgress) every ProgressInterval until stop is called.
// Without a progress function it returns r as it is. A step of one's own that streams
// a big file uses it as Upload does.
func ProgressReader(ctx context.Context, r io.Reader, what string, total int64) (_ io.Reader, stop func()) {
	report, _ := ctx.Value(progressKey{}).(func(Progress))
	if report == nil {
		return r, func() {}
	}
	cr := &countingReader{r: r}
	start := time.Now()
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(ProgressInterval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				report(Progress{What: what, Done: cr.n.Load(), Total: total, Elapsed: time.Since(start)})
			}
		}
	}()
	return cr, func() {
		close(done)
		<-finished // no report after stop returns
	}
}

type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}
