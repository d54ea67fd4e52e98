package steps

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/cauldron-go/cauldron/shell"
	"github.com/cauldron-go/cauldron/transport"
)

// InstallUnit installs a systemd unit file as /etc/systemd/system/<Name>, mode 0644
// root:root. systemd reads unit files only on daemon-reload, so a change is followed by
// one; an unchanged unit costs no reload. Name is the unit's file name; a name without a
// type suffix is taken as a service ("mago3d-tomcat" is "mago3d-tomcat.service"). It
// neither enables nor starts the unit: follow it with a Service step, and notify a
// Restart handler so that a changed unit takes effect:
//
//	steps.Notify(steps.InstallUnit{Name: "sleeper", Content: steps.Text(unit)}, "restart sleeper")
type InstallUnit struct {
	Name    string
	Content Content
}

func (u InstallUnit) String() string { return "systemd unit " + unitFile(u.Name) }

func (u InstallUnit) file() File {
	return File{Path: "/etc/systemd/system/" + unitFile(u.Name), Content: u.Content, Mode: 0o644, Owner: "root", Group: "root"}
}

// Validate rejects a name that is not a unit name and a missing content.
func (u InstallUnit) Validate() error {
	return errors.Join(checkUnitName("Name", u.Name), u.file().Validate())
}

// PathsRead is the unit file, content and all.
func (u InstallUnit) PathsRead() []PathRead { return u.file().PathsRead() }

// Check is File's check of the unit file; its Apply adds the daemon-reload.
//
// The reload is skipped when, once the file is written, systemd already has the unit
// loaded as it is on disk (LoadState=loaded, NeedDaemonReload=no): a unit systemd did
// not have loaded before, which systemd 246 and later load from disk when first asked
// about after their unit directories changed. It is asked, not assumed from a version:
// an older systemd, or a directory whose mtime did not move (a coarse clock), answers
// not-found, and then the reload runs. A daemon-reload costs the host 0.4 to 1.5 s
// under load (every unit re-read); the question, one systemctl show.
func (u InstallUnit) Check(ctx context.Context, c transport.Conn) (*Change, error) {
	ch, err := u.file().Check(ctx, c)
	if ch == nil || err != nil {
		return ch, err
	}
	write := ch.Apply
	ch.Summary += ", then systemctl daemon-reload"
	n := shell.Quote(unitFile(u.Name))
	reload := "s=$(systemctl show -p LoadState -p NeedDaemonReload -- " + n + " 2>/dev/null) || s=; " +
		`case "$s" in *LoadState=loaded*NeedDaemonReload=no*|*NeedDaemonReload=no*LoadState=loaded*) ;; ` +
		"*) systemctl daemon-reload;; esac"
	ch.Apply = func(ctx context.Context) error {
		if err := write(ctx); err != nil {
			return err
		}
		return runLogged(ctx, c, reload)
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
//
// Name is the unit, with or without its type: "mago3d-tomcat" is taken as
// "mago3d-tomcat.service", as systemctl does. Restart and Reload read it the same way.
type Service struct {
	Name    string
	Enabled *bool
	State   string
}

func (s Service) String() string { return "service " + unitFile(s.Name) }

// Validate rejects a bad unit name, an unknown State and a Service that manages nothing.
func (s Service) Validate() error {
	errs := []error{checkUnitName("Name", s.Name)}
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

// UnitsRead is the unit.
func (s Service) UnitsRead() []string { return []string{unitFile(s.Name)} }

// Check asks systemd for the unit's file state (what is-enabled prints) and its active
// state (what is-active prints) with one systemctl call: each call costs the host tens
// of milliseconds, the largest part of a converged Service's check.
//
// Enabling or disabling makes systemd reload every unit (as daemon-reload does) unless
// told --no-reload. The change skips the reload when systemd has the unit's file as it
// is on disk (NeedDaemonReload=no: InstallUnit reloaded after writing it, or nothing
// changed it): enable only adds the symlinks that make the unit start at boot, which
// systemd reads at boot; what the reload would add is the target's knowledge of them
// until then. When the file changed on disk unseen, enable reloads as usual, so the
// unit started is the one on disk.
func (s Service) Check(ctx context.Context, c transport.Conn) (*Change, error) {
	name := unitFile(s.Name)
	n := shell.Quote(name)
	var out string
	if answers, ok := answer(ctx, unitsKey{}, c, name); ok {
		out = answers[0]
	} else {
		var err error
		if out, err = transport.Output(ctx, c, "systemctl show -p UnitFileState -p ActiveState -- "+n+" 2>/dev/null || true"); err != nil {
			return nil, fmt.Errorf("%s: %w", s, err)
		}
	}
	var enabled, active string
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(l, "UnitFileState="); ok {
			enabled = v
		} else if v, ok := strings.CutPrefix(l, "ActiveState="); ok {
			active = v
		}
	}
	// Asked when applying, in the same command: a converged check costs nothing more.
	systemctl := func(verb string) string {
		return "if [ \"$(systemctl show -p NeedDaemonReload -- " + n + ")\" = NeedDaemonReload=no ]; then " +
			shell.Join("systemctl", verb, "--no-reload", "--", name) + "; else " + shell.Join("systemctl", verb, "--", name) + "; fi"
	}
	var what, cmds []string
	if s.Enabled != nil {
		isOn := slices.Contains(enabledStates, enabled)
		switch {
		case *s.Enabled && !isOn:
			what, cmds = append(what, "enable"), append(cmds, systemctl("enable"))
		case !*s.Enabled && isOn && enabled != "static":
			what, cmds = append(what, "disable"), append(cmds, systemctl("disable"))
		}
	}
	switch {
	case s.State == Started && active != "active":
		what, cmds = append(what, "start"), append(cmds, shell.Join("systemctl", "start", "--", name))
	case s.State == Stopped && active != "inactive" && active != "failed" && active != "":
		what, cmds = append(what, "stop"), append(cmds, shell.Join("systemctl", "stop", "--", name))
	}
	if len(what) == 0 {
		return nil, nil
	}
	return &Change{
		Summary: fmt.Sprintf("%s %s (is-enabled %q, is-active %q)", strings.Join(what, " and "), name, enabled, active),
		Apply:   func(ctx context.Context) error { return runLogged(ctx, c, strings.Join(cmds, " && ")) },
	}, nil
}

// Restart restarts a service. It always reports a change: it is meant as a handler, run
// when a step that notifies it changed the service's configuration.
type Restart struct{ Name string }

func (r Restart) String() string { return "restart " + unitFile(r.Name) }

// Validate rejects a bad unit name.
func (r Restart) Validate() error { return checkUnitName("Name", r.Name) }

// Check always returns the restart.
func (r Restart) Check(_ context.Context, c transport.Conn) (*Change, error) {
	return systemctlAction(c, "restart", unitFile(r.Name)), nil
}

// Reload reloads a service's configuration without a restart (nginx, haproxy, apache).
// Like Restart, it always reports a change.
type Reload struct{ Name string }

func (r Reload) String() string { return "reload " + unitFile(r.Name) }

// Validate rejects a bad unit name.
func (r Reload) Validate() error { return checkUnitName("Name", r.Name) }

// Check always returns the reload.
func (r Reload) Check(_ context.Context, c transport.Conn) (*Change, error) {
	return systemctlAction(c, "reload", unitFile(r.Name)), nil
}

func systemctlAction(c transport.Conn, verb, name string) *Change {
	return &Change{
		Summary: verb + " " + name,
		Apply: func(ctx context.Context) error {
			return runLogged(ctx, c, shell.Join("systemctl", verb, "--", name))
		},
	}
}

// SystemdUnit is the former name of InstallUnit.
//
// Deprecated: use InstallUnit, the name the design card gives this step.
type SystemdUnit = InstallUnit

// unitSuffix is a unit file name's type, as systemd knows them.
var unitSuffix = regexp.MustCompile(`\.(service|socket|timer|target|path|mount|automount|swap|slice|scope|device)$`)

// unitFile is name with ".service" added when it names no unit type: systemctl reads
// "mago3d-tomcat" as "mago3d-tomcat.service", and so do the steps.
func unitFile(name string) string {
	if name == "" || unitSuffix.MatchString(name) {
		return name
	}
	return name + ".service"
}

// checkUnitName is checkUnit of the unit name was given, with or without ".service";
// its error quotes the name as written.
func checkUnitName(field, name string) error {
	if checkUnit(field, unitFile(name)) != nil {
		return fmt.Errorf("%s: %q is not a systemd unit name (like tomcat or tomcat.service)", field, name)
	}
	return nil
}
