package runner_test

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cauldron-go/cauldron/inventory"
	"github.com/cauldron-go/cauldron/runner"
	"github.com/cauldron-go/cauldron/shell"
	"github.com/cauldron-go/cauldron/steps"
	"github.com/cauldron-go/cauldron/transport"
	"github.com/cauldron-go/cauldron/transport/local"
)

func TestAConvergedHostIsCheckedWithSeveralChecksAtOnce(t *testing.T) {
	var inFlight, peak atomic.Int32
	step := func(name string) steps.Step {
		return steps.Func{Name: name, CheckFunc: func(ctx context.Context, c transport.Conn) (*steps.Change, error) {
			n := inFlight.Add(1)
			defer inFlight.Add(-1)
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
			// Real round trips until a second check runs beside this one (or long enough
			// that a runner checking one step at a time is plainly doing so).
			for i := 0; peak.Load() < 2 && i < 200; i++ {
				if err := c.Run(ctx, transport.Command{Line: "true"}); err != nil {
					return nil, err
				}
			}
			return nil, c.Run(ctx, transport.Command{Line: shell.Join("sleep", "0.02")})
		}}
	}
	var ss []steps.Step
	for _, n := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		ss = append(ss, step(n))
	}
	rep, err := runner.Run(context.Background(), []runner.Play{{
		Name: "p", Hosts: hosts("h1"),
		Recipe: same(func(*inventory.Host) *steps.Recipe { return steps.NewRecipe("p", ss...) }),
	}}, runner.Options{StateDir: stateDirIn(t), Mode: runner.Apply, Dial: newDialer().Dial})
	if err != nil {
		t.Fatal(err)
	}
	if got := peak.Load(); got < 2 || got > 4 {
		t.Errorf("%d checks ran at once on the host, want 2 to 4", got)
	}
	if rep.Changed() != 0 {
		t.Errorf("changed %d", rep.Changed())
	}
}

func TestAfterAStepChangesTheHostTheNextStepsCheckWhatItDid(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "conf")
	// Both steps want the same file: once the first has written it, the second is
	// converged. A check of the second made before the first applied would see no
	// file and write it again.
	rep, err := runner.Run(context.Background(), []runner.Play{{
		Name: "p", Hosts: hosts("h1"),
		Recipe: same(func(*inventory.Host) *steps.Recipe {
			return steps.NewRecipe("p", fileStep(f, "x"), fileStep(f, "x"), fileStep(f, "x"))
		}),
	}}, runner.Options{StateDir: stateDirIn(t), Mode: runner.Apply, Dial: newDialer().Dial})
	if err != nil {
		t.Fatal(err)
	}
	h := hostReport(t, rep, "h1")
	if got := statuses(h); len(got) != 3 || got[0] != "changed" || got[1] != "ok" || got[2] != "ok" {
		t.Errorf("statuses %v, want changed, ok, ok", got)
	}
}

// pipelinedConn is a real local connection that counts its traffic as sshconn and
// docker do, and says it is transport.Pipelined as they do with a command channel:
// local commands are processes of their own, so any number may run at once. Each
// answer comes back a network's round trip after the command ends, as over SSH: with
// none, a command sent a moment after another (a goroutine scheduled late on a busy
// machine) would count as a round trip of its own although it went out long before
// the first one's answer could have come back.
type pipelinedConn struct{ trafficConn }

// answerDelay is pipelinedConn's round trip: far longer than goroutines take to start
// on a loaded machine, far shorter than the tests' own waits.
const answerDelay = 150 * time.Millisecond

func (c *pipelinedConn) Pipelined() bool { return true }

func (c *pipelinedConn) Run(ctx context.Context, cmd transport.Command) error {
	defer c.traffic.Begin()()
	err := c.Conn.Run(ctx, cmd)
	time.Sleep(answerDelay)
	return err
}

// untilAll is a command's input that ends once every check has started (or, failing
// that, after a while, which it notes).
type untilAll struct {
	all      <-chan struct{}
	timedOut *atomic.Bool
}

func (u untilAll) Read([]byte) (int, error) {
	select {
	case <-u.all:
	case <-time.After(5 * time.Second):
		u.timedOut.Store(true)
	}
	return 0, io.EOF
}

func TestAConvergedHostOverAPipelinedConnectionTakesOneRoundTripForAllItsPlays(t *testing.T) {
	const perPlay, plays = 6, 3
	for _, mode := range []runner.Mode{runner.Plan, runner.Apply} {
		t.Run(mode.String(), func(t *testing.T) {
			// Each check's command (a real cat) runs until every check of every play
			// has started: a runner that waits for one play's checks before it sends
			// the next play's, or keeps to a few at once, never gets there.
			var started atomic.Int32
			var timedOut atomic.Bool
			all := make(chan struct{})
			check := func(name string) steps.Step {
				return steps.Func{Name: name, CheckFunc: func(ctx context.Context, c transport.Conn) (*steps.Change, error) {
					if started.Add(1) == perPlay*plays {
						close(all)
					}
					return nil, c.Run(ctx, transport.Command{Line: "cat", Stdin: untilAll{all, &timedOut}})
				}}
			}
			var ps []runner.Play
			for p := range plays {
				name := fmt.Sprintf("play%d", p+1)
				ps = append(ps, runner.Play{Name: name, Hosts: hosts("h1"), Recipe: same(func(*inventory.Host) *steps.Recipe {
					var ss []steps.Step
					for i := range perPlay {
						ss = append(ss, check(fmt.Sprintf("%s check %d", name, i+1)))
					}
					return steps.NewRecipe(name, ss...)
				})})
			}
			conn := &pipelinedConn{trafficConn: trafficConn{Conn: local.New()}}
			dial := func(context.Context, *inventory.Host) (transport.Conn, error) { return conn, nil }
			rep, err := runner.Run(context.Background(), ps, runner.Options{StateDir: stateDirIn(t), Mode: mode, Dial: dial})
			if err != nil {
				t.Fatal(err)
			}
			if timedOut.Load() {
				t.Errorf("a check waited 5 s for the other %d checks to start: they did not all run at once", perPlay*plays-1)
			}
			got := hostReport(t, rep, "h1").Traffic
			// Every check, and the read of the handlers owed from an earlier run.
			want := transport.TrafficCounts{Commands: perPlay*plays + 1, RoundTrips: 1}
			if got == nil || *got != want {
				t.Errorf("traffic %+v, want %+v", got, want)
			}
		})
	}
}

func TestAChangeAnotherHostMadeInAnEarlierPlayIsSeenByTheChecksOfALaterPlay(t *testing.T) {
	// h1 and h2 share this machine's files. In the first play h2 writes f, slowly;
	// in the second, h1 wants f as h2 wrote it. h1's checks of the second play start
	// ahead, during the first: that early look at f (absent) must not be what the
	// second play goes by.
	f := filepath.Join(t.TempDir(), "shared")
	writeLate := steps.Func{Name: "write shared late", CheckFunc: func(ctx context.Context, c transport.Conn) (*steps.Change, error) {
		if err := c.Run(ctx, transport.Command{Line: shell.Join("sleep", "0.3")}); err != nil {
			return nil, err
		}
		return &steps.Change{Summary: "write shared", Apply: func(ctx context.Context) error {
			return c.Put(ctx, transport.File{Path: f, Content: []byte("x"), Mode: 0o600})
		}}, nil
	}}
	converged := steps.Func{Name: "nothing to do", CheckFunc: func(context.Context, transport.Conn) (*steps.Change, error) { return nil, nil }}
	dial := func(context.Context, *inventory.Host) (transport.Conn, error) {
		return &pipelinedConn{trafficConn: trafficConn{Conn: local.New()}}, nil
	}
	rep, err := runner.Run(context.Background(), []runner.Play{
		{Name: "first", Hosts: hosts("h1", "h2"), Recipe: func(h *inventory.Host) (*steps.Recipe, error) {
			if h.Name == "h2" {
				return steps.NewRecipe("first", writeLate), nil
			}
			return steps.NewRecipe("first", converged), nil
		}},
		{Name: "second", Hosts: hosts("h1"), Recipe: same(func(*inventory.Host) *steps.Recipe {
			return steps.NewRecipe("second", fileStep(f, "x"))
		})},
	}, runner.Options{StateDir: stateDirIn(t), Mode: runner.Apply, Dial: dial})
	if err != nil {
		t.Fatal(err)
	}
	if got := statuses(hostReport(t, rep, "h2")); len(got) != 1 || got[0] != "changed" {
		t.Fatalf("h2: %v, want its write changed", got)
	}
	if got := statuses(hostReport(t, rep, "h1")); len(got) != 2 || got[1] != "ok" {
		t.Errorf("h1: %v, want the second play's step ok: h2 had written the file", got)
	}
}
