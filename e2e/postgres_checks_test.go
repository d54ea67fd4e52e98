package e2e_test

// In a file of its own, named after cluster_test.go: go test runs a package's tests in
// the order of its files, and this one needs the lab that the first deploy converged.

import (
	"context"
	"testing"
	"time"

	"github.com/cauldron-go/cauldron/inventory"
	"github.com/cauldron-go/cauldron/recipes"
	"github.com/cauldron-go/cauldron/runner"
	"github.com/cauldron-go/cauldron/shell"
	"github.com/cauldron-go/cauldron/transport"
)

// TestTheDatabaseHostIsCheckedWithoutDebiansPsqlWrapper re-checks the converged db
// host with Debian's psql wrapper (pg_wrapper, a Perl program the PATH's psql links
// to) and runuser made to fail in the checks' mount namespace: the role and database
// checks start the server's own psql as postgres with setpriv, so the host still
// checks clean. With the wrapper they cost
// 0.4-0.5 s each on a loaded machine and ended the whole cluster's re-check.
func TestTheDatabaseHostIsCheckedWithoutDebiansPsqlWrapper(t *testing.T) {
	l := needDeployed(t)
	inv, err := inventory.Load(l.DockerInventory)
	if err != nil {
		t.Fatal(err)
	}
	plays, err := recipes.Cluster(inv)
	if err != nil {
		t.Fatal(err)
	}
	var dbPlays []runner.Play
	for _, p := range plays {
		var hosts []*inventory.Host
		for _, h := range p.Hosts {
			if h.Name == "db" {
				hosts = append(hosts, h)
			}
		}
		if len(hosts) > 0 {
			p.Hosts = hosts
			dbPlays = append(dbPlays, p)
		}
	}
	if len(dbPlays) == 0 {
		t.Fatal("no play runs on the db host")
	}
	dial := func(ctx context.Context, h *inventory.Host) (transport.Conn, error) {
		c, err := runner.DialHost(ctx, h)
		if err != nil {
			return nil, err
		}
		return withoutPgWrapper{c}, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// The wrapper really fails where the checks run.
	probe, err := dial(ctx, dbPlays[0].Hosts[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := probe.Run(ctx, transport.Command{Line: "psql --version"}); transport.ExitStatus(err) != 1 {
		t.Fatalf("psql on the PATH in the checks' namespace: %v, want exit status 1 (the wrapper replaced by false)", err)
	}
	if err := probe.Run(ctx, transport.Command{Line: "runuser -u postgres -- true"}); transport.ExitStatus(err) != 1 {
		t.Fatalf("runuser in the checks' namespace: %v, want exit status 1 (replaced by false)", err)
	}
	probe.Close()
	rep, err := runner.Run(ctx, dbPlays, runner.Options{Mode: runner.Plan, Dial: dial, Secrets: inv.Secrets()})
	if err != nil || rep.Failed() || rep.Changed() != 0 {
		var failed []string
		if rep != nil {
			for _, h := range rep.Hosts {
				for _, s := range h.Steps {
					if s.Status == runner.StatusFailed {
						failed = append(failed, s.Step+": "+s.Error)
					}
				}
			}
		}
		t.Fatalf("the converged db host without pg_wrapper: %v, failed %q, changes %q", err, failed, changedSteps(rep))
	}
}

// withoutPgWrapper runs every command in a mount namespace of its own where Debian's
// pg_wrapper is /bin/false, and so is runuser (its PAM session cost more than psql's
// own start: the checks become postgres with setpriv). It is not Pipelined: each
// command is an exec of its own.
type withoutPgWrapper struct{ transport.Conn }

func (c withoutPgWrapper) Run(ctx context.Context, cmd transport.Command) error {
	cmd.Line = shell.Join("unshare", "-m", "sh", "-c",
		`mount --bind /bin/false /usr/share/postgresql-common/pg_wrapper && mount --bind /bin/false "$(command -v runuser)" && exec sh -c "$1"`, "sh", cmd.Line)
	return c.Conn.Run(ctx, cmd)
}
