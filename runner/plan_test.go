package runner_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cauldron-go/cauldron/inventory"
	"github.com/cauldron-go/cauldron/runner"
	"github.com/cauldron-go/cauldron/steps"
	"github.com/cauldron-go/cauldron/transport"
)

// meetStep's check waits until the other host is checking its own meetStep: it passes
// only when both hosts' checks run at the same time, and fails after a while otherwise.
func meetStep(arrived *sync.WaitGroup, all <-chan struct{}) steps.Step {
	var once sync.Once
	return steps.Func{Name: "Meet", CheckFunc: func(ctx context.Context, c transport.Conn) (*steps.Change, error) {
		once.Do(arrived.Done)
		select {
		case <-all:
			return nil, nil
		case <-time.After(3 * time.Second):
			return nil, errors.New("checked alone: the other play's host never checked at the same time")
		}
	}}
}

func TestAPlanChecksTheHostsOfDifferentPlaysAtTheSameTime(t *testing.T) {
	var arrived sync.WaitGroup
	arrived.Add(2)
	all := make(chan struct{})
	go func() { arrived.Wait(); close(all) }()
	rec := func(name string) func(*inventory.Host) (*steps.Recipe, error) {
		step := meetStep(&arrived, all)
		return same(func(*inventory.Host) *steps.Recipe { return steps.NewRecipe(name, step) })
	}
	rep, err := runner.Run(context.Background(), []runner.Play{
		{Name: "db", Hosts: hosts("db"), Recipe: rec("db")},
		{Name: "web", Hosts: hosts("web"), Recipe: rec("web")},
	}, runner.Options{StateDir: stateDirIn(t), Mode: runner.Plan, Dial: newDialer().Dial})
	if err != nil {
		t.Fatalf("%v: %+v", err, rep.Hosts)
	}
}

func TestAnApplyStillRunsPlayAfterPlay(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "db-ready")
	// The web play's step needs what the db play made.
	needsDB := steps.Func{Name: "Use the database", CheckFunc: func(context.Context, transport.Conn) (*steps.Change, error) {
		if _, err := os.Stat(db); err != nil {
			return nil, fmt.Errorf("the database is not there: %w", err)
		}
		return nil, nil
	}}
	_, err := runner.Run(context.Background(), []runner.Play{
		{Name: "db", Hosts: hosts("db"), Recipe: same(func(*inventory.Host) *steps.Recipe {
			return steps.NewRecipe("db", steps.Func{Name: "Slow database", CheckFunc: func(ctx context.Context, c transport.Conn) (*steps.Change, error) {
				time.Sleep(50 * time.Millisecond)
				return nil, nil
			}}, fileStep(db, "yes\n"))
		})},
		{Name: "web", Hosts: hosts("web"), Recipe: same(func(*inventory.Host) *steps.Recipe { return steps.NewRecipe("web", needsDB) })},
	}, runner.Options{StateDir: stateDirIn(t), Mode: runner.Apply, Dial: newDialer().Dial})
	if err != nil {
		t.Fatal(err)
	}
}

func TestAPlanPrintsTheSameLinesInTheSameOrderEveryRun(t *testing.T) {
	dir := t.TempDir()
	// Checks that take a random time, so that hosts finish in a different order each run.
	jitter := func(name string) steps.Step {
		return steps.Func{Name: name, CheckFunc: func(ctx context.Context, c transport.Conn) (*steps.Change, error) {
			time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
			if strings.HasSuffix(name, "2") {
				return &steps.Change{Summary: "change " + name, Diff: "+" + name + "\n"}, nil
			}
			return nil, nil
		}}
	}
	plays := []runner.Play{
		{Name: "db", Hosts: hosts("db1", "db2"), Recipe: same(func(h *inventory.Host) *steps.Recipe {
			return steps.NewRecipe("db", jitter("db step 1"), jitter("db step 2"))
		})},
		{Name: "web", Hosts: hosts("web1", "web2", "web3"), Recipe: same(func(h *inventory.Host) *steps.Recipe {
			return steps.NewRecipe("web", jitter("web step 1"), steps.Notify(jitter("web step 2"), "reload"), jitter("web step 3")).
				Handle("reload", appendStep(filepath.Join(dir, "reloads"), "reload"))
		})},
		{Name: "lb", Hosts: hosts("web1", "db2"), Recipe: same(func(h *inventory.Host) *steps.Recipe {
			return steps.NewRecipe("lb", jitter("lb step 1"), jitter("lb step 2"))
		})},
	}
	run := func(parallel int) string {
		var out bytes.Buffer
		if _, err := runner.Run(context.Background(), plays, runner.Options{StateDir: stateDirIn(t), Mode: runner.Plan, Dial: newDialer().Dial, Progress: &out, Parallel: parallel}); err != nil {
			t.Fatal(err)
		}
		return timings.ReplaceAllString(out.String(), "(X)")
	}
	want := run(1)
	for i := range 8 {
		if got := run(8); got != want {
			t.Fatalf("run %d, 8 hosts at once, printed:\n%s\nwant, as one host at a time:\n%s", i+1, got, want)
		}
	}
	for _, line := range []string{"\nPLAY db  [db1 db2]\ndb1  ", "\nPLAY lb  [web1 db2]\nweb1 ", "web3  would run     handler reload\n\nPLAY lb"} {
		if !strings.Contains(want, line) {
			t.Errorf("output lacks %q:\n%s", line, want)
		}
	}
}
