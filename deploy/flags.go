package deploy

import (
	"flag"
	"io"
)

// FromArgs makes Options of a mage target's optional arguments, which mage fills from
// -inventory=FILE, -dryrun, -report=FILE, -parallel=N, -failfast and -maxfailpercent=N
// when the target declares them as pointers (nil: not given):
//
//	func Motd(ctx context.Context, inventory *string, dryrun *bool, report *string,
//		parallel *int, failfast *bool, maxfailpercent *int) error {
//		_, err := deploy.Run(ctx, deploy.FromArgs(inventory, dryrun, report, parallel, failfast, maxfailpercent), plays)
//		return err
//	}
func FromArgs(inventory *string, dryrun *bool, report *string, parallel *int, failfast *bool, maxfailpercent *int) Options {
	return Options{
		Inventory: deref(inventory), DryRun: deref(dryrun), Report: deref(report),
		Parallel: deref(parallel), FailFast: deref(failfast), MaxFailPercent: deref(maxfailpercent),
	}
}

// AddFlags defines the run's flags on fs, bound to o's fields, for a program of your
// own with the flag package.
func (o *Options) AddFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.Inventory, "inventory", o.Inventory, "the inventory `file`")
	fs.BoolVar(&o.DryRun, "dryrun", o.DryRun, "check only: print the plan with diffs, change nothing")
	fs.StringVar(&o.Report, "report", o.Report, "write the JSON report to `file`")
	fs.IntVar(&o.Parallel, "parallel", o.Parallel, "hosts of a play at once (0: 8)")
	fs.BoolVar(&o.FailFast, "failfast", o.FailFast, "the first failed host stops the run")
	fs.IntVar(&o.MaxFailPercent, "maxfailpercent", o.MaxFailPercent, "stop once more than this `percent` of a play's hosts failed (0: no limit)")
}

// ParseFlags parses args (without the program name) into Options; an unknown flag or
// a stray argument is an error that names it.
func ParseFlags(name string, args []string) (Options, error) {
	var o Options
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	o.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		return Options{}, err
	}
	if fs.NArg() > 0 {
		return Options{}, &argError{arg: fs.Arg(0)}
	}
	o.Name = name
	return o, nil
}

type argError struct{ arg string }

func (e *argError) Error() string { return "unexpected argument " + e.arg + " (flags are -name=value)" }

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
