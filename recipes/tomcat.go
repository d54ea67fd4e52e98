package recipes

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cauldron-go/cauldron/configs"
	"github.com/cauldron-go/cauldron/inventory"
	"github.com/cauldron-go/cauldron/steps"
)

// TomcatNodeConfig is one Tomcat node of the seed's sections 4 to 6.
type TomcatNodeConfig struct {
	// Account runs Tomcat; it owns everything under its home.
	Account      string
	PasswordHash string
	// Cluster and Node give server.xml its Services, connectors, jvmRoutes and cluster.
	Cluster configs.Cluster
	Node    configs.Node
	// TomcatTarball, JDKTarball and WARs (app folder name to WAR) are on the control machine.
	TomcatTarball string
	JDKTarball    string
	WARs          map[string]string
	// DB is what each app's application.properties says.
	DB   configs.AppProperties
	Heap string
	// Balancers are every balancer in front of the node: a restart takes the node out of
	// them first (DrainedRestart). None restarts it in place.
	Balancers []Balancer
	// ClusterCheckPath is the apps' cluster state page (lab.AppClusterPath's JSON): the
	// restart waits until the node has joined and has the sessions. Empty skips it.
	ClusterCheckPath string
	// RestartTimeout bounds each gate of the restart; 0 means 3 minutes.
	RestartTimeout time.Duration
	// SendPlainTarballs has the host unpack the tarballs' plain tar, decompressed once on
	// the control machine, instead of gunzipping them itself (steps.Untar.SendPlain):
	// less CPU on the host, more bytes on the link. TomcatRecipe sets it for a host on
	// the control machine (OnControlMachine).
	SendPlainTarballs bool
}

// OnControlMachine says whether h runs on the control machine: reached by docker exec
// through the local Docker engine, locally, or over SSH to a loopback address (a
// container's published port, as in the lab's SSH inventory). Such a host shares the
// controller's CPUs and its link is memory, so a tarball's plain tar costs it nothing
// to receive, while gunzip on every host costs the same CPUs each time.
func OnControlMachine(h *inventory.Host) bool {
	switch h.Transport {
	case "local":
		return true
	case "docker":
		// DOCKER_HOST may name an engine on another machine.
		d := os.Getenv("DOCKER_HOST")
		return d == "" || strings.HasPrefix(d, "unix://")
	case "ssh":
		addr := cmp.Or(h.SSH.Host, h.Address)
		if ip := net.ParseIP(addr); ip != nil {
			return ip.IsLoopback()
		}
		return addr == "localhost"
	}
	return false
}

// TomcatHandler restarts Tomcat; steps whose files Tomcat reads at start notify it.
const TomcatHandler = "restart mago3d-tomcat"

// ReleaseHandler names the handler that, after Tomcat's restart, switches app's link
// to the release server.xml names and removes the old releases (steps.SwitchRelease).
func ReleaseHandler(app configs.App) string {
	return "switch to the release of " + path.Base(app.DocBase)
}

// TomcatNode returns the recipe of one Tomcat node: the account and its sudo rule, the
// JDK and Tomcat unpacked under ~/tools, setenv.sh, server.xml, the apps with their
// application.properties, the console log turned off, and the systemd unit, enabled
// and started. Tomcat restarts only when one of the files it reads changed.
//
// Each app's WAR is unpacked into a release folder of its own beside its docBase,
// <docBase>@<the WAR's sha256[:12]>, which server.xml names: a release never changes a
// file the running Tomcat serves, and reaches it at the drained restart. After the
// restart, the handler ReleaseHandler(app) makes <docBase> a link to that folder (for
// people: Tomcat does not use it), <docBase>.previous one to the release before (kept
// for a roll back: deploying its WAR again unpacks nothing), and removes the others.
func TomcatNode(c TomcatNodeConfig) (*steps.Recipe, error) {
	if c.Account == "" || c.Cluster.TomcatHome == "" {
		return nil, errors.New("tomcat node: Account and Cluster.TomcatHome are required")
	}
	home := "/home/" + c.Account
	setup, tools := home+"/setup", home+"/tools"
	tomcatHome := c.Cluster.TomcatHome
	jdkName := tarballDir(c.JDKTarball)
	if !strings.HasPrefix(jdkName, "jdk") {
		return nil, fmt.Errorf("tomcat node: the JDK tarball %s is not named like jdk-<version>.tar.gz", c.JDKTarball)
	}
	javaHome := path.Join(tools, jdkName)
	upload := func(tarball string) *steps.Upload {
		return &steps.Upload{Src: tarball, Dest: path.Join(setup, filepath.Base(tarball)), Owner: c.Account, Group: c.Account, Mode: 0o640}
	}
	own := func(p string, mode fs.FileMode) steps.File {
		return steps.File{Path: p, Owner: c.Account, Group: c.Account, Mode: mode}
	}

	setenv := configs.NewSetEnv(javaHome)
	setenv.HeapMin, setenv.HeapMax = c.Heap, c.Heap
	setenv.CatalinaOut = "" // NullCatalinaOut turns the console log off, as the runbook does.
	unit := configs.NewSystemdUnit(c.Cluster, c.Account, javaHome)
	var errs []error
	content := func(f configs.File) steps.Content {
		b, err := rendered(f)
		errs = append(errs, err)
		return b
	}

	r := steps.NewRecipe("tomcat node "+c.Node.Name,
		steps.Packages{Names: []string{"unzip", "curl"}},
		NotASystemAccount{Name: c.Account},
		steps.AddUser{Name: c.Account, Home: home, Shell: "/bin/bash", PasswordHash: c.PasswordHash},
		steps.Sudoers{Name: c.Account + "-mago3d-tomcat", Content: steps.Text(SudoRule(c.Account, configs.TomcatUnitName))},
		steps.Dir{Path: setup, Owner: c.Account, Group: c.Account, Mode: 0o750},
		steps.Dir{Path: tools, Owner: c.Account, Group: c.Account, Mode: 0o750},
		// Each tarball is kept in setup/, as the runbook does, and unpacked as it
		// arrives: it crosses once, and the host unpacks it while it is written. The
		// two go side by side: neither builds on the other.
		steps.Together(
			steps.Untar{Upload: upload(c.JDKTarball), Dest: javaHome, StripComponents: 1,
				Creates: path.Join(javaHome, "bin", "java"), Owner: c.Account, Group: c.Account, SendPlain: c.SendPlainTarballs},
			steps.Untar{Upload: upload(c.TomcatTarball), Dest: tomcatHome, StripComponents: 1,
				Creates: path.Join(tomcatHome, "bin", "catalina.sh"), Owner: c.Account, Group: c.Account, SendPlain: c.SendPlainTarballs},
		),
	)
	setenvFile := own(path.Join(tomcatHome, "bin", "setenv.sh"), 0o750)
	setenvFile.Content = content(setenv)
	r.Add(steps.Notify(setenvFile, TomcatHandler))
	r.Add(steps.Notify(NullCatalinaOut(tomcatHome), TomcatHandler))
	if c.Cluster.Membership != configs.NoReplication {
		// server.xml names cauldron's valve (configs.ClassWokenNodeValve) and, written,
		// its Tribes classes (configs.ClassFreshConnectionsSender): the jar is there
		// before the file that needs it.
		r.Add(steps.Notify(TribesJar{JavaHome: javaHome, TomcatHome: tomcatHome, Owner: c.Account}, TomcatHandler))
	}
	// Each WAR is unpacked into a release folder of its own, named by its sum
	// (source/mago3d-admin@3f2a9c01b2d4), that server.xml names: a running Tomcat's
	// files never change under it, and a new release reaches Tomcat only through the
	// drained restart. After it, SwitchRelease points source/mago3d-admin (for people)
	// at the release, keeps the one before and removes the others.
	cluster := c.Cluster
	cluster.Apps = slices.Clone(c.Cluster.Apps)
	wars := make([]string, len(cluster.Apps))
	var switches []string
	for i, app := range cluster.Apps {
		dir := path.Base(app.DocBase)
		war, ok := c.WARs[dir]
		if !ok {
			errs = append(errs, fmt.Errorf("tomcat node: no WAR for app %s (artifacts.apps.%s)", app.Name, dir))
			continue
		}
		sum, err := steps.FileSHA256(war)
		if err != nil {
			errs = append(errs, fmt.Errorf("tomcat node: the WAR of app %s (artifacts.apps.%s): %w", app.Name, dir, err))
			continue
		}
		cluster.Apps[i].Release, wars[i] = sum[:12], war
		switches = append(switches, ReleaseHandler(app))
	}
	serverXML := orderingGuard{Step: WriteServerXML(cluster.TomcatHome, configs.NewServerXML(cluster, c.Node), c.Account),
		path: path.Join(cluster.TomcatHome, "conf", "server.xml"), unit: configs.TomcatUnitName, want: cluster.Replication}
	r.Add(steps.Notify(serverXML, append([]string{TomcatHandler}, switches...)...))

	props := c.DB
	madeDirs := map[string]bool{}
	for i, app := range cluster.Apps {
		if wars[i] == "" {
			continue
		}
		warOnHost := path.Join(setup, path.Base(app.DocBase)+".war")
		if parent := path.Dir(app.DocBase); !madeDirs[parent] {
			madeDirs[parent] = true
			r.Add(steps.Dir{Path: parent, Owner: c.Account, Group: c.Account, Mode: 0o750})
		}
		r.Add(
			steps.Upload{Src: wars[i], Dest: warOnHost, Owner: c.Account, Group: c.Account, Mode: 0o640},
			steps.Notify(steps.UnpackWAR{LocalWAR: wars[i], WAR: warOnHost, Dest: app.ReleaseDir(), Owner: c.Account, Group: c.Account}, TomcatHandler),
		)
		// Tomcat reads it at start only. A change of it alone (the database password)
		// is written into the release that runs, and the restart follows.
		propsFile := own(path.Join(app.ReleaseDir(), "WEB-INF", "classes", "application.properties"), 0o600)
		propsFile.Content, propsFile.SecretLines = content(&props), props.SecretLines()
		r.Add(steps.Notify(propsFile, TomcatHandler))
	}
	r.Add(
		steps.Notify(steps.InstallUnit{Name: configs.TomcatUnitName, Content: content(unit)}, TomcatHandler),
		steps.Service{Name: configs.TomcatUnitName, Enabled: ptr(true), State: steps.Started},
	)
	if c.ClusterCheckPath != "" && !urlPathRE.MatchString(c.ClusterCheckPath) {
		errs = append(errs, fmt.Errorf("tomcat node: cluster_check_path %q is not a URL path (/ then letters, digits, '.', '_', '-', '/')", c.ClusterCheckPath))
	}
	restart := DrainedRestart{Unit: configs.TomcatUnitName, Node: c.Node.Name, Balancers: c.Balancers, Timeout: c.RestartTimeout}
	if c.Cluster.Membership != configs.NoReplication && c.Cluster.Replication != configs.SyncReplication {
		// Asynchronous replication could lose the change of a user's last answer as the
		// node is switched out, and a written one could reach the other node after the
		// user's next request; synchronous for the drain only (see ClusterSendOptions).
		restart.SyncWhileDraining = &ClusterSendOptions{JavaHome: javaHome, User: c.Account, Unit: configs.TomcatUnitName, Clusters: len(c.Cluster.Apps), Configured: c.Cluster.Replication.ChannelSendOptions(),
			Jar: TribesJar{TomcatHome: tomcatHome}.jarPath()}
	}
	for _, app := range c.Cluster.Apps {
		restart.HealthURLs = append(restart.HealthURLs, fmt.Sprintf("http://127.0.0.1:%d/health", app.HTTPPort))
		if c.ClusterCheckPath != "" && c.Cluster.Membership != configs.NoReplication {
			restart.ClusterURLs = append(restart.ClusterURLs, fmt.Sprintf("http://127.0.0.1:%d%s", app.HTTPPort, c.ClusterCheckPath))
		}
		for _, peer := range c.Cluster.Nodes {
			if peer.Name != c.Node.Name {
				at := "http://" + net.JoinHostPort(peer.Address, strconv.Itoa(app.HTTPPort))
				restart.Peers = append(restart.Peers, at+"/health")
				if c.ClusterCheckPath != "" && c.Cluster.Membership != configs.NoReplication {
					restart.PeerClusterURLs = append(restart.PeerClusterURLs, at+c.ClusterCheckPath)
				}
			}
		}
	}
	r.Handle(TomcatHandler, restart)
	for i, app := range cluster.Apps {
		if wars[i] != "" {
			// After the restart: handlers run in the order they are declared.
			r.Handle(ReleaseHandler(app), steps.SwitchRelease{Link: app.DocBase, Release: app.Release,
				Unit: configs.TomcatUnitName, Config: path.Join(tomcatHome, "conf", "server.xml"), Owner: c.Account, Group: c.Account})
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return r, nil
}

// urlPathRE is a URL path that needs no escaping anywhere.
var urlPathRE = regexp.MustCompile(`^/[A-Za-z0-9._/-]*$`)

// SudoRule lets account start, stop, restart and ask the status of its own unit, and
// nothing else: the runbook's "NOPASSWD: /bin/systemctl" is root for anyone who holds it.
func SudoRule(account, unit string) string {
	var cmds []string
	for _, verb := range []string{"start", "stop", "restart", "status"} {
		for _, bin := range []string{"/usr/bin/systemctl", "/bin/systemctl"} {
			cmds = append(cmds, bin+" "+verb+" "+unit)
		}
	}
	return fmt.Sprintf("# Generated by cauldron: %s may manage %s only.\n%s ALL=(root) NOPASSWD: %s\n",
		account, unit, account, strings.Join(cmds, ", "))
}

// WriteServerXML is the step that writes <tomcatHome>/conf/server.xml, mode 0600, owned
// by account, from the typed model x: the cluster's own (configs.NewServerXML gives
// one node's Services, connectors, jvmRoute and session cluster) or one you describe
// yourself, field by field. The model is validated before anything connects (ports
// that clash, an AJP connector without a secret, a cluster channel shared by two
// Services), and the plan shows the change as a diff of the XML. Notify Tomcat's
// restart with it: Tomcat reads server.xml only at start.
//
//	x := configs.NewServerXML(cluster, node) // or &configs.ServerXML{...}
//	steps.Notify(recipes.WriteServerXML("/home/gaia3d/tools/mago3d-tomcat", x, "gaia3d"), recipes.TomcatHandler)
func WriteServerXML(tomcatHome string, x *configs.ServerXML, account string) steps.Step {
	p := path.Join(tomcatHome, "conf", "server.xml")
	f := steps.File{Path: p, Owner: account, Group: account, Mode: 0o600}
	if x == nil {
		return invalidStep{name: "file " + p, err: errors.New("WriteServerXML: no server.xml model")}
	}
	b, err := x.Render()
	if err != nil {
		return invalidStep{name: "file " + p, err: err}
	}
	f.Content, f.SecretLines = steps.Bytes(b), x.SecretLines()
	return f
}

// NullCatalinaOut turns Tomcat's console log off, as the runbook does by hand: it edits
// <tomcatHome>/bin/catalina.sh, replacing the last line that sets CATALINA_OUT (in
// Tomcat 10.1, `CATALINA_OUT="$CATALINA_BASE"/logs/catalina.out` inside the
// `if [ -z "$CATALINA_OUT" ]` block) with `CATALINA_OUT=/dev/null`, and leaves every other
// line, the file's mode and owner alone. The apps log to their own files, so
// catalina.out would only grow. A catalina.sh without such a line gets the line
// inserted after the shebang, where it still comes before its use. Notify Tomcat's
// restart with it.
//
//	steps.Notify(recipes.NullCatalinaOut("/home/gaia3d/tools/mago3d-tomcat"), recipes.TomcatHandler)
func NullCatalinaOut(tomcatHome string) steps.Step {
	return steps.LineInFile{Path: path.Join(tomcatHome, "bin", "catalina.sh"), Regexp: `^\s*CATALINA_OUT=`,
		Line: "  CATALINA_OUT=/dev/null", InsertAfter: `^#!`}
}

// tarballDir is the folder a tarball unpacks to by the usual naming: jdk-17.0.2.tar.gz -> jdk-17.0.2.
func tarballDir(p string) string {
	b := filepath.Base(p)
	for _, ext := range []string{".tar.gz", ".tgz", ".tar.xz", ".tar"} {
		if s, ok := strings.CutSuffix(b, ext); ok {
			return s
		}
	}
	return b
}

func (t *Topology) tomcatRecipe(h *inventory.Host) (*steps.Recipe, error) {
	v, err := t.Vars(h)
	if err != nil {
		return nil, err
	}
	n, err := t.node(h)
	if err != nil {
		return nil, err
	}
	return TomcatNode(TomcatNodeConfig{
		Account: v.TomcatUser, PasswordHash: v.TomcatPasswordHash,
		Cluster: t.Cluster, Node: n,
		TomcatTarball: v.Artifacts.Tomcat, JDKTarball: v.Artifacts.JDK, WARs: v.Artifacts.Apps,
		DB: configs.AppProperties{
			URL:      configs.JDBCURL(t.DB.Address, v.DBPort, v.DBName),
			Username: v.DBUser, Password: v.DBPassword,
		},
		Heap:      v.Heap,
		Balancers: t.balancers(n),
		// The demo apps' page; an app without one sets cluster_check_path: none.
		ClusterCheckPath:  v.ClusterCheckPath,
		SendPlainTarballs: OnControlMachine(h),
	})
}

// balancers are the balancers in front of node n: mod_jk or Nginx on every web host.
// HAProxy balances web hosts, not Tomcats: a Tomcat restart leaves it as it is.
func (t *Topology) balancers(n configs.Node) []Balancer {
	var out []Balancer
	for _, w := range t.Webs {
		v, err := HostVars(w)
		if err != nil {
			continue // the web play reports it
		}
		switch v.WebServer {
		case "apache":
			jk := &ModJKBalancer{Host: w.Name, StatusURL: configs.NewApacheStatus().URL()}
			for _, app := range t.Cluster.Apps {
				jk.Members = append(jk.Members, ModJKMember{Balancer: app.Name, Worker: app.JvmRoute(n)})
			}
			out = append(out, jk)
		case "nginx":
			ng := &NginxUpstream{Host: w.Name, Site: nginxSitePath}
			for _, app := range t.Cluster.Apps {
				ng.Servers = append(ng.Servers, net.JoinHostPort(n.Address, strconv.Itoa(app.HTTPPort)))
			}
			out = append(out, ng)
		}
	}
	return out
}
