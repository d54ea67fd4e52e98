package bench

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cauldron-go/cauldron/configs"
	"github.com/cauldron-go/cauldron/inventory"
	"github.com/cauldron-go/cauldron/recipes"
	"github.com/cauldron-go/cauldron/steps"
)

// workload is the same work written for both tools.
type workload struct {
	name string
	// recipe is cauldron's, per host.
	recipe func(h *inventory.Host) (*steps.Recipe, error)
	// playbook is Ansible's, in the bench's folder.
	playbook string
	// reset undoes the work on a host (run over docker exec before a first run).
	reset string
}

// The pyinfra performance workload: four operations, a directory, a file, a line in
// a file and a command guarded by the file it creates.
const (
	pyinfraDir   = "/opt/cauldron-bench"
	pyinfraFile  = pyinfraDir + "/motd"
	pyinfraLines = pyinfraDir + "/settings"
	pyinfraDone  = pyinfraDir + "/done"
	pyinfraText  = "written by the cauldron bench\n"
)

func pyinfraWorkload(dir string) (workload, error) {
	playbook := filepath.Join(dir, "pyinfra.yml")
	yml := fmt.Sprintf(`- hosts: all
  gather_facts: false
  tasks:
    - name: dir
      file: {path: %[1]s, state: directory, mode: "0755"}
    - name: file
      copy: {dest: %[2]s, content: %[5]q, mode: "0644"}
    - name: line
      lineinfile: {path: %[3]s, regexp: "^bench=", line: "bench=1", create: true}
    - name: guarded command
      shell: date > %[4]s
      args: {creates: %[4]s}
`, pyinfraDir, pyinfraFile, pyinfraLines, pyinfraDone, pyinfraText)
	if err := os.WriteFile(playbook, []byte(yml), 0o600); err != nil {
		return workload{}, err
	}
	return workload{
		name: "4 operations (dir, file, line, guarded command)",
		recipe: func(*inventory.Host) (*steps.Recipe, error) {
			return steps.NewRecipe("pyinfra workload",
				steps.Dir{Path: pyinfraDir, Mode: 0o755},
				steps.File{Path: pyinfraFile, Content: steps.Text(pyinfraText), Mode: 0o644},
				steps.LineInFile{Path: pyinfraLines, Regexp: "^bench=", Line: "bench=1"},
				steps.Command{Name: "guarded command", Line: "date > " + pyinfraDone, Creates: pyinfraDone},
			), nil
		},
		playbook: playbook,
		reset:    "rm -rf " + pyinfraDir,
	}, nil
}

// Artifacts are the seed's setup files the Tomcat workload uploads.
type Artifacts struct {
	JDK, Tomcat string
	WARs        map[string]string // app folder name -> WAR
}

// tomcatWorkload is the seed's sections 4 and 5 on a Tomcat node as 18 tasks: the
// account and its sudo rule, the setup and tools folders, the JDK and Tomcat tarballs
// uploaded and unpacked, setenv.sh, catalina.sh's console log off, server.xml, the
// apps' folder, the WARs uploaded and unpacked, and the systemd unit, enabled and
// started. The files are rendered once, by cauldron's typed models, and given to both
// tools as they are. Ansible unpacks a WAR once (creates:), cauldron again whenever
// the WAR changes (steps.UnpackWAR). Ansible copies each tarball, then unpacks it; a
// cauldron Untar with an Upload does both in one step (16 steps for 18 tasks, four of
// them in one steps.Together): the tarball is kept in setup/ all the same, and its
// plain tar (see steps.Untar.SendPlain) is unpacked as it arrives.
func tomcatWorkload(dir string, a Artifacts, hosts []*inventory.Host) (workload, error) {
	const account = "gaia3d"
	home := "/home/" + account
	setup, tools := home+"/setup", home+"/tools"
	secret := make([]byte, 16)
	if _, err := rand.Read(secret); err != nil {
		return workload{}, err
	}
	var nodes []configs.Node
	for i, h := range hosts {
		nodes = append(nodes, configs.Node{Name: h.Name, Address: h.Address, Index: i + 1})
	}
	cluster := configs.NewCluster(nodes, hex.EncodeToString(secret))
	tomcatHome := cluster.TomcatHome
	jdkName := tarballDir(a.JDK)
	javaHome := path.Join(tools, jdkName)
	setenv := configs.NewSetEnv(javaHome)
	setenv.HeapMin, setenv.HeapMax = "256m", "256m"
	setenv.CatalinaOut = ""
	files := map[string]configs.File{"setenv.sh": setenv, "mago3d-tomcat.service": configs.NewSystemdUnit(cluster, account, javaHome)}
	rendered := map[string][]byte{}
	for name, f := range files {
		b, err := f.Render()
		if err != nil {
			return workload{}, fmt.Errorf("bench: render %s: %w", name, err)
		}
		rendered[name] = b
	}
	rendered["sudoers"] = []byte(recipes.SudoRule(account, configs.TomcatUnitName))
	serverXML := map[string][]byte{}
	for _, n := range nodes {
		x := configs.NewServerXML(cluster, n)
		runbookTribes(x)
		b, err := x.Render()
		if err == nil && bytes.Contains(b, []byte("io.cauldron.")) {
			err = errors.New("it still names one of cauldron's own classes, which the bench's hosts lack")
		}
		if err != nil {
			return workload{}, fmt.Errorf("bench: render server.xml of %s: %w", n.Name, err)
		}
		serverXML[n.Name] = b
		rendered["server-"+n.Name+".xml"] = b
	}
	for name, b := range rendered {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			return workload{}, err
		}
	}
	source := path.Dir(cluster.Apps[0].DocBase)
	var wars, docBases []string
	for _, app := range cluster.Apps {
		name := path.Base(app.DocBase)
		war, ok := a.WARs[name]
		if !ok {
			return workload{}, fmt.Errorf("bench: no WAR for app %s", name)
		}
		wars = append(wars, name, war)
		docBases = append(docBases, app.DocBase)
	}

	own := fmt.Sprintf("owner: %s, group: %s", account, account)
	yml := fmt.Sprintf(`- hosts: all
  gather_facts: false
  tasks:
    - user: {name: %[1]s, home: %[2]s, shell: /bin/bash}
    - copy: {src: %[3]s/sudoers, dest: /etc/sudoers.d/%[1]s-mago3d-tomcat, mode: "0440", owner: root, group: root, validate: "visudo -cf %%s"}
    - file: {path: %[4]s, state: directory, mode: "0750", %[6]s}
    - file: {path: %[5]s, state: directory, mode: "0750", %[6]s}
    - copy: {src: %[7]s, dest: %[4]s/%[8]s, mode: "0640", %[6]s}
    - copy: {src: %[9]s, dest: %[4]s/%[10]s, mode: "0640", %[6]s}
    - shell: mkdir -p %[11]s && tar -xzf %[4]s/%[8]s -C %[11]s --strip-components=1 && chown -R %[1]s:%[1]s %[11]s
      args: {creates: %[11]s/bin/java}
    - shell: mkdir -p %[12]s && tar -xzf %[4]s/%[10]s -C %[12]s --strip-components=1 && chown -R %[1]s:%[1]s %[12]s
      args: {creates: %[12]s/bin/catalina.sh}
    - copy: {src: %[3]s/setenv.sh, dest: %[12]s/bin/setenv.sh, mode: "0750", %[6]s}
    - lineinfile: {path: %[12]s/bin/catalina.sh, regexp: '^\s*CATALINA_OUT=', line: "  CATALINA_OUT=/dev/null"}
    - copy: {src: "%[3]s/server-{{ inventory_hostname }}.xml", dest: %[12]s/conf/server.xml, mode: "0600", %[6]s}
    - file: {path: %[13]s, state: directory, mode: "0750", %[6]s}
    - copy: {src: %[15]s, dest: %[4]s/%[14]s.war, mode: "0640", %[6]s}
    - copy: {src: %[17]s, dest: %[4]s/%[16]s.war, mode: "0640", %[6]s}
    - shell: mkdir -p %[18]s && unzip -q -o %[4]s/%[14]s.war -d %[18]s && chown -R %[1]s:%[1]s %[18]s
      args: {creates: %[18]s/WEB-INF}
    - shell: mkdir -p %[19]s && unzip -q -o %[4]s/%[16]s.war -d %[19]s && chown -R %[1]s:%[1]s %[19]s
      args: {creates: %[19]s/WEB-INF}
    - copy: {src: %[3]s/mago3d-tomcat.service, dest: /etc/systemd/system/mago3d-tomcat.service, mode: "0644", owner: root, group: root}
    - systemd: {name: mago3d-tomcat, enabled: true, state: started, daemon_reload: true}
`, account, home, dir, setup, tools, own, a.JDK, path.Base(a.JDK), a.Tomcat, path.Base(a.Tomcat),
		javaHome, tomcatHome, source, wars[0], wars[1], wars[2], wars[3], docBases[0], docBases[1])
	playbook := filepath.Join(dir, "tomcat.yml")
	if err := os.WriteFile(playbook, []byte(yml), 0o600); err != nil {
		return workload{}, err
	}

	ownFile := func(p string, mode os.FileMode, b []byte) steps.File {
		return steps.File{Path: p, Owner: account, Group: account, Mode: mode, Content: steps.Bytes(b)}
	}
	upload := func(src, dest string) steps.Upload {
		return steps.Upload{Src: src, Dest: dest, Owner: account, Group: account, Mode: 0o640}
	}
	enabled := true
	return workload{
		name: "the seed's Tomcat node (sections 4-5, 18 tasks)",
		recipe: func(h *inventory.Host) (*steps.Recipe, error) {
			return steps.NewRecipe("tomcat node "+h.Name,
				steps.User{Name: account, Home: home, Shell: "/bin/bash"},
				steps.Sudoers{Name: account + "-mago3d-tomcat", Content: steps.Bytes(rendered["sudoers"])},
				steps.Dir{Path: setup, Owner: account, Group: account, Mode: 0o750},
				steps.Dir{Path: tools, Owner: account, Group: account, Mode: 0o750},
				// Ansible's copy and shell tar tasks in one step each: the tarball is kept
				// in setup/ as there, and tar unpacks it as it arrives. The hosts are
				// containers the bench started on this machine (what
				// recipes.OnControlMachine finds of the lab's hosts for a deploy): each
				// unpacks the plain tar the controller decompressed once and keeps in its
				// cache, rather than gunzipping the tarball on the CPUs they all share.
				//
				// The four transfers (the JDK, Tomcat and the two WARs) depend on none of
				// each other: they go together (steps.Together), the smaller ones while the
				// JDK streams, as a user who knows that would write it.
				steps.Together(
					steps.Untar{Upload: new(upload(a.JDK, path.Join(setup, path.Base(a.JDK)))), Dest: javaHome, StripComponents: 1,
						Creates: path.Join(javaHome, "bin", "java"), Owner: account, Group: account, SendPlain: true},
					steps.Untar{Upload: new(upload(a.Tomcat, path.Join(setup, path.Base(a.Tomcat)))), Dest: tomcatHome, StripComponents: 1,
						Creates: path.Join(tomcatHome, "bin", "catalina.sh"), Owner: account, Group: account, SendPlain: true},
					upload(wars[1], path.Join(setup, wars[0]+".war")),
					upload(wars[3], path.Join(setup, wars[2]+".war")),
				),
				ownFile(path.Join(tomcatHome, "bin", "setenv.sh"), 0o750, rendered["setenv.sh"]),
				recipes.NullCatalinaOut(tomcatHome),
				ownFile(path.Join(tomcatHome, "conf", "server.xml"), 0o600, serverXML[h.Name]),
				steps.Dir{Path: source, Owner: account, Group: account, Mode: 0o750},
				steps.UnpackWAR{LocalWAR: wars[1], WAR: path.Join(setup, wars[0]+".war"), Dest: docBases[0], Owner: account, Group: account},
				steps.UnpackWAR{LocalWAR: wars[3], WAR: path.Join(setup, wars[2]+".war"), Dest: docBases[1], Owner: account, Group: account},
				steps.SystemdUnit{Name: configs.TomcatUnitName, Content: steps.Bytes(rendered["mago3d-tomcat.service"])},
				steps.Service{Name: configs.TomcatUnitName, Enabled: &enabled, State: steps.Started},
			), nil
		},
		playbook: playbook,
		reset: "systemctl disable --now mago3d-tomcat 2>/dev/null; rm -f /etc/systemd/system/mago3d-tomcat.service /etc/sudoers.d/" + account + "-mago3d-tomcat; " +
			"systemctl daemon-reload; pkill -9 -u " + account + " 2>/dev/null; userdel -r " + account + " 2>/dev/null; rm -rf " + home + " /var/lib/cauldron; true",
	}, nil
}

// runbookTribes gives x the runbook's clustering, Tomcat's own classes only: the seed's
// sections 4-5 (what Ansible's copy carries too) have none of cauldron's (the valves that
// keep a woken node off stale sessions and refuse requests HAProxy gave up on, the failure detector that lets a restarted
// member back in), whose jar recipes.TribesJar compiles on a lab node and the bench's
// hosts do not have. Without it their Tomcat stops at start and systemd restarts it
// every few seconds (the converged re-run found it "activating" and started it again).
func runbookTribes(x *configs.ServerXML) {
	for i := range x.Services {
		e := &x.Services[i].Engine
		e.Valves = slices.DeleteFunc(e.Valves, func(v configs.Valve) bool { return strings.HasPrefix(v.ClassName, "io.cauldron.") })
		if e.Cluster == nil {
			continue
		}
		for j := range e.Cluster.Channel.Interceptors {
			switch l := &e.Cluster.Channel.Interceptors[j]; l.ClassName {
			case configs.ClassRejoinFailureDetector:
				l.ClassName = configs.ClassTcpFailureDetector
			case configs.ClassGaplessOrderInterceptor:
				l.ClassName = configs.ClassOrderInterceptor
			}
		}
	}
}

// tarballDir is the folder a tarball unpacks to by the usual naming: jdk-17.0.2.tar.gz -> jdk-17.0.2.
func tarballDir(p string) string {
	b := filepath.Base(p)
	for _, ext := range []string{".tar.gz", ".tgz", ".tar.xz", ".tar"} {
		if len(b) > len(ext) && b[len(b)-len(ext):] == ext {
			return b[:len(b)-len(ext)]
		}
	}
	return b
}
