// Package bench measures cauldron against Ansible on the same work, side by side in
// one run: the runs of the two tools alternate, each measurement is repeated, and the
// table gives medians and their ratio. Three parts:
//
//   - a: the seed's Tomcat-node work (sections 4-5, 18 tasks) on 2 systemd hosts, a
//     first run (from a reset host) and a converged re-run;
//   - b: pyinfra's 4-operation workload (dir, file, line, guarded command) on 10, 50
//     and 100 light hosts (containers running only sshd), first run and converged,
//     and the fleet's floor (see Floor);
//   - c: the lab cluster's converged re-check (a plan) over SSH and over docker exec,
//     then again with 80 ms of round-trip delay, and with 80 ms and 5% loss, on the lab
//     hosts' packets: by tc netem where the kernel has it, else by a netfilter queue
//     (NFQUEUE) that the bench serves (see slownet.go; this machine's kernel has no
//     sch_netem).
//
// Each timed run, of either tool, starts once the hosts are quiet (Fleet.settle): a
// converged re-run would otherwise measure the Tomcat the first run started, booting.
//
// Ansible is Debian's package (installed when missing), run with forks = hosts,
// pipelining, ControlPersist and no fact gathering. Where it cannot be had, the bench
// says so and measures cauldron alone. Everything runs in containers of the bench's
// own (see Label), removed at the end and at the start of every run.
//
// On a machine of two cores that runs the controller and every host, CPU bounds the
// runs of many hosts, so each run's CPU is measured too: the controller's (this
// process, or Ansible's processes) and the hosts' (their containers' cgroups); the
// table ends with them, and DIR/reports and DIR/profiles keep each cauldron run's
// JSON report (for `mage report:timeline`) and its CPU profile (go tool pprof).
package bench

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
	"golang.org/x/sync/errgroup"

	"github.com/cauldron-go/cauldron/inventory"
	"github.com/cauldron-go/cauldron/lab"
	"github.com/cauldron-go/cauldron/runner"
	"github.com/cauldron-go/cauldron/steps"
	"github.com/cauldron-go/cauldron/transport/sshconn"
)

// Options say what to measure.
type Options struct {
	// Parts is any of "a", "b", "c" ("abc" when empty).
	Parts string
	// Hosts are the fleet sizes of part b; default 10, 50, 100.
	Hosts []int
	// Pairs is how many times each measurement is taken per tool, alternating which
	// tool goes first; default 3.
	Pairs int
	// Dir receives the state (key, inventories, playbooks) and the results
	// (bench.json, bench.svg).
	Dir string
	// NoAnsible measures cauldron alone.
	NoAnsible bool
	// Log receives what the bench does; nil discards it.
	Log io.Writer
}

// Tools compared.
const (
	ToolAnsible  = "ansible"
	ToolCauldron = "cauldron"
)

// Measurement is one thing timed Pairs times with one tool.
type Measurement struct {
	Part  string `json:"part"`
	Work  string `json:"work"`
	Hosts int    `json:"hosts"`
	// Run is "first run", "converged", "converged, warm" (cauldron with the warm SSH
	// connection and its kept shells) or, in part c, the transport and network.
	Run     string    `json:"run"`
	Tool    string    `json:"tool"`
	Seconds []float64 `json:"seconds"`
	Median  float64   `json:"median_s"`
	// ControllerCPU is the CPU seconds each run cost on the control machine: the bench's
	// own process for cauldron, the ansible-playbook process and the children it
	// waited for for Ansible (the ControlPersist masters, which outlive a run, are not
	// counted). HostsCPU is what every process in the fleet's containers cost
	// together; empty when the machine has no per-container CPU accounting.
	ControllerCPU []float64 `json:"controller_cpu_s,omitempty"`
	HostsCPU      []float64 `json:"hosts_cpu_s,omitempty"`
}

// Row is one line of the table: a measurement of each tool and their ratio.
type Row struct {
	Part     string  `json:"part"`
	Work     string  `json:"work"`
	Hosts    int     `json:"hosts"`
	Run      string  `json:"run"`
	Ansible  float64 `json:"ansible_median_s,omitempty"`
	Cauldron float64 `json:"cauldron_median_s"`
	// Ratio is Ansible's median over cauldron's; 0 without Ansible.
	Ratio float64 `json:"ratio,omitempty"`
	Pairs int     `json:"pairs"`
}

// Result is a bench run.
type Result struct {
	Start        time.Time     `json:"start"`
	CPUs         int           `json:"cpus"`
	LoadAverage  string        `json:"load_average,omitempty"`
	Ansible      string        `json:"ansible,omitempty"`
	Notes        []string      `json:"notes,omitempty"`
	Rows         []Row         `json:"rows"`
	Measurements []Measurement `json:"measurements"`
	// Floors are part b's fleets' floor (see Floor), by fleet size.
	Floors []Floor `json:"floors,omitempty"`
}

// Run measures the parts o names and returns the result; it removes every container
// and network it made, and any a failed earlier run of the same parts left. One bench
// runs at a time on a machine (LockFile): the names of its containers are fixed, and
// each run's cleanup would remove the other's.
func Run(ctx context.Context, o Options) (res *Result, err error) {
	o.Parts = cmp.Or(o.Parts, "abc")
	if strings.Trim(o.Parts, "abc") != "" {
		return nil, fmt.Errorf("bench: -parts=%s: want letters of a, b, c", o.Parts)
	}
	if len(o.Hosts) == 0 {
		o.Hosts = []int{10, 50, 100}
	}
	for _, n := range o.Hosts {
		if n < 1 || n > 1000 {
			return nil, fmt.Errorf("bench: -hosts=%d: want 1 to 1000", n)
		}
	}
	o.Pairs = cmp.Or(o.Pairs, 3)
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.Dir == "" {
		return nil, errors.New("bench: Options.Dir is empty")
	}
	// Absolute: Ansible runs in it and is given paths in it.
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	o.Dir = dir
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	unlock, err := lockBench(ctx, o.Log)
	if err != nil {
		return nil, err
	}
	defer unlock()
	res = &Result{Start: time.Now().UTC(), CPUs: runtime.NumCPU()}
	if err := cleanupParts(ctx, o.Parts); err != nil {
		return nil, err
	}
	defer func() {
		// With a context of its own: an interrupted run must still clean up.
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		err = errors.Join(err, cleanupParts(cctx, o.Parts))
		// What was measured before an error still makes a table.
		res.LoadAverage = loadAverage()
		res.Rows = Rows(res.Measurements)
	}()

	var ansible string
	if !o.NoAnsible && strings.ContainsAny(o.Parts, "ab") {
		if ansible, err = ensureAnsible(ctx, o.Log); err != nil {
			res.Notes = append(res.Notes, "Ansible is not measured: "+err.Error())
			fmt.Fprintf(o.Log, "bench: %v; measuring cauldron alone\n", err)
			ansible, err = "", nil
		} else {
			res.Ansible = ansibleVersion(ctx, ansible)
		}
	} else if o.NoAnsible {
		res.Notes = append(res.Notes, "Ansible is not measured (-noansible)")
	}

	b := &bencher{o: o, res: res, ansible: ansible}
	if strings.Contains(o.Parts, "a") {
		if err := b.partA(ctx); err != nil {
			return res, err
		}
	}
	if strings.Contains(o.Parts, "b") {
		for _, n := range o.Hosts {
			if err := b.partB(ctx, n); err != nil {
				return res, err
			}
		}
	}
	if strings.Contains(o.Parts, "c") {
		if err := b.partC(ctx); err != nil {
			return res, err
		}
	}
	return res, nil
}

type bencher struct {
	o       Options
	res     *Result
	ansible string
}

func (b *bencher) logf(format string, args ...any) {
	fmt.Fprintf(b.o.Log, "bench: "+format+"\n", args...)
}

// compare measures w on fleet f with both tools, alternating, first runs from a reset
// host and converged re-runs.
func (b *bencher) compare(ctx context.Context, part string, f *Fleet, w workload) error {
	tools := []string{ToolCauldron}
	var a *ansibleRun
	if b.ansible != "" {
		var err error
		if a, err = newAnsibleRun(b.ansible, b.o.Dir, f); err != nil {
			return err
		}
		defer a.close()
		tools = append(tools, ToolAnsible)
	}
	hosts := f.Inventory()
	if len(f.cgroups) > 0 && !slices.Contains(b.res.Notes, settleNote) {
		b.res.Notes = append(b.res.Notes, settleNote)
	}
	times := map[string]map[string][]float64{"first run": {}, "converged": {}, warmRun: {}}
	ctlCPU := map[string]map[string][]float64{"first run": {}, "converged": {}, warmRun: {}}
	hostCPU := map[string]map[string][]float64{"first run": {}, "converged": {}, warmRun: {}}
	// cauldron's converged re-run again with the warm SSH connection, as Ansible has
	// ControlPersist: each timed one follows an untimed one that makes the connections.
	// Short: a unix socket's path has room for 107 bytes.
	warmDir, err := os.MkdirTemp("", "cauldron-bench-warm-")
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	// The daemon's profile covers its whole life: the warm-ups (which dial the hosts)
	// and the timed warm runs of every pair.
	os.Setenv(sshconn.WarmProfileEnv, filepath.Join(b.o.Dir, "profiles", fmt.Sprintf("%s-%d-warm-daemon.pprof", part, len(hosts))))
	defer os.Unsetenv(sshconn.WarmProfileEnv)
	warm := &warmDialer{dir: warmDir}
	defer warm.stop()
	for pair := range b.o.Pairs {
		order := slices.Clone(tools)
		if pair%2 == 1 {
			slices.Reverse(order)
		}
		for _, tool := range order {
			if err := f.onEach(ctx, w.reset); err != nil {
				return fmt.Errorf("bench: reset before a first run: %w", err)
			}
			runs := []string{"first run", "converged"}
			if tool == ToolCauldron {
				runs = append(runs, warmRun)
			}
			for _, run := range runs {
				dial := runner.DialHost
				if run == warmRun {
					dial = warm.dial
					if _, err := cauldronRun(ctx, hosts, w, true, "", dial); err != nil {
						return fmt.Errorf("bench: %s, %d hosts, the warm-up before %s: %w", w.name, len(hosts), run, err)
					}
				}
				if waited, ok := f.settle(ctx); !ok {
					b.logf("the hosts were still busy after %s: measuring all the same", waited.Round(time.Second))
				} else if waited > time.Second {
					b.logf("the hosts settled in %s", waited.Round(100*time.Millisecond))
				}
				var took time.Duration
				var err error
				before, daemonBefore := f.cpuNow(), warm.daemonCPU()
				switch tool {
				case ToolCauldron:
					name := fmt.Sprintf("%s-%d-%s-%d", part, len(hosts), strings.NewReplacer(",", "", " ", "-").Replace(run), pair+1)
					stop := profileTo(filepath.Join(b.o.Dir, "profiles", name+".pprof"))
					took, err = cauldronRun(ctx, hosts, w, run != "first run", filepath.Join(b.o.Dir, "reports", name+".json"), dial)
					stop()
				case ToolAnsible:
					took, err = timed(func() error {
						changed, tasks, err := a.play(ctx, w.playbook, len(hosts))
						switch {
						case err != nil:
							return err
						case run == "converged" && changed != 0:
							return fmt.Errorf("the converged re-run changed %d things: %s", changed, strings.Join(tasks, "; "))
						case run == "first run" && changed == 0:
							return errors.New("the first run changed nothing: the reset did not reset")
						}
						return nil
					})
				}
				if err != nil {
					return fmt.Errorf("bench: %s, %d hosts, %s, %s: %w", w.name, len(hosts), run, tool, err)
				}
				used := f.cpuNow().sub(before)
				ctl := used.self
				if tool == ToolAnsible {
					ctl = used.children
				}
				cpu := fmt.Sprintf("controller CPU %.2fs", ctl)
				if daemonAfter := warm.daemonCPU(); run == warmRun && daemonBefore >= 0 && daemonAfter >= 0 {
					cpu += fmt.Sprintf(" + warm daemon %.2fs", daemonAfter-daemonBefore)
				}
				if used.hosts >= 0 {
					cpu += fmt.Sprintf(", hosts CPU %.2fs", used.hosts)
					hostCPU[run][tool] = append(hostCPU[run][tool], used.hosts)
				}
				b.logf("%-8s %3d hosts  %-9s  %s  (%s)", tool, len(hosts), run, took.Round(time.Millisecond), cpu)
				times[run][tool] = append(times[run][tool], took.Seconds())
				ctlCPU[run][tool] = append(ctlCPU[run][tool], ctl)
			}
		}
	}
	for _, run := range []string{"first run", "converged", warmRun} {
		for _, tool := range tools {
			if len(times[run][tool]) == 0 {
				continue
			}
			b.res.Measurements = append(b.res.Measurements, Measurement{Part: part, Work: w.name, Hosts: len(hosts),
				Run: run, Tool: tool, Seconds: times[run][tool], Median: median(times[run][tool]),
				ControllerCPU: ctlCPU[run][tool], HostsCPU: hostCPU[run][tool]})
		}
	}
	return nil
}

// warmRun is the converged re-run over the warm SSH connection.
const warmRun = "converged, warm"

// settleNote says how the runs were started (see Fleet.settle).
var settleNote = fmt.Sprintf("every timed run, of either tool, began once the hosts had used under %.0f%% of a core each for %s (waiting at most %s): "+
	"a converged re-run does not pay for the Tomcat the first run started booting", settledCPU*100, settledFor, settleAtMost)

// cauldronRun applies w on hosts, every host at once, checks that a converged run
// changed nothing, and writes the run's JSON report to report (after the clock
// stopped), for `mage report:timeline`.
func cauldronRun(ctx context.Context, hosts []*inventory.Host, w workload, converged bool, report string, dial dialFunc) (time.Duration, error) {
	start := time.Now()
	rep, err := runner.Run(ctx, []runner.Play{{Name: "bench", Hosts: hosts, Recipe: w.recipe}},
		runner.Options{Mode: runner.Apply, Parallel: len(hosts), Dial: dial})
	took := time.Since(start)
	// An untimed warm-up (report "") keeps no report.
	if report != "" {
		if werr := writeReport(report, rep); werr != nil {
			return took, errors.Join(err, werr)
		}
	}
	if err != nil {
		return took, err
	}
	if converged && rep.Changed() != 0 {
		return took, fmt.Errorf("the converged re-run changed %d things", rep.Changed())
	}
	if !converged && rep.Changed() == 0 {
		return took, errors.New("the first run changed nothing: the reset did not reset")
	}
	return took, nil
}

func writeReport(p string, rep *runner.Report) error {
	if rep == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	f, err := os.Create(p)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	return errors.Join(rep.WriteJSON(f), f.Close())
}

func timed(f func() error) (time.Duration, error) {
	start := time.Now()
	err := f()
	return time.Since(start), err
}

func (b *bencher) partA(ctx context.Context) error {
	image, err := hostImage(ctx, b.o.Log)
	if err != nil {
		return err
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return fmt.Errorf("bench: the artifacts' cache folder: %w", err)
	}
	arts, err := lab.EnsureArtifacts(ctx, filepath.Join(cache, "cauldron"), b.o.Log)
	if err != nil {
		return err
	}
	f, err := startFleet(ctx, b.o.Log, b.o.Dir, image, Systemd, "node", 2, 0)
	if err != nil {
		return err
	}
	defer b.remove(f)
	w, err := tomcatWorkload(b.o.Dir, Artifacts{JDK: arts.JDK, Tomcat: arts.Tomcat, WARs: arts.Apps}, f.Inventory())
	if err != nil {
		return err
	}
	b.res.Notes = append(b.res.Notes, plainTarNote(arts.JDK, arts.Tomcat))
	if err := b.compare(ctx, "a", f, w); err != nil {
		return err
	}
	return b.transferFloor(ctx, f, arts.JDK)
}

func (b *bencher) partB(ctx context.Context, n int) error {
	image, err := hostImage(ctx, b.o.Log)
	if err != nil {
		return err
	}
	f, err := startFleet(ctx, b.o.Log, b.o.Dir, image, Light, "light", n, 16)
	if err != nil {
		return err
	}
	defer b.remove(f)
	w, err := pyinfraWorkload(b.o.Dir)
	if err != nil {
		return err
	}
	if err := b.compare(ctx, "b", f, w); err != nil {
		return err
	}
	return b.floor(ctx, f)
}

// plainTarNote says whether cauldron's first run in the first pair finds the tarballs' plain tars
// in the cache (steps.Untar.SendPlain) or makes them, which that one run pays for.
func plainTarNote(tarballs ...string) string {
	dir, err := steps.DefaultPlainTarCache()
	if err != nil {
		return "part a: " + err.Error()
	}
	var cold []string
	for _, t := range tarballs {
		sum, err := steps.FileSHA256(t)
		if err != nil {
			return "part a: " + err.Error()
		}
		if _, err := os.Stat(filepath.Join(dir, sum+".tar")); err != nil {
			cold = append(cold, filepath.Base(t))
		}
	}
	if len(cold) == 0 {
		return "part a: the tarballs' plain tars were in the cache (" + dir + ") before the first run"
	}
	return "part a: the plain-tar cache (" + dir + ") lacked " + strings.Join(cold, ", ") +
		": cauldron's first run in the first pair decompressed them, once: the later runs found them there"
}

// Floor is what the fleet costs before any work: for each host, every host at once,
// a new SSH connection with the client cauldron uses (golang.org/x/crypto/ssh, the
// same key and known_hosts check) and one session running `true`, which starts the
// login user's shell: what any tool over SSH pays at the least, before a first
// command of its own.
type Floor struct {
	// Part is the bench's part ("a" or "b"); Work what each host was sent, for part a
	// (empty: part b's connection and `true`).
	Part    string    `json:"part,omitempty"`
	Work    string    `json:"work,omitempty"`
	Hosts   int       `json:"hosts"`
	Seconds []float64 `json:"seconds"`
	Median  float64   `json:"median_s"`
	// HostsCPU is what the fleet's containers spent, per run; ClientCPU this process.
	HostsCPU  []float64 `json:"hosts_cpu_s,omitempty"`
	ClientCPU []float64 `json:"client_cpu_s"`
}

// floor measures Floor on f, Pairs times.
func (b *bencher) floor(ctx context.Context, f *Fleet) error {
	key, err := os.ReadFile(f.KeyFile)
	if err != nil {
		return fmt.Errorf("bench: the floor: %w", err)
	}
	signer, err := ssh.ParsePrivateKey(key)
	if err != nil {
		return fmt.Errorf("bench: the floor: %s: %w", f.KeyFile, err)
	}
	hostKeys, err := knownhosts.New(f.KnownHosts)
	if err != nil {
		return fmt.Errorf("bench: the floor: %w", err)
	}
	cfg := &ssh.ClientConfig{User: "root", Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)}, HostKeyCallback: hostKeys, Timeout: time.Minute}
	fl := Floor{Part: "b", Hosts: len(f.Hosts)}
	for range b.o.Pairs {
		before := f.cpuNow()
		took, err := timed(func() error {
			g, _ := errgroup.WithContext(ctx)
			for _, h := range f.Hosts {
				g.Go(func() error {
					c, err := ssh.Dial("tcp", net.JoinHostPort(h.Address, "22"), cfg)
					if err != nil {
						return fmt.Errorf("ssh %s: %w", h.Address, err)
					}
					defer c.Close()
					s, err := c.NewSession()
					if err != nil {
						return fmt.Errorf("ssh %s: %w", h.Address, err)
					}
					defer s.Close()
					if err := s.Run("true"); err != nil {
						return fmt.Errorf("ssh %s true: %w", h.Address, err)
					}
					return nil
				})
			}
			return g.Wait()
		})
		if err != nil {
			return fmt.Errorf("bench: the floor, %d hosts: %w", len(f.Hosts), err)
		}
		used := f.cpuNow().sub(before)
		b.logf("floor    %3d hosts  ssh true   %s  (controller CPU %.2fs, hosts CPU %.2fs)", len(f.Hosts), took.Round(time.Millisecond), used.self, used.hosts)
		fl.Seconds = append(fl.Seconds, took.Seconds())
		fl.ClientCPU = append(fl.ClientCPU, used.self)
		if used.hosts >= 0 {
			fl.HostsCPU = append(fl.HostsCPU, used.hosts)
		}
	}
	fl.Median = median(fl.Seconds)
	b.res.Floors = append(b.res.Floors, fl)
	return nil
}

// remove takes a fleet's containers away as soon as its part is measured, so that
// the next part runs on a quiet machine.
func (b *bencher) remove(f *Fleet) {
	for _, h := range f.Hosts {
		_ = lab.RemoveContainer(context.Background(), h.Container)
	}
}

// Rows pairs the tools' measurements of the same work into table rows.
func Rows(ms []Measurement) []Row {
	var out []Row
	index := map[string]int{}
	for _, m := range ms {
		key := fmt.Sprint(m.Part, "|", m.Work, "|", m.Hosts, "|", m.Run)
		i, ok := index[key]
		if !ok {
			i = len(out)
			index[key] = i
			out = append(out, Row{Part: m.Part, Work: m.Work, Hosts: m.Hosts, Run: m.Run})
		}
		r := &out[i]
		r.Pairs = max(r.Pairs, len(m.Seconds))
		switch m.Tool {
		case ToolAnsible:
			r.Ansible = m.Median
		default:
			r.Cauldron = m.Median
		}
		if r.Ansible > 0 && r.Cauldron > 0 {
			r.Ratio = r.Ansible / r.Cauldron
		}
	}
	return out
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// WriteTable prints the result as a table.
func (r *Result) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "\n%-50s %5s  %-34s %10s %10s %7s %5s\n", "work", "hosts", "run", "ansible", "cauldron", "ratio", "pairs")
	for _, row := range r.Rows {
		an, ratio := "—", "—"
		if row.Ansible > 0 {
			an = secs(row.Ansible)
			ratio = fmt.Sprintf("%.1f×", row.Ratio)
		}
		fmt.Fprintf(w, "%-50s %5d  %-34s %10s %10s %7s %5d\n", clip(row.Work, 50), row.Hosts, row.Run, an, secs(row.Cauldron), ratio, row.Pairs)
	}
	fmt.Fprintf(w, "(medians; %d CPUs; load average at the end %s; %s)\n", r.CPUs, r.LoadAverage, cmp.Or(r.Ansible, "no Ansible"))
	for _, m := range r.Measurements {
		if len(m.ControllerCPU) == 0 {
			continue
		}
		hosts := "not measured"
		if len(m.HostsCPU) > 0 {
			hosts = secs(median(m.HostsCPU))
		}
		fmt.Fprintf(w, "cpu: %-40s %5d  %-10s %-8s controller %s, hosts %s\n", clip(m.Work, 40), m.Hosts, m.Run, m.Tool, secs(median(m.ControllerCPU)), hosts)
	}
	for _, f := range r.Floors {
		hosts := "not measured"
		if len(f.HostsCPU) > 0 {
			hosts = secs(median(f.HostsCPU))
		}
		work := cmp.Or(f.Work, "a connection and a session running true per host")
		fmt.Fprintf(w, "floor: %s, %d hosts at once: %s (controller CPU %s, hosts %s; medians of %d)\n",
			work, f.Hosts, secs(f.Median), secs(median(f.ClientCPU)), hosts, len(f.Seconds))
	}
	for _, n := range r.Notes {
		fmt.Fprintln(w, "note:", n)
	}
}

// WriteFiles writes bench.json and bench.svg into dir and returns their paths.
func (r *Result) WriteFiles(dir string) (jsonPath, svgPath string, err error) {
	jsonPath, svgPath = filepath.Join(dir, "bench.json"), filepath.Join(dir, "bench.svg")
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", "", err
	}
	if err := os.WriteFile(jsonPath, append(data, '\n'), 0o644); err != nil {
		return "", "", err
	}
	var svg strings.Builder
	Chart(&svg, r)
	if err := os.WriteFile(svgPath, []byte(svg.String()), 0o644); err != nil {
		return "", "", err
	}
	return jsonPath, svgPath, nil
}

func secs(s float64) string {
	if s < 10 {
		return fmt.Sprintf("%.2fs", s)
	}
	return fmt.Sprintf("%.1fs", s)
}

func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

var ansibleVersionRE = regexp.MustCompile(`\[core ([0-9.]+)\]|ansible-playbook ([0-9.]+)`)

func ansibleVersion(ctx context.Context, bin string) string {
	out, _ := execOutput(ctx, bin, "--version")
	if m := ansibleVersionRE.FindStringSubmatch(out); m != nil {
		return "ansible-core " + cmp.Or(m[1], m[2])
	}
	return "ansible"
}

func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(data))
	return strings.Join(f[:min(3, len(f))], " ")
}
