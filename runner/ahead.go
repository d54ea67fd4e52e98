package runner

import (
	"context"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/cauldron-go/cauldron/steps"
	"github.com/cauldron-go/cauldron/transport"
)

// checksAheadAtOnce bounds the checks a host runs at once over a connection that is not
// transport.Pipelined: sshd allows ten sessions on one connection by default
// (MaxSessions). Over a Pipelined connection (a command channel) every check starts at
// once: the commands queue on the host and come back in one round trip, and the
// transport bounds whatever it must run another way.
const checksAheadAtOnce = 4

// checksAhead runs the checks of a host's steps concurrently, ahead of the steps. A
// check only reads the host, so as long as nothing has changed it, a check made ahead
// is exactly the check the step would make: a converged host is checked in the time of
// one round trip instead of the sum of them all.
//
// The checks run ahead across the host's plays, not only the current one: the host's
// steps of every play of the run, in order, from the step that started them. Within
// the play that started them, they hold until a step of the host changes it (stop);
// from then on each later step checks for itself again. In a later play they hold only
// if nothing at all was applied in the run since they started (run.applied), as another
// host's step or handler may reach this host (transport.Delegate); otherwise that play
// starts checking ahead afresh.
type checksAhead struct {
	// first is the index, among the host's steps of every play (hostState.steps), of
	// the first step checked; leg is the offset of the play whose step started them.
	first, leg int
	// applied is run.applied when the checks started.
	applied uint64
	results []chan checkResult
	cancel  context.CancelFunc
	stopped atomic.Bool
}

// checkResult is one check made ahead.
type checkResult struct {
	change *steps.Change
	err    error
	took   time.Duration
}

// checkAhead starts checking ss, the host's steps from index first on, over c. pending,
// when not nil, are the host's marks still to be read: their read goes in the same
// command as the checks' reads.
func checkAhead(ctx context.Context, c transport.Conn, ss []steps.Step, first int, pending *pendingState) *checksAhead {
	ctx, cancel := context.WithCancel(ctx)
	a := &checksAhead{first: first, results: make([]chan checkResult, len(ss)), cancel: cancel}
	for i := range a.results {
		a.results[i] = make(chan checkResult, 1)
	}
	atOnce := checksAheadAtOnce
	pipelined := false
	if p, ok := c.(transport.Pipelined); ok && p.Pipelined() {
		atOnce, pipelined = len(ss), true
	}
	// What the checks declare they read (paths, units, packages), each kind in one
	// command: a converged check of a file then starts no process on the host.
	var own []string
	if pending != nil {
		if line := pending.line(); line != "" {
			own = append(own, line)
		}
	}
	ctx = steps.Prefetch(ctx, c, ss, own...)
	if len(own) > 0 {
		pending.start(ctx)
	}
	slots := make(chan struct{}, max(atOnce, 1))
	go func() {
		for i, s := range ss {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
			}
			if ctx.Err() != nil || a.stopped.Load() {
				// Every step gets its result, also those never started: result waits
				// for one, and a run cancelled here must still reach its recap. After
				// stop, no step asks.
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
			if pipelined {
				// Let the check just started write its command before the next one does:
				// the host runs them in the order they arrive, so the first steps' answers
				// come first.
				runtime.Gosched()
			}
		}
	}()
	return a
}

// result waits for the check of step i (an index among the host's steps of every play)
// made ahead; nil once the checks were stopped, when the step must check for itself.
// When ctx ends first, the result is ctx's error.
func (a *checksAhead) result(ctx context.Context, i int) *checkResult {
	if a == nil || a.stopped.Load() {
		return nil
	}
	select {
	case r := <-a.results[i-a.first]:
		return &r
	case <-ctx.Done():
		return &checkResult{err: context.Cause(ctx)}
	}
}

// stop drops the checks not used yet: those not started never start, and those
// running finish on their own (they only read; killing each would cost the host more
// than letting it end), their results unused.
func (a *checksAhead) stop() {
	if a != nil {
		a.stopped.Store(true)
	}
}

// end stops the checks and cancels those still running: the host is done.
func (a *checksAhead) end() {
	if a != nil {
		a.stop()
		a.cancel()
	}
}

// aheadFor returns the checks made ahead that step i of hp may use, starting them when
// there are none it may use (see checksAhead).
func (r *run) aheadFor(ctx context.Context, st *hostState, hp hostPlan, i int) *checksAhead {
	at := hp.offset + i
	if a := st.ahead; a != nil && !a.stopped.Load() && a.first <= at &&
		(a.leg == hp.offset || a.applied == r.applied.Load()) {
		return a
	}
	st.ahead.stop()
	applied := r.applied.Load()
	a := checkAhead(ctx, st.conn, st.steps[at:], at, st.pending)
	a.leg, a.applied = hp.offset, applied
	st.ahead = a
	return a
}
