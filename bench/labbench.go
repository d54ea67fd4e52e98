package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cauldron-go/cauldron/inventory"
	"github.com/cauldron-go/cauldron/lab"
	"github.com/cauldron-go/cauldron/recipes"
	"github.com/cauldron-go/cauldron/runner"
	"github.com/cauldron-go/cauldron/shell"
	"github.com/cauldron-go/cauldron/timeline"
	"github.com/cauldron-go/cauldron/transport"
	"github.com/cauldron-go/cauldron/transport/docker"
	"github.com/cauldron-go/cauldron/transport/keeper"
	"github.com/cauldron-go/cauldron/transport/sshconn"
)

// The bench's own lab for part c, apart from the developer's and the tests'.
var benchLab = lab.Options{Name: "cauldron-bench-lab", Subnet: "172.29.74.0/24", PortOffset: 2400}

// Netem is the slow network of part c: delay on every packet a lab host sends, which
// adds as much to every round trip, and random loss.
const Netem = "delay 80ms loss 5%"

const labWork = "the lab cluster's converged re-check (plan)"

func (b *bencher) partC(ctx context.Context) error {
	o := benchLab
	o.Log = b.o.Log
	l, err := lab.Up(ctx, o)
	if err != nil {
		return err
	}
	b.logf("deploying the cluster onto %s (the first time takes minutes)", l.Name)
	rep, err := deployLab(ctx, l.DockerInventory, runner.Apply, b.o.Log)
	if err != nil {
		return fmt.Errorf("bench: deploy the lab: %w", err)
	}
	if err := b.keepReport("lab-deploy", rep); err != nil {
		return err
	}
	// One re-check over SSH kept as a picture too: where a converged run's time goes.
	rep, err = deployLab(ctx, l.SSHInventory, runner.Plan, nil)
	if err != nil {
		return fmt.Errorf("bench: re-check the lab: %w", err)
	}
	if err := b.keepReport("lab-recheck-ssh", rep); err != nil {
		return err
	}
	warm, err := startWarm(ctx, l.SSHInventory)
	if err != nil {
		return err
	}
	defer warm.stop()
	if _, err := deployLabWith(ctx, l.DockerInventory, warm.dialDocker); err != nil {
		return fmt.Errorf("bench: the lab's first re-check with kept docker channels: %w", err)
	}
	b.res.Notes = append(b.res.Notes, warmNote, dockerWarmNote)
	// And a warm re-check as a picture: the same checks, without the connecting.
	if rep, err = deployLabWith(ctx, l.SSHInventory, warm.dial); err != nil {
		return fmt.Errorf("bench: re-check the lab, warm: %w", err)
	}
	if err := b.keepReport("lab-recheck-ssh-warm", rep); err != nil {
		return err
	}
	transports := []struct {
		name, inventory string
		dial            dialFunc
	}{{"ssh", l.SSHInventory, runner.DialHost}, {"ssh, warm", l.SSHInventory, warm.dial}, {"docker exec", l.DockerInventory, runner.DialHost},
		{"docker exec, warm", l.DockerInventory, warm.dialDocker}}
	// The lab hosts' CPU (every process in their containers: the checks' shells and
	// tools, sshd, and the idle services beside them) and this process's, per re-check.
	var names []string
	for _, h := range l.Hosts {
		names = append(names, h.Container)
	}
	cgroups := containerCgroups(ctx, names)
	hostsCPU := func() float64 {
		sum := 0.0
		for _, p := range cgroups {
			s, err := cgroupCPU(p)
			if err != nil {
				return -1
			}
			sum += s
		}
		return sum
	}
	measure := func(suffix string) error {
		times := map[string][]float64{}
		for pair := range b.o.Pairs {
			order := slices.Clone(transports)
			if pair%2 == 1 {
				slices.Reverse(order)
			}
			for _, t := range order {
				// Each timed re-check's CPU profile, to say what bounds it (go tool pprof).
				name := "c-" + strings.NewReplacer(", ", "-", " ", "-", "%", "pc").Replace(t.name+suffix) + "-" + strconv.Itoa(pair+1)
				stop := profileTo(filepath.Join(b.o.Dir, "profiles", name+".pprof"))
				var rep *runner.Report
				hostsBefore, selfBefore, daemonBefore := hostsCPU(), rusage(syscall.RUSAGE_SELF), warm.cpu()
				took, err := timed(func() error { var err error; rep, err = deployLabWith(ctx, t.inventory, t.dial); return err })
				hostsUsed, selfUsed, daemonAfter := hostsCPU()-hostsBefore, rusage(syscall.RUSAGE_SELF)-selfBefore, warm.cpu()
				stop()
				if err != nil {
					return fmt.Errorf("bench: the lab's re-check over %s%s: %w", t.name, suffix, err)
				}
				cpu := fmt.Sprintf("controller CPU %.3fs", selfUsed)
				if daemonBefore >= 0 && daemonAfter >= 0 {
					cpu += fmt.Sprintf(" + warm daemon %.2fs", daemonAfter-daemonBefore)
				}
				if len(cgroups) > 0 && hostsBefore >= 0 && hostsUsed >= 0 {
					cpu += fmt.Sprintf(", lab hosts CPU %.3fs", hostsUsed)
				}
				b.logf("cauldron %d hosts  re-check over %s%s  %s  (%s; %s)", len(l.Hosts), t.name, suffix, took.Round(time.Millisecond), cpu, trafficOf(rep))
				times[t.name] = append(times[t.name], took.Seconds())
			}
		}
		for _, t := range transports {
			b.res.Measurements = append(b.res.Measurements, Measurement{Part: "c", Work: labWork, Hosts: len(l.Hosts),
				Run: "over " + t.name + suffix, Tool: ToolCauldron, Seconds: times[t.name], Median: median(times[t.name])})
		}
		return nil
	}
	if err := measure(""); err != nil {
		return err
	}
	if why := netemUnavailable(ctx, l); why != "" {
		b.logf("tc netem cannot be used here (%s): a netfilter queue served by the bench stands in for it", why)
		err := b.measureThroughQueue(ctx, l, why, warm)
		if !errors.Is(err, errNoQueue) {
			return err
		}
		b.res.Notes = append(b.res.Notes, "tc netem cannot be used here ("+why+"), nor a netfilter queue ("+err.Error()+
			"): the slow network of part c is a user-space proxy on 127.0.0.1 instead, holding every byte 40 ms each way "+
			"(80 ms RTT), without loss, for SSH only")
		b.logf("no netfilter queue either (%v): a delaying proxy stands in, SSH only", err)
		return b.measureThroughDelay(ctx, l, 40*time.Millisecond)
	}
	defer func() {
		// The containers go at the end anyway; the qdiscs go first, so that an error
		// in between leaves no slow network behind on a lab that stays.
		_ = netem(context.Background(), l, "")
	}()
	if err := netem(ctx, l, Netem); err != nil {
		return err
	}
	b.res.Notes = append(b.res.Notes, "part c under netem: tc qdisc "+Netem+" on every lab host's interface (docker exec does not go through the network, so only SSH is slowed)")
	return measure(", " + Netem)
}

// netem adds spec ("delay 80ms loss 5%") as the root qdisc of each lab host's
// interface on the lab network, or removes it when spec is empty.
func netem(ctx context.Context, l *lab.Lab, spec string) error {
	var errs []error
	for _, h := range l.Hosts {
		dev := "$(ip -o -4 addr show | awk -v a=" + shell.Quote(h.Address+"/") + " 'index($4, a) == 1 {print $2}')"
		line := "dev=" + dev + "; [ -n \"$dev\" ] || { echo 'no interface with " + h.Address + "' >&2; exit 1; }; "
		if spec == "" {
			line += "tc qdisc del dev \"$dev\" root 2>/dev/null; true"
		} else {
			line += "tc qdisc replace dev \"$dev\" root netem " + spec
		}
		if err := docker.New(h.Container).Run(ctx, transport.Command{Line: line}); err != nil {
			errs = append(errs, fmt.Errorf("bench: netem on %s: %w", h.Name, err))
		}
	}
	return errors.Join(errs...)
}

// deployLab runs the cluster's plays on the lab, its lines to progress (nil: none); a
// plan must find nothing to change.
func deployLab(ctx context.Context, path string, mode runner.Mode, progress io.Writer) (*runner.Report, error) {
	inv, err := inventory.Load(path)
	if err != nil {
		return nil, err
	}
	return deployInventory(ctx, inv, mode, progress)
}

// deployLabWith re-checks the lab (a plan) with dial.
func deployLabWith(ctx context.Context, path string, dial dialFunc) (*runner.Report, error) {
	inv, err := inventory.Load(path)
	if err != nil {
		return nil, err
	}
	return deployInventoryWith(ctx, inv, runner.Plan, nil, dial)
}

func deployInventory(ctx context.Context, inv *inventory.Inventory, mode runner.Mode, progress io.Writer) (*runner.Report, error) {
	return deployInventoryWith(ctx, inv, mode, progress, runner.DialHost)
}

func deployInventoryWith(ctx context.Context, inv *inventory.Inventory, mode runner.Mode, progress io.Writer, dial dialFunc) (*runner.Report, error) {
	plays, err := recipes.Cluster(inv)
	if err != nil {
		return nil, err
	}
	rep, err := runner.Run(ctx, plays, runner.Options{Mode: mode, Dial: dial, Secrets: inv.Secrets(), Progress: progress})
	if err != nil {
		return rep, err
	}
	if mode == runner.Plan && rep.Changed() != 0 {
		return rep, fmt.Errorf("the converged lab is not converged: %d changes", rep.Changed())
	}
	return rep, nil
}

// keepReport writes a run's JSON report and its timeline picture into the bench's
// folder, as NAME.json and NAME-timeline.svg.
func (b *bencher) keepReport(name string, rep *runner.Report) error {
	var buf bytes.Buffer
	if err := rep.WriteJSON(&buf); err != nil {
		return err
	}
	jsonPath := filepath.Join(b.o.Dir, name+".json")
	if err := os.WriteFile(jsonPath, buf.Bytes(), 0o600); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	tl, err := timeline.Read(jsonPath, bytes.NewReader(buf.Bytes()))
	if err != nil {
		return err
	}
	var svg bytes.Buffer
	if err := timeline.Render(&svg, tl); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(b.o.Dir, name+"-timeline.svg"), svg.Bytes(), 0o644); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	b.logf("kept %s and its timeline %s", jsonPath, name+"-timeline.svg")
	return nil
}

// trafficOf says each host's commands and round trips in rep (transport.Traffic).
func trafficOf(rep *runner.Report) string {
	var parts []string
	for _, h := range rep.Hosts {
		if h.Traffic != nil {
			parts = append(parts, fmt.Sprintf("%s %d commands in %d round trips", h.Host, h.Traffic.Commands, h.Traffic.RoundTrips))
		}
	}
	return strings.Join(parts, ", ")
}

// cleanupLab takes the bench's lab down.
func cleanupLab(ctx context.Context) error { return lab.Down(ctx, benchLab) }

func execOutput(ctx context.Context, name string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// netemUnavailable says why tc netem cannot be used in the lab's hosts (a kernel built
// without it), or "" when it can: it is tried on a host's loopback interface.
func netemUnavailable(ctx context.Context, l *lab.Lab) string {
	err := docker.New(l.Hosts[0].Container).Run(ctx, transport.Command{Line: "tc qdisc add dev lo root netem delay 1ms && tc qdisc del dev lo root"})
	if err == nil {
		return ""
	}
	return strings.TrimSpace(strings.TrimPrefix(err.Error(), "exit status 2: "))
}

// errNoQueue wraps the reason the slow network's netfilter queue could not be set up.
var errNoQueue = errors.New("no netfilter queue")

// The slow networks of part c without netem: what "delay 80ms" and "delay 80ms loss 5%"
// on each lab host's interface do, by a netfilter queue (slownet.go).
var slowNetworks = []struct {
	name  string
	delay time.Duration
	loss  float64
}{
	{"80 ms RTT", 80 * time.Millisecond, 0},
	{"80 ms RTT and 5% loss", 80 * time.Millisecond, 0.05},
}

// measureThroughQueue re-checks the lab over SSH on each of the slow networks, made by
// a netfilter queue on every lab host (docker exec does not go through the network).
// An error wrapping errNoQueue means the queue could not be set up at all.
//
// What bounds a converged re-check there is connecting, not the checks. Measured on
// one lab host through the queue at 80 ms (session 4, load 20): x/crypto/ssh's dial
// and handshake take 0.70-0.75 s, about 9 round trips (TCP; the versions and key
// exchange; the service request; the "none" method and a public-key query, which
// x/crypto/ssh always sends before the signed request; sshd's Nagle adds the rest:
// without TCP_NODELAY, which sshd sets for a pty only, a second small packet waits
// until the first is acknowledged, a whole round trip here: "echo a; sleep 0.02;
// echo b" answers in 2 round trips, "echo a" in 1). Opening the channel's session
// takes 0.2 s (2.5 round trips: its confirmation waits behind sshd's host-key
// announcement), and the first answers 2 more (the exec itself is not waited for):
// 13-14 round trips, 1.1 s, before the host's checks, which then take their time on
// the host plus a round trip. One fresh connection per host cannot go below that.
//
// Session 5 (load 15-25, a lab like the bench's): connecting took 0.69-0.83 s per
// host, the first answer came 0.37 s later; haproxy's 4 checks ended 0.45-0.5 s after
// connecting, a web node's 38 (38 KB of answers, 24 of them catalina.sh, which
// LineInFile reads whole) 1.1-1.4 s after, in bursts one round trip apart. Neither
// writing a host's frames in 2 writes instead of about 40 SSH packets nor buffering the
// host's answers until it had none for 5 ms changed that (both tried, not kept): the
// web node's time there is its own, not the link's, and why it is longer than the
// 0.25-0.4 s of the same checks at zero RTT is not found yet.
func (b *bencher) measureThroughQueue(ctx context.Context, l *lab.Lab, why string, warm *warmDialer) error {
	for i, n := range slowNetworks {
		s, err := startSlowLab(ctx, l, n.delay, n.loss)
		if err != nil {
			if i == 0 {
				return fmt.Errorf("%w: %v", errNoQueue, err)
			}
			return err
		}
		runs := []struct {
			run  string
			dial dialFunc
		}{{"over ssh, " + n.name + " (netfilter queue)", runner.DialHost}, {"over ssh, warm, " + n.name + " (netfilter queue)", warm.dial}}
		times := map[string][]float64{}
		// The warm connections were made on the quick network; they carry on over the
		// slow one as they would over a slow link from the start (a TCP connection's
		// packets are delayed alike, however old it is). One untimed run first, so that
		// a host whose connection broke is warm again before the timed ones.
		if _, err := deployLabWith(ctx, l.SSHInventory, warm.dial); err != nil {
			s.Close()
			return fmt.Errorf("bench: the lab's warm-up re-check over %s: %w", n.name, err)
		}
		for pair := range b.o.Pairs {
			order := slices.Clone(runs)
			if pair%2 == 1 {
				slices.Reverse(order)
			}
			for _, r := range order {
				took, err := timed(func() error { _, err := deployLabWith(ctx, l.SSHInventory, r.dial); return err })
				if err != nil {
					s.Close()
					return fmt.Errorf("bench: the lab's re-check %s: %w", r.run, err)
				}
				b.logf("cauldron %d hosts  re-check %s  %s", len(l.Hosts), r.run, took.Round(time.Millisecond))
				times[r.run] = append(times[r.run], took.Seconds())
			}
		}
		packets, dropped := s.Counts()
		lateMedian, late99, lateMost := s.Lateness()
		mostHeld := s.MostHeld()
		if err := s.Close(); err != nil {
			return err
		}
		for _, r := range runs {
			b.res.Measurements = append(b.res.Measurements, Measurement{Part: "c", Work: labWork, Hosts: len(l.Hosts),
				Run: r.run, Tool: ToolCauldron, Seconds: times[r.run], Median: median(times[r.run])})
		}
		b.res.Notes = append(b.res.Notes, fmt.Sprintf("part c %s: tc netem cannot be used here (%s); instead every packet a lab "+
			"host sent this machine went through a netfilter queue (iptables NFQUEUE, INPUT, where it is received) that the bench "+
			"held %s and dropped with probability %g: real packets and real TCP retransmissions, the delay timed in user space "+
			"(%d packets, %d dropped, at most %d held at once for one host; let go after their delay %s late at the median, %s at the 99th "+
			"percentile, %s at most). Only SSH goes through the network.", n.name, why, n.delay, n.loss, packets, dropped, mostHeld,
			lateMedian.Round(10*time.Microsecond), late99.Round(10*time.Microsecond), lateMost.Round(10*time.Microsecond)))
	}
	return nil
}

// measureThroughDelay re-checks the lab over SSH through a delaying proxy per host.
func (b *bencher) measureThroughDelay(ctx context.Context, l *lab.Lab, oneWay time.Duration) error {
	inv, err := inventory.Load(l.SSHInventory)
	if err != nil {
		return err
	}
	known, err := os.ReadFile(l.KnownHostsFile)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	var proxied []string
	for _, h := range inv.Hosts {
		target := net.JoinHostPort(h.SSH.Host, strconv.Itoa(h.SSH.Port))
		p, err := startDelayProxy(target, oneWay)
		if err != nil {
			return fmt.Errorf("bench: delay proxy for %s: %w", h.Name, err)
		}
		defer p.Close()
		// The host's key, known at its proxy's address too.
		for _, line := range strings.Split(string(known), "\n") {
			if addr, key, ok := strings.Cut(line, " "); ok && addr == fmt.Sprintf("[%s]:%d", h.SSH.Host, h.SSH.Port) {
				proxied = append(proxied, fmt.Sprintf("[127.0.0.1]:%d %s", p.Port(), key))
			}
		}
		h.SSH.Host, h.SSH.Port = "127.0.0.1", p.Port()
	}
	kh := filepath.Join(b.o.Dir, "known_hosts-delay")
	if err := os.WriteFile(kh, []byte(strings.Join(proxied, "\n")+"\n"), 0o600); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	for _, h := range inv.Hosts {
		h.SSH.KnownHosts = kh
	}
	run := fmt.Sprintf("over ssh, %s RTT added (proxy)", 2*oneWay)
	var times []float64
	for range b.o.Pairs {
		took, err := timed(func() error { _, err := deployInventory(ctx, inv, runner.Plan, nil); return err })
		if err != nil {
			return fmt.Errorf("bench: the lab's re-check %s: %w", run, err)
		}
		b.logf("cauldron %d hosts  re-check %s  %s", len(l.Hosts), run, took.Round(time.Millisecond))
		times = append(times, took.Seconds())
	}
	b.res.Measurements = append(b.res.Measurements, Measurement{Part: "c", Work: labWork, Hosts: len(l.Hosts),
		Run: run, Tool: ToolCauldron, Seconds: times, Median: median(times)})
	return nil
}

// warmNote says how part c's warm rows are made.
const warmNote = "part c \"ssh, warm\": the same re-check with the warm SSH connection (ssh.persist / CAULDRON_SSH_PERSIST): " +
	"a background daemon started by the first run holds each host's authenticated connection between runs; every timed warm " +
	"run follows an earlier one, so it finds the connections made (the first run, which starts the daemon and dials, is not timed)"

// dockerWarmNote says how part c's warm docker row is made.
const dockerWarmNote = "part c \"docker exec, warm\": the same re-check with kept command channels (docker.persist / CAULDRON_DOCKER_PERSIST): " +
	"each run hands its containers' idle exec connections, shells and all, to a background keeper, and the next run takes them " +
	"back instead of creating an exec and starting a shell (the first run, which starts the keeper, is not timed)"

// cpu is the CPU seconds the warm daemon has spent, -1 when it does not run.
func (w *warmDialer) cpu() float64 {
	b, err := os.ReadFile(filepath.Join(w.dir, "warm.pid"))
	if err != nil {
		return -1
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return -1
	}
	return procCPU(pid)
}

// warmDialer dials the lab's hosts through a warm daemon of the bench's own, in a
// private directory the bench removes.
type warmDialer struct {
	dir string
}

// startWarm makes the warm daemon's directory and makes the connections warm with one
// untimed re-check of the lab at path.
func startWarm(ctx context.Context, path string) (*warmDialer, error) {
	// Short: a unix socket's path has room for 107 bytes.
	dir, err := os.MkdirTemp("", "cauldron-bench-warm-")
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	w := &warmDialer{dir: dir}
	if _, err := deployLabWith(ctx, path, w.dial); err != nil {
		w.stop()
		return nil, fmt.Errorf("bench: the lab's first warm re-check: %w", err)
	}
	return w, nil
}

func (w *warmDialer) dial(ctx context.Context, h *inventory.Host) (transport.Conn, error) {
	cfg := runner.SSHConfig(h)
	// Longer than a part c with its slow networks' set-up can idle between two runs.
	cfg.Persist, cfg.PersistDir = 10*time.Minute, w.dir
	c, err := sshconn.Dial(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// dialDocker reaches a docker host with its command channel kept between runs by a
// keeper in the bench's directory.
func (w *warmDialer) dialDocker(ctx context.Context, h *inventory.Host) (transport.Conn, error) {
	name := h.Docker.Container
	if name == "" {
		name = h.Name
	}
	c := docker.New(name).WithPersist(10*time.Minute, w.keeperDir())
	if err := c.Connect(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

func (w *warmDialer) keeperDir() string { return filepath.Join(w.dir, "keeper") }

// stop ends the daemon and the keeper and removes their directory.
func (w *warmDialer) stop() {
	keeper.Stop(w.keeperDir())
	sshconn.StopWarmDaemon(w.dir)
	for range 50 {
		if _, err := os.Stat(filepath.Join(w.dir, "warm.sock")); err != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	os.RemoveAll(w.dir)
}

// dialFunc is runner.Options.Dial.
type dialFunc = func(ctx context.Context, h *inventory.Host) (transport.Conn, error)
