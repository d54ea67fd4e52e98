// Package local is the transport for the machine cauldron runs on.
package local

import (
	"context"
	"errors"
	"fmt"
	"io"
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

// Put writes the file atomically with mode and owner. The content goes into a
// temporary file beside f.Path written here, which the shell then finishes and renames
// (transport.FinishPut): a Put cancelled mid-transfer removes that file, which a shell
// killed while writing it could not.
func (c Conn) Put(ctx context.Context, f transport.File) error {
	if f.Path == "" {
		return errors.New("put: no path given")
	}
	tmp := transport.TempName(f.Path)
	err := writeNew(ctx, tmp, f)
	if err == nil {
		err = transport.FinishPut(ctx, c, f, tmp)
	}
	if err != nil {
		// Gone already unless the write failed or the finishing shell was killed.
		_ = os.Remove(tmp)
		var rejected *transport.RejectedError
		if ctx.Err() != nil && !errors.As(err, &rejected) {
			return fmt.Errorf("put %s: %w", f.Path, ctx.Err())
		}
	}
	return err
}

// writeNew creates tmp (0600, as mktemp does) with f's content; it returns when ctx
// ends even if reading the content blocks.
func writeNew(ctx context.Context, tmp string, f transport.File) error {
	w, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("put %s: %w", f.Path, err)
	}
	r, _ := f.Reader()
	copied := make(chan error, 1)
	go func() {
		_, err := io.Copy(w, r)
		copied <- err
	}()
	select {
	case err = <-copied:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("put %s: %w", f.Path, err)
	}
	return nil
}

// Read reads a file.
func (Conn) Read(_ context.Context, path string) ([]byte, error) {
	return os.ReadFile(path)
}

// Close does nothing: there is no connection to release.
func (Conn) Close() error { return nil }
