package targets

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/magefile/mage/mg"
	"golang.org/x/term"

	"github.com/cauldron-go/cauldron/inventory"
	"github.com/cauldron-go/cauldron/lab"
	"github.com/cauldron-go/cauldron/recipes"
	"github.com/cauldron-go/cauldron/runner"
)

// Deploy is the deploy: namespace.
type Deploy mg.Namespace

// Cluster deploys the seed's whole cluster (PostgreSQL, Tomcat nodes, Apache or Nginx, HAProxy); with no -inventory, onto the local Docker lab, which it brings up.
//
// Flags: -inventory=FILE, -dryrun (check only: print the plan with diffs, change
// nothing), -transport=ssh (with the lab: reach its hosts over SSH instead of docker
// exec), -report=FILE (write the JSON report there), -parallel=N (hosts of one role at
// once), -failfast (the first failed host stops the run), -maxfailpercent=N (stop once
// more than N% of a play's hosts failed).
func (Deploy) Cluster(ctx context.Context, inventory *string, dryrun *bool, transport *string, report *string, parallel *int, failfast *bool, maxfailpercent *int) error {
	path := deref(inventory)
	if path == "" {
		l, err := bringUpLab(ctx, lab.Options{Log: os.Stdout})
		if err != nil {
			return err
		}
		path = l.DockerInventory
		if deref(transport) == "ssh" {
			path = l.SSHInventory
		}
	} else if t := deref(transport); t != "" {
		return fmt.Errorf("-transport=%s is for the lab; an inventory names each host's transport itself", t)
	}
	r, err := deployCluster(ctx, path, deployOptions{
		plan: deref(dryrun), report: deref(report), parallel: deref(parallel), failFast: deref(failfast),
		maxFailPercent: deref(maxfailpercent),
	})
	if r != nil && r.Failed() {
		return errors.New("deploy:cluster failed on at least one host (see above)")
	}
	return err
}

type deployOptions struct {
	plan           bool
	report         string
	parallel       int
	failFast       bool
	maxFailPercent int
}

// deployCluster loads the inventory, builds the cluster's plays and runs them.
func deployCluster(ctx context.Context, path string, o deployOptions) (*runner.Report, error) {
	inv, err := inventory.Load(path)
	if err != nil {
		return nil, err
	}
	plays, err := recipes.Cluster(inv)
	if err != nil {
		return nil, err
	}
	mode := runner.Apply
	if o.plan {
		mode = runner.Plan
	}
	fmt.Printf("deploy:cluster: %s, inventory %s\n", modeName(mode), path)
	rep, runErr := runner.Run(ctx, plays, runner.Options{
		Mode: mode, Parallel: o.parallel, FailFast: o.failFast, MaxFailPercent: o.maxFailPercent,
		Progress: os.Stdout, Dial: runner.DialHost, Secrets: inv.Secrets(),
		Color: term.IsTerminal(int(os.Stdout.Fd())), Live: term.IsTerminal(int(os.Stdout.Fd())),
	})
	if o.report != "" && rep != nil {
		if err := writeReport(o.report, rep); err != nil {
			return rep, errors.Join(runErr, err)
		}
		fmt.Printf("report written to %s\n", o.report)
	}
	return rep, runErr
}

func modeName(m runner.Mode) string {
	if m == runner.Plan {
		return "dry run (check only, nothing changes)"
	}
	return "apply"
}

func writeReport(path string, r *runner.Report) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("write the report: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("write the report: %w", err)
	}
	if err := r.WriteJSON(f); err != nil {
		f.Close()
		return fmt.Errorf("write the report %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write the report %s: %w", path, err)
	}
	return nil
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// bringUpLab makes sure Docker answers and the developer's lab is up.
func bringUpLab(ctx context.Context, o lab.Options) (*lab.Lab, error) {
	if err := lab.EnsureDocker(ctx, o); err != nil {
		return nil, err
	}
	return lab.Up(ctx, o)
}
