package recipes_test

import (
	"context"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cauldron-go/cauldron/configs"
	"github.com/cauldron-go/cauldron/recipes"
	"github.com/cauldron-go/cauldron/transport/local"
)

// systemTomcat is Debian's tomcat10 package, a Tomcat 10.1 like the nodes'.
const systemTomcat = "/usr/share/tomcat10"

// TestTheTribesJarIsBuiltOnceAndTomcatFindsAWrittenClustersClassesOnlyWithIt builds
// the jar with this machine's JDK against Debian's Tomcat 10.1 through the step,
// checks with a real socket that its sender opens a new connection to a member
// removed and back (ReconnectProbe; Tribes' own reuses the old one), that its failure
// detector counts a member back whose first test on its return failed (RejoinProbe;
// Tribes' own never does), that its valve
// refuses other nodes' sessions right after a freeze (WokenNodeProbe), that its other
// valve refuses a request past its balancer's deadline (AbandonedRequestProbe), that its
// order interceptor writes no later-numbered message while an earlier one is still on
// its way (GaplessOrderProbe), then runs Tomcat's configtest (the Digester that start uses, which loads every class
// server.xml names) on a written cluster's server.xml with and without the jar.
func TestTheTribesJarIsBuiltOnceAndTomcatFindsAWrittenClustersClassesOnlyWithIt(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles with javac and starts Tomcat's configtest twice (JVMs): runs without -short")
	}
	javac, err := exec.LookPath("javac")
	if err != nil {
		t.Skip("no javac")
	}
	if _, err := os.Stat(filepath.Join(systemTomcat, "bin", "catalina.sh")); err != nil {
		t.Skip("tomcat10 is not installed")
	}
	javac, err = filepath.EvalSymlinks(javac)
	if err != nil {
		t.Fatal(err)
	}
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	// A Tomcat home with the jars the classes compile against.
	home := t.TempDir()
	for _, p := range []string{"lib/catalina-tribes.jar", "lib/catalina.jar", "lib/servlet-api.jar", "bin/tomcat-juli.jar"} {
		if err := os.MkdirAll(filepath.Join(home, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join(systemTomcat, p), filepath.Join(home, p)); err != nil {
			t.Fatal(err)
		}
	}
	ctx, conn := context.Background(), local.New()
	step := recipes.TribesJar{JavaHome: filepath.Dir(filepath.Dir(javac)), TomcatHome: home, Owner: me.Username}
	if err := step.Validate(); err != nil {
		t.Fatal(err)
	}
	change, err := step.Check(ctx, conn)
	if err != nil || change == nil || !strings.Contains(change.Summary, "the jar is absent") {
		t.Fatalf("Check on a Tomcat without the jar = %+v, %v; want a change saying it is absent", change, err)
	}
	if err := change.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	if change, err := step.Check(ctx, conn); change != nil || err != nil {
		t.Fatalf("Check right after Apply = %+v, %v; want converged", change, err)
	}
	// Converged, the check starts no program: the marker the build left beside the
	// jar answers (here with no unzip to be found). Without the marker (a jar from a
	// cauldron before it) unzip reads the jar's own entry, and it is converged too.
	path := os.Getenv("PATH")
	t.Setenv("PATH", t.TempDir())
	if change, err := step.Check(ctx, conn); change != nil || err != nil {
		t.Fatalf("Check with the build's marker and no unzip = %+v, %v; want converged", change, err)
	}
	jar := filepath.Join(home, "lib", recipes.TribesJarName)
	if err := os.Remove(filepath.Join(home, "lib", "."+recipes.TribesJarName+".sha256")); err != nil {
		t.Fatal(err)
	}
	if change, err := step.Check(ctx, conn); err != nil || change == nil {
		t.Fatalf("Check with neither the marker nor unzip = %+v, %v; want a rebuild (nothing says which sources the jar has)", change, err)
	}
	t.Setenv("PATH", path)
	if change, err := step.Check(ctx, conn); change != nil || err != nil {
		t.Fatalf("Check of a jar without the marker, read by unzip = %+v, %v; want converged", change, err)
	}
	hash, err := exec.Command("unzip", "-p", jar, "META-INF/cauldron-sources.sha256").Output()
	if err != nil || strings.TrimSpace(string(hash)) != recipes.TribesSourcesHash() {
		t.Fatalf("the jar says its sources are %q (%v), want %s", hash, err, recipes.TribesSourcesHash())
	}
	// A jar built from other sources is built again.
	if err := exec.Command("bash", "-c", `cd "$2" && mkdir META-INF && echo 0123 > META-INF/cauldron-sources.sha256 && rm -f "$1" && zip -qr "$1" META-INF`, "-", jar, t.TempDir()).Run(); err != nil {
		t.Skipf("zip: %v", err)
	}
	if change, err := step.Check(ctx, conn); err != nil || change == nil || !strings.Contains(change.Summary, "built from other sources (0123)") {
		t.Fatalf("Check with another jar = %+v, %v; want a rebuild", change, err)
	} else if err := change.Apply(ctx); err != nil {
		t.Fatal(err)
	}

	// Tribes' own pooled sender keeps writing into the connection it opened before
	// the member went away; cauldron's opens a fresh one.
	java := filepath.Join(step.JavaHome, "bin", "java")
	tribesCP := []string{filepath.Join(home, "lib", "catalina-tribes.jar"), filepath.Join(home, "bin", "tomcat-juli.jar"), jar}
	for class, want := range map[string]string{
		"org.apache.catalina.tribes.transport.nio.PooledParallelSender": "1",
		configs.ClassFreshConnectionsSender:                             "2",
	} {
		if got := runProbe(t, java, tribesCP, "ReconnectProbe.java", class); got != want {
			t.Errorf("%s sent a member that went away and came back its messages over %s connections, want %s", class, got, want)
		}
	}

	// What a node wrote a member that is out of reach and still sits in its socket
	// buffer: Tribes' close delivers it all when the member is back; the reset
	// (ResetOnDepartureInterceptor, once the member is found gone) drops it.
	for how, want := range map[string]string{
		"remove": "all eof",
		"reset":  "part reset",
	} {
		if got := runProbe(t, java, tribesCP, "DepartureProbe.java", how); got != want {
			t.Errorf("closed by %s, the member read %q of what it was written, want %q", how, got, want)
		}
	}

	// A static member that stopped cleanly and whose first read test on its return
	// fails (a JVM just started on a loaded host acknowledging late) is left out of
	// the cluster for good by Tribes' own failure detector; cauldron's tests it again.
	for detector, want := range map[string]string{
		"stock":    "left out\ntest failed once",
		"cauldron": "rejoined\ntest failed once",
	} {
		if got := runProbe(t, java, tribesCP, "RejoinProbe.java", detector); got != want {
			t.Errorf("with the %s failure detector, a member back from a clean stop whose first test failed: %q, want %q", detector, got, want)
		}
	}

	// A node woken from a freeze refuses other nodes' sessions for a while (503), and
	// serves its own and new ones: before, right after 3 s stopped (SIGSTOP, as docker
	// pause), and after the probe's 3 s refuse time; a stop shorter than the valve's
	// 2 s refuses nothing.
	for frozen, want := range map[string]string{
		"3000": "s s s | 503 s s | s s s | refused 1",
		"500":  "s s s | s s s | s s s | refused 0",
	} {
		var cp []string
		for _, p := range []string{"catalina-tribes.jar", "catalina.jar", "servlet-api.jar", "tomcat-coyote.jar", "tomcat-util.jar", "tomcat-api.jar", "jaspic-api.jar"} {
			cp = append(cp, filepath.Join(systemTomcat, "lib", p))
		}
		cp = append(cp, filepath.Join(systemTomcat, "bin", "tomcat-juli.jar"), jar)
		if got := runProbe(t, java, cp, "WokenNodeProbe.java", frozen); got != want {
			t.Errorf("a node stopped for %s ms answered %q, want %q", frozen, got, want)
		}
	}

	// Tribes' OrderInterceptor lets a later-numbered message be written while an
	// earlier one is still on its way down (a gap if the node dies then); cauldron's
	// holds the next sender back, for at most its 200 ms wait.
	for _, tc := range []struct{ interceptor, slowWrite, want string }{
		{"stock", "300", "2 1"},
		{"gapless", "100", "1 2 | unlocked 0"},
		{"gapless", "500", "2 1 | unlocked 1"},
	} {
		if got := runProbe(t, java, tribesCP, "GaplessOrderProbe.java", tc.interceptor, tc.slowWrite); got != tc.want {
			t.Errorf("the %s order interceptor, a first write of %s ms: written %q, want %q", tc.interceptor, tc.slowWrite, got, tc.want)
		}
	}

	// A request that arrives after the deadline its balancer stamped is refused (503)
	// without running; one before it, without it, or with a deadline that is not a
	// number is served.
	var valveCP []string
	for _, p := range []string{"catalina.jar", "servlet-api.jar", "tomcat-coyote.jar", "tomcat-util.jar", "tomcat-api.jar", "jaspic-api.jar"} {
		valveCP = append(valveCP, filepath.Join(systemTomcat, "lib", p))
	}
	valveCP = append(valveCP, filepath.Join(systemTomcat, "bin", "tomcat-juli.jar"), jar)
	if got, want := runProbe(t, java, valveCP, "AbandonedRequestProbe.java", ""), "503 s s s | refused 1"; got != want {
		t.Errorf("requests past, before, without and with a bad deadline answered %q, want %q", got, want)
	}

	c := configs.NewCluster([]configs.Node{
		{Name: "web1", Address: "127.0.0.1", Index: 1},
		{Name: "web2", Address: "127.0.0.2", Index: 2},
	}, "test-ajp-secret-7f3a")
	c.Membership, c.Replication = configs.Static, configs.WrittenReplication
	with := configtest(t, c, jar)
	if strings.Contains(with, "Exception") || !strings.Contains(with, "Server initialization") {
		t.Fatalf("Tomcat with the jar does not take a written cluster's server.xml:\n%s", with)
	}
	without := configtest(t, c, "")
	if !strings.Contains(without, "ClassNotFoundException: "+configs.ClassFreshConnectionsSender) {
		t.Fatalf("Tomcat without the jar does not miss %s:\n%s", configs.ClassFreshConnectionsSender, without)
	}
}

// runProbe runs the Java source file testdata/probe with args on the class path cp and
// returns what it printed, trimmed; it fails the test if the probe fails.
func runProbe(t *testing.T, java string, cp []string, probe string, args ...string) string {
	t.Helper()
	cmd := exec.Command(java, append([]string{"-cp", strings.Join(cp, ":"), filepath.Join("testdata", probe)}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", probe, strings.Join(args, " "), err, out, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// configtest runs Debian's Tomcat's configtest on node 1's server.xml of c, with jar
// (if any) in CATALINA_BASE/lib, and returns its output.
func configtest(t *testing.T, c configs.Cluster, jar string) string {
	t.Helper()
	base := t.TempDir()
	for _, d := range []string{"conf", "lib", "logs", "temp", "webapps", "work"} {
		if err := os.MkdirAll(filepath.Join(base, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	webXML, err := os.ReadFile(filepath.Join(systemTomcat, "etc", "web.xml"))
	if err != nil {
		t.Skipf("Tomcat's default web.xml: %v", err)
	}
	if err := os.WriteFile(filepath.Join(base, "conf", "web.xml"), webXML, 0o644); err != nil {
		t.Fatal(err)
	}
	if jar != "" {
		if err := os.Symlink(jar, filepath.Join(base, "lib", filepath.Base(jar))); err != nil {
			t.Fatal(err)
		}
	}
	c.Apps = configs.DefaultApps(c.TomcatHome)
	for i := range c.Apps {
		// Clear of the ports configs' own configtest and the labs use.
		c.Apps[i].HTTPPort += 31000
		c.Apps[i].AJPPort += 31000
		c.Apps[i].DocBase = filepath.Join(base, c.Apps[i].Name)
		if err := os.Mkdir(c.Apps[i].DocBase, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	s := configs.NewServerXML(c, c.Nodes[0])
	s.Port = -1
	data, err := s.Render()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(base, "conf", "server.xml"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(systemTomcat, "bin", "catalina.sh"), "configtest")
	cmd.Env = append(os.Environ(), "CATALINA_HOME="+systemTomcat, "CATALINA_BASE="+base, "CATALINA_PID=")
	out, err := cmd.CombinedOutput()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatalf("catalina.sh configtest: %v", err)
	}
	return string(out)
}
