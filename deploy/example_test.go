package deploy_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"

	"github.com/cauldron-go/cauldron/deploy"
	"github.com/cauldron-go/cauldron/inventory"
	"github.com/cauldron-go/cauldron/runner"
	"github.com/cauldron-go/cauldron/steps"
)

// Run with a play built from the inventory it loads: first a dry run, then the run
// that applies, then one that finds nothing to do. The inventory here is one host,
// this machine; the play writes a file in a temporary folder.
func ExampleRun() {
	dir, err := os.MkdirTemp("", "cauldron-deploy-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	inv := filepath.Join(dir, "hosts.yaml")
	if err := os.WriteFile(inv, []byte("hosts:\n  here: {transport: local}\n"), 0o600); err != nil {
		log.Fatal(err)
	}
	plays := func(inv *inventory.Inventory) ([]runner.Play, error) {
		return []runner.Play{{Name: "motd", Hosts: inv.Hosts, Recipe: func(h *inventory.Host) (*steps.Recipe, error) {
			return steps.NewRecipe("motd", steps.File{Path: filepath.Join(dir, "motd"),
				Content: steps.Text("Welcome to " + h.Name + "\n"), Mode: 0o644}), nil
		}}}, nil
	}

	for _, dryRun := range []bool{true, false, false} {
		// Out: nil prints the live lines and the recap on standard output.
		rep, err := deploy.Run(context.Background(), deploy.Options{Inventory: inv, DryRun: dryRun, Out: io.Discard}, plays)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s: %d changed\n", rep.Mode, rep.Changed())
	}
	// Output:
	// plan: 1 changed
	// apply: 1 changed
	// apply: 0 changed
}
