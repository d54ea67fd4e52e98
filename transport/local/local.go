// Package local is the transport for the machine cauldron runs on.
package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/cauldron-go/cauldron/transport"
)

// Conn runs commands with /bin/sh on this machine.
type Conn struct{}

// New returns a connection to this machine.
func New() *Conn { return &Conn{} }

// Run runs c.Line with sh -c.
func (Conn) Run(ctx context.Context, c transport.Command) error {
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", c.Line)
	// Cancelling kills the whole process group, not only sh: a child left behind would
	// keep the output pipes open and Run waiting for it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	cmd.Stdin = c.Stdin
	cmd.Stdout = c.Stdout
	var stderr strings.Builder
	if c.Stderr != nil {
		cmd.Stderr = c.Stderr
	} else {
		cmd.Stderr = &stderr
	}
	err := cmd.Run()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return &transport.ExitError{Line: c.Line, Status: ee.ExitCode(), Stderr: stderr.String()}
	}
	if err != nil {
		return fmt.Errorf("run on local machine: %w", err)
	}
	return nil
}

// Put writes the file atomically with mode and owner.
func (c Conn) Put(ctx context.Context, f transport.File) error {
	return transport.PutByShell(ctx, c, f)
}

// Read reads a file.
func (Conn) Read(_ context.Context, path string) ([]byte, error) {
	return os.ReadFile(path)
}

// Close does nothing: there is no connection to release.
func (Conn) Close() error { return nil }
