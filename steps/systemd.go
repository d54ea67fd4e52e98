package steps

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/cauldron-go/cauldron/shell"
	"github.com/cauldron-go/cauldron/transport"
)

// SystemdUnit is a unit file in /etc/systemd/system, mode 0644 root:root. systemd reads
// unit files only on daemon-reload, so a change is followed by one; an unchanged unit
// costs no reload.
type SystemdUnit struct {
	Name    string
	Content Content
}

func (u SystemdUnit) String() string { return "systemd unit " + u.Name }

func (u SystemdUnit) file() File {
	return File{Path: "/etc/systemd/system/" + u.Name, Content: u.Content, Mode: 0o644, Owner: "root", Group: "root"}
}

// Validate rejects a name that is not a unit name and a missing content.
func (u SystemdUnit) Validate() error {
	return errors.Join(checkUnit("Name", u.Name), u.file().Validate())
}

// Check is File's check of the unit file; its Apply adds the daemon-reload.
func (u SystemdUnit) Check(ctx context.Context, c transport.Conn) (*Change, error) {
	ch, err := u.file().Check(ctx, c)
	if ch == nil || err != nil {
		return ch, err
	}
	write := ch.Apply
	ch.Summary += ", then systemctl daemon-reload"
	ch.Apply = func(ctx context.Context) error {
		if err := write(ctx); err != nil {
			return err
		}
		return runLogged(ctx, c, "systemctl daemon-reload")
	}
	return ch, nil
}

// Service states.
const (
	Started = "started"
	Stopped = "stopped"
)

// Service is a systemd service's boot-time and current state. A nil Enabled leaves the
// boot-time state alone (write Enabled: new(true)); an empty State leaves the current
// one alone. Use Restart and Reload, as handlers, to act on a configuration change.
type Service struct {
	Name    string
	Enabled *bool
	State   string
}

func (s Service) String() string { return "service " + s.Name }

// Validate rejects a bad unit name, an unknown State and a Service that manages nothing.
func (s Service) Validate() error {
	errs := []error{checkUnit("Name", s.Name)}
	if s.State != "" && s.State != Started && s.State != Stopped {
		errs = append(errs, fmt.Errorf("State: %q is neither %q nor %q", s.State, Started, Stopped))
	}
	if s.State == "" && s.Enabled == nil {
		errs = append(errs, errors.New("Enabled and State: both unset, the step would do nothing"))
	}
	return errors.Join(errs...)
}

// enabledStates are is-enabled answers that mean the unit starts at boot or cannot be
// enabled at all (static units are pulled in by others).
var enabledStates = []string{"enabled", "enabled-runtime", "static", "alias", "indirect", "generated"}

// Check asks systemctl is-enabled and is-active in one command.
func (s Service) Check(ctx context.Context, c transport.Conn) (*Change, error) {
	n := shell.Quote(s.Name)
	out, err := transport.Output(ctx, c, "e=$(systemctl is-enabled "+n+" 2>/dev/null); a=$(systemctl is-active "+n+
		" 2>/dev/null); printf '%s\\n%s\\n' \"$e\" \"$a\"")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s, err)
	}
	enabled, active, _ := strings.Cut(strings.TrimSuffix(out, "\n"), "\n")
	var what, cmds []string
	if s.Enabled != nil {
		isOn := slices.Contains(enabledStates, enabled)
		switch {
		case *s.Enabled && !isOn:
			what, cmds = append(what, "enable"), append(cmds, shell.Join("systemctl", "enable", "--", s.Name))
		case !*s.Enabled && isOn && enabled != "static":
			what, cmds = append(what, "disable"), append(cmds, shell.Join("systemctl", "disable", "--", s.Name))
		}
	}
	switch {
	case s.State == Started && active != "active":
		what, cmds = append(what, "start"), append(cmds, shell.Join("systemctl", "start", "--", s.Name))
	case s.State == Stopped && active != "inactive" && active != "failed" && active != "":
		what, cmds = append(what, "stop"), append(cmds, shell.Join("systemctl", "stop", "--", s.Name))
	}
	if len(what) == 0 {
		return nil, nil
	}
	return &Change{
		Summary: fmt.Sprintf("%s %s (is-enabled %q, is-active %q)", strings.Join(what, " and "), s.Name, enabled, active),
		Apply:   func(ctx context.Context) error { return runLogged(ctx, c, strings.Join(cmds, " && ")) },
	}, nil
}

// Restart restarts a service. It always reports a change: it is meant as a handler, run
// when a step that notifies it changed the service's configuration.
type Restart struct{ Name string }

func (r Restart) String() string { return "restart " + r.Name }

// Validate rejects a bad unit name.
func (r Restart) Validate() error { return checkUnit("Name", r.Name) }

// Check always returns the restart.
func (r Restart) Check(_ context.Context, c transport.Conn) (*Change, error) {
	return systemctlAction(c, "restart", r.Name), nil
}

// Reload reloads a service's configuration without a restart (nginx, haproxy, apache).
// Like Restart, it always reports a change.
type Reload struct{ Name string }

func (r Reload) String() string { return "reload " + r.Name }

// Validate rejects a bad unit name.
func (r Reload) Validate() error { return checkUnit("Name", r.Name) }

// Check always returns the reload.
func (r Reload) Check(_ context.Context, c transport.Conn) (*Change, error) {
	return systemctlAction(c, "reload", r.Name), nil
}

func systemctlAction(c transport.Conn, verb, name string) *Change {
	return &Change{
		Summary: verb + " " + name,
		Apply: func(ctx context.Context) error {
			return runLogged(ctx, c, shell.Join("systemctl", verb, "--", name))
		},
	}
}
