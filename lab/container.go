package lab

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"time"

	"github.com/cauldron-go/cauldron/transport"
	"github.com/cauldron-go/cauldron/transport/docker"
)

// LabelKey marks every container and network the lab makes, so that they can be found
// and removed without touching anything else on the machine.
const LabelKey = "io.cauldron.lab"

// ContainerSpec is one systemd container.
type ContainerSpec struct {
	Name     string
	Image    string
	Hostname string
	// Network and IP place the container on a network of the lab's own; empty Network
	// means Docker's default bridge.
	Network string
	IP      string
	// Publish are docker run -p values; the lab publishes on 127.0.0.1 only.
	Publish []string
	// Label is the value of LabelKey: which lab the container belongs to.
	Label string
}

// systemdRunArgs are what systemd needs to run as PID 1 in a container on these
// machines, where --privileged fails ("unable to apply caps").
var systemdRunArgs = []string{
	"--cap-add", "SYS_ADMIN", "--cap-add", "NET_ADMIN",
	"--tmpfs", "/run", "--tmpfs", "/run/lock",
	"-v", "/sys/fs/cgroup:/sys/fs/cgroup:ro",
	"--security-opt", "seccomp=unconfined",
	"--stop-signal", "SIGRTMIN+3",
}

// StartContainer runs spec detached with systemd as PID 1.
func StartContainer(ctx context.Context, spec ContainerSpec) error {
	args := []string{"run", "-d", "--name", spec.Name, "--hostname", cmp.Or(spec.Hostname, spec.Name),
		"--label", LabelKey + "=" + cmp.Or(spec.Label, "scratch")}
	args = append(args, systemdRunArgs...)
	if spec.Network != "" {
		args = append(args, "--network", spec.Network)
		if spec.IP != "" {
			args = append(args, "--ip", spec.IP)
		}
	}
	for _, p := range spec.Publish {
		args = append(args, "-p", p)
	}
	args = append(args, spec.Image, "/sbin/init")
	if out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("docker run %s: %v: %s", spec.Name, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// WaitSystemd waits until systemd in the host has finished booting (running, or
// degraded: a unit failing is the recipes' business, not the lab's).
func WaitSystemd(ctx context.Context, c transport.Conn) error {
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	var last string
	for {
		out, _ := transport.Output(ctx, c, "systemctl is-system-running")
		last = strings.TrimSpace(out)
		if last == "running" || last == "degraded" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("systemd did not finish booting (last state %q): %w", last, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// RemoveContainer removes a container and its anonymous volumes; a missing one is fine.
func RemoveContainer(ctx context.Context, name string) error {
	out, err := exec.CommandContext(ctx, "docker", "rm", "-f", "-v", name).CombinedOutput()
	if err != nil && !strings.Contains(string(out), "No such container") {
		return fmt.Errorf("docker rm %s: %v: %s", name, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// ScratchHost starts a throwaway systemd container from the base image, on Docker's
// default network, for tests that need a real Debian host: built-in steps, the docker
// transport. The returned function removes it.
func ScratchHost(ctx context.Context, name string) (*docker.Conn, func(), error) {
	image, err := BaseImage(ctx, io.Discard)
	if err != nil {
		return nil, nil, err
	}
	_ = RemoveContainer(ctx, name)
	if err := StartContainer(ctx, ContainerSpec{Name: name, Image: image}); err != nil {
		return nil, nil, err
	}
	remove := func() { _ = RemoveContainer(context.Background(), name) }
	conn := docker.New(name)
	if err := WaitSystemd(ctx, conn); err != nil {
		remove()
		return nil, nil, fmt.Errorf("scratch host %s: %w", name, err)
	}
	return conn, remove, nil
}
