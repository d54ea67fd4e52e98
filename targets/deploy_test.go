package targets_test

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cauldron-go/cauldron/targets"
	"github.com/cauldron-go/cauldron/transport/keeper"
)

func TestDeployClusterWithAWrongInventoryNamesFileLineAndKeyAndConnectsNowhere(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	bad := "groups:\n  tomcat:\n    hosts: [web1, web3]\nhosts:\n  web1:\n    address: 10.0.0.11\n    ssh:\n      prot: 22\n"
	if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	dryrun := true
	err := targets.Deploy{}.Cluster(context.Background(), &path, &dryrun, nil, nil, nil, nil, nil)
	if err == nil {
		t.Fatal("a wrong inventory deployed")
	}
	for _, want := range []string{
		path + `:3: groups.tomcat.hosts[1]: unknown host "web3" (did you mean "web1"?)`,
		path + `:8: hosts.web1.ssh.prot: unknown key (did you mean "port"?)`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestTransportIsOnlyForTheLab(t *testing.T) {
	path, ssh := "inventory.yaml", "ssh"
	err := targets.Deploy{}.Cluster(context.Background(), &path, nil, &ssh, nil, nil, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "-transport=ssh is for the lab") {
		t.Fatalf("got %v", err)
	}
}

// A report that cannot be written stops deploy:cluster before it brings up the lab or
// loads an inventory, not after the run.
func TestAnUnwritableReportStopsDeployClusterBeforeTheLabComesUp(t *testing.T) {
	report := filepath.Join(t.TempDir(), "no", "such", "folder", "deploy.json")
	err := targets.Deploy{}.Cluster(context.Background(), nil, nil, nil, &report, nil, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "-report="+report) {
		t.Fatalf("got %v", err)
	}
}

func TestDeployDisconnectClosesTheDockerChannelsKeptForLaterRuns(t *testing.T) {
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	t.Cleanup(func() { keeper.Stop(keeper.Dir()) })
	// What a docker Conn with persist hands the keeper at its Close: the exec's socket
	// (near), the idle shell at its other end (far).
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	near, far := os.NewFile(uintptr(fds[0]), "near"), os.NewFile(uintptr(fds[1]), "far")
	defer far.Close()
	nearConn, err := net.FileConn(near)
	near.Close()
	if err != nil {
		t.Fatal(err)
	}
	if err := keeper.Park(context.Background(), keeper.Dir(), "docker\nweb1", "token", nearConn.(syscall.Conn), time.Minute); err != nil {
		t.Fatal(err)
	}
	nearConn.Close() // the keeper holds its own
	if err := (targets.Deploy{}).Disconnect(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The keeper closed what it kept: the shell's end reads its end.
	done := make(chan error, 1)
	go func() { _, err := far.Read(make([]byte, 1)); done <- err }()
	select {
	case err := <-done:
		if err != io.EOF {
			t.Errorf("the kept channel's far end read %v, want EOF", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("5 s after deploy:disconnect the keeper still holds the channel")
	}
	if _, _, ok, err := keeper.Take(context.Background(), keeper.Dir(), "docker\nweb1"); ok || err != nil {
		t.Errorf("after deploy:disconnect a run took a kept channel (ok %v, err %v)", ok, err)
	}
	// With nothing kept, it has nothing to do.
	if err := (targets.Deploy{}).Disconnect(context.Background()); err != nil {
		t.Errorf("a second deploy:disconnect: %v", err)
	}
}
