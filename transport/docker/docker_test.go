package docker_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os/exec"
	"strings"
	"testing"

	"github.com/cauldron-go/cauldron/lab"
	"github.com/cauldron-go/cauldron/transport"
	"github.com/cauldron-go/cauldron/transport/docker"
)

func scratch(t *testing.T) *docker.Conn {
	t.Helper()
	if testing.Short() {
		t.Skip("runs against a real container: runs without -short")
	}
	if exec.Command("docker", "info").Run() != nil {
		t.Fatal("these tests need a Docker engine: run `go run mage.go lab:up` or start dockerd")
	}
	c, remove, err := lab.ScratchHost(context.Background(), "cauldron-test-docker-transport")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(remove)
	return c
}

func TestDockerTransportAgainstARealContainer(t *testing.T) {
	c := scratch(t)
	ctx := context.Background()

	t.Run("a command's output, error output and exit status come back", func(t *testing.T) {
		var out, errb bytes.Buffer
		err := c.Run(ctx, transport.Command{Line: "echo out; echo err >&2; exit 3", Stdout: &out, Stderr: &errb})
		if transport.ExitStatus(err) != 3 || out.String() != "out\n" || errb.String() != "err\n" {
			t.Fatalf("got status %d, out %q, err %q (%v)", transport.ExitStatus(err), out.String(), errb.String(), err)
		}
	})

	t.Run("standard input reaches the command", func(t *testing.T) {
		out, err := transport.OutputWithInput(ctx, c, "tr a-z A-Z", strings.NewReader("hello"))
		if err != nil || out != "HELLO" {
			t.Fatalf("got %q, %v", out, err)
		}
	})

	t.Run("a file put is read back with its mode and owner", func(t *testing.T) {
		f := transport.File{Path: "/etc/cauldron-test.conf", Content: []byte("a = 'b'\n"), Mode: 0o640, Owner: "root", Group: "daemon"}
		if err := c.Put(ctx, f); err != nil {
			t.Fatal(err)
		}
		got, err := c.Read(ctx, f.Path)
		if err != nil || string(got) != string(f.Content) {
			t.Fatalf("read back %q, %v", got, err)
		}
		meta, err := transport.Output(ctx, c, "stat -c '%a %U %G' /etc/cauldron-test.conf; ls -a /etc | grep -c -F .cauldron-test.conf.cauldron- || true")
		if err != nil || meta != "640 root daemon\n0\n" {
			t.Fatalf("stat and leftovers: %q, %v", meta, err)
		}
	})

	t.Run("reading a missing file is fs.ErrNotExist", func(t *testing.T) {
		_, err := c.Read(ctx, "/no/such/file")
		if !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("got %v", err)
		}
	})

	t.Run("a put into a missing directory fails and names the file", func(t *testing.T) {
		err := c.Put(ctx, transport.File{Path: "/no/such/dir/f", Content: []byte("x")})
		if err == nil || !strings.Contains(err.Error(), "/no/such/dir/f") {
			t.Fatalf("got %v", err)
		}
	})
}

func TestAMissingContainerIsAClearErrorNotAnExitStatus(t *testing.T) {
	if testing.Short() {
		t.Skip("runs against a real container: runs without -short")
	}
	if exec.Command("docker", "info").Run() != nil {
		t.Fatal("this test needs a Docker engine")
	}
	err := docker.New("cauldron-no-such-container").Ping(context.Background())
	var ee *transport.ExitError
	if err == nil || errors.As(err, &ee) || !strings.Contains(err.Error(), "cauldron-no-such-container") {
		t.Fatalf("got %v", err)
	}
}

func BenchmarkDockerExecRoundTrip(b *testing.B) {
	c, remove, err := lab.ScratchHost(context.Background(), "cauldron-bench-docker-transport")
	if err != nil {
		b.Fatal(err)
	}
	defer remove()
	b.ResetTimer()
	for b.Loop() {
		if err := c.Run(context.Background(), transport.Command{Line: "true"}); err != nil {
			b.Fatal(err)
		}
	}
}
