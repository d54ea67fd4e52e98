package bench

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// What a run costs in CPU, beside its wall time: on a machine with two cores the CPU
// the controller and the hosts burn together is what bounds a run of many hosts.

// cpuTimes are the CPU seconds spent so far by this process, by the children it has
// waited for (Ansible), and by the fleet's containers (every process in them: sshd,
// the shells, tar), or -1 where the machine does not say.
type cpuTimes struct{ self, children, hosts float64 }

func (a cpuTimes) sub(b cpuTimes) cpuTimes {
	d := cpuTimes{self: a.self - b.self, children: a.children - b.children, hosts: -1}
	if a.hosts >= 0 && b.hosts >= 0 {
		d.hosts = a.hosts - b.hosts
	}
	return d
}

func (f *Fleet) cpuNow() cpuTimes {
	t := cpuTimes{self: rusage(syscall.RUSAGE_SELF), children: rusage(syscall.RUSAGE_CHILDREN), hosts: -1}
	if len(f.cgroups) == 0 {
		return t
	}
	t.hosts = 0
	for _, p := range f.cgroups {
		s, err := cgroupCPU(p)
		if err != nil {
			return cpuTimes{self: t.self, children: t.children, hosts: -1}
		}
		t.hosts += s
	}
	return t
}

func rusage(who int) float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(who, &ru) != nil {
		return -1
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// containerCgroups finds the CPU accounting file of each container: cgroup v1
// (cpuacct.usage, nanoseconds) or v2 (cpu.stat's usage_usec), with Docker's cgroupfs or
// systemd driver. It returns nil when any is missing: host CPU is then not measured.
func containerCgroups(ctx context.Context, containers []string) []string {
	var out []string
	for _, c := range containers {
		id, err := exec.CommandContext(ctx, "docker", "inspect", "-f", "{{.Id}}", c).Output()
		if err != nil {
			return nil
		}
		found := ""
		for _, p := range []string{
			"/sys/fs/cgroup/cpuacct/docker/%s/cpuacct.usage",
			"/sys/fs/cgroup/cpuacct/system.slice/docker-%s.scope/cpuacct.usage",
			"/sys/fs/cgroup/system.slice/docker-%s.scope/cpu.stat",
			"/sys/fs/cgroup/docker/%s/cpu.stat",
		} {
			p = fmt.Sprintf(p, strings.TrimSpace(string(id)))
			if _, err := os.Stat(p); err == nil {
				found = p
				break
			}
		}
		if found == "" {
			return nil
		}
		out = append(out, found)
	}
	return out
}

// cgroupCPU reads a container's CPU seconds from its accounting file.
func cgroupCPU(p string) (float64, error) {
	if filepath.Base(p) == "cpuacct.usage" {
		b, err := os.ReadFile(p)
		if err != nil {
			return 0, err
		}
		ns, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		return float64(ns) / 1e9, err
	}
	f, err := os.Open(p)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "usage_usec "); ok {
			us, err := strconv.ParseInt(v, 10, 64)
			return float64(us) / 1e6, err
		}
	}
	return 0, fmt.Errorf("%s: no usage_usec", p)
}

// profileTo starts a CPU profile of this process written to p; stop ends it. A profile
// that cannot be started (one is already running) is skipped, never an error: it is a
// by-product of the measurement.
func profileTo(p string) (stop func()) {
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return func() {}
	}
	f, err := os.Create(p)
	if err != nil {
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		os.Remove(p)
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

// Settling: a first run leaves the hosts starting what it installed (the Tomcat
// workload's JVM boots for seconds, longer on a loaded machine), and a run timed
// meanwhile would measure that boot as much as the tool. Each timed run, of either
// tool, starts once the fleet is quiet.
const (
	// settledCPU is the share of a core per host under which the fleet counts as quiet
	// (an idle Tomcat uses well under 1 %).
	settledCPU = 0.03
	// settledFor is how long the fleet must stay quiet: a booting JVM has quiet seconds
	// between its bursts.
	settledFor = 2 * time.Second
	// settleAtMost bounds the wait; the run is then measured all the same.
	settleAtMost = 2 * time.Minute
)

// settle waits until the fleet's containers have used under settledCPU of a core per
// host for settledFor (see above), at most settleAtMost. It returns how long it waited
// and whether the fleet settled; a machine without per-container CPU accounting is
// taken as settled at once.
func (f *Fleet) settle(ctx context.Context) (time.Duration, bool) {
	start := time.Now()
	if len(f.cgroups) == 0 {
		return 0, true
	}
	const window = time.Second
	quiet := time.Duration(0)
	last := f.cpuNow().hosts
	for {
		select {
		case <-ctx.Done():
			return time.Since(start), false
		case <-time.After(window):
		}
		now := f.cpuNow().hosts
		if now < 0 || last < 0 {
			return time.Since(start), true
		}
		if quietWindow(now-last, window, len(f.cgroups)) {
			quiet += window
		} else {
			quiet = 0
		}
		last = now
		if quiet >= settledFor {
			return time.Since(start), true
		}
		if time.Since(start) >= settleAtMost {
			return time.Since(start), false
		}
	}
}

// quietWindow says whether hosts containers that used cpu seconds in window were quiet.
func quietWindow(cpu float64, window time.Duration, hosts int) bool {
	return cpu < settledCPU*window.Seconds()*float64(hosts)
}

// procCPU is the CPU seconds process pid has spent (utime and stime of /proc/pid/stat),
// -1 when it cannot be read.
func procCPU(pid int) float64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return -1
	}
	return procStatCPU(string(b))
}

// daemonCPU is the CPU seconds the warm daemon serving w's directory has used so far,
// -1 when none runs there or the machine does not say: the daemon is a process of its
// own, which the bench's rusage does not count, and does half of a warm run's SSH (the
// server side of every local handshake, the relaying).
func (w *warmDialer) daemonCPU() float64 {
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

// procStatCPU reads utime and stime, in clock ticks of 1/100 s (USER_HZ, which Linux
// keeps at 100 in /proc whatever the kernel's own tick), from a /proc/PID/stat line;
// -1 when the line is not one.
func procStatCPU(stat string) float64 {
	// The command name, in parentheses, may hold spaces: the fields that follow its
	// closing one are state (3) onward, utime and stime being the 14th and 15th.
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(stat[i+1:])
	if len(f) < 13 {
		return -1
	}
	utime, err1 := strconv.ParseFloat(f[11], 64)
	stime, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return -1
	}
	return (utime + stime) / 100
}
