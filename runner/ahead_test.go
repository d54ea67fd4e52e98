package runner_test

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/cauldron-go/cauldron/inventory"
	"github.com/cauldron-go/cauldron/runner"
	"github.com/cauldron-go/cauldron/shell"
	"github.com/cauldron-go/cauldron/steps"
	"github.com/cauldron-go/cauldron/transport"
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
