package runner_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cauldron-go/cauldron/inventory"
	"github.com/cauldron-go/cauldron/runner"
	"github.com/cauldron-go/cauldron/shell"
	"github.com/cauldron-go/cauldron/steps"
	"github.com/cauldron-go/cauldron/transport"
	"github.com/cauldron-go/cauldron/transport/local"
)

// TestAControllerKilledAtAnyPointLosesNoRestart builds a small controller
// (testdata/killdeploy) that writes a new app.conf, whose handler copies it to
// "running" (what the service runs), SIGKILLs it at 10 random points of its run, one
// in each tenth of it, and runs it again to its end: every re-run succeeds, the
// service runs what its file says, and a run after it changes nothing.
func TestAControllerKilledAtAnyPointLosesNoRestart(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "killdeploy")
	build := exec.Command("go", "build", "-o", bin, "./testdata/killdeploy")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the controller: %v\n%s", err, out)
	}
	svc := filepath.Join(dir, "svc")
	if err := os.Mkdir(svc, 0o755); err != nil {
		t.Fatal(err)
	}
	deploy := func(version int, args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, append([]string{"-dir", svc, "-version", fmt.Sprint(version)}, args...)...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(svc, name))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		return string(b)
	}
	// A full run, to know how long one takes.
	start := time.Now()
	if out, err := deploy(0); err != nil {
		t.Fatalf("first deploy: %v\n%s", err, out)
	}
	full := time.Since(start)

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 3))
	owed := 0 // kills that left a changed file with the old service running
	for i := 1; i <= 10; i++ {
		killAt := time.Duration((float64(i-1) + rng.Float64()) / 10 * float64(full))
		cmd := exec.Command(bin, "-dir", svc, "-version", fmt.Sprint(i))
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(killAt)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		want := fmt.Sprintf("version=%d\n", i)
		if read("app.conf") == want && read("running") != want {
			owed++
		}

		again, err := deploy(i)
		if err != nil {
			t.Fatalf("kill %d at %v: the re-run failed: %v\nkilled run:\n%s\nre-run:\n%s", i, killAt, err, out.String(), again)
		}
		if conf, running := read("app.conf"), read("running"); conf != want || running != want {
			t.Fatalf("kill %d at %v: after the re-run app.conf is %q and the service runs %q, want both %q\nkilled run:\n%s\nre-run:\n%s",
				i, killAt, conf, running, want, out.String(), again)
		}
		if after, err := deploy(i); err != nil || !strings.Contains(after, "changed: 0\n") {
			t.Fatalf("kill %d at %v: the run after the re-run is not converged (%v):\n%s", i, killAt, err, after)
		}
	}
	t.Logf("a full run takes %v; %d of 10 kills left a restart owed", full, owed)
}

// restartRecipe is a recipe with one file whose change notifies "restart", a handler
// that appends to a log, and (when block is set) a handler check that waits for the
// run to be cancelled: a controller stopped between the change and the restart.
func restartRecipe(dir, content string, block chan<- struct{}) func(*inventory.Host) (*steps.Recipe, error) {
	return func(*inventory.Host) (*steps.Recipe, error) {
		restart := appendStep(filepath.Join(dir, "restarts"), "restart")
		if block != nil {
			restart = steps.Func{Name: "Append to restarts", CheckFunc: func(ctx context.Context, c transport.Conn) (*steps.Change, error) {
				close(block)
				<-ctx.Done()
				return nil, ctx.Err()
			}}
		}
		return steps.NewRecipe("svc", steps.Notify(fileStep(filepath.Join(dir, "app.conf"), content), "restart")).
			Handle("restart", restart), nil
	}
}

func pendingMarks(t *testing.T, stateDir string) []map[string]any {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(stateDir, "pending", "*.pending"))
	if err != nil {
		t.Fatal(err)
	}
	var marks []map[string]any
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", f, fi.Mode().Perm())
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		marks = append(marks, m)
	}
	return marks
}

func TestAHandlerLeftPendingRunsInTheNextRunAndThePlanSaysSo(t *testing.T) {
	dir, state := t.TempDir(), t.TempDir()
	opts := func(mode runner.Mode, out *bytes.Buffer) runner.Options {
		return runner.Options{Mode: mode, Dial: newDialer().Dial, Progress: out,
			StateDir: func(*inventory.Host) string { return state }}
	}
	play := func(block chan<- struct{}) []runner.Play {
		return []runner.Play{{Name: "svc", Hosts: hosts("web1"), Recipe: restartRecipe(dir, "v2\n", block)}}
	}

	// 1. The change is made, and the run is cancelled while the handler runs.
	ctx, cancel := context.WithCancel(context.Background())
	blocked := make(chan struct{})
	go func() { <-blocked; cancel() }()
	var out bytes.Buffer
	rep, _ := runner.Run(ctx, play(blocked), opts(runner.Apply, &out))
	if h := rep.Hosts[0].Handlers; len(h) != 1 || h[0].Status != runner.StatusPending {
		t.Fatalf("cancelled run's handlers: %+v", h)
	}
	marks := pendingMarks(t, state)
	if len(marks) != 1 || marks[0]["play"] != "svc" || marks[0]["handler"] != "restart" || marks[0]["notified_by"] != "File "+filepath.Join(dir, "app.conf") {
		t.Fatalf("marks after the cancelled run: %v", marks)
	}

	// 2. A plan finds the host converged, and the restart still owed.
	out.Reset()
	rep, err := runner.Run(context.Background(), play(nil), opts(runner.Plan, &out))
	if err != nil {
		t.Fatal(err)
	}
	if got := statuses(rep.Hosts[0]); fmt.Sprint(got) != "[ok]" {
		t.Errorf("plan's steps: %v", got)
	}
	h := rep.Hosts[0].Handlers
	if len(h) != 1 || h[0].Status != runner.StatusWouldRun || !h[0].FromEarlierRun || fmt.Sprint(h[0].NotifiedBy) != "[(pending from an earlier run)]" {
		t.Errorf("plan's handlers: %+v", h)
	}
	if want := "would run     handler restart [pending from an earlier run]\n"; !strings.Contains(out.String(), want) {
		t.Errorf("plan lacks %q:\n%s", want, out.String())
	}
	if len(pendingMarks(t, state)) != 1 {
		t.Error("the plan touched the mark")
	}

	// 3. Apply runs it, and clears the mark; 4. the run after runs nothing.
	for i, wantRestarts := range []string{"restart\n", "restart\n"} {
		out.Reset()
		rep, err = runner.Run(context.Background(), play(nil), opts(runner.Apply, &out))
		if err != nil {
			t.Fatal(err)
		}
		wantHandlers := 1 - i
		if h := rep.Hosts[0].Handlers; len(h) != wantHandlers || (wantHandlers == 1 && (h[0].Status != runner.StatusChanged || !h[0].FromEarlierRun)) {
			t.Errorf("apply %d's handlers: %+v\n%s", i+1, h, out.String())
		}
		if b, _ := os.ReadFile(filepath.Join(dir, "restarts")); string(b) != wantRestarts {
			t.Errorf("after apply %d the service restarted %q, want %q", i+1, b, wantRestarts)
		}
		if m := pendingMarks(t, state); len(m) != 0 {
			t.Errorf("after apply %d the marks are %v", i+1, m)
		}
	}
}

// The step's Apply looks at the marks on the host, then fails.
func TestThePendingMarkIsOnTheHostBeforeTheChangeIsAppliedAndGoneWhenTheApplyFails(t *testing.T) {
	dir, state := t.TempDir(), t.TempDir()
	var marksAtApply []map[string]any
	step := steps.Func{Name: "Watch the marks", CheckFunc: func(ctx context.Context, c transport.Conn) (*steps.Change, error) {
		return &steps.Change{Summary: "change", Apply: func(context.Context) error {
			marksAtApply = pendingMarks(t, state)
			return errors.New("the validator said no")
		}}, nil
	}}
	rep, err := runner.Run(context.Background(), []runner.Play{{Name: "svc", Hosts: hosts("web1"), Recipe: same(func(*inventory.Host) *steps.Recipe {
		return steps.NewRecipe("svc", steps.Notify(step, "restart")).Handle("restart", appendStep(filepath.Join(dir, "restarts"), "restart"))
	})}}, runner.Options{Mode: runner.Apply, Dial: newDialer().Dial, StateDir: func(*inventory.Host) string { return state }})
	if err == nil {
		t.Fatal("Run returned no error for a failed apply")
	}
	if len(marksAtApply) != 1 || marksAtApply[0]["handler"] != "restart" {
		t.Errorf("marks when the change was applied: %v", marksAtApply)
	}
	// As in Ansible, a failed step notifies nothing (a file its validator rejected was
	// never installed): no restart now, and none owed to the next run.
	if len(rep.Hosts[0].Handlers) != 0 || len(pendingMarks(t, state)) != 0 {
		t.Errorf("handlers %+v, marks %v: want none run and no mark left", rep.Hosts[0].Handlers, pendingMarks(t, state))
	}
}

func TestAChangeWhoseHandlerCannotBeRecordedIsNotApplied(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "not-a-dir")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	rep, err := runner.Run(context.Background(), []runner.Play{{Name: "svc", Hosts: hosts("web1"), Recipe: restartRecipe(dir, "v1\n", nil)}},
		runner.Options{Mode: runner.Apply, Dial: newDialer().Dial, StateDir: func(*inventory.Host) string { return blocker }})
	if err == nil {
		t.Fatal("Run returned no error")
	}
	s := rep.Hosts[0].Steps[0]
	if s.Status != runner.StatusFailed || !strings.Contains(s.Error, `record the pending handler "restart" on the host, before the change`) {
		t.Errorf("step: %+v", s)
	}
	if _, err := os.Stat(filepath.Join(dir, "app.conf")); err == nil {
		t.Error("the change was applied although its restart could not be recorded")
	}
}

func TestABadStateDirInTheInventoryIsRefusedBeforeAnythingConnects(t *testing.T) {
	cases := []struct {
		value any
		want  string
	}{
		{"var/lib/cauldron", "inventory.yaml:7: cauldron_state_dir: want an absolute path on the host"},
		{42, "inventory.yaml:7: cauldron_state_dir: want an absolute path on the host"},
		{"/var/lib/cauldron\n/x", "inventory.yaml:7: cauldron_state_dir: want an absolute path on the host"},
	}
	for _, tc := range cases {
		h := &inventory.Host{Name: "web1", Transport: "local", Vars: inventory.Vars{
			runner.StateDirVar: {Value: tc.value, File: "inventory.yaml", Line: 7},
		}}
		d := newDialer()
		_, err := runner.Run(context.Background(), []runner.Play{{Name: "svc", Hosts: []*inventory.Host{h}, Recipe: restartRecipe(t.TempDir(), "v1\n", nil)}},
			runner.Options{Mode: runner.Plan, Dial: d.Dial})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %q", tc.value, err, tc.want)
		}
		if d.total() != 0 {
			t.Errorf("%q: %d dials", tc.value, d.total())
		}
	}
}

func TestTheInventoryVariableSetsTheStateDir(t *testing.T) {
	dir, state := t.TempDir(), t.TempDir()
	h := &inventory.Host{Name: "web1", Transport: "local", Vars: inventory.Vars{
		runner.StateDirVar: {Value: state, File: "inventory.yaml", Line: 3},
	}}
	ctx, cancel := context.WithCancel(context.Background())
	blocked := make(chan struct{})
	go func() { <-blocked; cancel() }()
	_, _ = runner.Run(ctx, []runner.Play{{Name: "svc", Hosts: []*inventory.Host{h}, Recipe: restartRecipe(dir, "v1\n", blocked)}},
		runner.Options{Mode: runner.Apply, Dial: newDialer().Dial})
	if m := pendingMarks(t, state); len(m) != 1 {
		t.Errorf("marks in %s: %v", state, m)
	}
}

// asUser runs every command on this machine as another user, with its own HOME: a
// host where the runner does not log in as root.
type asUser struct {
	transport.Conn
	uid  int
	home string
}

func (a asUser) Run(ctx context.Context, c transport.Command) error {
	c.Line = shell.Join("setpriv", fmt.Sprintf("--reuid=%d", a.uid), fmt.Sprintf("--regid=%d", a.uid), "--clear-groups",
		"env", "-u", "XDG_STATE_HOME", "HOME="+a.home, "sh", "-c", c.Line)
	return a.Conn.Run(ctx, c)
}

func (a asUser) Put(ctx context.Context, f transport.File) error {
	return transport.PutByShell(ctx, a, f)
}

func TestWithoutAStateDirAUserOtherThanRootKeepsItsMarksUnderItsHome(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to run commands as another user")
	}
	home := t.TempDir()
	if err := os.Chown(home, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Dir(home), 0o755); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	blocked := make(chan struct{})
	go func() { <-blocked; cancel() }()
	var out bytes.Buffer
	_, _ = runner.Run(ctx, []runner.Play{{Name: "svc", Hosts: hosts("web1"), Recipe: restartRecipe(dir, "v1\n", blocked)}},
		runner.Options{Mode: runner.Apply, Progress: &out, Dial: func(context.Context, *inventory.Host) (transport.Conn, error) {
			return asUser{Conn: local.New(), uid: 65534, home: home}, nil
		}})
	if m := pendingMarks(t, filepath.Join(home, ".local", "state", "cauldron")); len(m) != 1 {
		t.Errorf("marks under the user's ~/.local/state/cauldron: %v\n%s", m, out.String())
	}
}
