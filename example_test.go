package cauldron_test

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"strings"

	"github.com/cauldron-go/cauldron/deploy"
	"github.com/cauldron-go/cauldron/inventory"
	"github.com/cauldron-go/cauldron/runner"
	"github.com/cauldron-go/cauldron/steps"
)

// README: custom recipe begins
// Hello installs the hello service on every host of the inventory, the way the runbook
// installs Tomcat: its account, a sudo rule for its unit, its tarball unpacked in its
// home, the systemd unit, enabled and started; a changed unit or tarball restarts it.
//
// Flags: -inventory=FILE -dryrun -report=FILE -parallel=N -failfast -maxfailpercent=N.
func Hello(ctx context.Context, inventory *string, dryrun *bool, report *string,
	parallel *int, failfast *bool, maxfailpercent *int) error {
	o := deploy.FromArgs(inventory, dryrun, report, parallel, failfast, maxfailpercent)
	o.Name = "hello"
	_, err := deploy.Run(ctx, o, helloPlays)
	return err
}

// helloPlays is one play: the hello recipe on every host of the inventory.
func helloPlays(inv *inventory.Inventory) ([]runner.Play, error) {
	return []runner.Play{{Name: "hello", Hosts: inv.Hosts, Recipe: helloRecipe}}, nil
}

// helloRecipe is one host's part. The tarball is on this machine, where the host's
// hello_tarball variable says.
func helloRecipe(h *inventory.Host) (*steps.Recipe, error) {
	tarball, ok := h.Vars.String("hello_tarball")
	if !ok {
		return nil, fmt.Errorf("host %s: hello_tarball is not set", h.Name)
	}
	const account, home = "hello", "/home/hello" // AddUser creates the home
	unit := "[Service]\nUser=hello\nExecStart=/home/hello/tools/hello/bin/hello\n\n" +
		"[Install]\nWantedBy=multi-user.target\n"
	return steps.NewRecipe("hello",
		steps.AddUser{Name: account, Shell: "/bin/bash"},
		steps.Visudo{Name: "hello", Content: steps.Text(
			"hello ALL=(root) NOPASSWD: /usr/bin/systemctl restart hello.service\n")},
		steps.Dir{Path: home + "/tools", Owner: account, Group: account, Mode: 0o750},
		steps.Upload{Src: tarball, Dest: home + "/hello.tar.gz", Owner: account, Group: account, Mode: 0o640},
		steps.Notify(steps.Untar{Archive: home + "/hello.tar.gz", Dest: home + "/tools/hello",
			StripComponents: 1, Owner: account, Group: account}, "restart hello"),
		steps.Notify(steps.InstallUnit{Name: "hello", Content: steps.Text(unit)}, "restart hello"),
		steps.Service{Name: "hello", Enabled: new(true), State: steps.Started},
	).Handle("restart hello", steps.Restart{Name: "hello"}), nil
}

// README: custom recipe ends

// The README's custom recipe is a mage target built on deploy.Run, the front door:
// the same flags, live lines, recap, report, Ctrl-C and secret masking as
// deploy:cluster. Here it runs as `go run mage.go hello -inventory=FILE -dryrun
// -report=FILE` would, on an inventory of one host, this machine, with -dryrun: it
// only reads, and the plan is the recap's changed count.
func Example_customRecipe() {
	dir, err := os.MkdirTemp("", "cauldron-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	tarball := filepath.Join(dir, "hello-1.0.tar.gz")
	if err := writeTarGz(tarball, "hello-1.0/bin/hello", "#!/bin/sh\nexec sleep infinity\n"); err != nil {
		log.Fatal(err)
	}
	inv := filepath.Join(dir, "inventory.yaml")
	if err := os.WriteFile(inv, []byte("hosts:\n  here: {transport: local}\nvars:\n  hello_tarball: "+tarball+"\n"), 0o600); err != nil {
		log.Fatal(err)
	}
	report, dryrun := filepath.Join(dir, "report.json"), true

	out, err := captureStdout(func() error { return Hello(context.Background(), &inv, &dryrun, &report, nil, nil, nil) })
	if err != nil {
		log.Fatal(err)
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "here ") && strings.Contains(line, "ok=") {
			fmt.Println(line)
		}
	}
	b, err := os.ReadFile(report)
	if err != nil {
		log.Fatal(err)
	}
	var r struct{ Mode string }
	if err := json.Unmarshal(b, &r); err != nil {
		log.Fatal(err)
	}
	fmt.Println("report:", r.Mode)
	// Output:
	// here  ok=0 changed=7 failed=0 skipped=0
	// report: plan
}

// captureStdout runs f with os.Stdout going to a pipe and returns what f wrote: the
// live lines carry timings, which an example's output cannot.
func captureStdout(f func() error) (string, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return "", err
	}
	saved := os.Stdout
	os.Stdout = w
	done := make(chan string)
	go func() {
		b, _ := io.ReadAll(r)
		done <- string(b)
	}()
	err = f()
	os.Stdout = saved
	w.Close()
	return <-done, err
}

// writeTarGz writes a gzipped tarball of one file.
func writeTarGz(path, name, body string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	zw := gzip.NewWriter(f)
	tw := tar.NewWriter(zw)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(body))}); err != nil {
		return err
	}
	if _, err := tw.Write([]byte(body)); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return f.Close()
}
