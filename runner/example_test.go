package runner_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/cauldron-go/cauldron/inventory"
	"github.com/cauldron-go/cauldron/runner"
	"github.com/cauldron-go/cauldron/shell"
	"github.com/cauldron-go/cauldron/steps"
	"github.com/cauldron-go/cauldron/transport"
	"github.com/cauldron-go/cauldron/transport/local"
)

// Run a two-step recipe on this machine: a directory, then a file in it. The second
// run finds nothing to do.
func ExampleRun() {
	dir, err := os.MkdirTemp("", "cauldron-example-")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	conf := filepath.Join(dir, "conf")

	mkdir := steps.Func{Name: "Directory conf", CheckFunc: func(ctx context.Context, c transport.Conn) (*steps.Change, error) {
		switch err := c.Run(ctx, transport.Command{Line: shell.Join("test", "-d", conf)}); transport.ExitStatus(err) {
		case 0:
			return nil, nil
		case 1:
			return &steps.Change{Summary: "create " + conf, Apply: func(ctx context.Context) error {
				return c.Run(ctx, transport.Command{Line: shell.Join("mkdir", "-p", conf)})
			}}, nil
		default:
			return nil, fmt.Errorf("look for %s: %w", conf, err)
		}
	}}
	file := steps.Func{Name: "File conf/app.properties", CheckFunc: func(ctx context.Context, c transport.Conn) (*steps.Change, error) {
		path := filepath.Join(conf, "app.properties")
		old, err := c.Read(ctx, path)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		if string(old) == "port=8080\n" {
			return nil, nil
		}
		return &steps.Change{Summary: "write " + path, Apply: func(ctx context.Context) error {
			return c.Put(ctx, transport.File{Path: path, Content: []byte("port=8080\n")})
		}}, nil
	}}

	plays := []runner.Play{{
		Name:  "app",
		Hosts: []*inventory.Host{{Name: "localhost", Transport: "local"}},
		Recipe: func(*inventory.Host) (*steps.Recipe, error) {
			return steps.NewRecipe("app", mkdir, file), nil
		},
	}}
	opts := runner.Options{
		Mode: runner.Apply,
		Dial: func(context.Context, *inventory.Host) (transport.Conn, error) { return local.New(), nil },
		// Progress: os.Stdout would print the live lines and the recap.
	}
	for range 2 {
		rep, err := runner.Run(context.Background(), plays, opts)
		if err != nil {
			fmt.Println(err)
			return
		}
		for _, s := range rep.Hosts[0].Steps {
			fmt.Printf("%s: %s\n", s.Step, s.Status)
		}
		fmt.Println("changed:", rep.Changed())
	}
	// Output:
	// Directory conf: changed
	// File conf/app.properties: changed
	// changed: 2
	// Directory conf: ok
	// File conf/app.properties: ok
	// changed: 0
}

// The runner keeps what it owes a host (handlers notified by a change and not run
// yet) in a state directory on the host. By default that is /var/lib/cauldron for
// root and ~/.local/state/cauldron for another user; StateDir (or the inventory
// variable cauldron_state_dir) puts it elsewhere, here for the local machine only.
func ExampleOptions_stateDir() {
	opts := runner.Options{
		Mode: runner.Apply,
		Dial: runner.DialHost,
		StateDir: func(h *inventory.Host) string {
			if h.Transport == "local" {
				return "/srv/app/.cauldron"
			}
			return "" // the default, or the host's cauldron_state_dir
		},
	}
	fmt.Println(opts.StateDir(&inventory.Host{Name: "here", Transport: "local"}))
	fmt.Println(runner.StateDirVar)
	// Output:
	// /srv/app/.cauldron
	// cauldron_state_dir
}
