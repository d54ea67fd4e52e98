// Package docker is the transport that reaches a container by `docker exec`. Files are
// streamed in over the exec's standard input, so nothing is left on the control side.
package docker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"

	"github.com/cauldron-go/cauldron/transport"
)

// Conn runs commands in one container.
type Conn struct {
	container string
	// DockerPath is the docker client to run; "docker" on PATH by default.
	DockerPath string
}

// New returns a connection to the named container. It checks nothing: use Ping to know
// the container answers.
func New(container string) *Conn {
	return &Conn{container: container, DockerPath: "docker"}
}

// Container is the container's name.
func (c *Conn) Container() string { return c.container }

func (c *Conn) String() string { return "docker:" + c.container }

// Ping runs `true` in the container, so a missing or stopped container is a clear error.
func (c *Conn) Ping(ctx context.Context) error {
	return c.Run(ctx, transport.Command{Line: "true"})
}

// Run runs c.Line with sh -c in the container.
func (c *Conn) Run(ctx context.Context, cmd transport.Command) error {
	args := []string{"exec"}
	if cmd.Stdin != nil {
		args = append(args, "-i")
	}
	args = append(args, c.container, "/bin/sh", "-c", cmd.Line)
	x := exec.CommandContext(ctx, c.DockerPath, args...)
	x.Stdin = cmd.Stdin
	x.Stdout = cmd.Stdout
	// The docker client's own errors arrive on stderr too: keep a tail of it to tell
	// them from the command's exit status, whatever the caller does with stderr.
	errTail := &tailBuffer{max: 4096}
	if cmd.Stderr != nil {
		x.Stderr = io.MultiWriter(cmd.Stderr, errTail)
	} else {
		x.Stderr = errTail
	}
	err := x.Run()
	if ctx.Err() != nil {
		return fmt.Errorf("docker exec in %s: %w", c.container, ctx.Err())
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		msg := errTail.String()
		if isClientError(msg) {
			return fmt.Errorf("docker exec in %s: %s", c.container, strings.TrimSpace(msg))
		}
		return &transport.ExitError{Line: cmd.Line, Status: ee.ExitCode(), Stderr: msg}
	}
	if err != nil {
		return fmt.Errorf("docker exec in %s: %w", c.container, err)
	}
	return nil
}

// isClientError tells the docker client's own failures (no such container, container not
// running, daemon unreachable) from the exit status of the command in the container.
func isClientError(stderr string) bool {
	for _, p := range []string{"Error response from daemon:", "Error: No such container", "Cannot connect to the Docker daemon", "OCI runtime exec failed"} {
		if strings.Contains(stderr, p) {
			return true
		}
	}
	return false
}

// Put streams the file in over standard input and renames it into place.
func (c *Conn) Put(ctx context.Context, f transport.File) error {
	return transport.PutByShell(ctx, c, f)
}

// Read reads a file from the container.
func (c *Conn) Read(ctx context.Context, path string) ([]byte, error) {
	return transport.ReadByShell(ctx, c, path)
}

// Close does nothing: every command is its own docker exec.
func (c *Conn) Close() error { return nil }

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max int
	buf bytes.Buffer
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.buf.Write(p)
	if over := t.buf.Len() - t.max; over > 0 {
		t.buf.Next(over)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return t.buf.String() }
