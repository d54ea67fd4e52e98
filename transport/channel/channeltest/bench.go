package channeltest

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cauldron-go/cauldron/transport"
)

// ConvergedChecks is the number of checks of a converged web node, and ChecksAtOnce
// the runner's window (runner/ahead.go).
const (
	ConvergedChecks = 36
	ChecksAtOnce    = 4
)

// checkLine is a small read-only check like the steps make: a file's state.
const checkLine = `[ -e /etc/hostname ] && stat -c '%a %U %G %s' /etc/hostname`

// checks runs n check commands over c, at most ChecksAtOnce at a time, and returns
// how long they took.
func checks(b *testing.B, c transport.Conn, n int) time.Duration {
	ctx := context.Background()
	slots := make(chan struct{}, ChecksAtOnce)
	var wg sync.WaitGroup
	start := time.Now()
	for range n {
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-slots; wg.Done() }()
			if _, err := transport.Output(ctx, c, checkLine); err != nil {
				b.Error(err)
			}
		}()
	}
	wg.Wait()
	return time.Since(start)
}

// BenchConvergedChecks runs ConvergedChecks check commands over perCommand (a session
// or exec each) and over channel, alternating in one run, and reports the medians of
// both and their ratio.
func BenchConvergedChecks(b *testing.B, perCommand, channel transport.Conn) {
	checks(b, perCommand, 1)
	checks(b, channel, 1) // opens the channel
	var each, over []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		each = append(each, checks(b, perCommand, ConvergedChecks))
		over = append(over, checks(b, channel, ConvergedChecks))
	}
	b.StopTimer()
	me, mo := median(each), median(over)
	b.ReportMetric(float64(me.Microseconds())/1000, "per-command-ms")
	b.ReportMetric(float64(mo.Microseconds())/1000, "channel-ms")
	b.ReportMetric(float64(me)/float64(mo), "speedup")
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
