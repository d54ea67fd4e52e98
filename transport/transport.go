// Package transport is the contract every step talks to a host through: run a command,
// put a file atomically (checked by a validator before it replaces the old one), read a
// file. Each transport implements it once, in its sub-package (local, docker, sshconn);
// the transports that can only run commands put files with PutByShell, the one
// atomic-write routine they share. Extra abilities are extra interfaces.
package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"time"
)

// Command is one shell command line to run on a host. Line is given to `sh -c` as is,
// so build it with shell.Join. Nil Stdin means no input; nil Stdout or Stderr discard.
type Command struct {
	Line   string
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

// File is what Put writes: the content, who owns it, and what must accept it. Empty
// Owner or Group keep the connecting user's; a zero Mode means 0644.
type File struct {
	Path    string
	Content []byte
	// Body, when not nil, is read for the content instead of Content: a large file
	// (a setup tarball) streamed to the host without being held in memory.
	Body  io.Reader
	Mode  fs.FileMode
	Owner string
	Group string
	// ModTime, when not zero, is the modification time the file gets (to the
	// nanosecond), before it replaces the old one.
	ModTime time.Time
	// Check is a validator: a shell command line run on the host against the temporary
	// file (complete, with its mode and owners) before the rename, %s standing for its
	// quoted path ("visudo -cf %s"). A non-zero exit keeps the old file, removes the
	// temporary one, and makes Put return a *RejectedError with the check's output.
	Check string
	// CheckFunc is a validator that needs more than one command (a copy of the file at
	// its real name, for servers that resolve includes relative to it). It gets the
	// temporary file's path on the host; an error rejects the content as Check does.
	CheckFunc func(ctx context.Context, tempPath string) error
}

// Reader is f's content as a reader, and its size when known (else -1).
func (f File) Reader() (io.Reader, int64) {
	if f.Body != nil {
		return f.Body, -1
	}
	return bytes.NewReader(f.Content), int64(len(f.Content))
}

// RejectedError is a file's validator refusing its new content; the old file stays.
type RejectedError struct {
	Path   string
	Check  string // the Check line, or "" for a CheckFunc
	Output string // what Check printed
	Err    error  // what CheckFunc returned
}

func (e *RejectedError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: the new content was rejected, the old file stays: %v", e.Path, e.Err)
	}
	return fmt.Sprintf("%s: %q rejected the new content, the old file stays: %s", e.Path, e.Check, strings.TrimSpace(e.Output))
}

func (e *RejectedError) Unwrap() error { return e.Err }

// Conn is a connection to one host, reused for every step run there.
type Conn interface {
	// Run runs c on the host. It returns nil when the command exited 0, an *ExitError
	// when it ran and exited otherwise, and any other error when it could not be run.
	Run(ctx context.Context, c Command) error
	// Put writes f atomically: a temporary file in the same directory (TempBeside),
	// given its content, mode, owners and time and accepted by its validator, then
	// renamed over the target, so a reader never sees half a file and a failure or a
	// rejection leaves the old content in place.
	Put(ctx context.Context, f File) error
	// Read returns the content of a file; an error wrapping fs.ErrNotExist when absent.
	Read(ctx context.Context, path string) ([]byte, error)
	// Close releases the connection.
	Close() error
}

// ExitError is a command that ran and exited with a non-zero status.
type ExitError struct {
	Line   string
	Status int
	Stderr string // the tail of what the command wrote to stderr, when it was captured
}

func (e *ExitError) Error() string {
	msg := fmt.Sprintf("exit status %d", e.Status)
	if s := strings.TrimSpace(e.Stderr); s != "" {
		msg += ": " + s
	}
	return msg
}

// ExitStatus returns the exit status carried by err: 0 for nil, the status for an
// *ExitError, and -1 for any other error.
func ExitStatus(err error) int {
	if err == nil {
		return 0
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Status
	}
	return -1
}

// Output runs line and returns its standard output. On a non-zero exit the error is an
// *ExitError carrying the command's standard error.
func Output(ctx context.Context, c Conn, line string) (string, error) {
	return OutputWithInput(ctx, c, line, nil)
}

// OutputWithInput is Output with stdin.
func OutputWithInput(ctx context.Context, c Conn, line string, stdin io.Reader) (string, error) {
	var out bytes.Buffer
	errTail := &TailBuffer{Max: 2000}
	err := c.Run(ctx, Command{Line: line, Stdin: stdin, Stdout: &out, Stderr: errTail})
	var ee *ExitError
	if errors.As(err, &ee) && ee.Stderr == "" {
		ee.Stderr = errTail.String()
	}
	return out.String(), err
}

// ErrNotExist is returned (wrapped) by Read for a missing file.
var ErrNotExist = fs.ErrNotExist
