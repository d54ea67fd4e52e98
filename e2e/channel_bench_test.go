package e2e_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/cauldron-go/cauldron/inventory"
	"github.com/cauldron-go/cauldron/recipes"
	"github.com/cauldron-go/cauldron/runner"
	"github.com/cauldron-go/cauldron/transport"
	"github.com/cauldron-go/cauldron/transport/docker"
	"github.com/cauldron-go/cauldron/transport/sshconn"
)

// BenchmarkConvergedClusterRecheckPerCommandAgainstChannel is the converged lab's dry
// run four ways, alternating in one run: over SSH with a session per command and with
// the command channel, over docker exec with an exec per command and with the
// channel. It reports the medians and the most round trips any host took.
//
// Measured on the 2-core machine with load average 20 to 25 from other runs
// (CAULDRON_E2E_SLOT=4, 5 rounds): SSH 1368 ms a session each, 1164 ms over the
// channel; docker 6008 ms an exec each, 1023 ms over the channel; at most 3 (SSH) and
// 4 (docker) round trips per host, one per play and the pending-handler read. Since
// the checks of all of a host's plays and the pending-handler read go at once over
// the channel, a converged host takes one round trip over either transport (with a
// session or an exec each, a few checks at once, still one per play).
func BenchmarkConvergedClusterRecheckPerCommandAgainstChannel(b *testing.B) {
	l := needLab(b)
	if !deployed {
		mustDeploy(b, l.DockerInventory, runner.Apply)
		deployed = true
	}
	perSession := func(ctx context.Context, h *inventory.Host) (transport.Conn, error) {
		if h.Transport == "docker" {
			name := h.Docker.Container
			if name == "" {
				name = h.Name
			}
			return docker.New(name), nil
		}
		cfg := runner.SSHConfig(h)
		cfg.NoChannel = true
		c, err := sshconn.Dial(ctx, cfg)
		if err != nil {
			return nil, err
		}
		return c, nil
	}
	ways := []struct {
		name string
		inv  string
		dial func(context.Context, *inventory.Host) (transport.Conn, error)
	}{
		{"ssh-session", l.SSHInventory, perSession},
		{"ssh-channel", l.SSHInventory, runner.DialHost},
		{"docker-exec", l.DockerInventory, perSession},
		{"docker-channel", l.DockerInventory, runner.DialHost},
	}
	times := make([][]time.Duration, len(ways))
	trips := make([]int, len(ways))
	type prepared struct {
		plays []runner.Play
		o     runner.Options
	}
	var preps []prepared
	for _, w := range ways {
		inv, err := inventory.Load(w.inv)
		if err != nil {
			b.Fatal(err)
		}
		plays, err := recipes.Cluster(inv)
		if err != nil {
			b.Fatal(err)
		}
		preps = append(preps, prepared{plays, runner.Options{Mode: runner.Plan, Dial: w.dial, Secrets: inv.Secrets()}})
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j, p := range preps {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			start := time.Now()
			rep, err := runner.Run(ctx, p.plays, p.o)
			took := time.Since(start)
			cancel()
			if err != nil || rep.Failed() || rep.Changed() != 0 {
				b.Fatalf("%s: the converged lab is not converged: %v, changes %v", ways[j].name, err, changedSteps(rep))
			}
			times[j] = append(times[j], took)
			for _, h := range rep.Hosts {
				if h.Traffic != nil {
					trips[j] = max(trips[j], h.Traffic.RoundTrips)
				}
			}
		}
	}
	b.StopTimer()
	for j, w := range ways {
		s := slices.Clone(times[j])
		slices.Sort(s)
		b.ReportMetric(float64(s[len(s)/2].Microseconds())/1000, w.name+"-ms")
		if trips[j] > 0 {
			b.ReportMetric(float64(trips[j]), w.name+"-max-round-trips")
		}
	}
}
