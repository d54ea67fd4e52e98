package runner_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/cauldron-go/cauldron/inventory"
	"github.com/cauldron-go/cauldron/runner"
	"github.com/cauldron-go/cauldron/steps"
	"github.com/cauldron-go/cauldron/transport"
)

// TestTheReportSaysWhenEachStepAndHandlerStarted checks the start times a timeline
// is drawn from: a step that waits 60 ms pushes the start of everything after it.
func TestTheReportSaysWhenEachStepAndHandlerStarted(t *testing.T) {
	dir := t.TempDir()
	wait := steps.Func{Name: "Wait", CheckFunc: func(ctx context.Context, _ transport.Conn) (*steps.Change, error) {
		time.Sleep(60 * time.Millisecond)
		return nil, nil
	}}
	play := runner.Play{
		Name:  "p",
		Hosts: hosts("h1"),
		Recipe: same(func(*inventory.Host) *steps.Recipe {
			return steps.NewRecipe("r",
				wait,
				steps.Notify(fileStep(filepath.Join(dir, "a"), "a\n"), "restart"),
			).Handle("restart", appendStep(filepath.Join(dir, "log"), "restart"))
		}),
	}
	rep, err := runner.Run(context.Background(), []runner.Play{play}, runner.Options{StateDir: stateDirIn(t), Mode: runner.Apply, Dial: newDialer().Dial})
	if err != nil {
		t.Fatal(err)
	}
	h := hostReport(t, rep, "h1")
	if len(h.Steps) != 2 || len(h.Handlers) != 1 {
		t.Fatalf("steps %+v handlers %+v, want 2 steps and 1 handler", h.Steps, h.Handlers)
	}
	waitEnd := h.Steps[0].StartMS + h.Steps[0].ElapsedMS
	if h.Steps[0].ElapsedMS < 60 {
		t.Errorf("the waiting step took %d ms, want at least 60", h.Steps[0].ElapsedMS)
	}
	// The file step's check ran ahead, at the same time as the wait; its apply after it.
	if end := h.Steps[1].StartMS + h.Steps[1].ElapsedMS; end < waitEnd {
		t.Errorf("the file step ended at %d ms, before the wait ended at %d ms", end, waitEnd)
	}
	if hs := h.Handlers[0]; hs.StartMS < waitEnd || hs.StartMS > rep.DurationMS {
		t.Errorf("the handler started at %d ms, want between %d and %d", hs.StartMS, waitEnd, rep.DurationMS)
	}
}
