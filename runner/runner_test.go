package runner_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cauldron-go/cauldron/inventory"
	"github.com/cauldron-go/cauldron/runner"
	"github.com/cauldron-go/cauldron/shell"
	"github.com/cauldron-go/cauldron/steps"
	"github.com/cauldron-go/cauldron/transport"
	"github.com/cauldron-go/cauldron/transport/local"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// fileStep is a step double: it wants path to hold content, on the real local host.
func fileStep(path, content string) steps.Step {
	return steps.Func{
		Name: "File " + path,
		CheckFunc: func(ctx context.Context, c transport.Conn) (*steps.Change, error) {
			old, err := c.Read(ctx, path)
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("read %s: %w", path, err)
			}
			if err == nil && string(old) == content {
				return nil, nil
			}
			return &steps.Change{
				Summary: fmt.Sprintf("write %s (%d bytes)", path, len(content)),
				Diff:    lineDiff(string(old), content),
				Apply: func(ctx context.Context) error {
					return c.Put(ctx, transport.File{Path: path, Content: []byte(content)})
				},
			}, nil
		},
	}
}

func lineDiff(old, new string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimRight(old, "\n"), "\n") {
		if l != "" {
			b.WriteString("-" + l + "\n")
		}
	}
	for _, l := range strings.Split(strings.TrimRight(new, "\n"), "\n") {
		b.WriteString("+" + l + "\n")
	}
	return b.String()
}

// appendStep always changes: it appends a line to path (a handler's run log).
func appendStep(path, line string) steps.Step {
	return steps.Func{
		Name: "Append to " + filepath.Base(path),
		CheckFunc: func(ctx context.Context, c transport.Conn) (*steps.Change, error) {
			return &steps.Change{
				Summary: "append " + line,
				Apply: func(ctx context.Context) error {
					return c.Run(ctx, transport.Command{Line: "echo " + shell.Quote(line) + " >>" + shell.Quote(path)})
				},
			}, nil
		},
	}
}

// failStep fails its check with msg.
func failStep(name, msg string) steps.Step {
	return steps.Func{Name: name, CheckFunc: func(context.Context, transport.Conn) (*steps.Change, error) {
		return nil, errors.New(msg)
	}}
}

// sleepStep closes started (once) and then runs a long sleep on the host, which only a
// cancelled context ends early.
// sleepStep's check says it started, then sleeps until cancelled. With a non-empty
// after, it does so only once that file exists (an earlier step wrote it) and is
// converged before: the runner checks steps ahead, concurrently, until one changes
// the host.
func sleepStep(started chan<- struct{}, after string) steps.Step {
	var once sync.Once
	return steps.Func{Name: "Sleep", CheckFunc: func(ctx context.Context, c transport.Conn) (*steps.Change, error) {
		if after != "" {
			if _, err := os.Stat(after); err != nil {
				return nil, nil
			}
		}
		once.Do(func() { close(started) })
		if err := c.Run(ctx, transport.Command{Line: "exec " + shell.Join("sleep", "30")}); err != nil {
			return nil, err
		}
		return nil, nil
	}}
}

// stateDirIn keeps a test's pending-handler marks in a directory of its own, away
// from this machine's /var/lib/cauldron and from other tests.
func stateDirIn(t *testing.T) func(*inventory.Host) string {
	dir := t.TempDir()
	return func(*inventory.Host) string { return dir }
}

func hosts(names ...string) []*inventory.Host {
	var hs []*inventory.Host
	for _, n := range names {
		hs = append(hs, &inventory.Host{Name: n, Transport: "local"})
	}
	return hs
}

// dialer hands out real local connections and counts dials and closes per host.
type dialer struct {
	mu     sync.Mutex
	dials  map[string]int
	closes map[string]int
	fail   map[string]error
}

func newDialer() *dialer {
	return &dialer{dials: map[string]int{}, closes: map[string]int{}, fail: map[string]error{}}
}

func (d *dialer) Dial(_ context.Context, h *inventory.Host) (transport.Conn, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.dials[h.Name]++
	if err := d.fail[h.Name]; err != nil {
		return nil, err
	}
	return &countedConn{Conn: local.New(), d: d, host: h.Name}, nil
}

func (d *dialer) total() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, c := range d.dials {
		n += c
	}
	return n
}

type countedConn struct {
	transport.Conn
	d    *dialer
	host string
}

func (c *countedConn) Close() error {
	c.d.mu.Lock()
	c.d.closes[c.host]++
	c.d.mu.Unlock()
	return c.Conn.Close()
}

// same returns a recipe function giving every host the recipe build makes for it.
func same(build func(h *inventory.Host) *steps.Recipe) func(*inventory.Host) (*steps.Recipe, error) {
	return func(h *inventory.Host) (*steps.Recipe, error) { return build(h), nil }
}

func counts(t *testing.T, rep *runner.Report) map[string]runner.Counts {
	t.Helper()
	m := map[string]runner.Counts{}
	for _, h := range rep.Hosts {
		m[h.Host] = h.Counts
	}
	return m
}

func statuses(h *runner.HostReport) []string {
	var s []string
	for _, r := range h.Steps {
		s = append(s, string(r.Status))
	}
	return s
}

func hostReport(t *testing.T, rep *runner.Report, name string) *runner.HostReport {
	t.Helper()
	for _, h := range rep.Hosts {
		if h.Host == name {
			return h
		}
	}
	t.Fatalf("no report for host %s", name)
	return nil
}

func TestApplyChangesWhatIsOffAndASecondRunChangesNothing(t *testing.T) {
	dir := t.TempDir()
	play := runner.Play{
		Name:  "files",
		Hosts: hosts("web1", "web2"),
		Recipe: same(func(h *inventory.Host) *steps.Recipe {
			return steps.NewRecipe("files",
				fileStep(filepath.Join(dir, h.Name+".a"), "a of "+h.Name+"\n"),
				fileStep(filepath.Join(dir, h.Name+".b"), "b\n"),
				steps.Func{Name: "Nothing to do", CheckFunc: func(context.Context, transport.Conn) (*steps.Change, error) { return nil, nil }},
			)
		}),
	}
	d := newDialer()
	for run, want := range []runner.Counts{{OK: 1, Changed: 2}, {OK: 3}} {
		rep, err := runner.Run(context.Background(), []runner.Play{play}, runner.Options{StateDir: stateDirIn(t), Mode: runner.Apply, Dial: d.Dial})
		if err != nil {
			t.Fatalf("run %d: %v", run+1, err)
		}
		for host, got := range counts(t, rep) {
			if got != want {
				t.Errorf("run %d, %s: counts %+v, want %+v", run+1, host, got, want)
			}
		}
		if rep.Failed() || rep.Changed() != 2*want.Changed {
			t.Errorf("run %d: Failed()=%v Changed()=%d", run+1, rep.Failed(), rep.Changed())
		}
	}
	got, err := os.ReadFile(filepath.Join(dir, "web2.a"))
	if err != nil || string(got) != "a of web2\n" {
		t.Errorf("web2.a = %q, %v", got, err)
	}
}

func TestPlanChangesNothingAndShowsTheDiffs(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(path, []byte("old line\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	rep, err := runner.Run(context.Background(), []runner.Play{{
		Name:  "haproxy",
		Hosts: hosts("lb"),
		Recipe: same(func(*inventory.Host) *steps.Recipe {
			return steps.NewRecipe("haproxy", steps.Notify(fileStep(path, "new line\n"), "reload")).
				Handle("reload", appendStep(filepath.Join(dir, "reloads"), "reloaded"))
		}),
	}}, runner.Options{StateDir: stateDirIn(t), Mode: runner.Plan, Dial: newDialer().Dial, Progress: &out})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); string(got) != "old line\n" {
		t.Errorf("plan changed the file to %q", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "reloads")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("plan ran the handler: %v", err)
	}
	h := hostReport(t, rep, "lb")
	if s := h.Steps[0]; s.Status != runner.StatusWouldChange || s.Diff != "-old line\n+new line\n" {
		t.Errorf("step result %+v", s)
	}
	if len(h.Handlers) != 1 || h.Handlers[0].Status != runner.StatusWouldRun {
		t.Errorf("handlers %+v, want reload would run", h.Handlers)
	}
	if rep.Changed() != 1 {
		t.Errorf("Changed() = %d, want the would-change counted", rep.Changed())
	}
	for _, want := range []string{"would change", "    -old line\n    +new line\n", "would run     handler reload", "ok=0 changed=1 failed=0 skipped=0"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("progress lacks %q:\n%s", want, out.String())
		}
	}
}

func TestAHandlerRunsOnceAndOnlyWhenNotified(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "restarts")
	play := runner.Play{
		Name:  "tomcat",
		Hosts: hosts("tomcat1"),
		Recipe: same(func(*inventory.Host) *steps.Recipe {
			return steps.NewRecipe("tomcat",
				steps.Notify(fileStep(filepath.Join(dir, "server.xml"), "<Server/>\n"), "restart"),
				steps.Notify(fileStep(filepath.Join(dir, "context.xml"), "<Context/>\n"), "restart"),
				steps.Notify(steps.Func{Name: "Unchanged", CheckFunc: func(context.Context, transport.Conn) (*steps.Change, error) { return nil, nil }}, "never"),
			).Handle("restart", appendStep(log, "restart")).Handle("never", appendStep(log, "never"))
		}),
	}
	for run, want := range []string{"restart\n", "restart\n"} {
		rep, err := runner.Run(context.Background(), []runner.Play{play}, runner.Options{StateDir: stateDirIn(t), Mode: runner.Apply, Dial: newDialer().Dial})
		if err != nil {
			t.Fatalf("run %d: %v", run+1, err)
		}
		got, _ := os.ReadFile(log)
		if string(got) != want {
			t.Errorf("run %d: handler log %q, want %q", run+1, got, want)
		}
		hs := hostReport(t, rep, "tomcat1").Handlers
		if run == 0 {
			if len(hs) != 1 || hs[0].Handler != "restart" || hs[0].Status != runner.StatusChanged || len(hs[0].NotifiedBy) != 2 {
				t.Errorf("run 1: handlers %+v, want restart changed, notified by two steps", hs)
			}
		} else if len(hs) != 0 {
			t.Errorf("run 2: handlers %+v, want none", hs)
		}
	}
}

func TestANotifiedHandlerStillRunsAfterALaterStepFails(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "reloads")
	var out bytes.Buffer
	rep, err := runner.Run(context.Background(), []runner.Play{{
		Name:  "apache",
		Hosts: hosts("web1"),
		Recipe: same(func(*inventory.Host) *steps.Recipe {
			return steps.NewRecipe("apache",
				steps.Notify(fileStep(filepath.Join(dir, "workers.properties"), "worker.list=lb\n"), "reload"),
				// A real failure: the directory does not exist.
				fileStep(filepath.Join(dir, "missing", "jk.conf"), "JkMount /* lb\n"),
				fileStep(filepath.Join(dir, "never"), "x\n"),
			).Handle("reload", appendStep(log, "reload"))
		}),
	}}, runner.Options{StateDir: stateDirIn(t), Mode: runner.Apply, Dial: newDialer().Dial, Progress: &out})
	if err == nil || !strings.Contains(err.Error(), "web1") {
		t.Errorf("Run error = %v, want one naming web1", err)
	}
	if got, _ := os.ReadFile(log); string(got) != "reload\n" {
		t.Errorf("handler log %q, want one reload", got)
	}
	h := hostReport(t, rep, "web1")
	if got := strings.Join(statuses(h), ","); got != "changed,failed,skipped" {
		t.Errorf("statuses %s", got)
	}
	if len(h.Handlers) != 1 || !h.Handlers[0].AfterFailure || h.Handlers[0].Status != runner.StatusChanged {
		t.Errorf("handlers %+v, want reload changed after a failure", h.Handlers)
	}
	if !rep.Failed() || h.Counts != (runner.Counts{Changed: 2, Failed: 1, Skipped: 1}) {
		t.Errorf("Failed()=%v counts %+v", rep.Failed(), h.Counts)
	}
	for _, want := range []string{"handler reload [after a failed step]", "    error: apply: put ", "skipped       File " + filepath.Join(dir, "never") + "  (an earlier step failed)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("progress lacks %q:\n%s", want, out.String())
		}
	}
}

func TestAFailedHostDoesNotStopTheOthers(t *testing.T) {
	dir := t.TempDir()
	recipe := same(func(h *inventory.Host) *steps.Recipe {
		if h.Name == "bad" {
			return steps.NewRecipe("r", failStep("Broken", "no such package"), fileStep(filepath.Join(dir, "bad"), "x"))
		}
		return steps.NewRecipe("r", fileStep(filepath.Join(dir, h.Name+"1"), "x"), fileStep(filepath.Join(dir, h.Name+"2"), "x"))
	})
	second := same(func(h *inventory.Host) *steps.Recipe {
		return steps.NewRecipe("r", fileStep(filepath.Join(dir, h.Name+"3"), "x"))
	})
	d := newDialer()
	d.fail["gone"] = errors.New("connection refused")
	rep, err := runner.Run(context.Background(), []runner.Play{
		{Name: "one", Hosts: hosts("bad", "good", "gone"), Recipe: recipe},
		{Name: "two", Hosts: hosts("bad", "good", "gone"), Recipe: second},
	}, runner.Options{StateDir: stateDirIn(t), Mode: runner.Apply, Dial: d.Dial})
	if err == nil || !strings.Contains(err.Error(), "2 of 3 hosts failed: bad, gone") {
		t.Errorf("Run error = %v", err)
	}
	tests := []struct {
		host     string
		statuses string
		reason   string
	}{
		{"bad", "failed,skipped,skipped", "host failed earlier"},
		{"good", "changed,changed,changed", ""},
		{"gone", "skipped,skipped,skipped", "host unreachable"},
	}
	for _, tt := range tests {
		h := hostReport(t, rep, tt.host)
		if got := strings.Join(statuses(h), ","); got != tt.statuses {
			t.Errorf("%s: statuses %s, want %s", tt.host, got, tt.statuses)
		}
		if last := h.Steps[len(h.Steps)-1]; last.Reason != tt.reason {
			t.Errorf("%s: last step skipped for %q, want %q", tt.host, last.Reason, tt.reason)
		}
	}
	if h := hostReport(t, rep, "gone"); !h.Unreachable || !strings.Contains(h.Error, "connection refused") {
		t.Errorf("gone: unreachable=%v error %q", h.Unreachable, h.Error)
	}
	if d.dials["gone"] != 1 {
		t.Errorf("the unreachable host was dialed %d times, want once", d.dials["gone"])
	}
}

func TestFailFastCancelsTheStepsRunningOnOtherHosts(t *testing.T) {
	started := make(chan struct{})
	recipe := same(func(h *inventory.Host) *steps.Recipe {
		if h.Name == "bad" {
			return steps.NewRecipe("r", steps.Func{Name: "Fail once the other runs", CheckFunc: func(ctx context.Context, _ transport.Conn) (*steps.Change, error) {
				<-started
				return nil, errors.New("broken")
			}})
		}
		return steps.NewRecipe("r", sleepStep(started, ""), fileStep(filepath.Join(t.TempDir(), "x"), "x"))
	})
	rep, err := runner.Run(context.Background(), []runner.Play{
		{Name: "one", Hosts: hosts("bad", "slow"), Recipe: recipe},
		{Name: "two", Hosts: hosts("bad", "slow", "idle"), Recipe: same(func(*inventory.Host) *steps.Recipe {
			return steps.NewRecipe("r", fileStep(filepath.Join(t.TempDir(), "y"), "y"))
		})},
	}, runner.Options{StateDir: stateDirIn(t), Mode: runner.Apply, Dial: newDialer().Dial, FailFast: true, Parallel: 2})
	if err == nil || !strings.Contains(err.Error(), "1 of 3 hosts failed: bad") {
		t.Errorf("Run error = %v", err)
	}
	slow := hostReport(t, rep, "slow")
	if got := strings.Join(statuses(slow), ","); got != "skipped,skipped,skipped" {
		t.Fatalf("slow: statuses %s", got)
	}
	if r := slow.Steps[0].Reason; r != `interrupted: fail-fast: host "bad" failed` {
		t.Errorf("slow: running step skipped for %q", r)
	}
	if !strings.Contains(rep.Stopped, `fail-fast: host "bad" failed`) {
		t.Errorf("Stopped = %q", rep.Stopped)
	}
	if idle := hostReport(t, rep, "idle"); idle.Steps[0].Reason != rep.Stopped {
		t.Errorf("idle: step skipped for %q, want the stop reason", idle.Steps[0].Reason)
	}
}

func TestMaxFailPercentStopsTheRunOnceExceeded(t *testing.T) {
	// Four hosts, one at a time in order; h1 and h2 fail.
	recipe := same(func(h *inventory.Host) *steps.Recipe {
		if h.Name == "h1" || h.Name == "h2" {
			return steps.NewRecipe("r", failStep("Break", "broken"))
		}
		return steps.NewRecipe("r", fileStep(filepath.Join(t.TempDir(), "f"), "x"))
	})
	tests := []struct {
		percent int
		h3, h4  runner.Status
		stopped string
	}{
		{0, runner.StatusChanged, runner.StatusChanged, ""},
		{25, runner.StatusSkipped, runner.StatusSkipped, `2 of 4 hosts of play "p" failed, more than the 25% allowed`},
		{50, runner.StatusChanged, runner.StatusChanged, ""},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.percent), func(t *testing.T) {
			rep, err := runner.Run(context.Background(), []runner.Play{{Name: "p", Hosts: hosts("h1", "h2", "h3", "h4"), Recipe: recipe}},
				runner.Options{StateDir: stateDirIn(t), Mode: runner.Apply, Dial: newDialer().Dial, Parallel: 1, MaxFailPercent: tt.percent})
			if err == nil {
				t.Error("Run returned no error with two failed hosts")
			}
			if got := hostReport(t, rep, "h3").Steps[0].Status; got != tt.h3 {
				t.Errorf("h3 %s, want %s", got, tt.h3)
			}
			if got := hostReport(t, rep, "h4").Steps[0]; got.Status != tt.h4 || got.Reason != tt.stopped {
				t.Errorf("h4 %s (%s), want %s (%s)", got.Status, got.Reason, tt.h4, tt.stopped)
			}
			if rep.Stopped != tt.stopped {
				t.Errorf("Stopped = %q, want %q", rep.Stopped, tt.stopped)
			}
		})
	}
}

func TestAnInvalidRecipeStopsTheRunBeforeAnythingIsDialed(t *testing.T) {
	good := same(func(*inventory.Host) *steps.Recipe {
		return steps.NewRecipe("good", fileStep(filepath.Join(t.TempDir(), "f"), "x"))
	})
	tests := []struct {
		name   string
		recipe func(*inventory.Host) (*steps.Recipe, error)
		want   []string
	}{
		{"recipe error", func(h *inventory.Host) (*steps.Recipe, error) {
			return nil, errors.New("variable jvm_route is not set")
		}, []string{`play "web", host "web2": build recipe: variable jvm_route is not set`}},
		{"invalid step", same(func(*inventory.Host) *steps.Recipe {
			return steps.NewRecipe("web", steps.Func{Name: "No check"})
		}), []string{`play "web", host "web2": step "No check": a Func step needs a Name and a CheckFunc`}},
		{"undeclared handler", same(func(*inventory.Host) *steps.Recipe {
			return steps.NewRecipe("web", steps.Notify(fileStep("/x", "x"), "reload"))
		}), []string{`play "web", host "web2": step "File /x" notifies handler "reload"`}},
		{"undeclared handler behind another Notify", same(func(*inventory.Host) *steps.Recipe {
			return steps.NewRecipe("web", steps.Notify(steps.Notify(fileStep("/x", "x"), "reload"), "restart")).
				Handle("restart", fileStep("/y", "y"))
		}), []string{`play "web", host "web2": step "File /x" notifies handler "reload"`}},
		{"no recipe", nil, []string{`play "web": no Recipe function`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDialer()
			var out bytes.Buffer
			_, err := runner.Run(context.Background(), []runner.Play{
				{Name: "db", Hosts: hosts("db1"), Recipe: good},
				{Name: "web", Hosts: hosts("web2"), Recipe: tt.recipe},
			}, runner.Options{StateDir: stateDirIn(t), Mode: runner.Apply, Dial: d.Dial, Progress: &out})
			if err == nil {
				t.Fatal("Run accepted an invalid play")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if n := d.total(); n != 0 {
				t.Errorf("%d dials before validation passed", n)
			}
			if out.Len() != 0 {
				t.Errorf("progress written: %s", out.String())
			}
		})
	}
}

func TestEachHostIsDialedOnceAcrossPlaysAndClosedAtTheEnd(t *testing.T) {
	dir := t.TempDir()
	recipe := func(play string) func(*inventory.Host) (*steps.Recipe, error) {
		return same(func(h *inventory.Host) *steps.Recipe {
			return steps.NewRecipe(play,
				fileStep(filepath.Join(dir, play+"-"+h.Name+"-1"), "x"),
				fileStep(filepath.Join(dir, play+"-"+h.Name+"-2"), "x"))
		})
	}
	d := newDialer()
	_, err := runner.Run(context.Background(), []runner.Play{
		{Name: "db", Hosts: hosts("db1"), Recipe: recipe("db")},
		{Name: "tomcat", Hosts: hosts("tomcat1", "tomcat2", "db1"), Recipe: recipe("tomcat")},
		{Name: "empty", Hosts: hosts("lonely"), Recipe: same(func(*inventory.Host) *steps.Recipe { return steps.NewRecipe("empty") })},
		{Name: "check", Hosts: hosts("tomcat2", "db1"), Recipe: recipe("check")},
	}, runner.Options{StateDir: stateDirIn(t), Mode: runner.Apply, Dial: d.Dial, Parallel: 3})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"db1": 1, "tomcat1": 1, "tomcat2": 1}
	if fmt.Sprint(d.dials) != fmt.Sprint(want) {
		t.Errorf("dials %v, want %v (no dial for a host with nothing to do)", d.dials, want)
	}
	if fmt.Sprint(d.closes) != fmt.Sprint(want) {
		t.Errorf("closes %v, want %v", d.closes, want)
	}
}

func TestNoMoreHostsRunAtOnceThanParallelOrThePlaysSerial(t *testing.T) {
	cases := []struct {
		name             string
		parallel, serial int
		want             int32
	}{
		{"parallel bounds a play", 2, 0, 2},
		{"serial 1 is a rolling change", 8, 1, 1},
		{"the lower of the two wins", 2, 3, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var inFlight, peak atomic.Int32
			step := steps.Func{Name: "Count", CheckFunc: func(ctx context.Context, c transport.Conn) (*steps.Change, error) {
				n := inFlight.Add(1)
				defer inFlight.Add(-1)
				for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
				}
				// Wait (on the host, for real) until the bound is reached, then a little
				// longer: an unbounded runner would have started more hosts by then.
				for peak.Load() < tc.want && ctx.Err() == nil {
					if err := c.Run(ctx, transport.Command{Line: "true"}); err != nil {
						return nil, err
					}
				}
				return nil, c.Run(ctx, transport.Command{Line: shell.Join("sleep", "0.05")})
			}}
			rep, err := runner.Run(context.Background(), []runner.Play{{
				Name: "p", Hosts: hosts("a", "b", "c", "d", "e", "f"), Serial: tc.serial,
				Recipe: same(func(*inventory.Host) *steps.Recipe { return steps.NewRecipe("p", step) }),
			}}, runner.Options{StateDir: stateDirIn(t), Mode: runner.Apply, Dial: newDialer().Dial, Parallel: tc.parallel})
			if err != nil {
				t.Fatal(err)
			}
			if got := peak.Load(); got != tc.want {
				t.Errorf("%d hosts ran at once, want %d", got, tc.want)
			}
			if len(rep.Hosts) != 6 {
				t.Errorf("%d hosts reported", len(rep.Hosts))
			}
		})
	}
}

func TestCancellingMidRunSkipsTheRestPrintsTheRecapAndClosesConnections(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	started := make(chan struct{})
	go func() {
		<-started
		cancel()
	}()
	var out bytes.Buffer
	d := newDialer()
	rep, err := runner.Run(ctx, []runner.Play{
		{Name: "one", Hosts: hosts("tomcat1"), Recipe: same(func(*inventory.Host) *steps.Recipe {
			return steps.NewRecipe("one",
				steps.Notify(fileStep(filepath.Join(dir, "server.xml"), "x"), "restart"),
				sleepStep(started, filepath.Join(dir, "server.xml")),
				fileStep(filepath.Join(dir, "after"), "x"),
			).Handle("restart", appendStep(filepath.Join(dir, "restarts"), "restart"))
		})},
		{Name: "two", Hosts: hosts("tomcat1"), Recipe: same(func(*inventory.Host) *steps.Recipe {
			return steps.NewRecipe("two", fileStep(filepath.Join(dir, "later"), "x"))
		})},
	}, runner.Options{StateDir: stateDirIn(t), Mode: runner.Apply, Dial: d.Dial, Progress: &out})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Run error = %v, want context.Canceled wrapped", err)
	}
	if !rep.Cancelled {
		t.Error("report not marked cancelled")
	}
	h := hostReport(t, rep, "tomcat1")
	if got := strings.Join(statuses(h), ","); got != "changed,skipped,skipped,skipped" {
		t.Errorf("statuses %s", got)
	}
	if h.Steps[1].Reason != "interrupted: cancelled" || h.Steps[2].Reason != "cancelled" {
		t.Errorf("reasons %q, %q", h.Steps[1].Reason, h.Steps[2].Reason)
	}
	if len(h.Handlers) != 1 || h.Handlers[0].Status != runner.StatusPending {
		t.Errorf("handlers %+v, want restart pending", h.Handlers)
	}
	for _, f := range []string{"after", "later", "restarts"} {
		if _, err := os.Stat(filepath.Join(dir, f)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s was written after the cancel", f)
		}
	}
	if d.closes["tomcat1"] != 1 {
		t.Errorf("connection closed %d times, want once", d.closes["tomcat1"])
	}
	for _, want := range []string{"pending       handler restart  (cancelled)", "RECAP\ntomcat1  ok=0 changed=1 failed=0 skipped=3\ncancelled\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("progress lacks %q:\n%s", want, out.String())
		}
	}
}

func TestSecretsAreMaskedInProgressReportAndError(t *testing.T) {
	const secret, ajp = "s3cr3t-pw", "ajp-0xBEEF"
	dir := t.TempDir()
	d := newDialer()
	d.fail["db2"] = fmt.Errorf("auth as postgres:%s refused", secret)
	var out, js bytes.Buffer
	rep, err := runner.Run(context.Background(), []runner.Play{{
		Name:  "secrets",
		Hosts: hosts("db1", "db2"),
		Recipe: same(func(*inventory.Host) *steps.Recipe {
			return steps.NewRecipe("secrets",
				fileStep(filepath.Join(dir, "server.xml"), `<Connector secret="`+ajp+`"/>`),
				steps.Func{Name: "Set password " + secret, CheckFunc: func(context.Context, transport.Conn) (*steps.Change, error) {
					return nil, fmt.Errorf("psql: password %s rejected", secret)
				}},
			)
		}),
	}}, runner.Options{StateDir: stateDirIn(t), Mode: runner.Plan, Dial: d.Dial, Progress: &out, Secrets: []string{secret, ajp, ""}})
	if err == nil {
		t.Fatal("Run returned no error for two failed hosts")
	}
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	if !json.Valid(js.Bytes()) {
		t.Fatalf("invalid JSON: %s", js.String())
	}
	for name, text := range map[string]string{"progress": out.String(), "JSON": js.String(), "error": err.Error()} {
		for _, s := range []string{secret, ajp} {
			if strings.Contains(text, s) {
				t.Errorf("%s shows a secret:\n%s", name, text)
			}
		}
	}
	for name, text := range map[string]string{"progress": out.String(), "JSON": js.String()} {
		for _, want := range []string{`secret=\"********\"`, "password ******** rejected", "postgres:******** refused", "Set password ********"} {
			if name == "progress" {
				want = strings.ReplaceAll(want, `\"`, `"`)
			}
			if !strings.Contains(text, want) {
				t.Errorf("%s lacks %q:\n%s", name, want, text)
			}
		}
	}
}

func TestColorMarksTheStatus(t *testing.T) {
	var out bytes.Buffer
	_, err := runner.Run(context.Background(), []runner.Play{{
		Name: "p", Hosts: hosts("h"),
		Recipe: same(func(*inventory.Host) *steps.Recipe {
			return steps.NewRecipe("p", fileStep(filepath.Join(t.TempDir(), "f"), "x"))
		}),
	}}, runner.Options{StateDir: stateDirIn(t), Mode: runner.Apply, Dial: newDialer().Dial, Progress: &out, Color: true})
	if err != nil {
		t.Fatal(err)
	}
	if want := "h  \x1b[33mchanged     \x1b[0m  File "; !strings.Contains(out.String(), want) {
		t.Errorf("progress lacks %q:\n%q", want, out.String())
	}
}

func TestAPanickingStepFailsOnlyItsHost(t *testing.T) {
	rep, err := runner.Run(context.Background(), []runner.Play{{
		Name: "p", Hosts: hosts("a", "b"),
		Recipe: same(func(h *inventory.Host) *steps.Recipe {
			if h.Name == "a" {
				return steps.NewRecipe("p", steps.Func{Name: "Panic", CheckFunc: func(context.Context, transport.Conn) (*steps.Change, error) {
					var m map[string]int
					m["x"]++
					return nil, nil
				}})
			}
			return steps.NewRecipe("p", fileStep(filepath.Join(t.TempDir(), "f"), "x"))
		}),
	}}, runner.Options{StateDir: stateDirIn(t), Mode: runner.Apply, Dial: newDialer().Dial})
	if err == nil {
		t.Error("Run returned no error")
	}
	if a := hostReport(t, rep, "a").Steps[0]; a.Status != runner.StatusFailed || !strings.Contains(a.Error, "step panicked") {
		t.Errorf("a: %+v", a)
	}
	if b := hostReport(t, rep, "b").Steps[0]; b.Status != runner.StatusChanged {
		t.Errorf("b: %+v", b)
	}
}

// timings are the parts of the progress output that differ from run to run.
var timings = regexp.MustCompile(`\(\d+ms\)|\(\d+\.\ds\)|done in \S+`)

func TestProgressOutputMatchesTheGoldenFiles(t *testing.T) {
	for _, mode := range []runner.Mode{runner.Plan, runner.Apply} {
		t.Run(mode.String(), func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "haproxy.cfg"), []byte("backend old\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			d := newDialer()
			d.fail["web2"] = errors.New("ssh: connect to host 127.0.0.1 port 2222: connection refused")
			var out bytes.Buffer
			_, err := runner.Run(context.Background(), []runner.Play{
				{Name: "db", Hosts: hosts("db1"), Recipe: same(func(*inventory.Host) *steps.Recipe {
					return steps.NewRecipe("db",
						fileStep(filepath.Join(dir, "pg_hba.conf"), "host all all 10.0.0.0/24 scram-sha-256\n"),
						failStep("Create role app", "psql: FATAL: role \"postgres\" does not exist\nHINT: run initdb"),
						fileStep(filepath.Join(dir, "never"), "x\n"))
				})},
				{Name: "haproxy", Hosts: hosts("db1", "web1", "web2"), Recipe: same(func(h *inventory.Host) *steps.Recipe {
					return steps.NewRecipe("haproxy",
						steps.Notify(fileStep(filepath.Join(dir, "haproxy.cfg"), "backend tomcat\n"), "reload haproxy"),
						steps.Func{Name: "Service haproxy enabled", CheckFunc: func(context.Context, transport.Conn) (*steps.Change, error) { return nil, nil }},
					).Handle("reload haproxy", appendStep(filepath.Join(dir, "reloads-"+h.Name), "reload"))
				})},
			}, runner.Options{StateDir: stateDirIn(t), Mode: mode, Dial: d.Dial, Progress: &out, Parallel: 1})
			if err == nil {
				t.Error("Run returned no error with failed hosts")
			}
			got := timings.ReplaceAllStringFunc(out.String(), func(s string) string {
				if strings.HasPrefix(s, "done") {
					return "done in X"
				}
				return "(Xms)"
			})
			got = strings.ReplaceAll(got, dir, "$DIR")
			golden := filepath.Join("testdata", "progress-"+mode.String()+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("progress differs from %s (run with -update to accept):\n--- got\n%s\n--- want\n%s", golden, got, want)
			}
		})
	}
}

func TestLinesFromParallelHostsDoNotInterleave(t *testing.T) {
	names := []string{"h1", "h2", "h3", "h4", "h5", "h6", "h7", "h8"}
	// Each change has a many-line summary and diff naming its host, so that a block
	// split by another host's write would show under the wrong step line. Each check
	// runs a command on the host, so the hosts' goroutines really take turns.
	step := func(i int, host string) steps.Step {
		return steps.Func{Name: fmt.Sprintf("Step %d", i), CheckFunc: func(ctx context.Context, c transport.Conn) (*steps.Change, error) {
			if err := c.Run(ctx, transport.Command{Line: "true"}); err != nil {
				return nil, err
			}
			return &steps.Change{Summary: "summary of " + host, Diff: strings.Repeat("+line of "+host+"\n", 20)}, nil
		}}
	}
	var out bytes.Buffer
	_, err := runner.Run(context.Background(), []runner.Play{{
		Name: "p", Hosts: hosts(names...),
		Recipe: same(func(h *inventory.Host) *steps.Recipe {
			r := steps.NewRecipe("p")
			for i := range 10 {
				r.Add(step(i, h.Name))
			}
			return r
		}),
	}}, runner.Options{StateDir: stateDirIn(t), Mode: runner.Plan, Dial: newDialer().Dial, Progress: &out, Parallel: len(names)})
	if err != nil {
		t.Fatal(err)
	}
	head := regexp.MustCompile(`^(h\d)\s+would change  Step \d+( \[after an earlier change\])?  \((\d+ms|[\d.]+s)\)$`)
	current, blocks := "", 0
	for i, line := range strings.Split(out.String(), "\n") {
		if m := head.FindStringSubmatch(line); m != nil {
			current, blocks = m[1], blocks+1
			continue
		}
		if strings.HasPrefix(line, "    ") && !strings.HasSuffix(line, " "+current) {
			t.Fatalf("line %d %q is not about %s, the host of the step line above it:\n%s", i+1, line, current, out.String())
		}
	}
	if blocks != 10*len(names) {
		t.Errorf("%d step lines, want %d", blocks, 10*len(names))
	}
}

func TestRollingHandlersRunOneHostAtATimeWhileStepsRunTogether(t *testing.T) {
	var stepsInFlight, stepsPeak, handlersInFlight, handlersPeak atomic.Int32
	track := func(inFlight, peak *atomic.Int32, wait int32) func(ctx context.Context, c transport.Conn) error {
		return func(ctx context.Context, c transport.Conn) error {
			n := inFlight.Add(1)
			defer inFlight.Add(-1)
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
			for i := 0; peak.Load() < wait && i < 200 && ctx.Err() == nil; i++ {
				if err := c.Run(ctx, transport.Command{Line: "true"}); err != nil {
					return err
				}
			}
			return c.Run(ctx, transport.Command{Line: shell.Join("sleep", "0.05")})
		}
	}
	stepWork := track(&stepsInFlight, &stepsPeak, 3)
	handlerWork := track(&handlersInFlight, &handlersPeak, 2)
	rep, err := runner.Run(context.Background(), []runner.Play{{
		Name: "p", Hosts: hosts("a", "b", "c"), RollingHandlers: true,
		Recipe: same(func(*inventory.Host) *steps.Recipe {
			change := steps.Func{Name: "Change", CheckFunc: func(ctx context.Context, c transport.Conn) (*steps.Change, error) {
				if err := stepWork(ctx, c); err != nil {
					return nil, err
				}
				return &steps.Change{Summary: "changed", Apply: func(context.Context) error { return nil }}, nil
			}}
			restart := steps.Func{Name: "Restart", CheckFunc: func(ctx context.Context, c transport.Conn) (*steps.Change, error) {
				return &steps.Change{Summary: "restart", Apply: func(ctx context.Context) error { return handlerWork(ctx, c) }}, nil
			}}
			return steps.NewRecipe("p", steps.Notify(change, "restart")).Handle("restart", restart)
		}),
	}}, runner.Options{StateDir: stateDirIn(t), Mode: runner.Apply, Dial: newDialer().Dial})
	if err != nil {
		t.Fatal(err)
	}
	if got := stepsPeak.Load(); got != 3 {
		t.Errorf("%d hosts ran their steps at once, want all 3", got)
	}
	if got := handlersPeak.Load(); got != 1 {
		t.Errorf("%d hosts ran their handlers at once, want 1", got)
	}
	if rep.Changed() != 6 {
		t.Errorf("changed = %d, want 3 steps and 3 handlers", rep.Changed())
	}
}

// badName is a step whose String panics, as a user's own step can.
type badName struct{ steps.Step }

func (b badName) String() string {
	var names []string
	return names[3]
}

func TestAStepWhoseStringPanicsFailsAloneAndTheRunGoesOn(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	var out bytes.Buffer
	rep, err := runner.Run(context.Background(), []runner.Play{{
		Name: "p", Hosts: hosts("a", "b"),
		Recipe: same(func(h *inventory.Host) *steps.Recipe {
			if h.Name == "a" {
				return steps.NewRecipe("p", badName{fileStep(file+".a", "x")})
			}
			return steps.NewRecipe("p", steps.Notify(fileStep(file+".b", "y"), "restart")).
				Handle("restart", badName{appendStep(filepath.Join(dir, "log"), "restarted")})
		}),
	}}, runner.Options{StateDir: stateDirIn(t), Mode: runner.Apply, Dial: newDialer().Dial, Progress: &out})
	if err == nil || !strings.Contains(err.Error(), "2 of 2 hosts failed") {
		t.Errorf("Run returned %v, want both hosts failed", err)
	}
	a := hostReport(t, rep, "a")
	if got := a.Steps[0]; got.Status != runner.StatusFailed || got.Error != "naming the step panicked: runtime error: index out of range [3] with length 0" || got.Step != "step 1 (runner_test.badName)" {
		t.Errorf("a's step: %+v", got)
	}
	if _, err := os.Stat(file + ".a"); err == nil {
		t.Error("a's step was applied although it could not be named")
	}
	b := hostReport(t, rep, "b")
	if got := statuses(b); len(got) != 1 || got[0] != "changed" {
		t.Errorf("b's steps: %v", got)
	}
	if len(b.Handlers) != 1 || b.Handlers[0].Status != runner.StatusFailed || !strings.Contains(b.Handlers[0].Error, "naming the step panicked") {
		t.Errorf("b's handler: %+v", b.Handlers)
	}
	if _, err := os.Stat(filepath.Join(dir, "log")); err == nil {
		t.Error("b's handler ran although it could not be named")
	}
	if !strings.Contains(out.String(), "\nRECAP\n") {
		t.Errorf("no recap:\n%s", out.String())
	}
}

func TestAPlanSaysWhichStepsWereCheckedBeforeAnEarlierChangeExists(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "conf")
	// The directory step would create conf/; the file step after it is checked on a
	// host without conf/ (and says "write" against nothing), the same as on a bare
	// host where an unpack would create catalina.sh.
	mkdir := steps.Func{Name: "Directory conf", CheckFunc: func(ctx context.Context, c transport.Conn) (*steps.Change, error) {
		if _, err := os.Stat(conf); err == nil {
			return nil, nil
		}
		return &steps.Change{Summary: "create " + conf, Apply: func(context.Context) error { return os.Mkdir(conf, 0o755) }}, nil
	}}
	file := fileStep(filepath.Join(conf, "app.properties"), "port=8080\n")
	play := []runner.Play{
		{Name: "one", Hosts: hosts("web1"), Recipe: same(func(*inventory.Host) *steps.Recipe { return steps.NewRecipe("one", mkdir, file) })},
		{Name: "two", Hosts: hosts("web1"), Recipe: same(func(*inventory.Host) *steps.Recipe {
			return steps.NewRecipe("two", fileStep(filepath.Join(dir, "other"), "x\n"))
		})},
	}
	cases := []struct {
		mode  runner.Mode
		after []bool // per step, across both plays
		lines []string
	}{
		{runner.Plan, []bool{false, true, true}, []string{
			"would change  File " + conf + "/app.properties [after an earlier change]  (",
			"    as the host is now: write " + conf + "/app.properties (10 bytes)\n",
		}},
		{runner.Apply, []bool{false, false, false}, []string{"changed       File " + conf + "/app.properties  ("}},
	}
	for _, tc := range cases {
		var out bytes.Buffer
		rep, err := runner.Run(context.Background(), play, runner.Options{StateDir: stateDirIn(t), Mode: tc.mode, Dial: newDialer().Dial, Progress: &out})
		if err != nil {
			t.Fatalf("%s: %v", tc.mode, err)
		}
		var after []bool
		for _, s := range rep.Hosts[0].Steps {
			after = append(after, s.AfterChange)
		}
		if fmt.Sprint(after) != fmt.Sprint(tc.after) {
			t.Errorf("%s: after an earlier change per step = %v, want %v", tc.mode, after, tc.after)
		}
		for _, want := range tc.lines {
			if !strings.Contains(out.String(), want) {
				t.Errorf("%s: progress lacks %q:\n%s", tc.mode, want, out.String())
			}
		}
	}
}

func TestAnUnreachableHostCountsAsUnreachableInTheRecapAndReport(t *testing.T) {
	d := newDialer()
	d.fail["db"] = errors.New("connection refused")
	var out bytes.Buffer
	rep, err := runner.Run(context.Background(), []runner.Play{{
		Name: "p", Hosts: hosts("db", "web"),
		Recipe: same(func(*inventory.Host) *steps.Recipe {
			return steps.NewRecipe("p", steps.Func{Name: "Nothing", CheckFunc: func(context.Context, transport.Conn) (*steps.Change, error) { return nil, nil }})
		}),
	}}, runner.Options{StateDir: stateDirIn(t), Mode: runner.Plan, Dial: d.Dial, Progress: &out, Parallel: 1})
	if err == nil || err.Error() != "1 of 2 hosts failed: db" {
		t.Errorf("Run returned %v", err)
	}
	want := map[string]runner.Counts{"db": {Skipped: 1, Unreachable: 1}, "web": {OK: 1}}
	if got := counts(t, rep); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("counts %v, want %v", got, want)
	}
	for _, line := range []string{"db   ok=0 changed=0 failed=0 skipped=1 unreachable=1\n", "web  ok=1 changed=0 failed=0 skipped=0\n"} {
		if !strings.Contains(out.String(), line) {
			t.Errorf("recap lacks %q:\n%s", line, out.String())
		}
	}
	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(js.String(), `"unreachable": 1`) {
		t.Errorf("the JSON report does not count db unreachable:\n%s", js.String())
	}
}

// trafficConn counts a real local connection's traffic as sshconn and docker do.
type trafficConn struct {
	transport.Conn
	traffic transport.Traffic
}

func (c *trafficConn) Run(ctx context.Context, cmd transport.Command) error {
	defer c.traffic.Begin()()
	return c.Conn.Run(ctx, cmd)
}

func (c *trafficConn) Traffic() transport.TrafficCounts { return c.traffic.Counts() }

func TestTheReportAndRecapCountEachHostsCommandsAndRoundTrips(t *testing.T) {
	conns := map[string]*trafficConn{}
	var mu sync.Mutex
	dial := func(_ context.Context, h *inventory.Host) (transport.Conn, error) {
		mu.Lock()
		defer mu.Unlock()
		c := &trafficConn{Conn: local.New()}
		conns[h.Name] = c
		return c, nil
	}
	twoCommands := steps.Func{Name: "two commands", CheckFunc: func(ctx context.Context, c transport.Conn) (*steps.Change, error) {
		for range 2 {
			if _, err := transport.Output(ctx, c, "true"); err != nil {
				return nil, err
			}
		}
		return nil, nil
	}}
	play := runner.Play{Name: "count", Hosts: hosts("web1"), Recipe: same(func(*inventory.Host) *steps.Recipe {
		return steps.NewRecipe("count", twoCommands, twoCommands, twoCommands)
	})}
	var out bytes.Buffer
	rep, err := runner.Run(context.Background(), []runner.Play{play}, runner.Options{StateDir: stateDirIn(t), Mode: runner.Plan, Dial: dial, Progress: &out})
	if err != nil {
		t.Fatal(err)
	}
	got := hostReport(t, rep, "web1").Traffic
	want := conns["web1"].Traffic()
	if got == nil || *got != want {
		t.Fatalf("report traffic %+v, want the connection's %+v", got, want)
	}
	if got.Commands < 6 || got.RoundTrips < 1 || got.RoundTrips > got.Commands {
		t.Errorf("traffic %+v: want at least the 6 check commands, in 1 to %d round trips", got, got.Commands)
	}
	line := fmt.Sprintf("commands=%d round_trips=%d", got.Commands, got.RoundTrips)
	if !strings.Contains(out.String(), line) {
		t.Errorf("the recap does not say %q:\n%s", line, out.String())
	}
	var js bytes.Buffer
	rep.WriteJSON(&js)
	if !strings.Contains(js.String(), `"traffic": {`) || !strings.Contains(js.String(), `"round_trips": `) {
		t.Errorf("the JSON report has no traffic:\n%s", js.String())
	}
}
