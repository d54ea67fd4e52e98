package steps_test

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"

	"github.com/cauldron-go/cauldron/steps"
	"github.com/cauldron-go/cauldron/transport/local"
)

// A recipe is plain Go: the steps in order, and a handler that runs once, after them,
// when the unit or its configuration changed.
func ExampleNewRecipe() {
	r := steps.NewRecipe("sleeper",
		steps.Packages{Names: []string{"tree"}},
		steps.AddUser{Name: "sleeper", Shell: "/usr/sbin/nologin"},
	).Add(
		steps.Dir{Path: "/etc/sleeper", Mode: 0o750, Owner: "root", Group: "sleeper"},
		steps.Notify(steps.File{Path: "/etc/sleeper/sleeper.conf", Content: steps.Text("seconds=60\n"), Mode: 0o640, Group: "sleeper"}, "restart sleeper"),
		steps.Notify(steps.InstallUnit{Name: "sleeper.service", Content: steps.Text("[Service]\nUser=sleeper\nExecStart=/bin/sleep infinity\n")}, "restart sleeper"),
		steps.Service{Name: "sleeper.service", Enabled: new(true), State: steps.Started},
	).Handle("restart sleeper", steps.Restart{Name: "sleeper.service"})

	fmt.Println("valid:", r.Validate() == nil)
	for _, s := range r.Steps() {
		fmt.Println(s)
	}
	for _, h := range r.Handlers() {
		fmt.Println("handler", h.Name+":", h.Step)
	}
	// Output:
	// valid: true
	// packages tree
	// user sleeper
	// dir /etc/sleeper
	// file /etc/sleeper/sleeper.conf
	// systemd unit sleeper.service
	// service sleeper.service
	// handler restart sleeper: restart sleeper.service
}

// AddUser creates the runbook's Tomcat account, with its home (useradd -m), and sets
// its password from a crypt(3) hash over standard input. The hash never shows: not
// in the step's name, its summary, or an error.
func ExampleAddUser() {
	hash := "$6$rounds=5000$salt$hash" // openssl passwd -6, kept in a secret file
	account := steps.AddUser{Name: "gaia3d", Shell: "/bin/bash", PasswordHash: hash}
	fmt.Println(account, "valid:", steps.Validate(account) == nil)

	wrong := steps.AddUser{Name: "gaia 3d", Home: "home/gaia3d"}
	fmt.Println(steps.Validate(wrong))
	// Output:
	// user gaia3d valid: true
	// step "user gaia 3d": Name: "gaia 3d" is not a valid user or group name (want ^[a-z_][a-z0-9_-]*[$]?$)
	// Home: "home/gaia3d" is not an absolute path
}

// Visudo gives the Tomcat account the right to manage its own unit, and nothing else.
// visudo -cf checks the rules before they are installed; a name sudo would skip is
// refused before anything connects.
func ExampleVisudo() {
	rule := steps.Visudo{Name: "gaia3d-tomcat", Content: steps.Text(
		"gaia3d ALL=(root) NOPASSWD: /usr/bin/systemctl restart mago3d-tomcat.service\n")}
	fmt.Println(rule, "valid:", steps.Validate(rule) == nil)

	skipped := steps.Visudo{Name: "gaia3d.conf", Content: rule.Content}
	fmt.Println(steps.Validate(skipped))
	// Output:
	// sudoers gaia3d-tomcat valid: true
	// step "sudoers gaia3d.conf": Name: "gaia3d.conf" is not a sudoers.d name sudo reads (letters, digits, '-' and '_' only)
}

// InstallUnit writes the unit and reloads systemd only when the file changed; Service
// enables and starts it; a Restart handler, notified by the unit, restarts it after a
// change. A unit name without a type is a service, as for systemctl.
func ExampleInstallUnit() {
	unit := "[Service]\nUser=gaia3d\nExecStart=/home/gaia3d/tools/apache-tomcat/bin/catalina.sh run\n\n[Install]\nWantedBy=multi-user.target\n"
	r := steps.NewRecipe("tomcat unit",
		steps.Notify(steps.InstallUnit{Name: "mago3d-tomcat", Content: steps.Text(unit)}, "restart tomcat"),
		steps.Service{Name: "mago3d-tomcat", Enabled: new(true), State: steps.Started},
	).Handle("restart tomcat", steps.Restart{Name: "mago3d-tomcat"})

	fmt.Println("valid:", r.Validate() == nil)
	for _, s := range r.Steps() {
		fmt.Println(s)
	}
	fmt.Println("handler:", r.Handlers()[0].Step)
	// Output:
	// valid: true
	// systemd unit mago3d-tomcat.service
	// service mago3d-tomcat.service
	// handler: restart mago3d-tomcat.service
}

// Untar unpacks the JDK tarball the way the runbook's `tar -xvf` does, into a folder of
// its own without the tarball's top folder (StripComponents), and only once: Creates
// names the file whose presence means it is done. Here it runs on this machine, in a
// temporary folder; on a host it runs through the host's connection the same way.
func ExampleUntar() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "cauldron-untar-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	tarball := filepath.Join(dir, "jdk-17.tar.gz")
	if err := writeTarGz(tarball, map[string]string{"jdk-17.0.2/bin/java": "#!/bin/sh\n"}); err != nil {
		log.Fatal(err)
	}

	tools := filepath.Join(dir, "tools")
	jdk := steps.Untar{Archive: tarball, Dest: filepath.Join(tools, "jdk-17"), StripComponents: 1,
		Creates: filepath.Join(tools, "jdk-17", "bin", "java")}
	host := local.New()
	for range 2 {
		for _, s := range []steps.Step{steps.Dir{Path: tools, Mode: 0o750}, jdk} {
			changed, err := steps.Converge(ctx, host, s)
			if err != nil {
				log.Fatal(err)
			}
			fmt.Printf("%s: changed %v\n", strings.Replace(s.String(), dir, "…", -1), changed)
		}
	}
	// Output:
	// dir …/tools: changed true
	// untar …/jdk-17.tar.gz into …/tools/jdk-17: changed true
	// dir …/tools: changed false
	// untar …/jdk-17.tar.gz into …/tools/jdk-17: changed false
}

// An Untar with an Upload brings the tarball from the control machine and unpacks it
// as it arrives: one step where Ansible has a copy and a shell task, and the tarball
// crosses once. The copy is kept where Upload.Dest says, as the copy task keeps it.
func ExampleUntar_upload() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "cauldron-untar-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	src := filepath.Join(dir, "jdk-17.tar.gz") // on the control machine
	if err := writeTarGz(src, map[string]string{"jdk-17.0.2/bin/java": "#!/bin/sh\n"}); err != nil {
		log.Fatal(err)
	}

	setup, tools := filepath.Join(dir, "setup"), filepath.Join(dir, "tools")
	jdk := steps.Untar{Upload: &steps.Upload{Src: src, Dest: filepath.Join(setup, "jdk-17.tar.gz"), Mode: 0o640},
		Dest: filepath.Join(tools, "jdk-17"), StripComponents: 1, Creates: filepath.Join(tools, "jdk-17", "bin", "java")}
	host := local.New()
	for range 2 {
		for _, s := range []steps.Step{steps.Dir{Path: setup}, steps.Dir{Path: tools}, jdk} {
			changed, err := steps.Converge(ctx, host, s)
			if err != nil {
				log.Fatal(err)
			}
			fmt.Printf("%s: changed %v\n", strings.Replace(s.String(), dir, "…", -1), changed)
		}
	}
	// Output:
	// dir …/setup: changed true
	// dir …/tools: changed true
	// untar …/setup/jdk-17.tar.gz into …/tools/jdk-17: changed true
	// dir …/setup: changed false
	// dir …/tools: changed false
	// untar …/setup/jdk-17.tar.gz into …/tools/jdk-17: changed false
}

// writeTarGz writes a gzipped tarball of the given files.
func writeTarGz(path string, files map[string]string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	zw := gzip.NewWriter(f)
	tw := tar.NewWriter(zw)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(body))}); err != nil {
			return err
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return f.Close()
}
