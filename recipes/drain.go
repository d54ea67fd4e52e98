package recipes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cauldron-go/cauldron/shell"
	"github.com/cauldron-go/cauldron/steps"
	"github.com/cauldron-go/cauldron/transport"
)

// Balancer is one balancer in front of a Tomcat node, on a host of the run (reached with
// transport.Delegate). TakeOut stops new traffic to the node and returns once nothing
// is in flight to it; PutBack sends it traffic again. A balancer that is not installed
// or not running yet (the first deploy sets up the Tomcats before the web servers) has
// nothing to take the node out of: both are then no-ops.
type Balancer interface {
	String() string
	// InFront says whether the balancer is there, running, and could send the node
	// traffic; on a first deploy the web servers come after the Tomcats.
	InFront(ctx context.Context) (bool, error)
	// OthersInRotation is nil when the balancer still sends traffic to another node:
	// a node left out by a failed rollout does not count, however well it serves.
	OthersInRotation(ctx context.Context) error
	TakeOut(ctx context.Context) error
	PutBack(ctx context.Context) error
}

// DrainedRestart restarts a Tomcat node without a user noticing: it takes the node out
// of every balancer in front of it (waiting until nothing is in flight), stops it,
// starts it, waits until it serves, has joined its session cluster and received the
// sessions, puts it back, and lets it take traffic for Settle with every health check
// passing. A node that does not serve before the restart (a first start) holds no
// traffic and is restarted without the drain. It never takes out the last serving
// node: with other nodes in the cluster and none of them serving, it stops before
// touching anything. Each gate has a deadline in seconds (Timeout); a failed gate
// fails the step with the node left out of the balancers and a message naming the gate.
// The balancers are asked at once (each is another host); WithRestartPhases reports
// how long each phase took.
type DrainedRestart struct {
	Unit string
	// Node names the node in messages (the inventory host).
	Node string
	// HealthURLs answer 200 on the node when it serves (one per app).
	HealthURLs []string
	// ClusterURLs answer the apps' cluster state on the node (lab.AppClusterPath's JSON:
	// members and stateTransferred); empty skips the cluster gate.
	ClusterURLs []string
	// Peers are the other nodes' health URLs: at least one must serve before this node
	// is taken out. Empty for a single-node cluster.
	Peers []string
	// PeerClusterURLs are the other nodes' cluster state pages (as ClusterURLs, one per
	// app and peer, reached from this node). Each one that answers before the stop
	// must count at least as many members after the start before the joined gate
	// passes: a peer's cluster that did not take the node back sends it no change, and
	// announces none of its new sessions (Tomcat's DeltaManager sends a session's
	// creation only while its cluster has a member), so the node's copies stay behind
	// or missing until the peer's users come to it. Seen in session 11's CI run: after
	// web1's drained restart, web2's admin cluster took web1 back within 7 s, its user
	// cluster never did, and when web2 was drained 30 s later, each of its 8 user
	// sessions went back ~500 counts on web1. Like a node without the session state,
	// such a node is restarted once more, still out, then the gate fails.
	PeerClusterURLs []string
	// Balancers are every balancer in front of the node.
	Balancers []Balancer
	// Timeout bounds each gate; 0 means 3 minutes.
	Timeout time.Duration
	// Settle is how long the node takes traffic, checked every second, before the step
	// returns (and the next node may go); 0 means 5 seconds.
	Settle time.Duration
	// StateTransferTimeout is how long the node's session manager waits for the
	// session state as it starts before it gives up for good (DeltaManager's
	// stateTransferTimeout); 0 means its default, 60 seconds. A node that has seen a
	// member but still has no state that long after it serves is restarted once more,
	// still out of every balancer, before the joined gate fails.
	StateTransferTimeout time.Duration
	// SyncWhileDraining, when set, makes the node's session replication synchronous
	// (at run time, until it stops) before it is taken out: see ClusterSendOptions.
	// For a cluster that replicates asynchronously or written; nil leaves replication
	// as it is.
	SyncWhileDraining *ClusterSendOptions
}

func (d DrainedRestart) String() string {
	return "drain, restart " + d.Unit + " and wait until it serves and has joined its cluster"
}

// Validate rejects a step without a unit, a node or health URLs.
func (d DrainedRestart) Validate() error {
	if d.Unit == "" || d.Node == "" || len(d.HealthURLs) == 0 {
		return errors.New("DrainedRestart needs a Unit, a Node and at least one health URL")
	}
	if d.Timeout < 0 || d.Settle < 0 {
		return errors.New("DrainedRestart: Timeout and Settle must not be negative")
	}
	return nil
}

// Check always finds a change: a restart is an action, run when notified.
func (d DrainedRestart) Check(_ context.Context, c transport.Conn) (*steps.Change, error) {
	var via []string
	for _, b := range d.Balancers {
		via = append(via, b.String())
	}
	summary := "restart " + d.Unit + " on " + d.Node
	if len(via) > 0 {
		summary += ", taken out of " + strings.Join(via, ", ") + " meanwhile"
		if d.SyncWhileDraining != nil {
			summary += ", its sessions replicated synchronously from then"
		}
	}
	return &steps.Change{Summary: summary, Apply: func(ctx context.Context) error { return d.run(ctx, c) }}, nil
}

// gateError is a failed gate: the rollout stops there.
func (d DrainedRestart) gateError(gate string, err error, out bool) error {
	where := ""
	if out {
		where = "; " + d.Node + " is left out of the balancers"
	}
	return fmt.Errorf("drained restart of %s stopped at gate %q: %w%s", d.Node, gate, err, where)
}

// RestartPhase is how long one phase of a drained restart took: "take out" (every
// balancer, in-flight requests included), "stop", "start", "serves", "joined" (its
// cluster, with the sessions), "put back" and "settle".
type RestartPhase struct {
	Node, Phase string
	Took        time.Duration
}

type restartPhasesKey struct{}

// WithRestartPhases returns a context under which every drained restart reports each
// phase it went through, as it ends, to report (called from the handler's goroutine).
// A rollout that takes longer than expected shows where the time went.
func WithRestartPhases(ctx context.Context, report func(RestartPhase)) context.Context {
	return context.WithValue(ctx, restartPhasesKey{}, report)
}

func (d DrainedRestart) run(ctx context.Context, c transport.Conn) error {
	report, _ := ctx.Value(restartPhasesKey{}).(func(RestartPhase))
	began := time.Now()
	phase := func(name string) {
		if report != nil {
			report(RestartPhase{Node: d.Node, Phase: name, Took: time.Since(began)})
		}
		began = time.Now()
	}
	timeout := d.Timeout
	if timeout == 0 {
		timeout = 3 * time.Minute
	}
	settle := d.Settle
	if settle == 0 {
		settle = 5 * time.Second
	}
	// The node is in rotation when it serves and a balancer is in front of it; a node
	// that does not, or a cluster whose web servers are not set up yet (a first deploy),
	// has no traffic to move and is restarted in place.
	serving := probeAll(ctx, c, d.HealthURLs) == nil
	var inFront []Balancer
	if serving {
		// Each balancer is another host: asked at once, as they are taken out.
		there := make([]bool, len(d.Balancers))
		errs := eachBalancer(d.Balancers, func(i int, b Balancer) (err error) {
			there[i], err = b.InFront(ctx)
			return err
		})
		if errs != nil {
			return d.gateError("find the balancers", errors.Join(errs...), false)
		}
		for i, b := range d.Balancers {
			if there[i] {
				inFront = append(inFront, b)
			}
		}
	}
	drain := len(inFront) > 0
	if drain && len(d.Peers) > 0 {
		if err := anyServes(ctx, c, d.Peers); err != nil {
			return d.gateError("another node serves", fmt.Errorf("none of the other nodes serves (%w): taking %s out would leave no node", err, d.Node), false)
		}
		if errs := eachBalancer(inFront, func(_ int, b Balancer) error { return b.OthersInRotation(ctx) }); errs != nil {
			return d.gateError("another node serves", fmt.Errorf("%w: taking %s out would leave no node", errors.Join(errs...), d.Node), false)
		}
	}
	if drain {
		phase("find the balancers")
	}
	// Before the first balancer sends the node's users elsewhere, every answer of the
	// node waits until the other nodes have its change (see ClusterSendOptions).
	if drain && d.SyncWhileDraining != nil {
		if _, err := d.SyncWhileDraining.Set(ctx, c, SendOptionsSync); err != nil {
			return d.gateError("replicate synchronously while out", err, false)
		}
		phase("sync replication")
	}
	// Every balancer at once: each one's drain is mostly waiting (mod_jk's disabled
	// phase, Nginx's old workers), and the node is out only when all are done.
	if errs := eachBalancer(inFront, func(_ int, b Balancer) error { return b.TakeOut(ctx) }); errs != nil {
		// Those taken out get the node back: it still serves, and as it did.
		var failed []string
		for i, b := range inFront {
			if errs[i] == nil {
				_ = b.PutBack(ctx)
			} else {
				failed = append(failed, b.String())
			}
		}
		if d.SyncWhileDraining != nil {
			_, _ = d.SyncWhileDraining.Set(ctx, c, d.SyncWhileDraining.configured())
		}
		return d.gateError("take out of "+strings.Join(failed, ", "), errors.Join(errs...), false)
	}
	if drain {
		phase("take out")
	}
	// What the other nodes' clusters count before the node leaves: after its start
	// they must count it again (PeerClusterURLs).
	var peersBefore map[string]int
	if drain && len(d.ClusterURLs) > 0 {
		peersBefore = peerMembers(ctx, c, d.PeerClusterURLs)
	}
	// Stop and start apart (the restart gate either way): how long each takes is worth
	// knowing, the stop being where a node leaves its cluster.
	if _, err := transport.Output(ctx, c, shell.Join("systemctl", "stop", d.Unit)); err != nil {
		return d.gateError("restart", err, drain)
	}
	phase("stop")
	if _, err := transport.Output(ctx, c, shell.Join("systemctl", "start", d.Unit)); err != nil {
		return d.gateError("restart", err, drain)
	}
	phase("start")
	if err := waitFor(ctx, timeout, func() error { return probeAll(ctx, c, d.HealthURLs) }); err != nil {
		return d.gateError("serves", err, drain)
	}
	phase("serves")
	// A node that did not serve before holds no one's session and has no state to be
	// handed (a first start); DeltaManager asks for the sessions only as it starts, so
	// on a cluster starting from nothing the first node would never pass this gate.
	if drain && len(d.ClusterURLs) > 0 && len(d.Peers) > 0 {
		// A peer that has not counted the node 20 s after the node joined did not within
		// 65 s either, in each of the 5 such restarts seen in session 11: restart now.
		var ownJoined time.Time
		joined := func() error {
			if err := clusterJoined(ctx, c, d.ClusterURLs); err != nil {
				return err
			}
			if ownJoined.IsZero() {
				ownJoined = time.Now()
			}
			err := peersCountIt(ctx, c, peersBefore)
			if err != nil && time.Since(ownJoined) >= peerWait {
				return stopWaiting{fmt.Errorf("%w (%s after this node joined)", err, peerWait)}
			}
			return err
		}
		// DeltaManager asks for the sessions once, as it starts, and gives up for good
		// after its stateTransferTimeout: a node that missed its answer (seen once in
		// 45 rollouts under load) never gets the state however long one waits. Still
		// out of every balancer, one more restart asks again, unseen by any user.
		stateWait := d.StateTransferTimeout
		if stateWait == 0 {
			stateWait = 60 * time.Second
		}
		err := waitFor(ctx, min(timeout, stateWait+5*time.Second), joined)
		missed := ""
		switch {
		case errors.Is(err, errPeerMissesIt):
			missed = "a peer misses it"
		case errors.Is(err, errNoSessionState):
			missed = "no session state"
		}
		if missed != "" {
			phase(missed)
			if err := d.restart(ctx, c, timeout); err != nil {
				return d.gateError("restart again for the session state", err, drain)
			}
			phase("restart again")
			ownJoined = time.Time{}
			err = waitFor(ctx, timeout, joined)
		} else if err != nil && stateWait+5*time.Second < timeout {
			err = waitFor(ctx, timeout-stateWait-5*time.Second, joined)
		}
		if err != nil {
			return d.gateError("joined its cluster and has the sessions", err, drain)
		}
		phase("joined")
	}
	if !drain {
		return nil
	}
	if errs := eachBalancer(inFront, func(_ int, b Balancer) error { return b.PutBack(ctx) }); errs != nil {
		var failed []string
		for i, b := range inFront {
			if errs[i] != nil {
				failed = append(failed, b.String())
			}
		}
		return d.gateError("put back into "+strings.Join(failed, ", "), errors.Join(errs...), true)
	}
	phase("put back")
	// The node takes traffic; it must keep serving, every second, before the next goes.
	end := time.Now().Add(settle)
	for time.Now().Before(end) {
		if err := probeAll(ctx, c, d.HealthURLs); err != nil {
			return d.gateError("serves for "+settle.String()+" after it was put back", err, false)
		}
		if err := sleep(ctx, time.Second); err != nil {
			return err
		}
	}
	phase("settle")
	return nil
}

// eachBalancer calls f on every balancer at once (each is another host) and returns
// their errors by index, or nil when every call succeeded.
func eachBalancer(bs []Balancer, f func(int, Balancer) error) []error {
	errs := make([]error, len(bs))
	var wg sync.WaitGroup
	for i, b := range bs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f(i, b)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return errs
		}
	}
	return nil
}

// probeAll asks every URL once from the host through c; the error names the first that fails.
func probeAll(ctx context.Context, c transport.Conn, urls []string) error {
	probe := make([]string, len(urls))
	for i, u := range urls {
		probe[i] = shell.Join("curl", "-fsS", "-o", "/dev/null", "-m", "2", u)
	}
	if out, err := transport.Output(ctx, c, strings.Join(probe, " && ")+" 2>&1"); err != nil {
		return fmt.Errorf("%s does not serve: %s%w", strings.Join(urls, " or "), out, err)
	}
	return nil
}

// anyServes is nil when one of urls answers.
func anyServes(ctx context.Context, c transport.Conn, urls []string) error {
	var errs []error
	for _, u := range urls {
		err := probeAll(ctx, c, []string{u})
		if err == nil {
			return nil
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// restart stops and starts the unit and waits until the node serves.
func (d DrainedRestart) restart(ctx context.Context, c transport.Conn, timeout time.Duration) error {
	for _, verb := range []string{"stop", "start"} {
		if _, err := transport.Output(ctx, c, shell.Join("systemctl", verb, d.Unit)); err != nil {
			return err
		}
	}
	return waitFor(ctx, timeout, func() error { return probeAll(ctx, c, d.HealthURLs) })
}

// errNoSessionState is a node that sees another member of its cluster but has not
// received the session state.
var errNoSessionState = errors.New("no session state received")

// clusterState is the demo apps' /cluster.json.
type clusterState struct {
	Members          int    `json:"members"`
	StateTransferred *bool  `json:"stateTransferred"`
	Error            string `json:"error"`
}

// clusterJoined is nil once every app on the node sees another member and has received
// the session state.
func clusterJoined(ctx context.Context, c transport.Conn, urls []string) error {
	for _, u := range urls {
		st, err := clusterStateAt(ctx, c, u)
		if err != nil {
			return err
		}
		if st.Members >= 1 && st.StateTransferred != nil && !*st.StateTransferred && st.Error == "" {
			return fmt.Errorf("%s: %d other members: %w", u, st.Members, errNoSessionState)
		}
		if st.Members < 1 || st.StateTransferred == nil || !*st.StateTransferred {
			return fmt.Errorf("%s: %d other members, session state transferred: %v %s", u, st.Members, st.StateTransferred != nil && *st.StateTransferred, st.Error)
		}
	}
	return nil
}

// peerWait is how long after the node joined its cluster another node's cluster may
// take to count it again before the node is restarted once more.
const peerWait = 20 * time.Second

// stopWaiting ends waitFor at once with its error.
type stopWaiting struct{ error }

func (s stopWaiting) Unwrap() error { return s.error }

// errPeerMissesIt says that another node's cluster does not count the node back.
var errPeerMissesIt = errors.New("another node's cluster does not count this node again")

// peerMembers is how many members each peer cluster page that answers counts.
func peerMembers(ctx context.Context, c transport.Conn, urls []string) map[string]int {
	seen := map[string]int{}
	for _, u := range urls {
		if st, err := clusterStateAt(ctx, c, u); err == nil && st.Error == "" {
			seen[u] = st.Members
		}
	}
	return seen
}

// peersCountIt is nil once every peer cluster page counts at least as many members as
// it did before the stop.
func peersCountIt(ctx context.Context, c transport.Conn, before map[string]int) error {
	for u, want := range before {
		st, err := clusterStateAt(ctx, c, u)
		if err != nil {
			return err
		}
		if st.Members < want {
			return fmt.Errorf("%s counts %d other members, %d before the stop: %w", u, st.Members, want, errPeerMissesIt)
		}
	}
	return nil
}

// clusterStateAt reads one cluster state page from the node.
func clusterStateAt(ctx context.Context, c transport.Conn, u string) (clusterState, error) {
	var st clusterState
	out, err := transport.Output(ctx, c, shell.Join("curl", "-fsS", "-m", "2", u))
	if err != nil {
		return st, fmt.Errorf("%s: %w", u, err)
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		return st, fmt.Errorf("%s: not the cluster state: %w", u, err)
	}
	return st, nil
}

// waitFor calls f every second until it returns nil or the deadline, timeout from now,
// passes: a deadline in seconds, however long each call takes.
func waitFor(ctx context.Context, timeout time.Duration, f func() error) error {
	end := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return nil
		}
		var stop stopWaiting
		if errors.As(err, &stop) {
			return stop.error
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !time.Now().Before(end) {
			return fmt.Errorf("not within %s: %w", timeout, err)
		}
		if err := sleep(ctx, min(time.Second, time.Until(end)+time.Millisecond)); err != nil {
			return err
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// errAbsent says a balancer is not there (yet): nothing to take the node out of.
var errAbsent = errors.New("balancer absent")

// ModJKBalancer takes a node's workers out of mod_jk's load balancers on one Apache host through
// its status worker: activation disabled (only the sessions it holds still go there)
// until its busy count is 0 or DisabledFor passes, then stopped, then busy 0. PutBack
// sets them active.
type ModJKBalancer struct {
	// Host is the Apache host, as the inventory names it.
	Host string
	// StatusURL is the status worker on that host (configs.ApacheStatus.URL).
	StatusURL string
	// Members are the node's workers: balancer and member names.
	Members []ModJKMember
	// DisabledFor bounds the disabled phase; 0 means 3 seconds.
	DisabledFor time.Duration
	// Timeout bounds the wait for busy 0 once stopped; 0 means 30 seconds.
	Timeout time.Duration

	absent bool
}

// ModJKMember is one lb member: the node's worker in one balancer.
type ModJKMember struct{ Balancer, Worker string }

func (m *ModJKBalancer) String() string { return "mod_jk on " + m.Host }

// mod_jk's status worker activations (vwa).
const (
	jkActive   = 0
	jkDisabled = 1
	jkStopped  = 2
)

// InFront asks the status worker for the node's members.
func (m *ModJKBalancer) InFront(ctx context.Context) (bool, error) {
	c, err := transport.Delegate(ctx, m.Host)
	if err != nil {
		return false, err
	}
	outs, err := m.askEach(ctx, c, m.showQueries())
	if errors.Is(err, errAbsent) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	for i, mb := range m.Members {
		if propValue(outs[i], "worker."+mb.Worker+".activation") == "" {
			return false, nil
		}
	}
	return true, nil
}

// showQueries shows each member's balancer.
func (m *ModJKBalancer) showQueries() []string {
	q := make([]string, len(m.Members))
	for i, mb := range m.Members {
		q[i] = "cmd=show&w=" + mb.Balancer
	}
	return q
}

// OthersInRotation is nil when every balancer of the node's members has another member
// whose activation is active (its state may be a stale error; see the loop).
func (m *ModJKBalancer) OthersInRotation(ctx context.Context) error {
	c, err := transport.Delegate(ctx, m.Host)
	if err != nil {
		return err
	}
	outs, err := m.askEach(ctx, c, m.showQueries())
	if err != nil {
		return err
	}
	for i, mb := range m.Members {
		out := outs[i]
		var others []string
		ok := false
		for _, line := range strings.Split(out, "\n") {
			w, found := strings.CutPrefix(line, "worker."+mb.Balancer+".balance_workers=")
			if !found || w == mb.Worker {
				continue
			}
			act, state := propValue(out, "worker."+w+".activation"), propValue(out, "worker."+w+".state")
			others = append(others, w+" "+act+" "+state)
			// Activation is the operator's word; the state is what mod_jk last saw. A
			// member in ERR with no traffic since stays there until a request tries it
			// again (recover_time), so an ERR alone does not say the node is gone: the
			// caller has already checked that another node answers its health check.
			if act == "ACT" {
				ok = true
			}
		}
		if !ok {
			return fmt.Errorf("%s: no other member of %s is active (%s)", m, mb.Balancer, strings.Join(others, ", "))
		}
	}
	return nil
}

// TakeOut disables, waits, stops and waits.
func (m *ModJKBalancer) TakeOut(ctx context.Context) error {
	c, err := transport.Delegate(ctx, m.Host)
	if err != nil {
		return err
	}
	if err := m.set(ctx, c, jkDisabled); err != nil {
		if errors.Is(err, errAbsent) {
			m.absent = true
			return nil
		}
		return err
	}
	disabled := m.DisabledFor
	if disabled == 0 {
		disabled = 3 * time.Second
	}
	// Busy may not reach 0 while the node's sticky users keep coming: stopped then
	// sends them to the other nodes, which hold their sessions by replication.
	_ = waitFor(ctx, disabled, func() error { return m.idle(ctx, c) })
	if err := m.set(ctx, c, jkStopped); err != nil {
		return err
	}
	timeout := m.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	return waitFor(ctx, timeout, func() error { return m.idle(ctx, c) })
}

// PutBack sets the members active, then resets their balancers' statistics: mod_jk
// sends new sessions to the member with the lowest load value, and the others' values
// grew while the node was out, so without the reset every new session would go to the
// node that came back until it caught up (measured: 100 of 100 new sessions).
func (m *ModJKBalancer) PutBack(ctx context.Context) error {
	if m.absent {
		return nil
	}
	c, err := transport.Delegate(ctx, m.Host)
	if err != nil {
		return err
	}
	if err := m.set(ctx, c, jkActive); err != nil {
		return err
	}
	var balancers, queries []string
	for _, mb := range m.Members {
		if !slices.Contains(balancers, mb.Balancer) {
			balancers = append(balancers, mb.Balancer)
			queries = append(queries, "cmd=reset&w="+mb.Balancer)
		}
	}
	outs, err := m.askEach(ctx, c, queries)
	if err != nil {
		return err
	}
	for i, out := range outs {
		if !strings.Contains(out, "worker.result.type=OK") {
			return fmt.Errorf("%s: reset %s: %s", m, balancers[i], strings.TrimSpace(out))
		}
	}
	return nil
}

// set gives every member the activation; errAbsent when Apache or the status worker is
// not there.
func (m *ModJKBalancer) set(ctx context.Context, c transport.Conn, activation int) error {
	queries := make([]string, len(m.Members))
	for i, mb := range m.Members {
		queries[i] = "cmd=update&w=" + mb.Balancer + "&sw=" + mb.Worker + "&vwa=" + strconv.Itoa(activation)
	}
	outs, err := m.askEach(ctx, c, queries)
	if err != nil {
		return err
	}
	for i, mb := range m.Members {
		if out := outs[i]; !strings.Contains(out, "worker.result.type=OK") {
			return fmt.Errorf("%s: set %s/%s to activation %d: %s", m, mb.Balancer, mb.Worker, activation, strings.TrimSpace(out))
		}
	}
	return nil
}

// idle is nil when no member has a request in flight.
func (m *ModJKBalancer) idle(ctx context.Context, c transport.Conn) error {
	outs, err := m.askEach(ctx, c, m.showQueries())
	if err != nil {
		return err
	}
	for i, mb := range m.Members {
		busy := propValue(outs[i], "worker."+mb.Worker+".busy")
		if busy != "0" {
			return fmt.Errorf("%s: %s/%s has %q requests in flight", m, mb.Balancer, mb.Worker, busy)
		}
	}
	return nil
}

// askEach runs status worker commands on the Apache host (mime=prop: key=value lines),
// one after another in one command: under load a command on a lab host took ~0.9 s
// to start, and a drain asks for each of the node's members (one per app) several
// times. The answers are by index; errAbsent when Apache or the status worker is not
// there (yet).
func (m *ModJKBalancer) askEach(ctx context.Context, c transport.Conn, queries []string) ([]string, error) {
	end := "cauldron-jk-answer-" + strconv.FormatUint(rand.Uint64(), 36)
	// Exit 3: Apache is not running or the status worker is not mounted yet.
	var b strings.Builder
	b.WriteString("systemctl is-active --quiet apache2.service || exit 3")
	for _, q := range queries {
		b.WriteString("; out=$(curl -sS -m 5 -w '\\n%{http_code}' " + shell.Quote(m.StatusURL+"?"+q+"&mime=prop") + ") || exit 3; " +
			`code=${out##*$'\n'}; [ "$code" = 200 ] || exit 3; printf '%s\n%s\n' "${out%$'\n'*}" ` + end)
	}
	out, err := transport.Output(ctx, c, "bash -c "+shell.Quote(b.String()))
	if transport.ExitStatus(err) == 3 {
		return nil, errAbsent
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", m, err)
	}
	answers := strings.Split(out, end+"\n")
	if len(answers) != len(queries)+1 || answers[len(queries)] != "" {
		return nil, fmt.Errorf("%s: %d answers to %d status worker commands: %q", m, len(answers)-1, len(queries), out)
	}
	return answers[:len(queries)], nil
}

func propValue(props, key string) string {
	for _, line := range strings.Split(props, "\n") {
		if v, ok := strings.CutPrefix(line, key+"="); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// NginxUpstream takes a node out of the upstreams of one Nginx host the way open-source Nginx
// allows: the site without the node's servers (LeaveOut), checked by nginx -t, then a
// graceful reload; it waits until the old workers, which finish the requests in
// flight, are gone. PutBack writes the site as it was and reloads again.
type NginxUpstream struct {
	Host string
	// Site is the site file (under /etc/nginx) with the upstreams.
	Site string
	// Servers are the node's upstream servers, host:port as the site writes them.
	Servers []string
	// Timeout bounds the wait for the old workers; 0 means 30 seconds.
	Timeout time.Duration

	original []byte
	absent   bool
}

func (n *NginxUpstream) String() string { return "nginx on " + n.Host }

// InFront says whether nginx runs with the site.
func (n *NginxUpstream) InFront(ctx context.Context) (bool, error) {
	c, err := transport.Delegate(ctx, n.Host)
	if err != nil {
		return false, err
	}
	_, err = transport.Output(ctx, c, "systemctl is-active --quiet nginx.service && test -f "+shell.Quote(n.Site))
	return err == nil, nil
}

// OthersInRotation is nil when every upstream of the live site that holds one of the
// node's servers has another server not marked down.
func (n *NginxUpstream) OthersInRotation(ctx context.Context) error {
	c, err := transport.Delegate(ctx, n.Host)
	if err != nil {
		return err
	}
	b, err := c.Read(ctx, n.Site)
	if err != nil {
		return fmt.Errorf("%s: %w", n, err)
	}
	return OthersUp(b, n.Servers)
}

// OthersUp is nil when every upstream of an nginx site that holds one of servers
// (host:port) has another server not marked down.
func OthersUp(site []byte, servers []string) error {
	var name string
	var ours, up bool
	var errs []error
	for _, line := range strings.Split(string(site), "\n") {
		t := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(t, "upstream ") && strings.HasSuffix(t, "{"):
			name, ours, up = strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(t, "upstream "), "{")), false, false
			continue
		case t == "}" && name != "":
			if ours && !up {
				errs = append(errs, fmt.Errorf("upstream %s has no other server up", name))
			}
			name = ""
			continue
		}
		m := upstreamServerRE.FindStringSubmatch(line)
		if name == "" || m == nil {
			continue
		}
		switch {
		case slices.Contains(servers, m[2]):
			ours = true
		case !strings.Contains(" "+m[3]+" ", " down "):
			up = true
		}
	}
	return errors.Join(errs...)
}

// TakeOut writes the site without the node and reloads.
func (n *NginxUpstream) TakeOut(ctx context.Context) error {
	c, err := transport.Delegate(ctx, n.Host)
	if err != nil {
		return err
	}
	if _, err := transport.Output(ctx, c, "systemctl is-active --quiet nginx.service"); err != nil {
		n.absent = true
		return nil
	}
	b, err := c.Read(ctx, n.Site)
	if errors.Is(err, fs.ErrNotExist) {
		n.absent = true
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: %w", n, err)
	}
	n.original = b
	out, err := LeaveOut(b, n.Servers)
	if err != nil {
		return fmt.Errorf("%s: %w", n, err)
	}
	return n.install(ctx, c, out)
}

// PutBack writes the site as it was before TakeOut and reloads.
func (n *NginxUpstream) PutBack(ctx context.Context) error {
	if n.absent || n.original == nil {
		return nil
	}
	c, err := transport.Delegate(ctx, n.Host)
	if err != nil {
		return err
	}
	return n.install(ctx, c, n.original)
}

// install replaces the site through nginx -t, reloads, and waits for the old workers.
func (n *NginxUpstream) install(ctx context.Context, c transport.Conn, content []byte) error {
	rel, ok := strings.CutPrefix(n.Site, "/etc/nginx/")
	if !ok {
		return fmt.Errorf("%s: the site %s is not under /etc/nginx", n, n.Site)
	}
	ch, err := NginxConfigFile(rel, steps.Bytes(content)).Check(ctx, c)
	if err != nil {
		return fmt.Errorf("%s: %w", n, err)
	}
	if ch != nil {
		if err := ch.Apply(ctx); err != nil {
			return fmt.Errorf("%s: %w", n, err)
		}
	}
	if _, err := transport.Output(ctx, c, "systemctl reload nginx.service"); err != nil {
		return fmt.Errorf("%s: reload: %w", n, err)
	}
	timeout := n.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	return waitFor(ctx, timeout, func() error {
		// [g]: the pattern must not match the shell that runs pgrep.
		out, _ := transport.Output(ctx, c, "pgrep -fc 'nginx: worker process is shuttin[g] down' || true")
		if strings.TrimSpace(out) != "0" {
			return fmt.Errorf("%s: %s old workers still finish their requests", n, strings.TrimSpace(out))
		}
		return nil
	})
}

var upstreamServerRE = regexp.MustCompile(`^(\s*server\s+)(\S+)((?:\s+[^;]*)?);(.*)$`)

// LeaveOut returns an nginx site without the upstream servers in servers (host:port):
// the drain of a node for open-source Nginx. An upstream whose primary servers were all
// left out gets its backup servers as primary ones; it is an error when one of servers
// is not in the site, or when an upstream would be left without a server.
//
// Left out, not marked down: nginx applies max_fails and fail_timeout to a server of an
// upstream with a down server or with backups, so one slow answer (proxy_read_timeout)
// of the node that serves alone while the other restarts took it out for fail_timeout,
// and the upstream answered 502 "no live upstreams" to every request meanwhile (102
// requests in the Nginx lab's release under load). Nginx keeps no failure count for a
// server alone in its upstream, without backups, and sends it every request
// (TestTheNodeLeftServingWhileTheOtherIsDrainedOutlivesASlowAnswer, on nginx 1.22).
func LeaveOut(site []byte, servers []string) ([]byte, error) {
	found := map[string]bool{}
	var out []string
	var errs []error
	// block holds the lines of the upstream being read, kept the indexes (in
	// block) of the server lines kept.
	var block []string
	var kept []int
	name := ""
	for _, s := range strings.Split(string(site), "\n") {
		t := strings.TrimSpace(s)
		switch {
		case name == "" && strings.HasPrefix(t, "upstream ") && strings.HasSuffix(t, "{"):
			name = strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(t, "upstream "), "{"))
			block, kept = []string{s}, nil
			continue
		case name != "" && t == "}":
			primary := false
			for _, i := range kept {
				primary = primary || !hasParam(block[i], "backup")
			}
			if len(kept) == 0 {
				errs = append(errs, fmt.Errorf("upstream %s would have no server left", name))
			}
			for _, i := range kept {
				if m := upstreamServerRE.FindStringSubmatch(block[i]); m != nil && !primary {
					params := strings.Fields(m[3])
					params = slices.DeleteFunc(params, func(p string) bool { return p == "backup" })
					block[i] = m[1] + m[2] + joinParams(params) + ";" + m[4]
				}
			}
			out = append(out, block...)
			out = append(out, s)
			name = ""
			continue
		case name == "":
			out = append(out, s)
			continue
		}
		m := upstreamServerRE.FindStringSubmatch(s)
		if m != nil && slices.Contains(servers, m[2]) {
			found[m[2]] = true
			continue
		}
		if m != nil {
			kept = append(kept, len(block))
		}
		block = append(block, s)
	}
	if name != "" {
		errs = append(errs, fmt.Errorf("upstream %s has no closing brace", name))
	}
	for _, want := range servers {
		if !found[want] {
			errs = append(errs, fmt.Errorf("no upstream server %s in the site", want))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return []byte(strings.Join(out, "\n")), nil
}

// hasParam says whether an upstream server line has the parameter p (down, backup).
func hasParam(line, p string) bool {
	m := upstreamServerRE.FindStringSubmatch(line)
	return m != nil && slices.Contains(strings.Fields(m[3]), p)
}

func joinParams(params []string) string {
	if len(params) == 0 {
		return ""
	}
	return " " + strings.Join(params, " ")
}

// nginxSitePath is where the Nginx recipe writes the site.
var nginxSitePath = path.Join("/etc/nginx", nginxSiteRel)
