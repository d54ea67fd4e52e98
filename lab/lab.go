package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/cauldron-go/cauldron/transport"
	"github.com/cauldron-go/cauldron/transport/docker"
)

// Options say which lab to bring up and where its files go. The zero value is the
// developer's lab: name "cauldron", network cauldron-lab on 172.29.10.0/24.
type Options struct {
	// Name prefixes every container ("<name>-web1") and the network ("<name>-lab"), and
	// is the value of the io.cauldron.lab label, so two labs never touch each other.
	Name string
	// StateDir holds the SSH key, known_hosts, the inventories and secrets/ (0600);
	// default <repo>/.cauldron/lab, or <repo>/.cauldron/<name> for another name.
	StateDir string
	// CacheDir holds the artifacts; default $XDG_CACHE_HOME/cauldron or ~/.cache/cauldron.
	CacheDir string
	// Subnet is the lab network's IPv4 /24; hosts take fixed addresses in it.
	Subnet string
	// WebNodes is how many web/Tomcat nodes (1 to 3); default 2.
	WebNodes int
	// PortOffset is added to every port published on 127.0.0.1 (8080, 9090, 22xx).
	PortOffset int
	// Log receives what the lab does; nil discards it.
	Log io.Writer
}

// DefaultName is the developer's lab.
const DefaultName = "cauldron"

// maxWebNodes is what the address plan leaves room for (.31 to .33).
const maxWebNodes = 3

// Host is one lab host.
type Host struct {
	Name      string // inventory name: db, haproxy, web1...
	Container string
	Address   string // fixed address on the lab network
	SSHPort   int    // sshd published on 127.0.0.1
	Groups    []string
	// Node is the Tomcat node number (1, 2, ...), 0 for other hosts.
	Node int
	// Publish are the other ports published on 127.0.0.1, as docker run -p values.
	Publish []string
}

// SSHAddr is where the host's sshd answers on the control machine.
func (h Host) SSHAddr() string { return "127.0.0.1:" + strconv.Itoa(h.SSHPort) }

// Lab is a described (and, after Up, running) lab.
type Lab struct {
	Name    string
	Network string
	Subnet  string
	Hosts   []Host
	// HTTPPort and AdminPort are HAProxy's user (80) and admin (9090) sites on 127.0.0.1.
	HTTPPort, AdminPort int

	StateDir        string
	CacheDir        string
	KeyFile         string // the lab's ed25519 private key
	KnownHostsFile  string
	DockerInventory string // StateDir/inventory-docker.yaml
	SSHInventory    string // StateDir/inventory-ssh.yaml
	// Artifacts are set by Up.
	Artifacts *Artifacts

	log io.Writer
}

// Host returns the named host.
func (l *Lab) Host(name string) (Host, error) {
	for _, h := range l.Hosts {
		if h.Name == name {
			return h, nil
		}
	}
	names := make([]string, len(l.Hosts))
	for i, h := range l.Hosts {
		names[i] = h.Name
	}
	return Host{}, fmt.Errorf("lab %s has no host %q (hosts: %s)", l.Name, name, strings.Join(names, ", "))
}

// Conn returns a docker exec connection to the named host.
func (l *Lab) Conn(name string) (*docker.Conn, error) {
	h, err := l.Host(name)
	if err != nil {
		return nil, err
	}
	return docker.New(h.Container), nil
}

// Describe returns the lab that o names, without touching Docker or any file.
func Describe(o Options) (*Lab, error) {
	if err := o.fill(); err != nil {
		return nil, err
	}
	prefix, err := netip.ParsePrefix(o.Subnet)
	if err != nil || !prefix.Addr().Is4() || prefix.Bits() > 24 {
		return nil, fmt.Errorf("lab subnet %q: want an IPv4 network of /24 or larger", o.Subnet)
	}
	prefix = prefix.Masked()
	base := prefix.Addr().As4()
	addr := func(last byte) string {
		a := base
		a[3] = last
		return netip.AddrFrom4(a).String()
	}
	port := func(p int) int { return p + o.PortOffset }
	l := &Lab{
		Name:      o.Name,
		Network:   o.Name + "-lab",
		Subnet:    prefix.String(),
		HTTPPort:  port(8080),
		AdminPort: port(9090),
		StateDir:  o.StateDir,
		CacheDir:  o.CacheDir,
		log:       o.Log,
	}
	l.KeyFile = filepath.Join(o.StateDir, "id_ed25519")
	l.KnownHostsFile = filepath.Join(o.StateDir, "known_hosts")
	l.DockerInventory = filepath.Join(o.StateDir, "inventory-docker.yaml")
	l.SSHInventory = filepath.Join(o.StateDir, "inventory-ssh.yaml")

	// The address and port plan: .10/2210 db, .20/2220 haproxy, .3N/223N webN.
	l.Hosts = append(l.Hosts,
		Host{Name: "db", Address: addr(10), SSHPort: port(2210), Groups: []string{"db"}},
		Host{Name: "haproxy", Address: addr(20), SSHPort: port(2220), Groups: []string{"haproxy"},
			Publish: []string{fmt.Sprintf("127.0.0.1:%d:80", l.HTTPPort), fmt.Sprintf("127.0.0.1:%d:9090", l.AdminPort)}},
	)
	for n := 1; n <= o.WebNodes; n++ {
		l.Hosts = append(l.Hosts, Host{Name: "web" + strconv.Itoa(n), Address: addr(byte(30 + n)),
			SSHPort: port(2230 + n), Groups: []string{"tomcat", "web"}, Node: n})
	}
	for i := range l.Hosts {
		h := &l.Hosts[i]
		h.Container = o.Name + "-" + h.Name
		h.Publish = append([]string{fmt.Sprintf("127.0.0.1:%d:22", h.SSHPort)}, h.Publish...)
	}
	return l, nil
}

// fill sets the defaults.
func (o *Options) fill() error {
	if o.Name == "" {
		o.Name = DefaultName
	}
	if strings.Trim(o.Name, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" || strings.HasPrefix(o.Name, "-") {
		return fmt.Errorf("lab name %q: use lower-case letters, digits and dashes", o.Name)
	}
	if o.Subnet == "" {
		o.Subnet = "172.29.10.0/24"
	}
	if o.WebNodes == 0 {
		o.WebNodes = 2
	}
	if o.WebNodes < 1 || o.WebNodes > maxWebNodes {
		return fmt.Errorf("lab web nodes %d: want 1 to %d", o.WebNodes, maxWebNodes)
	}
	if o.PortOffset < 0 || o.PortOffset+9090 > 65535 {
		return fmt.Errorf("lab port offset %d is out of range", o.PortOffset)
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.StateDir == "" {
		root, err := repoRoot()
		if err != nil {
			return err
		}
		sub := "lab"
		if o.Name != DefaultName {
			sub = o.Name
		}
		o.StateDir = filepath.Join(root, ".cauldron", sub)
	}
	if o.CacheDir == "" {
		dir, err := os.UserCacheDir() // $XDG_CACHE_HOME or ~/.cache
		if err != nil {
			return fmt.Errorf("lab cache folder: %w", err)
		}
		o.CacheDir = filepath.Join(dir, "cauldron")
	}
	var err error
	if o.StateDir, err = filepath.Abs(o.StateDir); err != nil {
		return err
	}
	if o.CacheDir, err = filepath.Abs(o.CacheDir); err != nil {
		return err
	}
	return nil
}

// repoRoot is the nearest folder above the working directory that has a go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("lab state folder: %w", err)
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("lab state folder: no go.mod above %s; set Options.StateDir", dir)
		}
	}
}

// Up brings the lab up: the base image, the network, the hosts with systemd running,
// the lab's SSH key in each host and each host's key in known_hosts, the secrets, the
// artifacts and the two inventories. It only does what is missing: on a lab that is up
// it changes nothing.
func Up(ctx context.Context, o Options) (*Lab, error) {
	l, err := Describe(o)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(l.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("lab state folder: %w", err)
	}
	image, err := BaseImage(ctx, l.log)
	if err != nil {
		return nil, fmt.Errorf("lab %s: %w", l.Name, err)
	}
	if err := l.ensureNetwork(ctx); err != nil {
		return nil, err
	}
	if err := l.ensureHosts(ctx, image); err != nil {
		return nil, err
	}
	if err := ensureSecrets(l.StateDir); err != nil {
		return nil, err
	}
	if l.Artifacts, err = EnsureArtifacts(ctx, l.CacheDir, l.log); err != nil {
		return nil, err
	}
	if err := l.writeInventories(); err != nil {
		return nil, err
	}
	fmt.Fprintf(l.log, "lab %s is up: inventories %s and %s\n", l.Name, l.DockerInventory, l.SSHInventory)
	return l, nil
}

// ensureHosts makes sure every host's container runs, its systemd has booted and it
// takes the lab's SSH key, and writes the hosts' keys to the lab's known_hosts. The
// hosts go at the same time, each over one command channel (one docker exec): one
// after another, with an exec per command, this was 1.8-2.0 s of every
// deploy:cluster on a lab that was up already, longer than the converged re-check
// that follows (the docker CLI and an exec cost 100-200 ms each on a 2-core machine).
func (l *Lab) ensureHosts(ctx context.Context, image string) error {
	pub, err := ensureKey(l.KeyFile)
	if err != nil {
		return fmt.Errorf("lab key: %w", err)
	}
	known := make([][]byte, len(l.Hosts))
	var g errgroup.Group
	for i, h := range l.Hosts {
		g.Go(func() error {
			if err := l.ensureContainer(ctx, h, image); err != nil {
				return err
			}
			c := docker.New(h.Container).WithChannel()
			defer c.Close()
			if err := WaitSystemd(ctx, c); err != nil {
				return fmt.Errorf("lab host %s: %w", h.Name, err)
			}
			if err := authorize(ctx, c, pub); err != nil {
				return fmt.Errorf("lab host %s: authorize the lab key: %w", h.Name, err)
			}
			line, err := KnownHostsLine(ctx, c, fmt.Sprintf("[127.0.0.1]:%d", h.SSHPort))
			if err != nil {
				return fmt.Errorf("lab host %s: %w", h.Name, err)
			}
			known[i] = line
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if _, err := writeFileIfChanged(l.KnownHostsFile, bytes.Join(known, nil), 0o600); err != nil {
		return fmt.Errorf("lab known_hosts: %w", err)
	}
	return nil
}

func (l *Lab) ensureNetwork(ctx context.Context) error {
	out, err := dockerOutput(ctx, "network", "inspect", "--format", "{{range .IPAM.Config}}{{.Subnet}} {{end}}", l.Network)
	if err == nil {
		if !strings.Contains(" "+out+" ", " "+l.Subnet+" ") {
			return fmt.Errorf("lab network %s exists with subnet %s, not %s: run Down first", l.Network, strings.TrimSpace(out), l.Subnet)
		}
		return nil
	}
	if !strings.Contains(out, "not found") {
		return fmt.Errorf("lab network %s: %w", l.Network, err)
	}
	fmt.Fprintf(l.log, "lab: creating network %s (%s)\n", l.Network, l.Subnet)
	return dockerRun(ctx, "network", "create", "--driver", "bridge", "--subnet", l.Subnet,
		"--label", LabelKey+"="+l.Name, l.Network)
}

// containerInfo is the part of docker inspect the lab reads.
type containerInfo struct {
	ID    string `json:"Id"`
	State struct {
		Status  string
		Running bool
	}
	Config struct {
		Image  string
		Labels map[string]string
	}
	NetworkSettings struct {
		Networks map[string]struct{ IPAddress string }
	}
}

// inspect returns nil, nil for a container that does not exist.
func inspect(ctx context.Context, name string) (*containerInfo, error) {
	cmd := exec.CommandContext(ctx, "docker", "container", "inspect", name)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if strings.Contains(stderr.String(), "No such container") {
			return nil, nil
		}
		return nil, fmt.Errorf("docker inspect %s: %v: %s", name, err, strings.TrimSpace(stderr.String()))
	}
	var infos []containerInfo
	if err := json.Unmarshal(out, &infos); err != nil || len(infos) != 1 {
		return nil, fmt.Errorf("docker inspect %s: unexpected answer: %v", name, err)
	}
	return &infos[0], nil
}

func (l *Lab) ensureContainer(ctx context.Context, h Host, image string) error {
	info, err := inspect(ctx, h.Container)
	if err != nil {
		return err
	}
	if info == nil {
		fmt.Fprintf(l.log, "lab: starting %s (%s)\n", h.Container, h.Address)
		return StartContainer(ctx, ContainerSpec{Name: h.Container, Image: image, Hostname: h.Name,
			Network: l.Network, IP: h.Address, Publish: h.Publish, Label: l.Name})
	}
	if info.Config.Labels[LabelKey] != l.Name {
		return fmt.Errorf("lab host %s: a container %s exists that is not this lab's (label %s=%q)",
			h.Name, h.Container, LabelKey, info.Config.Labels[LabelKey])
	}
	if info.Config.Image != image {
		// Recreating would throw away what the recipes installed; say so instead.
		fmt.Fprintf(l.log, "lab: %s runs image %s, not the current %s (Down and Up to renew it)\n", h.Container, info.Config.Image, image)
	}
	if !info.State.Running {
		fmt.Fprintf(l.log, "lab: starting stopped %s\n", h.Container)
		if err := dockerRun(ctx, "start", h.Container); err != nil {
			return fmt.Errorf("lab host %s: %w", h.Name, err)
		}
	}
	if n, ok := info.NetworkSettings.Networks[l.Network]; !ok {
		fmt.Fprintf(l.log, "lab: reconnecting %s to %s\n", h.Container, l.Network)
		return l.connect(ctx, h)
	} else if n.IPAddress != "" && n.IPAddress != h.Address {
		return fmt.Errorf("lab host %s: container %s has address %s, not %s: run Down first", h.Name, h.Container, n.IPAddress, h.Address)
	}
	return nil
}

func (l *Lab) connect(ctx context.Context, h Host) error {
	if err := dockerRun(ctx, "network", "connect", "--ip", h.Address, l.Network, h.Container); err != nil {
		return fmt.Errorf("lab host %s: %w", h.Name, err)
	}
	return nil
}

// Down removes the lab's containers and network, found by the lab's label. Images,
// artifacts and the state folder (key, secrets) stay.
func Down(ctx context.Context, o Options) error {
	l, err := Describe(o)
	if err != nil {
		return err
	}
	filter := "label=" + LabelKey + "=" + l.Name
	out, err := dockerOutput(ctx, "ps", "-aq", "--filter", filter)
	if err != nil {
		return fmt.Errorf("lab down: %w", err)
	}
	var errs []error
	for _, id := range strings.Fields(out) {
		if err := RemoveContainer(ctx, id); err != nil {
			errs = append(errs, err)
		}
	}
	out, err = dockerOutput(ctx, "network", "ls", "-q", "--filter", filter)
	if err != nil {
		return fmt.Errorf("lab down: %w", err)
	}
	for _, id := range strings.Fields(out) {
		if err := dockerRun(ctx, "network", "rm", id); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("lab down: %w", err)
	}
	fmt.Fprintf(l.log, "lab %s is down\n", l.Name)
	return nil
}

// HostStatus is one host as Status sees it.
type HostStatus struct {
	Host      string
	Address   string
	Container string
	// State is docker's: running, exited... or "missing".
	State string
	// SSH is the sshd endpoint on 127.0.0.1.
	SSH string
	// Systemd is `systemctl is-system-running` (running, degraded, starting...), empty
	// when the container does not run.
	Systemd string
	// Connected tells whether the container is on the lab network.
	Connected bool
}

// Status reports each host of the lab.
func Status(ctx context.Context, o Options) ([]HostStatus, error) {
	l, err := Describe(o)
	if err != nil {
		return nil, err
	}
	var out []HostStatus
	for _, h := range l.Hosts {
		s := HostStatus{Host: h.Name, Address: h.Address, Container: h.Container, SSH: h.SSHAddr(), State: "missing"}
		info, err := inspect(ctx, h.Container)
		if err != nil {
			return nil, err
		}
		if info != nil {
			s.State = info.State.Status
			_, s.Connected = info.NetworkSettings.Networks[l.Network]
			if info.State.Running {
				o, _ := transport.Output(ctx, docker.New(h.Container), "systemctl is-system-running")
				s.Systemd = strings.TrimSpace(o)
			}
		}
		out = append(out, s)
	}
	return out, nil
}

// StopHost stops a host's container (systemd shuts down cleanly).
func (l *Lab) StopHost(ctx context.Context, name string) error {
	h, err := l.Host(name)
	if err != nil {
		return err
	}
	fmt.Fprintf(l.log, "lab: stopping %s\n", h.Container)
	if err := dockerRun(ctx, "stop", "--time", "30", h.Container); err != nil {
		return fmt.Errorf("lab stop %s: %w", name, err)
	}
	return nil
}

// StartHost starts a stopped host and waits until systemd has booted.
func (l *Lab) StartHost(ctx context.Context, name string) error {
	h, err := l.Host(name)
	if err != nil {
		return err
	}
	fmt.Fprintf(l.log, "lab: starting %s\n", h.Container)
	if err := dockerRun(ctx, "start", h.Container); err != nil {
		return fmt.Errorf("lab start %s: %w", name, err)
	}
	if err := WaitSystemd(ctx, docker.New(h.Container)); err != nil {
		return fmt.Errorf("lab start %s: %w", name, err)
	}
	return nil
}

// Disconnect takes a host off the lab network, as a pulled cable: it keeps running
// but no other host reaches it. A host already off the network is fine.
func (l *Lab) Disconnect(ctx context.Context, name string) error {
	h, err := l.Host(name)
	if err != nil {
		return err
	}
	fmt.Fprintf(l.log, "lab: disconnecting %s from %s\n", h.Container, l.Network)
	out, err := dockerOutput(ctx, "network", "disconnect", l.Network, h.Container)
	if err != nil && !strings.Contains(out, "is not connected") {
		return fmt.Errorf("lab disconnect %s: %w", name, err)
	}
	return nil
}

// Reconnect puts a host back on the lab network with its fixed address. A host that
// is on the network is left alone.
func (l *Lab) Reconnect(ctx context.Context, name string) error {
	h, err := l.Host(name)
	if err != nil {
		return err
	}
	info, err := inspect(ctx, h.Container)
	if err != nil {
		return fmt.Errorf("lab reconnect %s: %w", name, err)
	}
	if info == nil {
		return fmt.Errorf("lab reconnect %s: container %s does not exist", name, h.Container)
	}
	if _, ok := info.NetworkSettings.Networks[l.Network]; ok {
		return nil
	}
	fmt.Fprintf(l.log, "lab: reconnecting %s to %s at %s\n", h.Container, l.Network, h.Address)
	return l.connect(ctx, h)
}
