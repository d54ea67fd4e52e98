// Package deploy is the front door for running plays from a program of your own, most
// often a mage target: one call, Run, gives a custom recipe everything
// `go run mage.go deploy:cluster` has.
//
//   - the flags -inventory, -dryrun, -report, -parallel, -failfast and
//     -maxfailpercent, taken from a mage target's optional arguments (FromArgs) or a
//     flag.FlagSet (AddFlags, ParseFlags);
//   - the inventory loaded with its file:line errors before anything connects, and
//     every secret in it masked in everything printed, reported or returned: the
//     plays are built from the inventory Run loaded, so there is no Secrets list to
//     forget;
//   - each host dialled by the transport its inventory entry names, with the
//     inventory's host-key rules (known_hosts, accept-new) and ~/.ssh/config values;
//   - a live line per step and the recap on standard output (or Options.Out),
//     coloured on a terminal;
//   - Ctrl-C (or SIGTERM) stops every host cleanly and still prints the recap;
//   - the JSON report, whose folder is checked before the run, written even when a
//     host failed, and its write error returned with the run's, never instead of it.
//
// Hosts of a play run 8 at a time (runner.DefaultParallel) unless -parallel says
// otherwise; a play's Serial caps it further (1 is a rolling change).
package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"golang.org/x/term"

	"github.com/cauldron-go/cauldron/inventory"
	"github.com/cauldron-go/cauldron/runner"
	"github.com/cauldron-go/cauldron/transport"
)

// Options say what to run and how: the values of the flags, and where output goes.
type Options struct {
	// Inventory is the inventory file's path (-inventory). Required.
	Inventory string
	// DryRun checks only (-dryrun): the plan with diffs, nothing changed.
	DryRun bool
	// Report, when set, is where the JSON report is written (-report).
	Report string
	// Parallel is how many hosts of a play run at once (-parallel); 0 means 8.
	Parallel int
	// FailFast makes the first failed host stop the run (-failfast).
	FailFast bool
	// MaxFailPercent stops the run once more than this percentage of a play's hosts
	// failed (-maxfailpercent); 0 means no limit.
	MaxFailPercent int

	// Name names the run in its first line and its errors ("deploy:motd"); empty
	// means "deploy".
	Name string
	// Out receives the live lines, the recap and the run's own lines; nil means
	// standard output.
	Out io.Writer
	// Dial connects to a host; nil means runner.DialHost, by the inventory's transport.
	Dial func(ctx context.Context, h *inventory.Host) (transport.Conn, error)
	// Secrets are masked as well as the inventory's own (a value your program read
	// from elsewhere).
	Secrets []string
}

// Plays builds the plays of a run from the inventory Run loaded.
type Plays func(inv *inventory.Inventory) ([]runner.Play, error)

// Run loads the inventory, builds the plays with plays, and runs them as Options say,
// printing the live lines and the recap, and writing the report if asked. Everything
// that can be checked before a host is dialled is: the options, the report's folder,
// the inventory and every recipe. The report is nil when the run did not start; the
// error is non-nil when a host failed, the run was stopped or cancelled, or the report
// could not be written (then with the run's own error, if any).
func Run(ctx context.Context, o Options, plays Plays) (*runner.Report, error) {
	name := o.Name
	if name == "" {
		name = "deploy"
	}
	out := o.Out
	if out == nil {
		out = os.Stdout
	}
	if err := o.Check(); err != nil {
		return nil, err
	}
	if o.Inventory == "" {
		return nil, fmt.Errorf("%s: -inventory=FILE is required", name)
	}
	inv, err := inventory.Load(o.Inventory)
	if err != nil {
		return nil, err
	}
	ps, err := plays(inv)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	dial := o.Dial
	if dial == nil {
		dial = runner.DialHost
	}
	mode, what := runner.Apply, "apply"
	if o.DryRun {
		mode, what = runner.Plan, "dry run (check only, nothing changes)"
	}

	// Ctrl-C cancels the run, which stops every host cleanly and prints the recap; a
	// second Ctrl-C, after stop, is the default again and ends the process.
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	fmt.Fprintf(out, "%s: %s, inventory %s\n", name, what, o.Inventory)
	rep, runErr := runner.Run(ctx, ps, runner.Options{
		Mode: mode, Parallel: o.Parallel, FailFast: o.FailFast, MaxFailPercent: o.MaxFailPercent,
		Progress: out, Dial: dial, Secrets: append(inv.Secrets(), o.Secrets...),
		Color: isTerminal(out), Live: isTerminal(out),
	})
	if runErr != nil {
		runErr = fmt.Errorf("%s: %w", name, runErr)
	}
	if o.Report != "" && rep != nil {
		if err := writeReport(o.Report, rep); err != nil {
			return rep, errors.Join(runErr, fmt.Errorf("%s: %w", name, err))
		}
		fmt.Fprintf(out, "report written to %s\n", o.Report)
	}
	return rep, runErr
}

// Check reports, before anything runs, every option that is wrong and a report that
// could not be written (all but the inventory, which Run loads). Run calls it first; call it yourself to fail before slow
// preparations of your own (deploy:cluster does, before it brings up the lab).
func (o Options) Check() error {
	name := o.Name
	if name == "" {
		name = "deploy"
	}
	var errs []error
	if o.Parallel < 0 {
		errs = append(errs, fmt.Errorf("-parallel=%d: want 0 (the default, 8) or more", o.Parallel))
	}
	if o.MaxFailPercent < 0 || o.MaxFailPercent > 100 {
		errs = append(errs, fmt.Errorf("-maxfailpercent=%d: want 0 (no limit) to 100", o.MaxFailPercent))
	}
	if o.Report != "" {
		errs = append(errs, checkReportPath(o.Report))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// checkReportPath makes sure, before the run, that the report can be written: its
// folder exists and takes a new file, and the path is not a folder. A run of minutes
// must not end with "cannot write the report".
func checkReportPath(path string) error {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return fmt.Errorf("-report=%s: is a folder, want a file path", path)
	}
	dir := filepath.Dir(path)
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("-report=%s: its folder: %w", path, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("-report=%s: %s is not a folder", path, dir)
	}
	f, err := os.CreateTemp(dir, ".cauldron-report-*")
	if err != nil {
		return fmt.Errorf("-report=%s: its folder does not take a new file: %w", path, err)
	}
	f.Close()
	return os.Remove(f.Name())
}

// writeReport writes the report to a temporary file beside path, mode 0600, and
// renames it into place, so a failed write never leaves half a report.
func writeReport(path string, r *runner.Report) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".cauldron-report-*")
	if err != nil {
		return fmt.Errorf("write the report %s: %w", path, err)
	}
	defer os.Remove(f.Name())
	err = f.Chmod(0o600)
	if err == nil {
		err = r.WriteJSON(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("write the report %s: %w", path, err)
	}
	return nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
