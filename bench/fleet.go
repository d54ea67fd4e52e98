package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/cauldron-go/cauldron/inventory"
	"github.com/cauldron-go/cauldron/lab"
	"github.com/cauldron-go/cauldron/transport"
	"github.com/cauldron-go/cauldron/transport/docker"
)

// Where the bench's own containers live: every one is named Prefix-..., carries the
// label io.cauldron.lab=Label, and sits on Network, so that a bench never touches a
// lab or a test of anyone else and Cleanup finds everything it made.
const (
	Label   = "cauldron-bench"
	Prefix  = "cauldron-bench"
	Network = "cauldron-bench-net"
	Subnet  = "172.29.70.0/22"
)

// Kind is what runs in a fleet's containers.
type Kind int

const (
	// Light hosts run sshd only, as PID 1: the cheapest host there is.
	Light Kind = iota
	// Systemd hosts boot systemd, as the lab's do: a Tomcat unit can be started.
	Systemd
)

// Fleet is a set of containers reached over SSH by their address on Network.
type Fleet struct {
	Hosts []FleetHost
	// KeyFile and KnownHosts are the bench's SSH key and the hosts' keys.
	KeyFile, KnownHosts string
	// cgroups are the containers' CPU accounting files (see cpuNow); nil when the
	// machine does not have them.
	cgroups []string
}

// FleetHost is one container of a fleet.
type FleetHost struct {
	Name, Container, Address string
}

// Inventory returns the fleet as inventory hosts, reached over SSH as root.
func (f *Fleet) Inventory() []*inventory.Host {
	var hs []*inventory.Host
	for _, h := range f.Hosts {
		hs = append(hs, &inventory.Host{Name: h.Name, Address: h.Address, Transport: "ssh",
			SSH: inventory.SSH{Host: h.Address, Port: 22, User: "root", IdentityFiles: []string{f.KeyFile}, KnownHosts: f.KnownHosts}})
	}
	return hs
}

// startFleet starts n containers of kind from image, first address offset from the
// subnet's .10, gives them the bench's key and records their host keys. The
// containers are removed by Cleanup.
func startFleet(ctx context.Context, log io.Writer, stateDir, image string, kind Kind, name string, n, offset int) (*Fleet, error) {
	if err := ensureNetwork(ctx); err != nil {
		return nil, err
	}
	prefix := netip.MustParsePrefix(Subnet)
	f := &Fleet{KeyFile: filepath.Join(stateDir, "id_ed25519"), KnownHosts: filepath.Join(stateDir, "known_hosts-"+name)}
	pub, err := lab.EnsureKey(f.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("bench key: %w", err)
	}
	for i := range n {
		a := prefix.Addr().As4()
		v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
		v += uint32(10 + offset + i)
		addr := netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
		hn := fmt.Sprintf("%s%03d", name, i+1)
		f.Hosts = append(f.Hosts, FleetHost{Name: hn, Container: Prefix + "-" + hn, Address: addr.String()})
	}
	fmt.Fprintf(log, "bench: starting %d %s hosts\n", n, map[Kind]string{Light: "light (sshd only)", Systemd: "systemd"}[kind])
	known := make([][]byte, n)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for i, h := range f.Hosts {
		g.Go(func() error {
			var err error
			switch kind {
			case Light:
				// sshd alone as PID 1, with a host key of its own made at start: ed25519
				// only, as RSA keys take seconds to make on a loaded machine.
				err = dockerRun(gctx, "run", "-d", "--name", h.Container, "--hostname", h.Name,
					"--label", lab.LabelKey+"="+Label, "--network", Network, "--ip", h.Address,
					image, "sh", "-c", "ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key && mkdir -p /run/sshd && "+
						"exec /usr/sbin/sshd -D -e -h /etc/ssh/ssh_host_ed25519_key")
			case Systemd:
				err = lab.StartContainer(gctx, lab.ContainerSpec{Name: h.Container, Image: image, Hostname: h.Name,
					Network: Network, IP: h.Address, Label: Label})
				if err == nil {
					err = lab.WaitSystemd(gctx, docker.New(h.Container))
				}
			}
			if err != nil {
				return fmt.Errorf("bench host %s: %w", h.Name, err)
			}
			c := docker.New(h.Container)
			if err := waitFile(gctx, c, "/etc/ssh/ssh_host_ed25519_key.pub"); err != nil {
				return fmt.Errorf("bench host %s: %w", h.Name, err)
			}
			if err := lab.Authorize(gctx, c, pub); err != nil {
				return fmt.Errorf("bench host %s: authorize the bench key: %w", h.Name, err)
			}
			line, err := lab.KnownHostsLine(gctx, c, h.Address)
			if err != nil {
				return fmt.Errorf("bench host %s: %w", h.Name, err)
			}
			known[i] = line
			return waitPort(gctx, net.JoinHostPort(h.Address, "22"))
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if err := os.WriteFile(f.KnownHosts, bytes.Join(known, nil), 0o600); err != nil {
		return nil, fmt.Errorf("bench known_hosts: %w", err)
	}
	var names []string
	for _, h := range f.Hosts {
		names = append(names, h.Container)
	}
	f.cgroups = containerCgroups(ctx, names)
	return f, nil
}

// onEach runs line on every host of the fleet over docker exec (not the SSH being
// measured), a few at once: the reset before a first run.
func (f *Fleet) onEach(ctx context.Context, line string) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for _, h := range f.Hosts {
		g.Go(func() error {
			if err := docker.New(h.Container).Run(gctx, transport.Command{Line: line}); err != nil {
				return fmt.Errorf("bench host %s: %w", h.Name, err)
			}
			return nil
		})
	}
	return g.Wait()
}

func waitFile(ctx context.Context, c transport.Conn, path string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for {
		if err := c.Run(ctx, transport.Command{Line: "test -s " + path}); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not appear: %w", path, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func waitPort(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("sshd at %s does not answer: %w", addr, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func ensureNetwork(ctx context.Context) error {
	if exec.CommandContext(ctx, "docker", "network", "inspect", Network).Run() == nil {
		return nil
	}
	return dockerRun(ctx, "network", "create", "--driver", "bridge", "--subnet", Subnet,
		"--label", lab.LabelKey+"="+Label, Network)
}

// Cleanup removes every container and network with the bench's label and the bench's
// lab (part c): what this run made, and what an interrupted run left.
func Cleanup(ctx context.Context) error { return cleanupParts(ctx, "abc") }

// cleanupParts is Cleanup of what the given parts make: the fleets of parts a and b,
// the lab of part c.
func cleanupParts(ctx context.Context, parts string) error {
	if strings.Contains(parts, "c") {
		if err := cleanupLab(ctx); err != nil {
			return fmt.Errorf("bench cleanup: %w", err)
		}
	}
	if !strings.ContainsAny(parts, "ab") {
		return nil
	}
	out, err := exec.CommandContext(ctx, "docker", "ps", "-aq", "--filter", "label="+lab.LabelKey+"="+Label).Output()
	if err != nil {
		return fmt.Errorf("bench cleanup: docker ps: %w", err)
	}
	if ids := strings.Fields(string(out)); len(ids) > 0 {
		if err := dockerRun(ctx, append([]string{"rm", "-f", "-v"}, ids...)...); err != nil {
			return fmt.Errorf("bench cleanup: %w", err)
		}
	}
	out, err = exec.CommandContext(ctx, "docker", "network", "ls", "-q", "--filter", "label="+lab.LabelKey+"="+Label).Output()
	if err != nil {
		return fmt.Errorf("bench cleanup: docker network ls: %w", err)
	}
	for _, id := range strings.Fields(string(out)) {
		if err := dockerRun(ctx, "network", "rm", id); err != nil {
			return fmt.Errorf("bench cleanup: %w", err)
		}
	}
	return nil
}

func dockerRun(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("docker %s: %v: %s", strings.Join(args[:min(len(args), 2)], " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// hostImage is the lab's base image with python3, which Ansible needs on every host
// it manages (cauldron needs only a shell), and unzip, which unpacking the seed's WARs
// needs with either tool. It is built once and kept.
func hostImage(ctx context.Context, log io.Writer) (string, error) {
	base, err := lab.BaseImage(ctx, log)
	if err != nil {
		return "", err
	}
	tag := "cauldron-bench-host:" + strings.TrimPrefix(base, "cauldron-base:")
	if exec.CommandContext(ctx, "docker", "image", "inspect", tag).Run() == nil {
		return tag, nil
	}
	fmt.Fprintf(log, "bench: building %s (the base image with python3, for Ansible, and unzip)\n", tag)
	name := Prefix + "-imagebuild"
	_ = exec.CommandContext(ctx, "docker", "rm", "-f", name).Run()
	if err := dockerRun(ctx, "run", "-d", "--name", name, "--label", lab.LabelKey+"="+Label, base, "sleep", "infinity"); err != nil {
		return "", err
	}
	defer exec.Command("docker", "rm", "-f", name).Run()
	if err := dockerRun(ctx, "exec", name, "sh", "-c",
		"apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends python3 unzip && apt-get clean"); err != nil {
		return "", fmt.Errorf("install python3 and unzip in the bench image: %w", err)
	}
	if err := dockerRun(ctx, "commit", "--change", "LABEL "+lab.LabelKey+"=", "--change", "CMD [\"/sbin/init\"]", name, tag); err != nil {
		return "", err
	}
	return tag, nil
}

// LockFile is the lock one bench run holds for its whole run (flock): the bench's
// containers have fixed names, and a second run's cleanup would remove the first's.
var LockFile = filepath.Join(os.TempDir(), "cauldron-bench.lock")

// lockBench takes LockFile, waiting (and saying so) while another run holds it.
func lockBench(ctx context.Context, log io.Writer) (unlock func(), err error) {
	f, err := os.OpenFile(LockFile, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("bench lock: %w", err)
	}
	for said := false; ; said = true {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("bench lock %s: %w", LockFile, err)
		}
		if !said {
			fmt.Fprintf(log, "bench: another bench run holds %s; waiting for it to end\n", LockFile)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("bench lock %s: %w", LockFile, ctx.Err())
		case <-time.After(time.Second):
		}
	}
}
