package runner_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/cauldron-go/cauldron/inventory"
	"github.com/cauldron-go/cauldron/runner"
	"github.com/cauldron-go/cauldron/steps"
	"github.com/cauldron-go/cauldron/transport"
	"github.com/cauldron-go/cauldron/transport/local"
)

// fileRecipe is a host's files and folders under dir, as a lab host's are: most of a
// converged host's checks.
func fileRecipe(dir string) *steps.Recipe {
	p := func(name string) string { return filepath.Join(dir, name) }
	return steps.NewRecipe("files",
		steps.Dir{Path: p("conf"), Mode: 0o755},
		steps.File{Path: p("conf/a.conf"), Content: steps.Text("a = 1\n"), Mode: 0o644},
		steps.File{Path: p("conf/b.conf"), Content: steps.Text("b = 2\n"), Mode: 0o600},
		steps.File{Path: p("conf/c.conf"), Content: steps.Text("c = 3\n")},
		steps.LineInFile{Path: p("conf/local.conf"), Regexp: `^d =`, Line: "d = 4"},
		steps.Dir{Path: p("www"), Mode: 0o755},
		steps.File{Path: p("www/index.html"), Content: steps.Text("<p>hi</p>\n")},
	).Handle("restart", steps.Func{Name: "restart", CheckFunc: func(context.Context, transport.Conn) (*steps.Change, error) { return nil, nil }})
}

func runFiles(t *testing.T, dir, stateDir string, mode runner.Mode) (*runner.Report, transport.TrafficCounts) {
	t.Helper()
	conn := &trafficConn{Conn: local.New()}
	play := runner.Play{Name: "files", Hosts: hosts("web1"), Recipe: same(func(*inventory.Host) *steps.Recipe { return fileRecipe(dir) })}
	rep, err := runner.Run(context.Background(), []runner.Play{play}, runner.Options{
		StateDir: func(*inventory.Host) string { return stateDir }, Mode: mode,
		Dial: func(context.Context, *inventory.Host) (transport.Conn, error) { return conn, nil }})
	if err != nil {
		t.Fatal(err)
	}
	return rep, conn.Traffic()
}

func TestAConvergedHostsFileChecksGoInOneCommand(t *testing.T) {
	dir, state := t.TempDir(), t.TempDir()
	if rep, _ := runFiles(t, dir, state, runner.Apply); rep.Changed() == 0 {
		t.Fatal("the first run changed nothing")
	}
	rep, traffic := runFiles(t, dir, state, runner.Plan)
	if rep.Changed() != 0 {
		t.Fatalf("the converged host: %d changes", rep.Changed())
	}
	// The 7 checks' reads and the read of the owed handlers, in one command.
	if traffic.Commands != 1 || traffic.RoundTrips != 1 {
		t.Errorf("a converged host of 7 file and folder steps ran %d commands in %d round trips, want 1 in 1", traffic.Commands, traffic.RoundTrips)
	}
}

func TestTheHandlersAnEarlierRunOwesAreReadInTheSameCommandAsTheChecks(t *testing.T) {
	dir, state := t.TempDir(), t.TempDir()
	runFiles(t, dir, state, runner.Apply)
	// What a run killed between a change and its handler leaves on the host.
	mark := `{"play":"files","handler":"restart","notified_by":"File a.conf","since":"2026-12-02T08:00:00Z"}`
	if err := os.MkdirAll(filepath.Join(state, "pending"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(state, "pending", "killed.pending"), []byte(mark+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rep, traffic := runFiles(t, dir, state, runner.Plan)
	h := hostReport(t, rep, "web1").Handlers
	if len(h) != 1 || h[0].Handler != "restart" || h[0].Status != runner.StatusWouldRun || !h[0].FromEarlierRun {
		t.Errorf("the plan's handlers: %+v, want restart, owed from the earlier run", h)
	}
	if traffic.Commands != 1 {
		t.Errorf("%d commands, want the checks' reads and the marks' in 1", traffic.Commands)
	}
}

func TestAPlanFindsEveryDriftedFileOfAConvergedHost(t *testing.T) {
	dir, state := t.TempDir(), t.TempDir()
	runFiles(t, dir, state, runner.Apply)
	if err := os.WriteFile(filepath.Join(dir, "conf/a.conf"), []byte("a = 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, "conf/b.conf"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, "www"), 0o700); err != nil {
		t.Fatal(err)
	}
	rep, _ := runFiles(t, dir, state, runner.Plan)
	var drifted []string
	for _, s := range hostReport(t, rep, "web1").Steps {
		if s.Status != runner.StatusOK {
			drifted = append(drifted, s.Step+": "+string(s.Status))
		}
	}
	want := []string{
		"file " + filepath.Join(dir, "conf/a.conf") + ": would change",
		"file " + filepath.Join(dir, "conf/b.conf") + ": would change",
		"dir " + filepath.Join(dir, "www") + ": would change",
	}
	if !slices.Equal(drifted, want) {
		t.Errorf("drifted steps %q, want %q", drifted, want)
	}
}

func TestAStepChecksAfterAnEarlierStepChangedItsFile(t *testing.T) {
	dir := t.TempDir()
	c := filepath.Join(dir, "c.conf")
	if err := os.WriteFile(c, []byte("old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// File writes "c = 3", then LineInFile must add its line to that, not to "old"
	// as the checks made ahead read it.
	play := runner.Play{Name: "edit", Hosts: hosts("web1"), Recipe: same(func(*inventory.Host) *steps.Recipe {
		return steps.NewRecipe("edit",
			steps.Dir{Path: dir},
			steps.File{Path: c, Content: steps.Text("c = 3\n")},
			steps.LineInFile{Path: c, Regexp: `^d =`, Line: "d = 4"})
	})}
	if _, err := runner.Run(context.Background(), []runner.Play{play}, runner.Options{StateDir: stateDirIn(t), Mode: runner.Apply,
		Dial: func(context.Context, *inventory.Host) (transport.Conn, error) { return local.New(), nil }}); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(c)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "c = 3\nd = 4\n" {
		t.Errorf("%s holds %q, want the File's content and the line", c, got)
	}
}
