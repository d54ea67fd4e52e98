package sshconn

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/cauldron-go/cauldron/shell"
	"github.com/cauldron-go/cauldron/transport"
)

// sudoMode is how this host's sudo lets the login user become root, found once per
// Conn.
type sudoMode struct {
	password string // empty when sudo -n works
}

// wrap returns the line that runs line as root, and the password to write as the
// first line of its stdin (empty for none).
func (m *sudoMode) wrap(line string) (string, string) {
	if m.password == "" {
		return shell.Join("sudo", "-n", "--", "sh", "-c", line), ""
	}
	// -k: always prompt, so sudo reads exactly the one line we write first.
	// -p '': no prompt on stderr.
	return shell.Join("sudo", "-S", "-k", "-p", "", "--", "sh", "-c", line), m.password
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
	err := c.run(ctx, probe, probe, "", nil, nil, nil)
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
	mode := &sudoMode{password: password}
	line, pw := mode.wrap("true")
	if err := c.run(ctx, "sudo true", line, pw, nil, nil, nil); err != nil {
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
