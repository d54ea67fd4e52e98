// Package targets holds cauldron's mage targets. The magefile in magefiles/ imports it,
// so `go run mage.go -l` lists these and `go run mage.go <target>` runs one. Each
// target's first doc sentence is what -l shows.
package targets

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// Verify runs go build and go vet on every package, every test (the lab's end-to-end checks on both transports and the Apache lab's high-availability scenarios under load included) and a short fuzzing of each fuzz target.
func Verify(ctx context.Context) error {
	// Build first: a package that only the tests compile (a magefile without its
	// build tag, say) must still fail verify, as it fails a user's `go build ./...`.
	if err := goCmd(ctx, "build", "./..."); err != nil {
		return err
	}
	if err := goCmd(ctx, "vet", "./..."); err != nil {
		return err
	}
	// The end-to-end suite appends each high-availability scenario's numbers to this
	// file; go test would show them only for a failing package.
	table, err := os.CreateTemp("", "cauldron-ha-*.md")
	if err != nil {
		return err
	}
	table.Close()
	defer os.Remove(table.Name())
	os.Setenv(haTableEnv, table.Name())
	args := []string{"test", "-count=1", "-timeout=75m"}
	if notInVerify != "" {
		args = append(args, "-skip", notInVerify)
	}
	err = goCmd(ctx, append(args, "./...")...)
	printHATable(table.Name())
	if err != nil {
		return err
	}
	for _, f := range fuzzTargets {
		if err := goCmd(ctx, "test", "-run=^$", "-fuzz=^"+f.name+"$", "-fuzztime="+fuzzTime(), f.pkg); err != nil {
			return err
		}
	}
	return nil
}

// haTableEnv names the file the end-to-end suite appends each load-checked scenario's
// numbers to (e2e's recordLoad).
const haTableEnv = "CAULDRON_HA_TABLE"

// printHATable prints the scenarios' numbers the end-to-end suite wrote to path, if any.
func printHATable(path string) {
	rows, err := os.ReadFile(path)
	if err != nil || len(rows) == 0 {
		return
	}
	fmt.Printf("\nhigh availability under the load check (16 users; every scenario verify ran):\n"+
		"| scenario | requests | failed | broken | lost | done late | p50 | p99 |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n%s", rows)
}

// haScenarios are the end-to-end scenarios of high availability under load (faults and
// rolling restarts on both labs). `go run mage.go ha` runs them all, strictly.
const haScenarios = "^(TestFaultsUnderLoadOnThe|TestRollingRestartsAndAReleaseGoUnnoticedUnderLoadOnThe)"

// notInVerify are the end-to-end tests verify leaves to `ha` and rollingSoak: the Nginx
// lab's faults and rolling restarts. Session 8 left them out after a CI run broke counts
// behind Nginx under load (Tribes' OrderInterceptor holding written changes is the
// suspect); session 9's fix (one connection per peer) met the bar in most lab runs but
// failed two CI runs and was reverted (README, "Tried in session 9"). Session 13 ran
// verify with them (ci63): 29 min 32 s instead of 22-23 min on this 2-core machine (the
// Nginx lab's scenarios add 7.6 min; the lab itself is deployed by verify already), and
// the cut-off host lost 2 sessions of the node that stayed. Session 14 found and fixed
// that cause (a rename held in the cut host's socket buffer and forwarded late by
// OrderInterceptor: configs.ReplicationInterceptors), so what keeps them out now is time
// alone: verify would take about 31 min here, over the 30 this project keeps it under.
// A test named here is skipped by verify, run by `ha`.
const notInVerify = "^(TestFaultsUnderLoadOnTheNginxLab|TestRollingRestartsAndAReleaseGoUnnoticedUnderLoadOnTheNginxLab)$"

// HA runs the high-availability scenarios under the load check on fresh Apache and Nginx labs (kill -9, a frozen and a cut-off web host, rolling restarts and a release), printing each one's numbers.
func HA(ctx context.Context) error {
	// Strictly: every scenario, whatever e2e's notYet says.
	os.Setenv("CAULDRON_E2E_HA_STRICT", "1")
	return goCmd(ctx, "test", "-count=1", "-v", "-timeout=2h", "-run",
		"^TestFirstDeployOverDockerExecConvergesTheBareLab$|"+haScenarios[1:], "./e2e")
}

// fuzzTargets are the fuzz tests verify runs for a short while each, so that a panic
// found once stays found (go test also replays testdata/fuzz corpora on every run).
var fuzzTargets = []struct{ pkg, name string }{
	{"./shell", "FuzzQuoteRoundTripsThroughSh"},
	{"./inventory", "FuzzParse"},
	{"./recipes", "FuzzClusterValues"},
}

func fuzzTime() string {
	if v := os.Getenv("CAULDRON_FUZZTIME"); v != "" {
		return v
	}
	return "15s"
}

// goCmd runs the go tool with output to this process's, saying what it runs.
func goCmd(ctx context.Context, args ...string) error {
	fmt.Println("+ go", strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go %s: %w", strings.Join(args, " "), err)
	}
	return nil
}
