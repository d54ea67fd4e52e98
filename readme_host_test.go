package cauldron_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cauldron-go/cauldron/lab"
	"github.com/cauldron-go/cauldron/transport"
)

// The README's custom recipe does what it says on a real systemd host: the dry run
// plans the seven steps, the apply makes them and restarts the service once, the next
// run changes nothing, and the service runs as its account with its sudo rule.
func TestTheReadmesCustomRecipeConvergesARealHost(t *testing.T) {
	if testing.Short() {
		t.Skip("converges a Debian container: runs without -short")
	}
	if exec.Command("docker", "info").Run() != nil {
		t.Fatal("this test needs a Docker engine: start dockerd, or run go test -short")
	}
	ctx := context.Background()
	const name = "cauldron-test-readme-hello"
	c, remove, err := lab.ScratchHost(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	defer remove()
	dir := t.TempDir()
	tarball := filepath.Join(dir, "hello-1.0.tar.gz")
	if err := writeTarGz(tarball, "hello-1.0/bin/hello", "#!/bin/sh\nexec sleep infinity\n"); err != nil {
		t.Fatal(err)
	}
	inv := filepath.Join(dir, "inventory.yaml")
	if err := os.WriteFile(inv, []byte("hosts:\n  box: {transport: docker, docker: {container: "+name+"}}\n"+
		"vars:\n  hello_tarball: "+tarball+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	report := filepath.Join(dir, "report.json")
	for _, run := range []struct {
		dryRun bool
		recap  string
	}{
		{true, "box  ok=0 changed=7 failed=0 skipped=0"},
		{false, "box  ok=0 changed=8 failed=0 skipped=0"},
		{false, "box  ok=7 changed=0 failed=0 skipped=0"},
	} {
		out, err := captureStdout(func() error { return Hello(ctx, &inv, &run.dryRun, &report, nil, nil, nil) })
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		// The recap line goes on with the host's traffic (commands=N round_trips=M).
		if !strings.Contains(out, run.recap+"\n") && !strings.Contains(out, run.recap+" commands=") {
			t.Fatalf("dry run %v: want %q in\n%s", run.dryRun, run.recap, out)
		}
	}
	got, err := transport.Output(ctx, c, "systemctl is-active hello.service; ps -o user= -C sleep; stat -c %U /home/hello; sudo -l -U hello | tail -1")
	if err != nil {
		t.Fatal(err)
	}
	want := "active\nhello\nhello\n    (root) NOPASSWD: /usr/bin/systemctl restart hello.service\n"
	if got != want {
		t.Fatalf("on the host:\n%q\nwant\n%q", got, want)
	}
}
