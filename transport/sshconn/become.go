package sshconn

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/cauldron-go/cauldron/shell"
	"github.com/cauldron-go/cauldron/transport"
)

// sudoMode is how this host's sudo lets the login user become root, found once per
// Conn.
type sudoMode struct {
	password string // empty when sudo -n works
	// prompt and ready are this Conn's markers on the command's stderr: sudo's prompt,
	// and the command having started (sudo asked nothing more, or took the password).
	prompt, ready string
}

// wrap returns the line that runs line as root, and the password to give sudo when it
// prompts (empty for none).
func (m *sudoMode) wrap(line string) (string, string) {
	if m.password == "" {
		return shell.Join("sudo", "-n", "--", "sh", "-c", line), ""
	}
	// -k: always prompt, unless the rules let this command run without a password,
	// which only the prompt tells: so the password is written when the prompt appears,
	// and the command's own stdin only after it has said it runs.
	start := `printf '%s\n' "$0" >&2; exec sh -c "$1"`
	return shell.Join("sudo", "-S", "-k", "-p", m.prompt, "--", "sh", "-c", start, m.ready, line), m.password
}

// sudoGate stands on a become command's stderr until the command runs: it answers
// sudo's prompt with the password (once; a second prompt, after a refusal, closes
// stdin so that sudo gives up) and opens the way for the command's own stdin when the
// command says it started. Everything else goes on to the caller's stderr.
type sudoGate struct {
	mode  *sudoMode
	stdin io.WriteCloser
	out   io.Writer
	// started is closed when the command runs; the stdin copier waits for it.
	started chan struct{}

	mu      sync.Mutex
	held    []byte // stderr not yet passed on: it may hold a marker's start
	through bool
	prompts int
}

func newSudoGate(mode *sudoMode, stdin io.WriteCloser, out io.Writer) *sudoGate {
	return &sudoGate{mode: mode, stdin: stdin, out: out, started: make(chan struct{})}
}

func (g *sudoGate) Write(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.through {
		g.out.Write(p)
		return len(p), nil
	}
	g.held = append(g.held, p...)
	for {
		if i := bytes.Index(g.held, []byte(g.mode.prompt)); i >= 0 {
			g.out.Write(g.held[:i])
			g.held = g.held[i+len(g.mode.prompt):]
			g.prompts++
			if g.prompts == 1 {
				io.WriteString(g.stdin, g.mode.password+"\n")
			} else {
				g.stdin.Close()
			}
			continue
		}
		if i := bytes.Index(g.held, []byte(g.mode.ready+"\n")); i >= 0 {
			g.out.Write(g.held[:i])
			g.out.Write(g.held[i+len(g.mode.ready)+1:])
			g.held = nil
			g.through = true
			close(g.started)
		}
		return len(p), nil
	}
}

// flush passes on what is held (sudo's own messages, when the command never ran).
func (g *sudoGate) flush() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.through {
		g.out.Write(g.held)
		g.held = nil
	}
}

func (c *Conn) becomes() bool { return c.cfg.Become && c.cfg.User != "root" }

// sudoMode probes sudo at first use: without a password if it can, else with the
// configured one, checked once so that a wrong password never meets a command's stdin.
func (c *Conn) sudoMode(ctx context.Context) (*sudoMode, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sudo != nil {
		return c.sudo, nil
	}
	if c.sudoErr != nil {
		return nil, c.sudoErr
	}
	mode, err := c.probeSudo(ctx)
	var refused *sudoRefusedError
	if errors.As(err, &refused) {
		// Remembered, so that a wrong password is not tried again and again (and
		// perhaps locks the account).
		c.sudoErr = err
	}
	if err != nil {
		return nil, err
	}
	c.sudo = mode
	return mode, nil
}

// sudoRefusedError is sudo saying no for good: not installed, no password to give,
// or a wrong one.
type sudoRefusedError struct{ msg string }

func (e *sudoRefusedError) Error() string { return e.msg }

func (c *Conn) probeSudo(ctx context.Context) (*sudoMode, error) {
	probe := shell.Join("sudo", "-n", "--", "true")
	err := c.run(ctx, probe, probe, nil, nil, nil, nil)
	if err == nil {
		return &sudoMode{}, nil
	}
	var ee *transport.ExitError
	if !errors.As(err, &ee) {
		return nil, fmt.Errorf("ssh %s: become root: %w", c.name, err)
	}
	if ee.Status == 127 {
		return nil, &sudoRefusedError{fmt.Sprintf("ssh %s: become root: sudo is not installed on the host", c.name)}
	}
	if c.cfg.BecomePassword == nil {
		return nil, &sudoRefusedError{fmt.Sprintf("ssh %s: become root: sudo -n refused (%s) and no become password is configured",
			c.name, strings.TrimSpace(ee.Stderr))}
	}
	password, err := c.cfg.BecomePassword()
	if err != nil {
		return nil, fmt.Errorf("ssh %s: become root: get the sudo password: %w", c.name, err)
	}
	if password == "" || strings.ContainsAny(password, "\n\r") {
		return nil, fmt.Errorf("ssh %s: become root: the sudo password is empty or holds a line break", c.name)
	}
	mode := &sudoMode{password: password, prompt: "[cauldron-sudo-" + randomHex() + "]",
		ready: "[cauldron-run-" + randomHex() + "]"}
	line, _ := mode.wrap("true")
	if err := c.run(ctx, "sudo true", line, mode, nil, nil, nil); err != nil {
		err = redact(err, password)
		if errors.As(err, &ee) {
			return nil, &sudoRefusedError{fmt.Sprintf("ssh %s: become root: sudo refused the password: %v", c.name, err)}
		}
		return nil, fmt.Errorf("ssh %s: become root: %w", c.name, err)
	}
	return mode, nil
}

// redact removes password from err's message, as a second guard: sudo does not echo
// it, but a message we do not control might.
func redact(err error, password string) error {
	if err == nil || password == "" {
		return err
	}
	var ee *transport.ExitError
	if errors.As(err, &ee) {
		ee.Stderr = strings.ReplaceAll(ee.Stderr, password, "[redacted]")
		ee.Line = strings.ReplaceAll(ee.Line, password, "[redacted]")
	}
	if msg := err.Error(); strings.Contains(msg, password) {
		// The chain is lost here, which is the price of not leaking the password.
		return errors.New(strings.ReplaceAll(msg, password, "[redacted]"))
	}
	return err
}
