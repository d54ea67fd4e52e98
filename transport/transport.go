// Package transport is the small interface every step talks to a host through: run a
// command, put a file atomically, read a file. Implementations live in sub-packages
// (local, docker, sshconn); extra abilities are extra interfaces.
package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
)

// Command is one shell command line to run on a host. Line is given to `sh -c` as is,
// so build it with shell.Join. Nil Stdin means no input; nil Stdout or Stderr discard.
type Command struct {
	Line   string
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

// File is what Put writes: the content and who owns it. Empty Owner or Group keep the
// connecting user's; a zero Mode means 0644.
type File struct {
	Path    string
	Content []byte
	Mode    fs.FileMode
	Owner   string
	Group   string
}

// Conn is a connection to one host, reused for every step run there.
type Conn interface {
	// Run runs c on the host. It returns nil when the command exited 0, an *ExitError
	// when it ran and exited otherwise, and any other error when it could not be run.
	Run(ctx context.Context, c Command) error
	// Put writes f atomically: a temporary file in the same directory, given its mode
	// and owner, then renamed over the target, so a reader never sees half a file and
	// a failure leaves the old content in place.
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
