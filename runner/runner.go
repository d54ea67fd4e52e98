// Package runner runs recipes on inventory hosts: play after play, hosts of a play in
// parallel, one connection per host for the whole run.
//
// Like goreleaser's pipes, everything around a step is the runner's: it times the
// step, logs one line when it finishes, skips it when the host or the run has already
// failed, collects its error, masks secrets, and runs the handlers it notified. Steps
// themselves only check and apply.
package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/cauldron-go/cauldron/inventory"
	"github.com/cauldron-go/cauldron/steps"
	"github.com/cauldron-go/cauldron/transport"
)

// Play is one recipe run on a set of hosts. The recipe is built per host because the
// values differ from node to node (a jvmRoute, an address).
type Play struct {
	Name   string
	Hosts  []*inventory.Host
	Recipe func(h *inventory.Host) (*steps.Recipe, error)
	// Serial, when above 0, caps how many of the play's hosts run at once below
	// Options.Parallel: 1 is a rolling change, one host converged (handlers included)
	// before the next starts, as a cluster that must keep serving needs.
	Serial int
	// RollingHandlers runs the handlers (restarts) of one host at a time while the
	// steps of every host still run in parallel: a rolling restart that costs a
	// converged cluster nothing.
	RollingHandlers bool
}

// Options say how to run.
type Options struct {
	Mode Mode
	// Parallel is how many hosts of a play run at once; 0 means 8.
	Parallel int
	// FailFast makes the first failed host cancel the steps running on the others
	// and stop the run: no new step starts anywhere.
	FailFast bool
	// MaxFailPercent stops the run (no new step starts; running ones finish) once more
	// than this percentage of a play's hosts have failed, counting hosts that failed
	// in an earlier play. 0 means no limit.
	//
	// Either way, a host that is not cancelled still runs the handlers its changes
	// notified: a configuration written but never reloaded is the worst state to leave.
	MaxFailPercent int
	// Progress receives the live per-step lines and the recap; nil discards them.
	Progress io.Writer
	// Dial connects to a host. The runner dials each host once, when its first step is
	// about to run, and closes the connection at the end of the run. ctx bounds the
	// dial only: the connection must outlive it.
	Dial func(ctx context.Context, h *inventory.Host) (transport.Conn, error)
	// Secrets are masked as ******** in everything printed, reported or returned.
	Secrets []string
	// Color colours the statuses of the progress lines.
	Color bool
}

// DefaultParallel is the number of hosts run at once when Options.Parallel is 0.
const DefaultParallel = 8

// Reasons a step was skipped.
const (
	reasonCancelled   = "cancelled"
	reasonStepFailed  = "an earlier step failed"
	reasonHostFailed  = "host failed earlier"
	reasonUnreachable = "host unreachable"
)

// stopCause is the cause given to the contexts of the hosts a fail-fast stop cancels,
// so that their steps are reported skipped for the stop's reason, not a bare "cancelled".
type stopCause struct{ reason string }

func (s stopCause) Error() string { return s.reason }

// Run builds and validates every play's recipe for every host, then runs the plays in
// order. It returns the report of everything that happened, and an error when a host
// failed, the run was cancelled, or a recipe did not validate (then nothing is dialed).
func Run(ctx context.Context, plays []Play, o Options) (*Report, error) {
	r := &run{
		o:       o,
		mask:    newMasker(o.Secrets),
		rep:     &Report{Mode: o.Mode, Start: time.Now()},
		hosts:   map[string]*hostState{},
		cancels: map[string]context.CancelCauseFunc{},
	}
	if r.o.Parallel == 0 {
		r.o.Parallel = DefaultParallel
	}
	if r.o.Progress == nil {
		r.o.Progress = io.Discard
	}
	plans, err := r.prepare(plays)
	if err != nil {
		r.finishTimes()
		return r.rep, errors.New(r.mask.String(err.Error()))
	}
	r.out = &progress{w: r.o.Progress, mask: r.mask, color: r.o.Color, hostWidth: r.hostWidth()}
	if r.o.Mode == Plan {
		r.out.write("PLAN: checking only, nothing will be changed\n")
	}
	delegated := r.newDelegates()
	ctx = transport.WithDelegates(ctx, delegated)
	for _, p := range plans {
		r.runPlay(ctx, p)
	}
	r.closeAll()
	r.closeDelegates(delegated)
	r.rep.Cancelled = ctx.Err() != nil
	r.rep.Stopped = r.stopped
	r.finishTimes()
	r.out.recap(r.rep)
	return r.rep, r.result(ctx)
}

// run is the state of one Run.
type run struct {
	o    Options
	mask masker
	out  *progress
	rep  *Report

	mu      sync.Mutex
	hosts   map[string]*hostState // by host name
	order   []*hostState          // in order of first appearance
	cancels map[string]context.CancelCauseFunc
	stopped string // why no new step may start, once set
}

// hostState is one host across the run. Only the goroutine running the host in the
// current play touches conn and report; failed is shared and guarded by run.mu.
type hostState struct {
	host   *inventory.Host
	report *HostReport
	conn   transport.Conn
	dialed bool
	failed bool
}

// playPlan is a play whose recipes are built and validated.
type playPlan struct {
	name   string
	serial int
	// handlersLock is held by the host whose handlers run, when they roll.
	handlersLock *sync.Mutex
	hosts        []hostPlan
}

type hostPlan struct {
	state    *hostState
	steps    []steps.Step
	handlers []steps.Handler
}

// prepare builds every recipe and validates it, so that a mistake in any play stops
// the run before the first connection.
func (r *run) prepare(plays []Play) ([]playPlan, error) {
	var errs []error
	if r.o.Mode != Plan && r.o.Mode != Apply {
		errs = append(errs, fmt.Errorf("unknown mode %d", int(r.o.Mode)))
	}
	if r.o.Parallel < 0 {
		errs = append(errs, fmt.Errorf("parallel is %d; it must be 1 or more (0 means %d)", r.o.Parallel, DefaultParallel))
	}
	if r.o.MaxFailPercent < 0 || r.o.MaxFailPercent > 100 {
		errs = append(errs, fmt.Errorf("max fail percent is %d; it must be between 0 and 100", r.o.MaxFailPercent))
	}
	if r.o.Dial == nil {
		errs = append(errs, errors.New("no Dial function given"))
	}
	var plans []playPlan
	for i, p := range plays {
		name := p.Name
		if name == "" {
			name = fmt.Sprintf("#%d", i+1)
		}
		if p.Recipe == nil {
			errs = append(errs, fmt.Errorf("play %q: no Recipe function", name))
			continue
		}
		pp := playPlan{name: name, serial: p.Serial}
		if p.RollingHandlers {
			pp.handlersLock = &sync.Mutex{}
		}
		seen := map[string]bool{}
		for _, h := range p.Hosts {
			if h == nil || h.Name == "" {
				errs = append(errs, fmt.Errorf("play %q: a host without a name", name))
				continue
			}
			if seen[h.Name] {
				errs = append(errs, fmt.Errorf("play %q: host %q listed twice", name, h.Name))
				continue
			}
			seen[h.Name] = true
			hp, err := r.planHost(name, p, h)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			pp.hosts = append(pp.hosts, hp)
		}
		plans = append(plans, pp)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("invalid run, nothing was done: %w", err)
	}
	return plans, nil
}

func (r *run) planHost(play string, p Play, h *inventory.Host) (hp hostPlan, err error) {
	defer func() {
		// A recipe function is user code; a panic in it is a bad recipe, not a crash.
		if v := recover(); v != nil {
			err = fmt.Errorf("play %q, host %q: building the recipe panicked: %v", play, h.Name, v)
		}
	}()
	rec, err := p.Recipe(h)
	if err != nil {
		return hp, fmt.Errorf("play %q, host %q: build recipe: %w", play, h.Name, err)
	}
	if rec == nil {
		return hp, fmt.Errorf("play %q, host %q: the recipe function returned no recipe", play, h.Name)
	}
	if err := rec.Validate(); err != nil {
		return hp, fmt.Errorf("play %q, host %q: %w", play, h.Name, err)
	}
	st, ok := r.hosts[h.Name]
	if !ok {
		st = &hostState{host: h, report: &HostReport{Host: r.mask.String(h.Name)}}
		r.hosts[h.Name] = st
		r.order = append(r.order, st)
		r.rep.Hosts = append(r.rep.Hosts, st.report)
	}
	return hostPlan{state: st, steps: rec.Steps(), handlers: rec.Handlers()}, nil
}

func (r *run) hostWidth() int {
	w := 0
	for _, h := range r.rep.Hosts {
		w = max(w, len(h.Host))
	}
	return w
}

func (r *run) runPlay(ctx context.Context, p playPlan) {
	names := make([]string, len(p.hosts))
	for i, hp := range p.hosts {
		names[i] = hp.state.host.Name
	}
	r.out.write(fmt.Sprintf("\nPLAY %s  [%s]\n", p.name, strings.Join(names, " ")))
	r.checkMaxFail(p)
	var g errgroup.Group
	limit := r.o.Parallel
	if p.serial > 0 {
		limit = min(limit, p.serial)
	}
	g.SetLimit(limit)
	for _, hp := range p.hosts {
		g.Go(func() error {
			r.runHost(ctx, p, hp)
			return nil
		})
	}
	// Hosts report their failures in their own results; none returns an error.
	_ = g.Wait()
}

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

	notified := map[string][]string{}
	stepFailed := false
	var ahead *checksAhead
	defer func() { ahead.stop() }()
	for i, s := range hp.steps {
		res := StepResult{Play: r.mask.String(p.name), Step: r.mask.String(stepName(s))}
		if stepFailed {
			res.Status, res.Reason = StatusSkipped, reasonStepFailed
		} else if why := r.skipReason(ctx, st); why != "" {
			res.Status, res.Reason = StatusSkipped, why
		} else if !r.connect(ctx, p, st) {
			res.Status, res.Reason = StatusSkipped, r.skipReason(ctx, st)
		} else {
			if ahead == nil {
				ahead = checkAhead(ctx, st.conn, hp.steps[i:], i)
			}
			r.runStep(ctx, st.conn, s, ahead.result(i), &res)
		}
		r.record(st, res)
		if res.Status == StatusChanged {
			// The host is no longer what the checks made ahead of time saw.
			ahead.stop()
		}
		switch res.Status {
		case StatusChanged, StatusWouldChange:
			for _, n := range steps.Notified(s) {
				notified[n] = append(notified[n], res.Step)
			}
		case StatusFailed:
			stepFailed = true
			r.hostFailed(p, st)
		}
	}

	if len(notified) > 0 && p.handlersLock != nil && r.o.Mode == Apply {
		p.handlersLock.Lock()
		defer p.handlersLock.Unlock()
	}
	for _, h := range hp.handlers {
		by := notified[h.Name]
		if len(by) == 0 {
			continue
		}
		res := HandlerResult{
			Play: r.mask.String(p.name), Handler: r.mask.String(h.Name), Step: r.mask.String(stepName(h.Step)),
			NotifiedBy: by, AfterFailure: stepFailed,
		}
		switch why := handlerReason(ctx); {
		case r.o.Mode == Plan:
			res.Status = StatusWouldRun
		case why != "":
			res.Status, res.Reason = StatusPending, why
		default:
			var sr StepResult
			r.runStep(ctx, st.conn, h.Step, nil, &sr)
			res.Status, res.Summary, res.Error, res.Reason, res.ElapsedMS = sr.Status, sr.Summary, sr.Error, sr.Reason, sr.ElapsedMS
			if res.Status == StatusSkipped {
				// Interrupted while running: it is still owed to the host.
				res.Status = StatusPending
			}
		}
		st.report.Handlers = append(st.report.Handlers, res)
		st.report.Counts.add(res.Status)
		r.out.handlerLine(st.report.Host, res)
		if res.Status == StatusFailed {
			r.hostFailed(p, st)
		}
	}
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

func (r *run) record(st *hostState, res StepResult) {
	st.report.Steps = append(st.report.Steps, res)
	st.report.Counts.add(res.Status)
	r.out.stepLine(st.report.Host, res, r.o.Mode == Plan)
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
		st.report.Error = r.mask.String(fmt.Sprintf("connect to %s: %v", st.host.Name, err))
		r.out.unreachable(st.report.Host, st.report.Error, ms)
		r.hostFailed(p, st)
		return false
	}
	st.conn = conn
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
func (r *run) runStep(ctx context.Context, c transport.Conn, s steps.Step, early *checkResult, res *StepResult) {
	start := time.Now()
	defer func() { res.ElapsedMS = time.Since(start).Milliseconds() }()
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

// hostFailed marks st failed and applies FailFast and MaxFailPercent.
func (r *run) hostFailed(p playPlan, st *hostState) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if st.failed {
		return
	}
	st.failed = true
	st.report.Failed = true
	if r.stopped != "" {
		return
	}
	if r.o.FailFast {
		r.stopped = fmt.Sprintf("fail-fast: host %q failed", st.report.Host)
		for name, cancel := range r.cancels {
			if name != st.host.Name {
				cancel(stopCause{r.stopped})
			}
		}
		return
	}
	r.maxFailLocked(p)
}

func (r *run) checkMaxFail(p playPlan) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped == "" {
		r.maxFailLocked(p)
	}
}

// maxFailLocked stops the run when more than MaxFailPercent of p's hosts have failed,
// counting those that failed in an earlier play.
func (r *run) maxFailLocked(p playPlan) {
	if r.o.MaxFailPercent == 0 || len(p.hosts) == 0 {
		return
	}
	failed := 0
	for _, hp := range p.hosts {
		if hp.state.failed {
			failed++
		}
	}
	if failed*100 > r.o.MaxFailPercent*len(p.hosts) {
		r.stopped = fmt.Sprintf("%d of %d hosts of play %q failed, more than the %d%% allowed", failed, len(p.hosts), r.mask.String(p.name), r.o.MaxFailPercent)
	}
}

func (r *run) closeAll() {
	for _, st := range r.order {
		if st.conn == nil {
			continue
		}
		if err := st.conn.Close(); err != nil {
			st.report.Warnings = append(st.report.Warnings, r.mask.String(fmt.Sprintf("close connection: %v", err)))
		}
		st.conn = nil
	}
}

func (r *run) finishTimes() {
	r.rep.Duration = time.Since(r.rep.Start)
	r.rep.DurationMS = r.rep.Duration.Milliseconds()
}

func (r *run) result(ctx context.Context) error {
	var failed []string
	for _, h := range r.rep.Hosts {
		if h.Failed {
			failed = append(failed, h.Host)
		}
	}
	var hostErr error
	if len(failed) > 0 {
		hostErr = fmt.Errorf("%d of %d hosts failed: %s", len(failed), len(r.rep.Hosts), strings.Join(failed, ", "))
	}
	if err := ctx.Err(); err != nil {
		if hostErr != nil {
			return fmt.Errorf("run cancelled (%v): %w", hostErr, err)
		}
		return fmt.Errorf("run cancelled: %w", err)
	}
	return hostErr
}

// stepName names s by the step it wraps, through any Notify wrappers.
func stepName(s steps.Step) string {
	for {
		u, ok := s.(interface{ Unwrap() steps.Step })
		if !ok {
			return s.String()
		}
		s = u.Unwrap()
	}
}
