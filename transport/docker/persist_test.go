package docker_test

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cauldron-go/cauldron/transport"
	"github.com/cauldron-go/cauldron/transport/docker"
	"github.com/cauldron-go/cauldron/transport/keeper"
)

// shellPID is the pid of the shell that runs c's commands: a channel's commands are
// started by its loop shell.
func shellPID(t *testing.T, c transport.Conn) string {
	t.Helper()
	out, err := transport.Output(context.Background(), c, `echo "$PPID"`)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

func persistDir(t *testing.T) string {
	dir := filepath.Join(t.TempDir(), "keeper")
	t.Cleanup(func() { keeper.Stop(dir) })
	return dir
}

func TestAPersistentConnLeavesItsShellToTheNextConnToTheSameContainer(t *testing.T) {
	name := scratch(t).Container()
	dir := persistDir(t)
	ctx := context.Background()

	first := docker.New(name).WithPersist(time.Minute, dir)
	if err := first.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	pid := shellPID(t, first)
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}

	next := docker.New(name).WithPersist(time.Minute, dir)
	defer next.Close()
	if err := next.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if got := shellPID(t, next); got != pid {
		t.Fatalf("the next Conn's commands run in shell %s, want the kept %s", got, pid)
	}
	// The kept shell keeps Run's semantics: input, output, status.
	var out bytes.Buffer
	if err := next.Run(ctx, transport.Command{Line: "tr a-z A-Z", Stdin: strings.NewReader("kept\n"), Stdout: &out}); err != nil || out.String() != "KEPT\n" {
		t.Fatalf("got %q, %v", out.String(), err)
	}
	var ee *transport.ExitError
	if err := next.Run(ctx, transport.Command{Line: "echo no >&2; exit 3"}); !errors.As(err, &ee) || ee.Status != 3 || !strings.Contains(ee.Stderr, "no") {
		t.Fatalf("got %v", err)
	}
	if err := next.ChannelError(); err != nil {
		t.Fatalf("the kept channel broke: %v", err)
	}

	// A Conn that does not persist neither takes it nor leaves its own.
	plain := docker.New(name).WithChannel()
	if got := shellPID(t, plain); got == pid {
		t.Fatalf("a Conn without WithPersist took the kept shell %s", pid)
	}
	plain.Close()
}

func TestAKeptShellThatEndedIsReplacedByAFreshOne(t *testing.T) {
	name := scratch(t).Container()
	dir := persistDir(t)
	ctx := context.Background()

	first := docker.New(name).WithPersist(time.Minute, dir)
	pid := shellPID(t, first)
	first.Close()
	// The kept shell dies while no run holds it, as when its container restarts.
	if err := docker.New(name).Run(ctx, transport.Command{Line: "kill -9 " + pid}); err != nil {
		t.Fatal(err)
	}

	next := docker.New(name).WithPersist(time.Minute, dir)
	defer next.Close()
	for i := range 3 {
		got := shellPID(t, next)
		if got == pid {
			t.Fatalf("command %d ran in the killed shell %s", i+1, pid)
		}
	}
	if err := next.ChannelError(); err != nil {
		t.Fatalf("no fresh channel replaced the dead one: %v", err)
	}
}

func TestACommandInFlightKeepsTheShellFromBeingKept(t *testing.T) {
	name := scratch(t).Container()
	dir := persistDir(t)

	first := docker.New(name).WithPersist(time.Minute, dir)
	pid := shellPID(t, first)
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan error, 1)
	go func() { started <- first.Run(ctx, transport.Command{Line: "sleep 30"}) }()
	time.Sleep(300 * time.Millisecond)
	first.Close()
	cancel()
	<-started

	next := docker.New(name).WithPersist(time.Minute, dir)
	defer next.Close()
	if got := shellPID(t, next); got == pid {
		t.Fatalf("a shell closed with a command in flight was handed on (%s)", pid)
	}
}

func TestTheKeptShellOfAPausedContainerIsLeftAndTheErrorSaysPaused(t *testing.T) {
	name := scratch(t).Container()
	dir := persistDir(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	first := docker.New(name).WithPersist(time.Minute, dir)
	pid := shellPID(t, first)
	first.Close()
	if out, err := exec.Command("docker", "pause", name).CombinedOutput(); err != nil {
		t.Fatalf("docker pause: %v: %s", err, out)
	}
	unpaused := false
	unpause := func() {
		if !unpaused {
			unpaused = true
			exec.Command("docker", "unpause", name).Run()
		}
	}
	defer unpause()

	// Taken, the frozen shell would hold the command until the caller gives up.
	paused := docker.New(name).WithPersist(time.Minute, dir)
	err := paused.Connect(ctx)
	paused.Close()
	if err == nil || !strings.Contains(err.Error(), "paused") || ctx.Err() != nil {
		t.Fatalf("connecting to a paused container: %v (context: %v)", err, ctx.Err())
	}

	unpause()
	next := docker.New(name).WithPersist(time.Minute, dir)
	defer next.Close()
	if got := shellPID(t, next); got != pid {
		t.Fatalf("after the unpause the commands run in shell %s, want the kept %s", got, pid)
	}
}
