package lab_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cauldron-go/cauldron/inventory"
	"github.com/cauldron-go/cauldron/lab"
	"github.com/cauldron-go/cauldron/transport"
	"github.com/cauldron-go/cauldron/transport/docker"
	"github.com/cauldron-go/cauldron/transport/sshconn"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// The tests' own lab, apart from a developer's running one: its own name (so its own
// containers, network and label), subnet and ports.
var testOptions = lab.Options{
	Name:       "cauldron-test",
	Subnet:     "172.29.20.0/24",
	PortOffset: 100,
}

var (
	upOnce  sync.Once
	upLab   *lab.Lab
	upErr   error
	labLogs bytes.Buffer
)

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "cauldron-lab-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	testOptions.StateDir = dir
	testOptions.Log = &labLogs
	code := m.Run()
	if err := lab.Down(context.Background(), testOptions); err != nil {
		fmt.Fprintln(os.Stderr, "lab down:", err)
		code = 1
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// needDocker skips the tests that need the Docker engine under -short.
func needDocker(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs the Docker engine; skipped with -short")
	}
}

// testLab brings the tests' lab up once for every test that needs it.
func testLab(t *testing.T) *lab.Lab {
	t.Helper()
	needDocker(t)
	upOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
		defer cancel()
		if upErr = lab.EnsureDocker(ctx, testOptions); upErr != nil {
			return
		}
		upLab, upErr = lab.Up(ctx, testOptions)
	})
	if upErr != nil {
		t.Fatalf("lab up: %v\n%s", upErr, labLogs.String())
	}
	return upLab
}

func dockerOut(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("docker", args...).Output()
	if err != nil {
		t.Fatalf("docker %s: %v", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out))
}

func dialSSH(ctx context.Context, l *lab.Lab, h lab.Host) (*sshconn.Conn, error) {
	return sshconn.Dial(ctx, sshconn.Config{
		Addr:           h.SSHAddr(),
		User:           "root",
		IdentityFiles:  []string{l.KeyFile},
		KnownHostsFile: l.KnownHostsFile, // strict: no AcceptNewHostKey
	})
}

func TestTheBaseImageIsBuiltOnceAndThenReused(t *testing.T) {
	needDocker(t)
	ctx := context.Background()
	tag, err := lab.BaseImage(ctx, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	created := dockerOut(t, "image", "inspect", "--format", "{{.Created}}", tag)
	again, err := lab.BaseImage(ctx, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if again != tag {
		t.Errorf("second BaseImage gave %s, first %s", again, tag)
	}
	if now := dockerOut(t, "image", "inspect", "--format", "{{.Created}}", tag); now != created {
		t.Errorf("the image was built again: created %s, before %s", now, created)
	}
}

func TestUpBringsEveryHostWithSystemdAnsweringOverDockerAndSSH(t *testing.T) {
	l := testLab(t)
	ctx := context.Background()
	var names []string
	for _, h := range l.Hosts {
		names = append(names, h.Container)
	}
	if want := []string{"cauldron-test-db", "cauldron-test-haproxy", "cauldron-test-web1", "cauldron-test-web2"}; !slices.Equal(names, want) {
		t.Fatalf("hosts %v, want %v", names, want)
	}
	for _, h := range l.Hosts {
		t.Run(h.Name, func(t *testing.T) {
			c := docker.New(h.Container)
			state, err := transport.Output(ctx, c, "systemctl is-system-running")
			if s := strings.TrimSpace(state); s != "running" && s != "degraded" {
				t.Errorf("systemd is %q (%v)", s, err)
			}
			addr, err := transport.Output(ctx, c, "ip -4 -o addr show dev eth0")
			if err != nil || !strings.Contains(addr, " "+h.Address+"/24 ") {
				t.Errorf("eth0 has %q (%v), want %s", addr, err, h.Address)
			}
			s, err := dialSSH(ctx, l, h)
			if err != nil {
				t.Fatalf("ssh %s: %v", h.SSHAddr(), err)
			}
			defer s.Close()
			out, err := transport.Output(ctx, s, "hostname")
			if err != nil || strings.TrimSpace(out) != h.Name {
				t.Errorf("hostname over ssh is %q (%v), want %s", out, err, h.Name)
			}
		})
	}
}

// snapshot is what a second Up must leave alone.
func snapshot(t *testing.T, l *lab.Lab) map[string]string {
	t.Helper()
	s := map[string]string{}
	for _, h := range l.Hosts {
		s["container "+h.Name] = dockerOut(t, "container", "inspect", "--format", "{{.Id}} {{.State.StartedAt}}", h.Container)
	}
	s["network"] = dockerOut(t, "network", "inspect", "--format", "{{.Id}}", l.Network)
	files := []string{l.DockerInventory, l.SSHInventory, l.KnownHostsFile, l.KeyFile, l.Artifacts.Tomcat, l.Artifacts.JDK}
	secrets, _ := filepath.Glob(filepath.Join(l.StateDir, "secrets", "*"))
	for _, war := range l.Artifacts.Apps {
		files = append(files, war)
	}
	for _, f := range append(files, secrets...) {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		s["file "+f] = fmt.Sprintf("%v %v %x", fi.ModTime(), fi.Mode(), sha256.Sum256(data))
	}
	return s
}

func TestASecondUpChangesNothing(t *testing.T) {
	l := testLab(t)
	before := snapshot(t, l)
	start := time.Now()
	again, err := lab.Up(context.Background(), testOptions)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("second Up took %v", time.Since(start).Round(time.Millisecond))
	after := snapshot(t, again)
	for k, v := range before {
		if after[k] != v {
			t.Errorf("%s changed: %s -> %s", k, v, after[k])
		}
	}
}

// normalise replaces the paths and versions that vary from machine to machine.
func normalise(l *lab.Lab, data []byte) []byte {
	var warPaths []string // named by content, which changes with the demo apps
	for name, p := range l.Artifacts.Apps {
		warPaths = append(warPaths, p, "$ARTIFACTS/"+name+".war")
	}
	return []byte(strings.NewReplacer(append(warPaths,
		l.Artifacts.Dir, "$ARTIFACTS",
		l.StateDir, "$STATE",
		l.Artifacts.TomcatVersion, "$TOMCAT_VERSION",
		l.Artifacts.JDKVersion, "$JDK_VERSION")...,
	).Replace(string(data)))
}

func TestTheInventoriesAreAsTheGoldenFilesSayAndLoad(t *testing.T) {
	l := testLab(t)
	for _, variant := range []struct{ path, golden, transport string }{
		{l.DockerInventory, "testdata/inventory-docker.golden.yaml", "docker"},
		{l.SSHInventory, "testdata/inventory-ssh.golden.yaml", "ssh"},
	} {
		t.Run(variant.transport, func(t *testing.T) {
			data, err := os.ReadFile(variant.path)
			if err != nil {
				t.Fatal(err)
			}
			got := normalise(l, data)
			if *update {
				if err := os.WriteFile(variant.golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(variant.golden)
			if err != nil {
				t.Fatalf("%v (run with -update to write it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from %s:\n%s", variant.path, variant.golden, got)
			}
			if fi, err := os.Stat(variant.path); err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("%s: mode %v (%v), want 0600", variant.path, fi.Mode(), err)
			}

			inv, err := inventory.LoadOptions{SSHConfig: os.DevNull}.Load(variant.path)
			if err != nil {
				t.Fatal(err)
			}
			for _, g := range []struct {
				name  string
				hosts []string
			}{{"db", []string{"db"}}, {"tomcat", []string{"web1", "web2"}}, {"web", []string{"web1", "web2"}}, {"haproxy", []string{"haproxy"}}} {
				hosts, err := inv.GroupHosts(g.name)
				if err != nil {
					t.Fatal(err)
				}
				var names []string
				for _, h := range hosts {
					names = append(names, h.Name)
				}
				if !slices.Equal(names, g.hosts) {
					t.Errorf("group %s has %v, want %v", g.name, names, g.hosts)
				}
			}
			for _, lh := range l.Hosts {
				h, ok := inv.Host(lh.Name)
				if !ok {
					t.Fatalf("no host %s", lh.Name)
				}
				if h.Address != lh.Address || h.Transport != variant.transport {
					t.Errorf("%s: address %s transport %s", h.Name, h.Address, h.Transport)
				}
				if variant.transport == "ssh" && (h.SSH.Port != lh.SSHPort || h.SSH.KnownHosts != l.KnownHostsFile ||
					!slices.Equal(h.SSH.IdentityFiles, []string{l.KeyFile})) {
					t.Errorf("%s: ssh %+v", h.Name, h.SSH)
				}
				if variant.transport == "docker" && h.Docker.Container != lh.Container {
					t.Errorf("%s: container %q", h.Name, h.Docker.Container)
				}
				node, _ := h.Vars.String("node")
				if want := map[string]string{"web1": "1", "web2": "2"}[h.Name]; node != want {
					t.Errorf("%s: node %q, want %q", h.Name, node, want)
				}
			}
			// Every secret comes from its file in StateDir/secrets.
			for _, name := range []string{"ajp_secret", "db_password", "haproxy_stats_password", "tomcat_password_hash"} {
				file, err := os.ReadFile(filepath.Join(l.StateDir, "secrets", name))
				if err != nil {
					t.Fatal(err)
				}
				if v, _ := inv.Vars.String(name); v != strings.TrimSpace(string(file)) || v == "" {
					t.Errorf("var %s is not the content of secrets/%s", name, name)
				}
				if !slices.Contains(inv.Secrets(), v(inv, name)) {
					t.Errorf("var %s is not among the inventory's secrets", name)
				}
			}
			var artifacts struct {
				Artifacts struct {
					Tomcat string            `yaml:"tomcat"`
					JDK    string            `yaml:"jdk"`
					Apps   map[string]string `yaml:"apps"`
				} `yaml:"artifacts"`
			}
			if err := inv.Vars.Decode(&artifacts); err != nil {
				t.Fatal(err)
			}
			for _, p := range append([]string{artifacts.Artifacts.Tomcat, artifacts.Artifacts.JDK}, artifacts.Artifacts.Apps["mago3d-admin"], artifacts.Artifacts.Apps["mago3d-user"]) {
				if _, err := os.Stat(p); err != nil {
					t.Errorf("artifact: %v", err)
				}
			}
		})
	}
}

func v(inv *inventory.Inventory, name string) string {
	s, _ := inv.Vars.String(name)
	return s
}

func TestTheTomcatPasswordHashIsTheKeptPasswordsSHA512Crypt(t *testing.T) {
	l := testLab(t)
	pw, err := os.ReadFile(filepath.Join(l.StateDir, "secrets", "tomcat_password"))
	if err != nil {
		t.Fatal(err)
	}
	hash, err := os.ReadFile(filepath.Join(l.StateDir, "secrets", "tomcat_password_hash"))
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(string(hash), "$")
	if len(parts) != 4 || parts[1] != "6" || len(parts[2]) != 16 {
		t.Fatalf("the hash is not $6$<16-char salt>$...")
	}
	again, err := lab.SHA512Crypt(string(pw), parts[2])
	if err != nil || again != string(hash) {
		t.Errorf("the hash does not match the kept password (%v)", err)
	}
	for _, f := range []string{"tomcat_password", "tomcat_password_hash", "ajp_secret", "db_password", "haproxy_stats_password"} {
		fi, err := os.Stat(filepath.Join(l.StateDir, "secrets", f))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("secrets/%s: mode %v (%v), want 0600", f, fi.Mode(), err)
		}
	}
}

// reaches tells whether from can ping and open a TCP connection to address's sshd.
func reaches(ctx context.Context, from transport.Conn, address string) (ping, tcp bool) {
	ping = from.Run(ctx, transport.Command{Line: "ping -c 1 -W 2 " + address}) == nil
	tcp = from.Run(ctx, transport.Command{Line: "timeout 3 bash -c 'exec 3<>/dev/tcp/" + address + "/22'"}) == nil
	return ping, tcp
}

func TestDisconnectCutsAHostOffAndReconnectRestoresIt(t *testing.T) {
	l := testLab(t)
	ctx := context.Background()
	web1, _ := l.Host("web1")
	web2, _ := l.Conn("web2")
	if ping, tcp := reaches(ctx, web2, web1.Address); !ping || !tcp {
		t.Fatalf("before Disconnect web2 does not reach web1 (ping %t, tcp %t)", ping, tcp)
	}
	if err := l.Disconnect(ctx, "web1"); err != nil {
		t.Fatal(err)
	}
	// Whatever happens below, the lab is left connected for the other tests.
	defer l.Reconnect(ctx, "web1")
	if ping, tcp := reaches(ctx, web2, web1.Address); ping || tcp {
		t.Errorf("after Disconnect web2 still reaches web1 (ping %t, tcp %t)", ping, tcp)
	}
	if err := l.Disconnect(ctx, "web1"); err != nil {
		t.Errorf("a second Disconnect: %v", err)
	}
	if err := l.Reconnect(ctx, "web1"); err != nil {
		t.Fatal(err)
	}
	if ping, tcp := reaches(ctx, web2, web1.Address); !ping || !tcp {
		t.Errorf("after Reconnect web2 does not reach web1 (ping %t, tcp %t)", ping, tcp)
	}
	s, err := dialSSH(ctx, l, web1)
	if err != nil {
		t.Fatalf("ssh to web1 after Reconnect: %v", err)
	}
	s.Close()
}

func TestStopHostStopsItAndStartHostBringsItBackWithTheSameKey(t *testing.T) {
	l := testLab(t)
	ctx := context.Background()
	if err := l.StopHost(ctx, "web2"); err != nil {
		t.Fatal(err)
	}
	defer l.StartHost(ctx, "web2")
	status, err := lab.Status(ctx, testOptions)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range status {
		if s.Host == "web2" && (s.State != "exited" || s.Systemd != "") {
			t.Errorf("after StopHost web2 is %+v", s)
		}
	}
	web2, _ := l.Host("web2")
	if c, err := dialSSH(ctx, l, web2); err == nil {
		c.Close()
		t.Errorf("ssh to a stopped host succeeded")
	}
	if err := l.StartHost(ctx, "web2"); err != nil {
		t.Fatal(err)
	}
	c, err := dialSSH(ctx, l, web2)
	if err != nil {
		t.Fatalf("ssh (strict host key) after StartHost: %v", err)
	}
	c.Close()
}

func TestStatusReportsEveryHostRunning(t *testing.T) {
	l := testLab(t)
	status, err := lab.Status(context.Background(), testOptions)
	if err != nil {
		t.Fatal(err)
	}
	if len(status) != len(l.Hosts) {
		t.Fatalf("%d hosts in status, want %d", len(status), len(l.Hosts))
	}
	for i, s := range status {
		h := l.Hosts[i]
		want := lab.HostStatus{Host: h.Name, Address: h.Address, Container: h.Container, State: "running",
			SSH: h.SSHAddr(), Systemd: s.Systemd, Connected: true}
		if !reflect.DeepEqual(s, want) || (s.Systemd != "running" && s.Systemd != "degraded") {
			t.Errorf("status %+v, want %+v", s, want)
		}
	}
}

func TestThePublishedPortsListenOnLoopbackOnly(t *testing.T) {
	l := testLab(t)
	for _, h := range l.Hosts {
		ports := dockerOut(t, "port", h.Container)
		for _, line := range strings.Split(ports, "\n") {
			if !strings.Contains(line, "-> 127.0.0.1:") {
				t.Errorf("%s publishes %q", h.Container, line)
			}
		}
		conn, err := net.DialTimeout("tcp", h.SSHAddr(), 5*time.Second)
		if err != nil {
			t.Errorf("%s: %v", h.SSHAddr(), err)
			continue
		}
		conn.Close()
	}
	haproxy, _ := l.Host("haproxy")
	if got := dockerOut(t, "port", haproxy.Container, "80"); got != fmt.Sprintf("127.0.0.1:%d", l.HTTPPort) {
		t.Errorf("haproxy port 80 is published at %s", got)
	}
}

// tarEntries lists a .tar.gz's regular files and symlinks.
func tarEntries(t *testing.T, path string) (files, links map[string]bool) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	files, links = map[string]bool{}, map[string]bool{}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files, links
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		switch h.Typeflag {
		case tar.TypeReg:
			files[h.Name] = true
		case tar.TypeSymlink:
			links[h.Name] = true
		}
	}
}

func TestTheArtifactsAreInTheUpstreamLayoutAndRunTomcat(t *testing.T) {
	l := testLab(t)
	a := l.Artifacts
	top := "apache-tomcat-" + a.TomcatVersion + "/"
	if filepath.Base(a.Tomcat) != "apache-tomcat-"+a.TomcatVersion+".tar.gz" || !strings.HasPrefix(a.TomcatVersion, "10.1.") {
		t.Errorf("tomcat tarball %s, version %s", a.Tomcat, a.TomcatVersion)
	}
	files, links := tarEntries(t, a.Tomcat)
	if len(links) > 0 {
		t.Errorf("the Tomcat tarball has symlinks: %v", links)
	}
	for _, f := range []string{"bin/catalina.sh", "bin/startup.sh", "bin/shutdown.sh", "bin/setclasspath.sh", "bin/bootstrap.jar",
		"bin/tomcat-juli.jar", "conf/server.xml", "conf/web.xml", "conf/catalina.properties", "conf/logging.properties",
		"lib/catalina.jar", "lib/catalina-ha.jar", "lib/catalina-tribes.jar", "lib/eclipse-jdt-core.jar", "lib/postgresql.jar"} {
		if !files[top+f] {
			t.Errorf("the Tomcat tarball has no file %s%s", top, f)
		}
	}
	jdkTop := "jdk-" + a.JDKVersion + "/"
	files, _ = tarEntries(t, a.JDK)
	for _, f := range []string{"bin/java", "lib/modules", "lib/security/cacerts"} {
		if !files[jdkTop+f] {
			t.Errorf("the JDK tarball has no file %s%s", jdkTop, f)
		}
	}
	for name, p := range a.Apps {
		want, err := lab.BuildAppWAR(name)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := os.ReadFile(p); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s is not BuildAppWAR(%s) (%v)", p, name, err)
		}
	}
	if err := lab.VerifyArtifacts(context.Background(), a, io.Discard); err != nil {
		t.Error(err)
	}
}

func TestDownLeavesNoContainerOrNetworkWithTheLabel(t *testing.T) {
	needDocker(t)
	ctx := context.Background()
	o := lab.Options{Name: "cauldron-downtest", Subnet: "172.29.21.0/24", PortOffset: 200, WebNodes: 1, StateDir: t.TempDir()}
	l, err := lab.Up(ctx, o)
	if err != nil {
		lab.Down(ctx, o)
		t.Fatal(err)
	}
	filter := "label=io.cauldron.lab=cauldron-downtest"
	if got := strings.Fields(dockerOut(t, "ps", "-q", "--filter", filter)); len(got) != len(l.Hosts) || len(l.Hosts) != 3 {
		t.Errorf("%d containers running for %d hosts, want 3", len(got), len(l.Hosts))
	}
	if err := lab.Down(ctx, o); err != nil {
		t.Fatal(err)
	}
	if got := dockerOut(t, "ps", "-aq", "--filter", filter); got != "" {
		t.Errorf("containers left: %s", got)
	}
	if got := dockerOut(t, "network", "ls", "-q", "--filter", filter); got != "" {
		t.Errorf("networks left: %s", got)
	}
	if err := lab.Down(ctx, o); err != nil {
		t.Errorf("Down of a lab that is down: %v", err)
	}
	// The test lab is untouched.
	if testing.Short() || upLab == nil {
		return
	}
	if got := dockerOut(t, "ps", "-q", "--filter", "label=io.cauldron.lab=cauldron-test"); len(strings.Fields(got)) != len(upLab.Hosts) {
		t.Errorf("Down of another lab touched the test lab: %q", got)
	}
}

func TestUpRestartsAStoppedHostAndReconnectsADisconnectedOne(t *testing.T) {
	l := testLab(t)
	ctx := context.Background()
	ids := map[string]string{}
	for _, h := range l.Hosts {
		ids[h.Name] = dockerOut(t, "container", "inspect", "--format", "{{.Id}}", h.Container)
	}
	if err := l.StopHost(ctx, "web2"); err != nil {
		t.Fatal(err)
	}
	if err := l.Disconnect(ctx, "web1"); err != nil {
		t.Fatal(err)
	}
	if _, err := lab.Up(ctx, testOptions); err != nil {
		t.Fatal(err)
	}
	status, err := lab.Status(ctx, testOptions)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range status {
		if s.State != "running" || !s.Connected || (s.Systemd != "running" && s.Systemd != "degraded") {
			t.Errorf("after Up: %+v", s)
		}
		if id := dockerOut(t, "container", "inspect", "--format", "{{.Id}}", s.Container); id != ids[s.Host] {
			t.Errorf("%s was recreated, not repaired", s.Host)
		}
	}
	web1, _ := l.Host("web1")
	web2, _ := l.Conn("web2")
	if ping, tcp := reaches(ctx, web2, web1.Address); !ping || !tcp {
		t.Errorf("after Up web2 does not reach web1 at %s (ping %t, tcp %t)", web1.Address, ping, tcp)
	}
}
