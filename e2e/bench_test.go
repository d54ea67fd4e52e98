package e2e_test

import (
	"context"
	"testing"
	"time"

	"github.com/cauldron-go/cauldron/inventory"
	"github.com/cauldron-go/cauldron/recipes"
	"github.com/cauldron-go/cauldron/runner"
)

// BenchmarkConvergedClusterRecheck is a dry run over SSH of the converged lab: every
// step of every host checked, nothing to change. A converged cluster re-checks in well
// under a second. When the tests did not converge the lab (-run ^$), it deploys once.
func BenchmarkConvergedClusterRecheck(b *testing.B) {
	l := needLab(b)
	if !deployed {
		mustDeploy(b, l.DockerInventory, runner.Apply)
		deployed = true
	}
	inv, err := inventory.Load(l.SSHInventory)
	if err != nil {
		b.Fatal(err)
	}
	plays, err := recipes.Cluster(inv)
	if err != nil {
		b.Fatal(err)
	}
	o := runner.Options{Mode: runner.Plan, Dial: runner.DialHost, Secrets: inv.Secrets()}
	b.ResetTimer()
	for b.Loop() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		rep, err := runner.Run(ctx, plays, o)
		cancel()
		if err != nil || rep.Failed() || rep.Changed() != 0 {
			b.Fatalf("the converged lab is not converged: %v, changes %v", err, changedSteps(rep))
		}
	}
}
