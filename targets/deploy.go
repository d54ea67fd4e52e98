package targets

import (
	"context"
	"fmt"
	"os"

	"github.com/magefile/mage/mg"

	"github.com/cauldron-go/cauldron/deploy"
	"github.com/cauldron-go/cauldron/lab"
	"github.com/cauldron-go/cauldron/recipes"
)

// Deploy is the deploy: namespace.
type Deploy mg.Namespace

// Cluster deploys the seed's whole cluster (PostgreSQL, Tomcat nodes, Apache or Nginx, HAProxy); with no -inventory, onto the local Docker lab, which it brings up.
//
// Flags: -inventory=FILE, -dryrun (check only: print the plan with diffs, change
// nothing), -transport=ssh (with the lab: reach its hosts over SSH instead of docker
// exec), -report=FILE (write the JSON report there; its folder must exist), -parallel=N
// (hosts of one role at once, 8 by default), -failfast (the first failed host stops the run), -maxfailpercent=N (stop once
// more than N% of a play's hosts failed). It is deploy.Run with the cluster's recipes:
// a target of your own gets the same with your plays.
func (Deploy) Cluster(ctx context.Context, inventory *string, dryrun *bool, transport *string, report *string, parallel *int, failfast *bool, maxfailpercent *int) error {
	path := deref(inventory)
	o := deploy.FromArgs(inventory, dryrun, report, parallel, failfast, maxfailpercent)
	o.Name = "deploy:cluster"
	if err := o.Check(); err != nil { // before the lab comes up, which takes a while
		return err
	}
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
	o.Inventory = path
	_, err := deploy.Run(ctx, o, recipes.Cluster)
	return err
}

// bringUpLab makes sure Docker answers and the developer's lab is up.
func bringUpLab(ctx context.Context, o lab.Options) (*lab.Lab, error) {
	if err := lab.EnsureDocker(ctx, o); err != nil {
		return nil, err
	}
	return lab.Up(ctx, o)
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
