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
