package steps_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/cauldron-go/cauldron/lab"
	"github.com/cauldron-go/cauldron/steps"
	"github.com/cauldron-go/cauldron/transport"
	"github.com/cauldron-go/cauldron/transport/docker"
)

// host is the real Debian container every test in this package converges steps on.
var host *docker.Conn

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	flag.Parse()
	if testing.Short() {
		// -short is the quick loop: the pure tests and examples run, the container
		// tests skip (needHost), and nothing needs Docker.
		return m.Run()
	}
	if exec.Command("docker", "info").Run() != nil {
		fmt.Fprintln(os.Stderr, "the steps tests need a Docker engine: start dockerd, or run go test -short for the tests without it")
		return 1
	}
	c, remove, err := lab.ScratchHost(context.Background(), "cauldron-test-steps")
	if err != nil {
		fmt.Fprintln(os.Stderr, "scratch host:", err)
		return 1
	}
	defer remove()
	host = c
	return m.Run()
}

// needHost skips a test that converges steps on the container when there is none
// (go test -short).
func needHost(t testing.TB) {
	t.Helper()
	if host == nil {
		t.Skip("converges steps on a Debian container: runs without -short")
	}
}

// sh runs a shell line on the host, by hand, as a test's way to look or to cause drift.
func sh(t testing.TB, line string) string {
	t.Helper()
	out, err := transport.Output(context.Background(), host, line)
	if err != nil {
		t.Fatalf("on the host: %s: %v", line, err)
	}
	return out
}

// check runs s's check and fails the test on an error.
func check(t testing.TB, s steps.Step) *steps.Change {
	t.Helper()
	if err := steps.Validate(s); err != nil {
		t.Fatalf("validate: %v", err)
	}
	ch, err := s.Check(context.Background(), host)
	if err != nil {
		t.Fatalf("check %s: %v", s, err)
	}
	return ch
}

// converges asserts that a check of s finds a change, applies it, and that a second
// check finds nothing. It returns the change found.
func converges(t testing.TB, s steps.Step) *steps.Change {
	t.Helper()
	ch := check(t, s)
	if ch == nil {
		t.Fatalf("%s: the first check found nothing to change", s)
	}
	if err := ch.Apply(context.Background()); err != nil {
		t.Fatalf("apply %s (%s): %v", s, ch.Summary, err)
	}
	if again := check(t, s); again != nil {
		t.Fatalf("%s: still a change after apply: %s\n%s", s, again.Summary, again.Diff)
	}
	return ch
}

// converged asserts that a check of s finds nothing.
func converged(t testing.TB, s steps.Step) {
	t.Helper()
	if ch := check(t, s); ch != nil {
		t.Fatalf("%s: want no change, got %s\n%s", s, ch.Summary, ch.Diff)
	}
}

func contains(t testing.TB, what, got, want string) {
	t.Helper()
	if !strings.Contains(got, want) {
		t.Fatalf("%s: want %q in\n%s", what, want, got)
	}
}
