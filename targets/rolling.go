package targets

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// RollingSoak repeats the Apache lab's rolling scenarios five times in a row under load (a config change, a new release, and back), each with 0 failed requests and 0 broken counts; longer than verify and not part of it.
//
// It runs the end-to-end suite's TestRollingRestartsAndAReleaseGoUnnoticedUnderLoadOnTheApacheLab
// on a fresh lab (CAULDRON_E2E_SLOT picks another lab, as for the suite), printing each
// round's load numbers (requests, failed, broken, p50/p99, node shares, new-session
// spread), the time of each phase of each drained restart, and a summary line per
// rollout at the end. CAULDRON_ROLLING_ROUNDS sets another number of rounds (1 to 50);
// CAULDRON_ROLLING_REPLICATION=sync, written or async sets the session replication (the
// inventory's own, the project's default, when unset).
func RollingSoak(ctx context.Context) error {
	rounds := os.Getenv("CAULDRON_ROLLING_ROUNDS")
	if rounds == "" {
		rounds = "5"
	}
	run := "^(TestFirstDeployOverDockerExecConvergesTheBareLab|TestRollingRestartsAndAReleaseGoUnnoticedUnderLoadOnTheApacheLab)$"
	args := []string{"test", "-count=1", "-v", "-timeout=4h", "-run", run, "./e2e"}
	fmt.Printf("+ CAULDRON_ROLLING_ROUNDS=%s go %s\n", rounds, strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Env = append(os.Environ(), "CAULDRON_ROLLING_ROUNDS="+rounds)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("rolling soak: %w", err)
	}
	return nil
}
