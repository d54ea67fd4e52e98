// Package runner runs recipes on inventory hosts: play after play, hosts of a play in
// parallel, one connection per host for the whole run.
//
// Like goreleaser's pipes, everything around a step is the runner's: it times the
// step, logs one line when it finishes, skips it when the host or the run has already
// failed, collects its error, masks secrets, and runs the handlers it notified. Steps
// themselves only check and apply. Step methods are user code: a panic in String,
// Check or Apply fails that step on that host, never the process.
//
// Where things are: runner.go has Run, the plays and the run's bookkeeping (fail-fast,
// max fail percent, the result); host.go follows one host through a play, from dial to
// handlers, and says the order of things; ahead.go checks a host's steps ahead of them;
// pending.go keeps handlers durable; progress.go and report.go are the live lines, the
// recap and the JSON report.
//
// # Durable handlers
//
// A handler notified by a change is owed to the host until it has run: before the
// runner applies a change that notifies a handler, it writes a mark for that (play,
// handler) on the host, under the host's state directory, and removes the mark only
// once the handler ran successfully. A controller that dies between the change and the
// restart (SIGKILL, a dropped connection, Ctrl-C) leaves the mark; the next run, apply
// or plan, reads the marks when it connects and treats those handlers as notified,
// "pending from an earlier run". A step whose apply fails withdraws the mark it wrote
// (a failed step notifies nothing). The state directory is Options.StateDir, else the
// host's inventory variable cauldron_state_dir, else /var/lib/cauldron for root and
// ${XDG_STATE_HOME:-$HOME/.local/state}/cauldron for another user; the marks are the
// files of its pending/ directory, one line of JSON each.
//
// # Plans
//
// A plan checks every step and applies none. So its plays need not wait for each
// other: each host goes through its plays in order, at the same time as the other
// hosts (Parallel at once); an apply runs play after play. The plan's output is the
// same from run to run: play by play, each host's lines together, in the play's order
// of hosts.
//
// A step after one that would change the host is checked against the host without
// that change: such a result is marked "[after an earlier change]" and its summary
// says "as the host is now".
//
// # Recap
//
// One line per host: ok, changed (would change, in a plan), failed and skipped steps
// and handlers, and unreachable=1 for a host that could not be connected to: it
// failed, although no step of it did.
package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
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
	// before the next starts, as a cluster that must keep serving needs. A plan,
	// which changes nothing, does not hold to it.
	Serial int
	// RollingHandlers runs the handlers (restarts) of one host at a time while the
	// steps of every host still run in parallel: a rolling restart that costs a
	// converged cluster nothing.
	RollingHandlers bool
}

// Options say how to run.
type Options struct {
	Mode Mode
	// Parallel is how many hosts of a play run at once (in a plan, how many hosts
	// run at once, each through its plays); 0 means 8.
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
	// Live shows how far a long upload has got on one line redrawn at the bottom of
	// Progress (a terminal); without it, a line every second. Either way only uploads
	// that take more than a second show.
	Live bool
	// StateDir gives the directory on host h where the runner keeps what it owes the
	// host: the handlers notified by a change and not run yet (see "Durable handlers"
	// in the package doc). Nil, or "" for a host, means the host's inventory variable
	// cauldron_state_dir, or else /var/lib/cauldron for root and
	// ${XDG_STATE_HOME:-$HOME/.local/state}/cauldron for any other user.
	StateDir func(h *inventory.Host) string
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
		ctx:     ctx,
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
	r.out = &progress{w: r.o.Progress, mask: r.mask, color: r.o.Color, live: r.o.Live, hostWidth: r.hostWidth()}
	if r.o.Mode == Plan {
		r.out.write("PLAN: checking only, nothing will be changed\n")
	}
	delegated := r.newDelegates()
	ctx = transport.WithDelegates(ctx, delegated)
	r.hostsCtx = ctx
	for _, st := range r.order {
		st.out = r.out
	}
	if r.o.Mode == Plan {
		r.planConcurrently(ctx, plans)
	} else {
		for _, p := range plans {
			r.runPlay(ctx, p)
		}
	}
	r.endHosts()
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
	ctx context.Context // the caller's, for what outlives one play
	// hostsCtx is ctx with the run's delegates: the checks made ahead, which outlive
	// a play, run under a context of each host's made from it (hostState.ctx).
	hostsCtx context.Context
	o        Options
	mask     masker
	out      *progress
	rep      *Report

	mu      sync.Mutex
	hosts   map[string]*hostState // by host name
	order   []*hostState          // in order of first appearance
	cancels map[string]context.CancelCauseFunc
	stopped string // why no new step may start, once set
	// applied counts what the run applied on any host, steps and handlers: the checks
	// a host made ahead for a later play hold only if it has not moved since.
	applied atomic.Uint64
}

// hostState is one host across the run. Only the goroutine running the host in the
// current play touches conn and report; failed is shared and guarded by run.mu.
type hostState struct {
	host   *inventory.Host
	report *HostReport
	conn   transport.Conn
	dialed bool
	failed bool
	// stateDir is the state directory the controller was given for the host, "" when
	// the host decides (see pending.go); pending is what the host owes, once dialed.
	stateDir string
	pending  *pendingState
	// out is where the host's lines go: the run's progress, or in a plan a block of
	// lines kept until the host is through the play (plan.go).
	out *progress
	// wouldChange is set, in a plan, once a step would change the host: the steps
	// after it are checked against a host that does not have that change yet.
	wouldChange bool
	// steps are the host's steps of every play of the run, in order; each hostPlan
	// has its play's from its offset on. ahead are the checks made ahead of them.
	steps []steps.Step
	ahead *checksAhead
	// ctx is the host's for the whole run, from when it is connected: the checks made
	// ahead run under it. cancel ends it (a fail-fast stop, the end of the run); both
	// are set under run.mu.
	ctx    context.Context
	cancel context.CancelCauseFunc
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
	// offset is where steps begin in state.steps.
	offset int
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
		dir, err := configuredStateDir(r.o, h)
		if err != nil {
			return hp, err
		}
		st = &hostState{host: h, report: &HostReport{Host: r.mask.String(h.Name)}, stateDir: dir}
		r.hosts[h.Name] = st
		r.order = append(r.order, st)
		r.rep.Hosts = append(r.rep.Hosts, st.report)
	}
	hp = hostPlan{state: st, steps: rec.Steps(), handlers: rec.Handlers(), offset: len(st.steps)}
	st.steps = append(st.steps, hp.steps...)
	return hp, nil
}

func (r *run) hostWidth() int {
	w := 0
	for _, h := range r.rep.Hosts {
		w = max(w, len(h.Host))
	}
	return w
}

func (r *run) runPlay(ctx context.Context, p playPlan) {
	r.out.write(playHeader(p))
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
		for _, other := range r.order {
			if other != st && other.cancel != nil {
				other.cancel(stopCause{r.stopped})
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

// endHosts ends what each host still has running in the background: checks made
// ahead that no step used (the host failed or was stopped).
func (r *run) endHosts() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, st := range r.order {
		st.ahead.end()
		if st.cancel != nil {
			st.cancel(context.Canceled)
		}
	}
}

func (r *run) closeAll() {
	for _, st := range r.order {
		if st.conn == nil {
			continue
		}
		if tc, ok := st.conn.(transport.Counter); ok {
			t := tc.Traffic()
			st.report.Traffic = &t
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
