package runner

// The life of one host in one play, in the order it happens:
//
//  1. connect: the host is dialed when its first step is about to run, once per run;
//     a host that cannot be reached is failed (unreachable=1) and its steps skipped.
//     The handlers an earlier run left owed (pending.go) are read in the background,
//     beside the first checks.
//  2. check ahead: from the first step on, the checks of the host's steps in this
//     play and the later ones run ahead (ahead.go): all at once over a command
//     channel, a few at once otherwise, until a step changes the host; a later play
//     uses them only if nothing at all was applied in the run meanwhile.
//  3. steps: each step is checked (or takes its check made ahead) and, in apply mode,
//     applied; before a change that notifies handlers is applied, their pending marks
//     are written on the host. A failed step skips the rest of the host's steps in
//     the play.
//  4. handlers: the handlers the changed steps notified, and those owed from an earlier
//     run, run once each in the order the recipe declares them, even after a failed
//     step; only a cancelled run leaves them pending. A handler that ran clears its
//     mark.
//  5. close: every connection is closed at the end of the run (run.closeAll), not of
//     the play, so the next play reuses it.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cauldron-go/cauldron/inventory"
	"github.com/cauldron-go/cauldron/steps"
	"github.com/cauldron-go/cauldron/transport"
)

// skipReason says why a step may not start on host st, or "" when it may.
func (r *run) skipReason(ctx context.Context, st *hostState) string {
	if ctx.Err() != nil {
		return cancelReason(ctx)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped != "" {
		return r.stopped
	}
	if st.failed {
		if st.report.Unreachable {
			return reasonUnreachable
		}
		return reasonHostFailed
	}
	return ""
}

func (r *run) runHost(parent context.Context, p playPlan, hp hostPlan) {
	st := hp.state
	name := st.host.Name
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	r.mu.Lock()
	r.cancels[name] = cancel
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.cancels, name)
		r.mu.Unlock()
	}()
	notified, stepFailed := r.runSteps(ctx, p, hp)
	r.runHandlers(ctx, p, hp, notified, stepFailed)
}

// runSteps runs the host's steps of play p in order and returns, by handler name, the
// steps that notified it, and whether a step failed.
func (r *run) runSteps(ctx context.Context, p playPlan, hp hostPlan) (notified map[string][]string, stepFailed bool) {
	st := hp.state
	notified = map[string][]string{}
	var ahead *checksAhead
	for i, s := range hp.steps {
		stepName, notifies, nameErr := describe(s, i)
		res := StepResult{Play: r.mask.String(p.name), Step: r.mask.String(stepName)}
		ran := false
		if nameErr != nil {
			// A step that cannot say its name is broken: it fails, alone.
			res.Status, res.Error = StatusFailed, r.mask.err(nameErr)
		} else if stepFailed {
			res.Status, res.Reason = StatusSkipped, reasonStepFailed
		} else if why := r.skipReason(ctx, st); why != "" {
			res.Status, res.Reason = StatusSkipped, why
		} else if !r.connect(ctx, p, st) {
			res.Status, res.Reason = StatusSkipped, r.skipReason(ctx, st)
		} else {
			if ahead == nil {
				ahead = r.aheadFor(st.ctx, st, hp, i)
			}
			var beforeApply func(context.Context) error
			marked := false
			if len(notifies) > 0 {
				beforeApply = func(ctx context.Context) error {
					marked = true
					return r.markPending(ctx, st, p.name, notifies, stepName)
				}
			}
			ran = true
			// A long upload says how far it has got, on the host's behalf.
			sctx := steps.WithProgress(ctx, func(t steps.Progress) { r.out.transfer(st.report.Host, t) })
			r.runStep(sctx, st.conn, s, ahead.result(ctx, hp.offset+i), beforeApply, &res)
			if marked {
				r.settlePending(ctx, st, p.name, notifies, res.Status)
			}
		}
		if r.o.Mode == Plan && st.wouldChange && (res.Status == StatusWouldChange || res.Status == StatusFailed) {
			// Checked against the host as it is, without the changes planned before
			// it: what it says may not be what apply finds, which checks again.
			res.AfterChange = true
			if res.Summary != "" {
				res.Summary = "as the host is now: " + res.Summary
			}
		}
		if res.Status == StatusWouldChange {
			st.wouldChange = true
		}
		if !ran {
			res.StartMS = r.sinceStart()
		}
		r.record(st, res)
		if res.Status == StatusChanged {
			// The host is no longer what the checks made ahead of time saw.
			ahead.stop()
		}
		switch res.Status {
		case StatusChanged, StatusWouldChange:
			for _, n := range notifies {
				notified[n] = append(notified[n], res.Step)
			}
		case StatusFailed:
			stepFailed = true
			r.hostFailed(p, st)
		}
	}
	return notified, stepFailed
}

// markPending records on the host that the handlers a step notifies are owed, before
// the step's change is applied (see pending.go).
func (r *run) markPending(ctx context.Context, st *hostState, play string, handlers []string, step string) error {
	for _, h := range handlers {
		if err := st.pending.mark(ctx, st.conn, play, h, step); err != nil {
			return fmt.Errorf("record the pending handler %q on the host, before the change: %w", h, err)
		}
	}
	return nil
}

// settlePending keeps the marks a step wrote before its apply when the change was made
// (or interrupted), and withdraws them when the apply failed.
func (r *run) settlePending(ctx context.Context, st *hostState, play string, handlers []string, status Status) {
	for _, h := range handlers {
		switch status {
		case StatusChanged:
			st.pending.confirm(play, h)
		case StatusFailed:
			if err := st.pending.withdraw(ctx, st.conn, play, h); err != nil {
				// The next run runs the handler once more. Harmless, but said.
				st.report.Warnings = append(st.report.Warnings, r.mask.err(err))
			}
		}
	}
}

// runHandlers runs the handlers the host owes for play p: those its steps notified in
// this run and those an earlier run left pending, in the order the recipe declares
// them. A handler that ran successfully is no longer owed.
func (r *run) runHandlers(ctx context.Context, p playPlan, hp hostPlan, notified map[string][]string, stepFailed bool) {
	st := hp.state
	owed := r.owedFromEarlier(ctx, p, hp)
	if (len(notified) > 0 || len(owed) > 0) && p.handlersLock != nil && r.o.Mode == Apply {
		p.handlersLock.Lock()
		defer p.handlersLock.Unlock()
	}
	for _, h := range hp.handlers {
		by := notified[h.Name]
		if owed[h.Name] {
			by = append([]string{notifiedEarlier}, by...)
		}
		if len(by) == 0 {
			continue
		}
		stepName, _, nameErr := describe(h.Step, -1)
		res := HandlerResult{
			Play: r.mask.String(p.name), Handler: r.mask.String(h.Name), Step: r.mask.String(stepName),
			NotifiedBy: by, AfterFailure: stepFailed, FromEarlierRun: owed[h.Name], StartMS: r.sinceStart(),
		}
		switch why := handlerReason(ctx); {
		case nameErr != nil:
			res.Status, res.Error = StatusFailed, r.mask.err(nameErr)
		case r.o.Mode == Plan:
			res.Status = StatusWouldRun
		case why != "":
			res.Status, res.Reason = StatusPending, why
		default:
			// A handler changes the host (and may reach others): checks made ahead for
			// later plays are stale.
			r.applied.Add(1)
			st.ahead.stop()
			var sr StepResult
			r.runStep(ctx, st.conn, h.Step, nil, nil, &sr)
			res.Status, res.Summary, res.Error, res.Reason, res.ElapsedMS = sr.Status, sr.Summary, sr.Error, sr.Reason, sr.ElapsedMS
			res.StartMS = sr.StartMS
			if res.Status == StatusSkipped {
				// Interrupted while running: it is still owed to the host.
				res.Status = StatusPending
			}
		}
		if res.Status == StatusChanged || res.Status == StatusOK {
			if err := st.pending.clear(ctx, st.conn, p.name, h.Name); err != nil {
				// The handler ran; the next run runs it once more. Harmless, but said.
				st.report.Warnings = append(st.report.Warnings, r.mask.err(err))
			}
		}
		st.report.Handlers = append(st.report.Handlers, res)
		st.report.Counts.add(res.Status)
		st.out.handlerLine(st.report.Host, res)
		if res.Status == StatusFailed {
			r.hostFailed(p, st)
		}
	}
}

// owedFromEarlier waits for the host's pending marks and returns the handlers of p an
// earlier run left owed. A mark naming a handler the recipe no longer declares stays
// on the host, with a warning. Marks that cannot be read fail the host: it may owe a
// restart that nothing would run.
func (r *run) owedFromEarlier(ctx context.Context, p playPlan, hp hostPlan) map[string]bool {
	st := hp.state
	if st.pending == nil {
		return nil
	}
	if err := st.pending.wait(ctx); err != nil {
		if ctx.Err() == nil && !st.pending.reported {
			st.pending.reported = true
			res := HandlerResult{Play: r.mask.String(p.name), Handler: "(pending handlers)", Status: StatusFailed, Error: r.mask.err(err)}
			st.report.Handlers = append(st.report.Handlers, res)
			st.report.Counts.add(res.Status)
			st.out.handlerLine(st.report.Host, res)
			r.hostFailed(p, st)
		}
		return nil
	}
	owed := map[string]bool{}
	for name := range st.pending.owed(p.name) {
		owed[name] = true
	}
	for _, h := range hp.handlers {
		delete(owed, h.Name)
	}
	for name := range owed {
		st.report.Warnings = append(st.report.Warnings, r.mask.String(fmt.Sprintf(
			"play %q: handler %q is pending from an earlier run, but this recipe declares no such handler; its mark stays in %s", p.name, name, st.pending.dir)))
	}
	owed = map[string]bool{}
	for name := range st.pending.owed(p.name) {
		owed[name] = true
	}
	return owed
}

// cancelReason says why ctx is done: the caller cancelled, or a fail-fast stop.
func cancelReason(ctx context.Context) string {
	var stop stopCause
	if errors.As(context.Cause(ctx), &stop) {
		return stop.reason
	}
	return reasonCancelled
}

// handlerReason says why notified handlers may not run, or "" when they may. Only a
// cancelled context holds them back: when a step failed, or the run stopped because
// of other hosts, what this host already changed still needs its restart or reload,
// and a configuration written but never reloaded is the worst state to leave.
func handlerReason(ctx context.Context) string {
	if ctx.Err() != nil {
		return cancelReason(ctx)
	}
	return ""
}

// sinceStart is the time since the run began, in milliseconds, for the report.
func (r *run) sinceStart() int64 { return time.Since(r.rep.Start).Milliseconds() }

func (r *run) record(st *hostState, res StepResult) {
	st.report.Steps = append(st.report.Steps, res)
	st.report.Counts.add(res.Status)
	st.out.stepLine(st.report.Host, res, r.o.Mode == Plan)
}

// connect dials st's host the first time it is needed. It reports whether there is a
// connection to use; when not, the host is marked failed (or the run was cancelled).
func (r *run) connect(ctx context.Context, p playPlan, st *hostState) bool {
	if st.dialed {
		return st.conn != nil
	}
	st.dialed = true
	start := time.Now()
	conn, err := r.dial(ctx, st.host)
	if err == nil && conn == nil {
		err = errors.New("dial returned no connection")
	}
	if err != nil {
		if conn != nil {
			_ = conn.Close() // a half-made connection; the dial error is what matters
		}
		if ctx.Err() != nil {
			// Cancelled while dialing: not the host's fault, and nothing more will run.
			return false
		}
		ms := time.Since(start).Milliseconds()
		st.report.Unreachable = true
		st.report.Counts.Unreachable = 1
		st.report.Error = r.mask.String(fmt.Sprintf("connect to %s: %v", st.host.Name, err))
		st.out.unreachable(st.report.Host, st.report.Error, ms)
		r.hostFailed(p, st)
		return false
	}
	if ctx.Err() != nil {
		// The dial won its race with a cancel: the connection is good, but nothing may
		// run over it any more.
		_ = conn.Close()
		return false
	}
	st.conn = conn
	st.report.ConnectMS = time.Since(start).Milliseconds()
	r.mu.Lock()
	st.ctx, st.cancel = context.WithCancelCause(r.hostsCtx)
	if r.stopped != "" && r.o.FailFast {
		st.cancel(stopCause{r.stopped})
	}
	r.mu.Unlock()
	// With the run's context, not the play's: the marks serve every play of the run.
	// Read with the first checks made ahead, in their command (aheadFor), or when
	// first needed.
	st.pending = newPending(r.ctx, conn, st.stateDir)
	return true
}

func (r *run) dial(ctx context.Context, h *inventory.Host) (c transport.Conn, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("dial panicked: %v", v)
		}
	}()
	return r.o.Dial(ctx, h)
}

// runStep checks s and, in apply mode, applies the change it finds, filling res.
//
// beforeApply, when not nil, runs before the change is applied; its error fails the
// step and the change is not made.
func (r *run) runStep(ctx context.Context, c transport.Conn, s steps.Step, early *checkResult, beforeApply func(context.Context) error, res *StepResult) {
	start := time.Now()
	defer func() {
		res.StartMS = start.Sub(r.rep.Start).Milliseconds()
		res.ElapsedMS = time.Since(start).Milliseconds()
	}()
	var ch *steps.Change
	var err error
	if early != nil {
		ch, err = early.change, early.err
		start = time.Now().Add(-early.took)
	} else {
		ch, err = check(ctx, c, s)
	}
	if err != nil {
		r.stepError(ctx, res, "check", err)
		return
	}
	if ch == nil {
		res.Status = StatusOK
		return
	}
	res.Summary, res.Diff = r.mask.String(ch.Summary), r.mask.String(ch.Diff)
	if r.o.Mode == Plan {
		res.Status = StatusWouldChange
		return
	}
	if ch.Apply == nil {
		res.Status, res.Error = StatusFailed, "the change has no Apply"
		return
	}
	// From here on the host changes: checks made ahead for later plays are stale.
	r.applied.Add(1)
	if beforeApply != nil {
		if err := beforeApply(ctx); err != nil {
			r.stepError(ctx, res, "apply", err)
			return
		}
	}
	if err := apply(ctx, ch); err != nil {
		r.stepError(ctx, res, "apply", err)
		return
	}
	res.Status = StatusChanged
}

// stepError records err. A step that returned because the run was cancelled under it
// did not fail on its own: it is reported skipped, with what it said.
func (r *run) stepError(ctx context.Context, res *StepResult, phase string, err error) {
	res.Error = phase + ": " + r.mask.err(err)
	if ctx.Err() != nil {
		res.Status, res.Reason = StatusSkipped, "interrupted: "+cancelReason(ctx)
		return
	}
	res.Status = StatusFailed
}

// check and apply turn a panicking step into a failed one: one bad step must not take
// down every other host's run.
func check(ctx context.Context, c transport.Conn, s steps.Step) (ch *steps.Change, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("step panicked: %v", v)
		}
	}()
	return s.Check(ctx, c)
}

func apply(ctx context.Context, ch *steps.Change) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("step panicked: %v", v)
		}
	}()
	return ch.Apply(ctx)
}

// describe names s by the step it wraps, through any Notify wrappers, and lists the
// handlers it notifies. String and Notifies are user code like Check: when one
// panics, the step is named by its type and position (i < 0 for a handler's step)
// and err says what happened, so that the step fails alone, before it changes
// anything, instead of taking the whole run down.
func describe(s steps.Step, i int) (name string, notifies []string, err error) {
	defer func() {
		if v := recover(); v != nil {
			name = fmt.Sprintf("%T", s)
			if i >= 0 {
				name = fmt.Sprintf("step %d (%T)", i+1, s)
			}
			notifies = nil
			err = fmt.Errorf("naming the step panicked: %v", v)
		}
	}()
	notifies = steps.Notified(s)
	for {
		u, ok := s.(interface{ Unwrap() steps.Step })
		if !ok {
			return s.String(), notifies, nil
		}
		s = u.Unwrap()
	}
}
