package bench_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"flag"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cauldron-go/cauldron/bench"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

var sample = []bench.Measurement{
	{Part: "a", Work: "the seed's Tomcat node", Hosts: 2, Run: "first run", Tool: bench.ToolAnsible, Seconds: []float64{30, 28, 29}, Median: 29},
	{Part: "a", Work: "the seed's Tomcat node", Hosts: 2, Run: "first run", Tool: bench.ToolCauldron, Seconds: []float64{6, 5.8, 5.9}, Median: 5.9},
	{Part: "b", Work: "4 operations", Hosts: 10, Run: "converged", Tool: bench.ToolCauldron, Seconds: []float64{0.5, 0.4, 0.6}, Median: 0.5},
	{Part: "b", Work: "4 operations", Hosts: 10, Run: "converged", Tool: bench.ToolAnsible, Seconds: []float64{11, 12, 11.5}, Median: 11.5},
	{Part: "c", Work: "the lab cluster", Hosts: 4, Run: "over ssh", Tool: bench.ToolCauldron, Seconds: []float64{0.8}, Median: 0.8},
}

func TestRowsPairTheToolsOfTheSameWorkAndGiveTheirRatio(t *testing.T) {
	rows := bench.Rows(sample)
	want := []bench.Row{
		{Part: "a", Work: "the seed's Tomcat node", Hosts: 2, Run: "first run", Ansible: 29, Cauldron: 5.9, Ratio: 29 / 5.9, Pairs: 3},
		{Part: "b", Work: "4 operations", Hosts: 10, Run: "converged", Ansible: 11.5, Cauldron: 0.5, Ratio: 23, Pairs: 3},
		{Part: "c", Work: "the lab cluster", Hosts: 4, Run: "over ssh", Cauldron: 0.8, Pairs: 1},
	}
	if len(rows) != len(want) {
		t.Fatalf("rows %+v, want %+v", rows, want)
	}
	for i := range want {
		got := rows[i]
		if math.Abs(got.Ratio-want[i].Ratio) < 1e-9 {
			got.Ratio = want[i].Ratio
		}
		if got != want[i] {
			t.Errorf("row %d: %+v, want %+v", i, rows[i], want[i])
		}
	}
}

func TestTheTableAndChartMatchTheirGoldenFiles(t *testing.T) {
	res := &bench.Result{CPUs: 2, LoadAverage: "1.00 1.00 1.00", Ansible: "ansible-core 2.14.3",
		Notes: []string{"an example"}, Measurements: sample, Rows: bench.Rows(sample)}
	var table, chart bytes.Buffer
	res.WriteTable(&table)
	bench.Chart(&chart, res)
	for name, got := range map[string][]byte{"table.txt": table.Bytes(), "chart.svg": chart.Bytes()} {
		golden := filepath.Join("testdata", name)
		if *update {
			if err := os.WriteFile(golden, got, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from its golden file (go test ./bench -update rewrites it):\n%s", name, got)
		}
	}
	if err := xml.Unmarshal(chart.Bytes(), new(struct{})); err != nil {
		t.Errorf("the chart is not well-formed XML: %v", err)
	}
}

func TestBadOptionsAreRefusedBeforeAnythingStarts(t *testing.T) {
	for _, o := range []bench.Options{
		{Parts: "bx", Dir: t.TempDir()},
		{Parts: "b", Hosts: []int{0}, Dir: t.TempDir()},
		{Parts: "b"},
	} {
		if _, err := bench.Run(context.Background(), o); err == nil {
			t.Errorf("Run(%+v) = nil error, want one", o)
		}
	}
}

// TestABenchRunLeavesNoContainerOrNetworkBehind runs part b on two light hosts with
// cauldron alone. It needs Docker and the lab's base image; run it under
// flock /tmp/cauldron-docker-tests.lock, as the bench's names are fixed.
func TestABenchRunLeavesNoContainerOrNetworkBehind(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Docker")
	}
	if err := exec.Command("docker", "info").Run(); err != nil {
		t.Skip("Docker does not answer")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := bench.Run(ctx, bench.Options{Parts: "b", Hosts: []int{2}, Pairs: 1, NoAnsible: true, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	var runs []string
	for _, r := range res.Rows {
		if r.Cauldron <= 0 {
			t.Errorf("row %+v: no time of cauldron", r)
		}
		runs = append(runs, r.Run)
	}
	if want := []string{"first run", "converged", "converged, warm"}; !slices.Equal(runs, want) {
		t.Errorf("rows %+v, want cauldron's %q", res.Rows, want)
	}
	if len(res.Floors) != 1 || res.Floors[0].Hosts != 2 || res.Floors[0].Median <= 0 {
		t.Errorf("floors %+v, want the floor of the 2 hosts", res.Floors)
	}
	for _, what := range [][]string{{"ps", "-aq"}, {"network", "ls", "-q"}} {
		out, err := exec.Command("docker", append(what, "--filter", "label=io.cauldron.lab="+bench.Label)...).Output()
		if err != nil {
			t.Fatal(err)
		}
		if s := strings.TrimSpace(string(out)); s != "" {
			t.Errorf("docker %s: left behind: %s", what[0], s)
		}
	}
}

func TestABenchRunWaitsWhileAnotherHoldsTheLock(t *testing.T) {
	f, err := os.OpenFile(bench.LockFile, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Skipf("another bench run holds %s: %v", bench.LockFile, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	var log bytes.Buffer
	_, err = bench.Run(ctx, bench.Options{Parts: "b", Hosts: []int{1}, NoAnsible: true, Dir: t.TempDir(), Log: &log})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Run while the lock is held: %v, want it to wait until its context ends", err)
	}
	if !strings.Contains(log.String(), "waiting for it to end") {
		t.Errorf("log %q does not say it waits", log.String())
	}
}

func TestAFleetIsQuietOnlyUnderThreePercentOfACorePerHost(t *testing.T) {
	for _, c := range []struct {
		cpu   float64
		hosts int
		quiet bool
	}{
		{cpu: 0, hosts: 2, quiet: true},
		{cpu: 0.05, hosts: 2, quiet: true},  // two idle Tomcats
		{cpu: 0.07, hosts: 2, quiet: false}, // one of them still booting
		{cpu: 0.07, hosts: 10, quiet: true},
		{cpu: 0.73, hosts: 2, quiet: false}, // a JVM's burst
	} {
		if got := bench.QuietWindow(c.cpu, time.Second, c.hosts); got != c.quiet {
			t.Errorf("%.2f CPU seconds in a second on %d hosts: quiet %v, want %v", c.cpu, c.hosts, got, c.quiet)
		}
	}
}

func TestTheWarmDaemonsCPUIsReadFromItsProcStatLine(t *testing.T) {
	tests := []struct {
		name, line string
		want       float64
	}{
		{"plain name", "4242 (mage_output_fi) S 1 4242 4242 0 -1 4194560 1234 0 0 0 37 12 0 0 20 0 9 0 100 0 0", 0.49},
		{"a name with spaces and parentheses", "7 (a ) b) R 1 7 7 0 -1 0 0 0 0 0 100 250 0 0", 3.5},
		{"cut short", "7 (sh) R 1 7", -1},
		{"no name", "nothing here", -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := bench.ProcStatCPU(tt.line); math.Abs(got-tt.want) > 1e-9 {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}
