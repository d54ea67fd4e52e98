package recipes_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/cauldron-go/cauldron/configs"
	"github.com/cauldron-go/cauldron/lab"
	"github.com/cauldron-go/cauldron/recipes"
	"github.com/cauldron-go/cauldron/steps"
	"github.com/cauldron-go/cauldron/steps/postgres"
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

	// Checked ahead as a runner checks them (steps.Prefetch), the role and database
	// reads share one command and one psql, and each answers as it does alone.
	checks := []steps.Step{
		postgres.Role{Name: "mago3d", Password: password},
		postgres.Role{Name: "mago3d", Password: "another-password"},
		postgres.Role{Name: "nosuch", Password: password},
		postgres.Database{Name: "mago3d", Owner: "mago3d"},
		postgres.Database{Name: "mago3d", Owner: "postgres"},
		postgres.Database{Name: "nosuch", Owner: "mago3d"},
	}
	summary := func(ch *steps.Change, err error) string {
		switch {
		case err != nil:
			return "error: " + err.Error()
		case ch == nil:
			return "converged"
		}
		return ch.Summary
	}
	var alone []string
	for _, s := range checks {
		alone = append(alone, summary(s.Check(ctx, c)))
	}
	counted := &countingConn{Conn: c}
	pctx := steps.Prefetch(ctx, counted, checks)
	for i, s := range checks {
		if got := summary(s.Check(pctx, counted)); got != alone[i] {
			t.Errorf("%s: checked ahead %q, alone %q", s, got, alone[i])
		}
	}
	if counted.n != 1 {
		t.Errorf("the %d checks ran %d commands, want 1", len(checks), counted.n)
	}
	if want := []string{"converged", "set login and password of role mago3d", "create login role nosuch",
		"converged", "change the owner of database mago3d from mago3d to postgres",
		"create database nosuch owned by mago3d"}; strings.Join(alone, "\n") != strings.Join(want, "\n") {
		t.Errorf("alone, the checks say\n%s\nwant\n%s", strings.Join(alone, "\n"), strings.Join(want, "\n"))
	}
}

// countingConn counts the commands run over it.
type countingConn struct {
	transport.Conn
	mu sync.Mutex
	n  int
}

func (c *countingConn) Run(ctx context.Context, cmd transport.Command) error {
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
	return c.Conn.Run(ctx, cmd)
}
