package recipes_test

import (
	"context"
	"strings"
	"testing"

	"github.com/cauldron-go/cauldron/configs"
	"github.com/cauldron-go/cauldron/lab"
	"github.com/cauldron-go/cauldron/recipes"
	"github.com/cauldron-go/cauldron/steps"
	"github.com/cauldron-go/cauldron/transport"
)

// db_port reaches the real PostgreSQL: after the recipe and its handlers ran, the
// server listens there, the apps' role logs in there with its password, and a second
// run (which now finds the server on that port) changes nothing.
func TestPostgreSQLListensOnDBPortAndTheAppsRoleLogsInThere(t *testing.T) {
	if testing.Short() {
		t.Skip("installs PostgreSQL in a container")
	}
	ctx := context.Background()
	c, remove, err := lab.ScratchHost(ctx, "cauldron-test-recipes-pgport")
	if err != nil {
		t.Fatal(err)
	}
	defer remove()
	const password = "pg-port-test-0123456789"
	cluster := configs.Cluster{Nodes: []configs.Node{{Name: "here", Address: "127.0.0.1", Index: 1}}}
	r, err := recipes.PostgreSQL(recipes.PostgresConfig{
		Version: "15", Listen: &configs.PostgresListen{Addresses: []string{"localhost"}, Port: 5433},
		HBA: configs.NewPgHBA(cluster, "mago3d", "mago3d"), Database: "mago3d", Role: "mago3d", Password: password,
	})
	if err != nil {
		t.Fatal(err)
	}
	run := func() (changed []string) {
		notified := map[string]bool{}
		for _, s := range r.Steps() {
			ch, err := steps.Converge(ctx, c, s)
			if err != nil {
				t.Fatal(err)
			}
			if ch {
				changed = append(changed, s.String())
				if n, ok := s.(steps.Notifier); ok {
					for _, h := range n.Notifies() {
						notified[h] = true
					}
				}
			}
		}
		for _, h := range r.Handlers() {
			if notified[h.Name] {
				if _, err := steps.Converge(ctx, c, h.Step); err != nil {
					t.Fatal(err)
				}
			}
		}
		return changed
	}
	run()
	// The apps' login over TCP on the new port, the password on standard input.
	login := `IFS= read -r PGPASSWORD; export PGPASSWORD; psql -X -A -t -h 127.0.0.1 -p 5433 -U mago3d -d mago3d -c 'SELECT current_user'`
	out, err := transport.OutputWithInput(ctx, c, login, strings.NewReader(password+"\n"))
	if err != nil || strings.TrimSpace(out) != "mago3d" {
		t.Fatalf("the apps' role cannot log in on port 5433: %v\n%s", err, out)
	}
	if changed := run(); len(changed) != 0 {
		t.Errorf("a second run changed %v", changed)
	}
}
