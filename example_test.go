package cauldron_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/cauldron-go/cauldron/inventory"
	"github.com/cauldron-go/cauldron/runner"
	"github.com/cauldron-go/cauldron/shell"
	"github.com/cauldron-go/cauldron/steps"
)

// A custom recipe is plain Go: built-in steps (or your own, anything with String and
// Check) composed into a recipe, with a handler that runs only when a step that
// notifies it changed something. The runner runs it on every host of a play; here
// the inventory has one host, the machine itself, and the recipe works in a temporary
// folder. The third run finds nothing to do.
func Example_customRecipe() {
	// README: custom recipe begins
	dir, err := os.MkdirTemp("", "cauldron-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	inv, err := inventory.Parse("example.yaml", []byte("hosts:\n  here: {transport: local}\n"))
	if err != nil {
		log.Fatal(err)
	}
	motd := func(h *inventory.Host) (*steps.Recipe, error) {
		return steps.NewRecipe("motd",
			steps.Dir{Path: dir + "/etc", Mode: 0o755},
			steps.Notify(steps.File{
				Path:    dir + "/etc/motd",
				Content: steps.Text("Welcome to " + h.Name + "\n"),
				Mode:    0o644,
			}, "log the change"),
		).Handle("log the change", steps.Command{
			Name: "log the change",
			Line: "echo motd changed >> " + shell.Quote(dir+"/changes.log"),
		}), nil
	}
	plays := []runner.Play{{Name: "motd", Hosts: inv.Hosts, Recipe: motd}}

	for _, mode := range []runner.Mode{runner.Plan, runner.Apply, runner.Apply} {
		report, err := runner.Run(context.Background(), plays, runner.Options{
			Mode: mode, Dial: runner.DialHost, Secrets: inv.Secrets(),
			// Progress: os.Stdout prints a live line per step and a recap.
		})
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s: %d changed\n", mode, report.Changed())
	}
	// README: custom recipe ends

	// Output:
	// plan: 2 changed
	// apply: 3 changed
	// apply: 0 changed
}
