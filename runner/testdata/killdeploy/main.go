// Command killdeploy is a tiny controller for the runner's kill-at-random test: it
// deploys a versioned app.conf into a directory over the local transport, with a
// handler that "restarts the service" by copying app.conf to running, and prints the
// recap and the number of changes. The test SIGKILLs it at random points.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cauldron-go/cauldron/inventory"
	"github.com/cauldron-go/cauldron/runner"
	"github.com/cauldron-go/cauldron/shell"
	"github.com/cauldron-go/cauldron/steps"
	"github.com/cauldron-go/cauldron/transport"
	"github.com/cauldron-go/cauldron/transport/local"
)

func main() {
	dir := flag.String("dir", "", "the directory the service lives in")
	version := flag.Int("version", 0, "the version app.conf gets")
	plan := flag.Bool("plan", false, "plan only")
	flag.Parse()
	conf, running := filepath.Join(*dir, "app.conf"), filepath.Join(*dir, "running")
	recipe := func(*inventory.Host) (*steps.Recipe, error) {
		return steps.NewRecipe("service",
			steps.Notify(steps.File{Path: conf, Content: steps.Text(fmt.Sprintf("version=%d\n", *version))}, "restart"),
			// A slow converged step between the change and its handler: the window in
			// which a dead controller used to lose the restart.
			steps.Command{Name: "wait for the others", Line: "true", Unless: "sleep 0.1"},
		).Handle("restart", steps.Command{
			Name: "restart the service",
			Line: "sleep 0.05; cp " + shell.Quote(conf) + " " + shell.Quote(running+".new") + " && mv " + shell.Quote(running+".new") + " " + shell.Quote(running),
		}), nil
	}
	mode := runner.Apply
	if *plan {
		mode = runner.Plan
	}
	rep, err := runner.Run(context.Background(), []runner.Play{{
		Name: "service", Hosts: []*inventory.Host{{Name: "svc", Transport: "local"}}, Recipe: recipe,
	}}, runner.Options{
		Mode:     mode,
		Progress: os.Stdout,
		Dial:     func(context.Context, *inventory.Host) (transport.Conn, error) { return local.New(), nil },
		StateDir: func(*inventory.Host) string { return filepath.Join(*dir, "state") },
	})
	fmt.Printf("changed: %d\n", rep.Changed())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
