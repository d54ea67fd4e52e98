package runner_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cauldron-go/cauldron/inventory"
	"github.com/cauldron-go/cauldron/runner"
	"github.com/cauldron-go/cauldron/shell"
	"github.com/cauldron-go/cauldron/steps"
	"github.com/cauldron-go/cauldron/transport"
	"github.com/cauldron-go/cauldron/transport/channel"
	"github.com/cauldron-go/cauldron/transport/local"
)

// channelConn runs its commands as sshconn does: over a command channel (a real shell
// running channel.Loop on this machine), and in a process of its own when the input is
// large or the context overtakes a busy channel (a session of its own, over SSH).
type channelConn struct {
	local.Conn
	ch *channel.Channel
}

func newChannelConn(t *testing.T) *channelConn {
	t.Helper()
	sh := exec.Command("sh", "-c", channel.Loop)
	in, err := sh.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := sh.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	errs, err := sh.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	kill := func(id string) {
		_ = local.New().Run(context.Background(), transport.Command{Line: channel.KillScript(id)})
	}
	ch, err := channel.Open(in, out, errs, kill, func() error { return sh.Wait() })
	if err != nil {
		t.Fatal(err)
	}
	return &channelConn{ch: ch}
}

func (c *channelConn) Run(ctx context.Context, cmd transport.Command) error {
	return channel.RunOrOwn(ctx, channel.Overtaking(ctx, c.ch), cmd, c.Conn.Run)
}

func (c *channelConn) Pipelined() bool { return true }

func (c *channelConn) Close() error { return c.ch.Close() }

func TestAFirstChangeDoesNotWaitOnTheHostForTheChecksMadeAheadOfTheStepsAfterIt(t *testing.T) {
	dir := t.TempDir()
	applied, log := filepath.Join(dir, "applied"), filepath.Join(dir, "log")
	// The first step changes the host; the checks of the next ones, queued on the host
	// behind it, wait up to 3 s for its change and note whether they saw it. Queued
	// behind them, the change would come only after each had waited its 3 s.
	first := steps.Func{Name: "change", CheckFunc: func(ctx context.Context, c transport.Conn) (*steps.Change, error) {
		if err := c.Run(ctx, transport.Command{Line: shell.Join("test", "-e", applied)}); err == nil {
			return nil, nil
		}
		return &steps.Change{Summary: "create " + applied, Apply: func(ctx context.Context) error {
			return c.Run(ctx, transport.Command{Line: shell.Join("touch", applied)})
		}}, nil
	}}
	wait := `i=0; while [ ! -e "$1" ] && [ $i -lt 60 ]; do sleep 0.05; i=$((i+1)); done; ` +
		`if [ -e "$1" ]; then echo saw >>"$2"; else echo waited >>"$2"; fi`
	later := func(name string) steps.Step {
		return steps.Func{Name: name, CheckFunc: func(ctx context.Context, c transport.Conn) (*steps.Change, error) {
			return nil, c.Run(ctx, transport.Command{Line: shell.Join("sh", "-c", wait, "sh", applied, log)})
		}}
	}
	conn := newChannelConn(t)
	dial := func(context.Context, *inventory.Host) (transport.Conn, error) { return conn, nil }
	rep, err := runner.Run(context.Background(), []runner.Play{{
		Name: "p", Hosts: hosts("h1"),
		Recipe: same(func(*inventory.Host) *steps.Recipe {
			return steps.NewRecipe("p", first, later("a"), later("b"), later("c"))
		}),
	}}, runner.Options{StateDir: stateDirIn(t), Mode: runner.Apply, Dial: dial})
	if err != nil {
		t.Fatal(err)
	}
	if got := statuses(hostReport(t, rep, "h1")); strings.Join(got, " ") != "changed ok ok ok" {
		t.Errorf("statuses %v, want changed ok ok ok", got)
	}
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "waited") {
		t.Errorf("a check made ahead waited for the change queued behind it; the checks noted:\n%s", b)
	}
}
