package runner

import (
	"context"
	"time"

	"github.com/cauldron-go/cauldron/steps"
	"github.com/cauldron-go/cauldron/transport"
)

// checksAheadAtOnce bounds the checks a host runs at once: sshd allows ten sessions on
// one connection by default (MaxSessions).
const checksAheadAtOnce = 4

// checksAhead runs the checks of a host's steps concurrently, ahead of the steps. A
// check only reads the host, so as long as no step has changed it, a check made ahead
// is exactly the check the step would make: a converged host is checked in the time of
// a few round trips instead of the sum of them all. Once a step changes the host, stop
// drops what is left and each later step checks for itself again.
type checksAhead struct {
	first   int
	results []chan checkResult
	cancel  context.CancelFunc
	stopped bool
}

// checkResult is one check made ahead.
type checkResult struct {
	change *steps.Change
	err    error
	took   time.Duration
}

// checkAhead starts checking ss, the host's steps from index first on, over c.
func checkAhead(ctx context.Context, c transport.Conn, ss []steps.Step, first int) *checksAhead {
	ctx, cancel := context.WithCancel(ctx)
	a := &checksAhead{first: first, results: make([]chan checkResult, len(ss)), cancel: cancel}
	for i := range a.results {
		a.results[i] = make(chan checkResult, 1)
	}
	slots := make(chan struct{}, checksAheadAtOnce)
	go func() {
		for i, s := range ss {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				// Every step gets its result, also those never started: result waits
				// for one, and a run cancelled here must still reach its recap.
				for j := i; j < len(ss); j++ {
					a.results[j] <- checkResult{err: context.Cause(ctx)}
				}
				return
			}
			go func() {
				defer func() { <-slots }()
				start := time.Now()
				ch, err := check(ctx, c, s)
				a.results[i] <- checkResult{change: ch, err: err, took: time.Since(start)}
			}()
		}
	}()
	return a
}

// result waits for the check of step i made ahead; nil once the checks were stopped,
// when the step must check for itself.
func (a *checksAhead) result(i int) *checkResult {
	if a == nil || a.stopped {
		return nil
	}
	r := <-a.results[i-a.first]
	return &r
}

// stop drops the checks not used yet and cancels those still running.
func (a *checksAhead) stop() {
	if a == nil || a.stopped {
		return
	}
	a.stopped = true
	a.cancel()
}
