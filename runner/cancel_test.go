package runner_test

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cauldron-go/cauldron/inventory"
	"github.com/cauldron-go/cauldron/runner"
	"github.com/cauldron-go/cauldron/steps"
	"github.com/cauldron-go/cauldron/transport"
)

// memoryHost is an in-process stand-in for the runner's neighbour, a host: each
// command takes a few random microseconds, ends early when its context does, and
// flags set by one step's apply are seen by the next check. It lets hundreds of runs
// cross the runner's cancel paths in a second; the runner itself is the real one.
type memoryHost struct {
	mu    sync.Mutex
	flags map[string]bool
	rng   *rand.Rand
}

func newMemoryHost(seed uint64) *memoryHost {
	return &memoryHost{flags: map[string]bool{}, rng: rand.New(rand.NewPCG(seed, 7))}
}

func (m *memoryHost) pause(ctx context.Context) error {
	m.mu.Lock()
	d := time.Duration(m.rng.IntN(300)) * time.Microsecond
	m.mu.Unlock()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (m *memoryHost) Run(ctx context.Context, c transport.Command) error { return m.pause(ctx) }
func (m *memoryHost) Put(ctx context.Context, f transport.File) error {
	return m.pause(ctx)
}
func (m *memoryHost) Read(ctx context.Context, p string) ([]byte, error) {
	if err := m.pause(ctx); err != nil {
		return nil, err
	}
	return nil, fs.ErrNotExist
}
func (m *memoryHost) Close() error { return nil }

func (m *memoryHost) set(flag string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.flags[flag] = true
}

func (m *memoryHost) isSet(flag string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.flags[flag]
}

// flagStep changes the host once: it sets flag, which its check then finds.
func flagStep(flag string) steps.Step {
	return steps.Func{Name: "Flag " + flag, CheckFunc: func(ctx context.Context, c transport.Conn) (*steps.Change, error) {
		m := c.(*memoryHost)
		if err := m.pause(ctx); err != nil {
			return nil, err
		}
		if m.isSet(flag) {
			return nil, nil
		}
		return &steps.Change{Summary: "set " + flag, Apply: func(ctx context.Context) error {
			if err := m.pause(ctx); err != nil {
				return err
			}
			m.set(flag)
			return nil
		}}, nil
	}}
}

// TestNoRunHangsWhenCancelledAtARandomPoint cancels 500 runs at a random moment (while
// dialing, while checking ahead, while applying, while a handler runs), half of them
// also failing fast on a host that fails: every run returns within its time limit and
// prints the recap.
func TestNoRunHangsWhenCancelledAtARandomPoint(t *testing.T) {
	const runs = 500
	perRun := 10 * time.Second
	stateDir := stateDirIn(t)
	for i := range runs {
		seed := uint64(i)
		rng := rand.New(rand.NewPCG(seed, 1))
		failFast := i%2 == 1
		failing := fmt.Sprintf("web%d", rng.IntN(4))
		hostsByName := map[string]*memoryHost{}
		for _, h := range hosts("web0", "web1", "web2", "web3") {
			hostsByName[h.Name] = newMemoryHost(seed*16 + uint64(len(hostsByName)))
		}
		recipe := func(h *inventory.Host) (*steps.Recipe, error) {
			rec := steps.NewRecipe("app")
			for j := range 8 {
				s := flagStep(fmt.Sprintf("f%d", j))
				if j%3 == 0 {
					s = steps.Notify(s, "restart")
				}
				rec.Add(s)
			}
			if failFast && h.Name == failing {
				rec.Add(failStep("Broken", "broken on purpose"))
			}
			return rec.Handle("restart", flagStep("restarted")), nil
		}
		var dialMu sync.Mutex
		dial := func(ctx context.Context, h *inventory.Host) (transport.Conn, error) {
			dialMu.Lock()
			m := hostsByName[h.Name]
			dialMu.Unlock()
			// A dial that does not watch its context: it may succeed just after the
			// cancel, as a real one can finish its handshake as the context ends.
			m.mu.Lock()
			d := time.Duration(m.rng.IntN(400)) * time.Microsecond
			m.mu.Unlock()
			time.Sleep(d)
			return m, nil
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancelAfter := time.Duration(rng.IntN(3000)) * time.Microsecond
		timer := time.AfterFunc(cancelAfter, cancel)
		var out bytes.Buffer
		done := make(chan error, 1)
		go func() {
			_, err := runner.Run(ctx, []runner.Play{
				{Name: "one", Hosts: hosts("web0", "web1", "web2", "web3"), Recipe: recipe},
				{Name: "two", Hosts: hosts("web0", "web1"), Recipe: recipe},
			}, runner.Options{Mode: runner.Apply, FailFast: failFast, Parallel: 4, Dial: dial, Progress: &out, StateDir: stateDir})
			done <- err
		}()
		select {
		case <-done:
		case <-time.After(perRun):
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("run %d (fail-fast %v, cancel after %v) hung for %v; goroutines:\n%s", i, failFast, cancelAfter, perRun, buf)
		}
		timer.Stop()
		cancel()
		if !strings.Contains(out.String(), "\nRECAP\n") {
			t.Fatalf("run %d (fail-fast %v, cancel after %v) printed no recap:\n%s", i, failFast, cancelAfter, out.String())
		}
	}
}
