package deploy_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cauldron-go/cauldron/deploy"
	"github.com/cauldron-go/cauldron/inventory"
	"github.com/cauldron-go/cauldron/runner"
	"github.com/cauldron-go/cauldron/steps"
	"github.com/cauldron-go/cauldron/transport"
	"github.com/cauldron-go/cauldron/transport/local"
)

// writeInventory writes an inventory of one local host, with the given extra lines
// under its vars, and returns its path.
func writeInventory(t *testing.T, vars string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "inventory.yaml")
	text := "hosts:\n  here:\n    transport: local\n"
	if vars != "" {
		text += "    vars:\n" + vars
	}
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// onePlay is a play of one step on every host of the inventory.
func onePlay(s func(h *inventory.Host) steps.Step) deploy.Plays {
	return func(inv *inventory.Inventory) ([]runner.Play, error) {
		return []runner.Play{{Name: "test", Hosts: inv.Hosts, Recipe: func(h *inventory.Host) (*steps.Recipe, error) {
			return steps.NewRecipe("test", s(h)), nil
		}}}, nil
	}
}

// countingDial dials the local transport and counts the dials.
func countingDial(n *atomic.Int32) func(context.Context, *inventory.Host) (transport.Conn, error) {
	return func(context.Context, *inventory.Host) (transport.Conn, error) {
		n.Add(1)
		return local.New(), nil
	}
}

func TestDryRunChangesNothingAndApplyConvergesWithTheSameCall(t *testing.T) {
	target := filepath.Join(t.TempDir(), "motd")
	plays := onePlay(func(*inventory.Host) steps.Step {
		return steps.File{Path: target, Content: steps.Text("hello\n"), Mode: 0o644}
	})
	inv := writeInventory(t, "")
	for _, tc := range []struct {
		dryRun  bool
		changed int
		exists  bool
		first   string
	}{
		{true, 1, false, "test: dry run (check only, nothing changes), inventory " + inv + "\n"},
		{false, 1, true, "test: apply, inventory " + inv + "\n"},
		{false, 0, true, "test: apply"},
	} {
		var out bytes.Buffer
		rep, err := deploy.Run(context.Background(), deploy.Options{Inventory: inv, DryRun: tc.dryRun, Name: "test", Out: &out}, plays)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Changed() != tc.changed {
			t.Errorf("dry run %v: %d changed, want %d", tc.dryRun, rep.Changed(), tc.changed)
		}
		if _, err := os.Stat(target); (err == nil) != tc.exists {
			t.Errorf("dry run %v: file exists %v, want %v", tc.dryRun, err == nil, tc.exists)
		}
		if !strings.HasPrefix(out.String(), tc.first) || !strings.Contains(out.String(), "RECAP") {
			t.Errorf("output:\n%s", out.String())
		}
	}
}

// A report that cannot be written is known before the run, not after minutes of it.
func TestAnUnwritableReportPathOrABadOptionIsRefusedBeforeAnythingIsDialled(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "a-file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		o    deploy.Options
		want string
	}{
		{"a missing folder", deploy.Options{Report: filepath.Join(dir, "no", "such", "report.json")}, "its folder"},
		{"a folder", deploy.Options{Report: dir}, "is a folder"},
		{"below a file", deploy.Options{Report: filepath.Join(file, "report.json")}, "is not a folder"},
		{"parallel below 0", deploy.Options{Parallel: -1}, "-parallel=-1"},
		{"a percentage above 100", deploy.Options{MaxFailPercent: 101}, "-maxfailpercent=101"},
		{"no inventory", deploy.Options{}, "-inventory=FILE is required"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var dials atomic.Int32
			o := tc.o
			if tc.name != "no inventory" {
				o.Inventory = writeInventory(t, "")
			}
			o.Dial, o.Out = countingDial(&dials), &bytes.Buffer{}
			_, err := deploy.Run(context.Background(), o, onePlay(func(*inventory.Host) steps.Step { return steps.Command{Line: "true"} }))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
			if dials.Load() != 0 {
				t.Fatalf("dialled %d hosts", dials.Load())
			}
		})
	}
}

// When a host failed and the report could not be written either, both are said: the
// report's error is not dropped for the host's, nor the other way round.
func TestAFailingReportWriteIsReturnedWithTheHostsFailure(t *testing.T) {
	reportDir := t.TempDir()
	report := filepath.Join(reportDir, "report.json")
	plays := onePlay(func(*inventory.Host) steps.Step {
		return steps.Func{Name: "remove the report's folder, then fail", CheckFunc: func(context.Context, transport.Conn) (*steps.Change, error) {
			if err := os.RemoveAll(reportDir); err != nil {
				return nil, err
			}
			return nil, errors.New("this host fails")
		}}
	})
	rep, err := deploy.Run(context.Background(), deploy.Options{Inventory: writeInventory(t, ""), Report: report, Out: &bytes.Buffer{}}, plays)
	if rep == nil || !rep.Failed() {
		t.Fatalf("report %v: want a failed host", rep)
	}
	for _, want := range []string{"1 of 1 hosts failed: here", "write the report " + report} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
}

func TestTheReportIsWrittenWhenAHostFailed(t *testing.T) {
	report := filepath.Join(t.TempDir(), "report.json")
	plays := onePlay(func(*inventory.Host) steps.Step { return steps.Command{Line: "exit 3"} })
	_, err := deploy.Run(context.Background(), deploy.Options{Inventory: writeInventory(t, ""), Report: report, Out: &bytes.Buffer{}}, plays)
	if err == nil || !strings.Contains(err.Error(), "1 of 1 hosts failed") {
		t.Fatalf("got %v", err)
	}
	b, err := os.ReadFile(report)
	if err != nil || !bytes.Contains(b, []byte(`"failed": true`)) {
		t.Fatalf("report %s (%v)", b, err)
	}
	if fi, err := os.Stat(report); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("report mode: %v %v", fi.Mode(), err)
	}
}

// The caller never lists the secrets: Run masks those of the inventory it loaded, in
// the live lines, the recap, the report and the error.
func TestTheInventorysSecretsAreMaskedWithoutTheCallerNamingThem(t *testing.T) {
	const secret = "s3cret-token-0123456789"
	t.Setenv("DEPLOY_TEST_TOKEN", secret)
	inv := writeInventory(t, "      token: {from_env: DEPLOY_TEST_TOKEN}\n")
	report := filepath.Join(t.TempDir(), "report.json")
	plays := onePlay(func(h *inventory.Host) steps.Step {
		token, _ := h.Vars.String("token")
		return steps.Func{Name: "use " + token, CheckFunc: func(context.Context, transport.Conn) (*steps.Change, error) {
			return nil, errors.New("refused " + token)
		}}
	})
	var out bytes.Buffer
	_, err := deploy.Run(context.Background(), deploy.Options{Inventory: inv, DryRun: true, Report: report, Out: &out}, plays)
	b, rerr := os.ReadFile(report)
	if rerr != nil {
		t.Fatal(rerr)
	}
	for what, text := range map[string]string{"output": out.String(), "report": string(b), "error": err.Error()} {
		if strings.Contains(text, secret) {
			t.Errorf("the %s shows the secret:\n%s", what, text)
		}
	}
	if !strings.Contains(out.String(), "refused ********") {
		t.Errorf("output does not show the masked failure:\n%s", out.String())
	}
}

// Ctrl-C stops the run: the step running is cancelled, the recap is printed, and Run
// returns saying so. The process is not killed.
func TestCtrlCStopsEveryHostAndStillPrintsTheRecap(t *testing.T) {
	plays := onePlay(func(*inventory.Host) steps.Step {
		return steps.Func{Name: "press Ctrl-C, then wait", CheckFunc: func(ctx context.Context, _ transport.Conn) (*steps.Change, error) {
			if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
				return nil, err
			}
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(20 * time.Second):
				return nil, errors.New("Ctrl-C did not cancel the step")
			}
		}}
	})
	var out bytes.Buffer
	_, err := deploy.Run(context.Background(), deploy.Options{Inventory: writeInventory(t, ""), Out: &out}, plays)
	if err == nil || !strings.Contains(err.Error(), "cancelled") {
		t.Fatalf("got %v", err)
	}
	if !strings.Contains(out.String(), "RECAP") {
		t.Fatalf("no recap:\n%s", out.String())
	}
}

func TestParseFlagsReadsWhatDeployClusterReads(t *testing.T) {
	o, err := deploy.ParseFlags("deploy:motd", []string{"-inventory=prod.yaml", "-dryrun", "-report=r.json", "-parallel=3", "-failfast", "-maxfailpercent=20"})
	if err != nil {
		t.Fatal(err)
	}
	want := deploy.Options{Name: "deploy:motd", Inventory: "prod.yaml", DryRun: true, Report: "r.json", Parallel: 3, FailFast: true, MaxFailPercent: 20}
	if o.Name != want.Name || o.Inventory != want.Inventory || o.DryRun != want.DryRun || o.Report != want.Report ||
		o.Parallel != want.Parallel || o.FailFast != want.FailFast || o.MaxFailPercent != want.MaxFailPercent {
		t.Fatalf("got %+v", o)
	}
	for _, bad := range [][]string{{"-dryrn"}, {"-parallel=x"}, {"prod.yaml"}} {
		if _, err := deploy.ParseFlags("x", bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
	inv, dry, par := "i.yaml", true, 2
	if o := deploy.FromArgs(&inv, &dry, nil, &par, nil, nil); o.Inventory != inv || !o.DryRun || o.Parallel != 2 || o.Report != "" {
		t.Errorf("FromArgs: %+v", o)
	}
}
