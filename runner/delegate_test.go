package runner_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cauldron-go/cauldron/inventory"
	"github.com/cauldron-go/cauldron/runner"
	"github.com/cauldron-go/cauldron/shell"
	"github.com/cauldron-go/cauldron/steps"
	"github.com/cauldron-go/cauldron/transport"
)

// delegatingStep always changes: on apply it runs line on the host named to, through
// the run's delegate connection, as a drain runs on the other balancers.
func delegatingStep(to, line string) steps.Step {
	return steps.Func{
		Name: "on " + to + ": " + line,
		CheckFunc: func(ctx context.Context, _ transport.Conn) (*steps.Change, error) {
			return &steps.Change{Summary: "run on " + to, Apply: func(ctx context.Context) error {
				c, err := transport.Delegate(ctx, to)
				if err != nil {
					return err
				}
				return c.Run(ctx, transport.Command{Line: line})
			}}, nil
		},
	}
}

func TestAStepReachesAnotherHostOfTheRunThroughOneSharedDelegateConnection(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "lb.log")
	d := newDialer()
	rec := func(h *inventory.Host) (*steps.Recipe, error) {
		if h.Name == "lb" {
			return steps.NewRecipe("lb", fileStep(filepath.Join(dir, "lb.cfg"), "x")), nil
		}
		return steps.NewRecipe("web",
			steps.Notify(fileStep(filepath.Join(dir, h.Name+".cfg"), "x"), "restart"),
			delegatingStep("lb", "echo step-"+h.Name+" >> "+shell.Quote(log)),
		).Handle("restart", delegatingStep("lb", "echo handler-"+h.Name+" >> "+shell.Quote(log))), nil
	}
	_, err := runner.Run(context.Background(), []runner.Play{
		{Name: "web", Hosts: hosts("web1", "web2"), Recipe: rec, RollingHandlers: true},
		{Name: "lb", Hosts: hosts("lb"), Recipe: rec},
	}, runner.Options{Mode: runner.Apply, Dial: d.Dial})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Fields(string(b)); len(got) != 4 {
		t.Errorf("the delegated commands wrote %q, want a step and a handler line per web host", got)
	}
	// lb: once for its own play, once for every delegated command of both web hosts.
	want := map[string]int{"lb": 2, "web1": 1, "web2": 1}
	if fmt.Sprint(d.dials) != fmt.Sprint(want) {
		t.Errorf("dials %v, want %v", d.dials, want)
	}
	if fmt.Sprint(d.closes) != fmt.Sprint(want) {
		t.Errorf("closes %v, want %v: every delegate connection is closed with the run", d.closes, want)
	}
}

func TestDelegatingToAHostOutsideTheRunFailsThatStepOnly(t *testing.T) {
	d := newDialer()
	rep, err := runner.Run(context.Background(), []runner.Play{{
		Name: "web", Hosts: hosts("web1"),
		Recipe: same(func(*inventory.Host) *steps.Recipe {
			return steps.NewRecipe("web", delegatingStep("nowhere", "true"))
		}),
	}}, runner.Options{Mode: runner.Apply, Dial: d.Dial})
	if err == nil {
		t.Fatal("the run passed, want the delegating step failed")
	}
	res := hostReport(t, rep, "web1").Steps[0]
	if res.Status != runner.StatusFailed || !strings.Contains(res.Error, `"nowhere": not a host of this run`) {
		t.Errorf("step %s: %q, want failed naming the unknown host", res.Status, res.Error)
	}
}

func TestADelegateThatCannotConnectNamesTheHostAndIsMasked(t *testing.T) {
	d := newDialer()
	d.fail["lb"] = errors.New("refused by s3cret-gate")
	rep, _ := runner.Run(context.Background(), []runner.Play{
		{Name: "web", Hosts: hosts("web1"), Recipe: same(func(*inventory.Host) *steps.Recipe {
			return steps.NewRecipe("web", delegatingStep("lb", "true"))
		})},
		{Name: "lb", Hosts: hosts("lb"), Recipe: same(func(*inventory.Host) *steps.Recipe { return steps.NewRecipe("lb") })},
	}, runner.Options{Mode: runner.Apply, Dial: d.Dial, Secrets: []string{"s3cret-gate"}})
	res := hostReport(t, rep, "web1").Steps[0]
	if res.Status != runner.StatusFailed || !strings.Contains(res.Error, "delegate to lb: connect:") || strings.Contains(res.Error, "s3cret") {
		t.Errorf("step %s: %q, want failed, naming lb, the secret masked", res.Status, res.Error)
	}
}

func TestDelegateOutsideARunSaysSo(t *testing.T) {
	if _, err := transport.Delegate(context.Background(), "lb"); !errors.Is(err, transport.ErrNoDelegates) {
		t.Errorf("Delegate with a bare context: %v, want ErrNoDelegates", err)
	}
}
