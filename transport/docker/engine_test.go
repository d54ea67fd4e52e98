package docker_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/cauldron-go/cauldron/lab"
	"github.com/cauldron-go/cauldron/transport"
	"github.com/cauldron-go/cauldron/transport/docker"
)

func TestTheEngineAPITransportAgainstARealContainer(t *testing.T) {
	c := scratch(t)
	ctx := context.Background()

	t.Run("standard input larger than a mebibyte round-trips byte for byte", func(t *testing.T) {
		in := make([]byte, 3<<20+17)
		if _, err := rand.Read(in); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if err := c.Run(ctx, transport.Command{Line: "cat", Stdin: bytes.NewReader(in), Stdout: &out}); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out.Bytes(), in) {
			t.Fatalf("sent %d bytes, got %d back, not the same", len(in), out.Len())
		}
	})

	t.Run("a command that does not read its large input still exits 0", func(t *testing.T) {
		in := bytes.NewReader(make([]byte, 8<<20))
		if err := c.Run(ctx, transport.Command{Line: "true", Stdin: in}); err != nil {
			t.Fatalf("got %v", err)
		}
	})

	t.Run("interleaved output and error output are told apart", func(t *testing.T) {
		var out, errb bytes.Buffer
		err := c.Run(ctx, transport.Command{
			Line:   "i=1; while [ $i -le 300 ]; do echo out$i; echo err$i >&2; i=$((i+1)); done",
			Stdout: &out, Stderr: &errb,
		})
		if err != nil {
			t.Fatal(err)
		}
		var wantOut, wantErr strings.Builder
		for i := 1; i <= 300; i++ {
			fmt.Fprintf(&wantOut, "out%d\n", i)
			fmt.Fprintf(&wantErr, "err%d\n", i)
		}
		if out.String() != wantOut.String() || errb.String() != wantErr.String() {
			t.Fatalf("stdout %q\nstderr %q", out.String(), errb.String())
		}
	})

	t.Run("exit statuses come back as they are", func(t *testing.T) {
		for _, tc := range []struct {
			line      string
			status    int
			stderrHas string
		}{
			{line: "true", status: 0},
			{line: "false", status: 1},
			{line: "cauldron-no-such-command", status: 127, stderrHas: "not found"},
			{line: "echo why >&2; exit 255", status: 255, stderrHas: "why"},
		} {
			err := c.Run(ctx, transport.Command{Line: tc.line})
			if got := transport.ExitStatus(err); got != tc.status {
				t.Errorf("%q: status %d, want %d (%v)", tc.line, got, tc.status, err)
				continue
			}
			if tc.status == 0 {
				continue
			}
			var ee *transport.ExitError
			if !errors.As(err, &ee) || !strings.Contains(ee.Stderr, tc.stderrHas) {
				t.Errorf("%q: want an ExitError whose stderr tail holds %q, got %#v", tc.line, tc.stderrHas, err)
			}
		}
	})

	t.Run("cancelling mid-command returns the context's error and kills the command", func(t *testing.T) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		err := c.Run(ctx, transport.Command{
			Line:   "echo started; sleep 997; echo finished",
			Stdout: &cancelOnWrite{cancel: cancel},
		})
		if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), c.Container()) {
			t.Fatalf("got %v", err)
		}
		if n := countProcesses(t, c, "sleep 997"); n != "0" {
			t.Fatalf("%s processes still run `sleep 997`", n)
		}
	})

	t.Run("cancelling does not wait for standard input that never ends", func(t *testing.T) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stdin, never := io.Pipe()
		defer never.Close()
		err := c.Run(ctx, transport.Command{
			Line:   "echo started; cat >/dev/null",
			Stdin:  stdin,
			Stdout: &cancelOnWrite{cancel: cancel},
		})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v", err)
		}
	})

	t.Run("a context already done runs nothing", func(t *testing.T) {
		ctx, cancel := context.WithCancel(ctx)
		cancel()
		err := c.Run(ctx, transport.Command{Line: "touch /tmp/cauldron-ran"})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v", err)
		}
		if n := transport.ExitStatus(c.Run(context.Background(), transport.Command{Line: "test -e /tmp/cauldron-ran"})); n != 1 {
			t.Fatalf("test -e exited %d: the command ran", n)
		}
	})
}

// cancelOnWrite cancels a context on the first output it is given.
type cancelOnWrite struct {
	once   sync.Once
	cancel context.CancelFunc
}

func (w *cancelOnWrite) Write(p []byte) (int, error) {
	w.once.Do(w.cancel)
	return len(p), nil
}

// countProcesses counts the processes in the container whose command line begins with
// prefix, reading /proc so that it needs no procps.
func countProcesses(t *testing.T, c transport.Conn, prefix string) string {
	t.Helper()
	out, err := transport.Output(context.Background(), c,
		`for p in /proc/[0-9]*; do tr '\0' ' ' <"$p/cmdline" 2>/dev/null; echo; done | grep -c '^`+prefix+`' || true`)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

func TestAStoppedContainerIsAClearErrorNotAnExitStatus(t *testing.T) {
	if testing.Short() {
		t.Skip("runs against a real container: runs without -short")
	}
	if exec.Command("docker", "info").Run() != nil {
		t.Fatal("this test needs a Docker engine")
	}
	ctx := context.Background()
	image, err := lab.BaseImage(ctx, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	const name = "cauldron-test-docker-stopped"
	_ = lab.RemoveContainer(ctx, name)
	out, err := exec.Command("docker", "create", "--name", name, "--label", lab.LabelKey+"=scratch", image, "/sbin/init").CombinedOutput()
	if err != nil {
		t.Fatalf("docker create: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = lab.RemoveContainer(context.Background(), name) })

	err = docker.New(name).Ping(ctx)
	var ee *transport.ExitError
	if err == nil || errors.As(err, &ee) || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "not running") {
		t.Fatalf("got %v", err)
	}
}

func TestAnUnreachableEngineIsAClearErrorNamingTheContainer(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix://"+t.TempDir()+"/no-engine.sock")
	err := docker.New("cauldron-somewhere").Ping(context.Background())
	var ee *transport.ExitError
	if err == nil || errors.As(err, &ee) || !strings.Contains(err.Error(), "cauldron-somewhere") || !strings.Contains(err.Error(), "no-engine.sock") {
		t.Fatalf("got %v", err)
	}
}
