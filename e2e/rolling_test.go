package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cauldron-go/cauldron/configs"
	"github.com/cauldron-go/cauldron/lab"
	"github.com/cauldron-go/cauldron/loadcheck"
	"github.com/cauldron-go/cauldron/recipes"
	"github.com/cauldron-go/cauldron/runner"
	"github.com/cauldron-go/cauldron/shell"
	"github.com/cauldron-go/cauldron/transport"
)

// rollingRounds is how many times the rolling scenarios repeat: once in verify,
// CAULDRON_ROLLING_ROUNDS times for the longer target (go run mage.go rollingSoak).
func rollingRounds(t testing.TB) int {
	s := os.Getenv("CAULDRON_ROLLING_ROUNDS")
	if s == "" {
		return 1
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 50 {
		t.Fatalf("CAULDRON_ROLLING_ROUNDS=%q: want a number from 1 to 50", s)
	}
	return n
}

// rollingReplication is the session replication the rolling scenarios run with:
// CAULDRON_ROLLING_REPLICATION (sync, written or async), or "" for the inventory's own (the
// project's default), which is what a user gets. With async, a drained node is made to
// replicate synchronously while it is switched out (recipes.ClusterSendOptions):
// otherwise its users' next requests, sent to the other node at once, may come before
// the change of their last answer (measured: 1-2 broken counts per rollout).
func rollingReplication(t testing.TB) string {
	switch s := os.Getenv("CAULDRON_ROLLING_REPLICATION"); s {
	case "", "sync", "written", "async":
		return s
	default:
		t.Fatalf("CAULDRON_ROLLING_REPLICATION=%q: want sync, written or async", s)
		return ""
	}
}

// withReplication writes base with session_replication set to r.
func withReplication(t testing.TB, base, name, r string) string {
	return variantInventory(t, base, name, func(s string) string {
		if i := strings.Index(s, "\n  session_replication: "); i >= 0 {
			end := i + 1 + strings.Index(s[i+1:], "\n")
			return s[:i] + "\n  session_replication: " + r + s[end:]
		}
		return strings.Replace(s, "\n  haproxy_bind:", "\n  session_replication: "+r+"\n  haproxy_bind:", 1)
	})
}

// replicationOf is the session replication a deploy of the inventory gives the cluster.
func replicationOf(t testing.TB, path string) string {
	t.Helper()
	return topologyOf(t, path).Global.Replication
}

// optionsOf is the channelSendOptions a deploy of the inventory gives the clusters.
func optionsOf(t testing.TB, path string) int {
	r, err := configs.ParseReplication(replicationOf(t, path))
	if err != nil {
		t.Fatal(err)
	}
	return r.ChannelSendOptions()
}

type rollingVariant struct{ name, inv, version, heap string }

// rollingVariants are the inventories a round deploys, in order, from base: a config
// change (the heap) and a new release (the next WARs, with that heap): the issue's
// acceptance. With back, the round ends back at base (both again), so that a next
// round starts where the first did: the soak's rounds. Each one restarts every Tomcat,
// drained, one node at a time.
func rollingVariants(t testing.TB, l *lab.Lab, base, prefix string, back bool) []rollingVariant {
	heap := func(s string) string {
		return strings.Replace(s, "\n  haproxy_bind:", "\n  heap: 448m\n  haproxy_bind:", 1)
	}
	next := func(s string) string {
		for _, app := range lab.AppNames {
			was := s
			s = strings.Replace(s, ": "+l.Artifacts.Apps[app]+"\n", ": "+l.Artifacts.NextApps[app]+"\n", 1)
			if s == was {
				t.Fatalf("the inventory %s does not name %s's WAR %s", base, app, l.Artifacts.Apps[app])
			}
		}
		return s
	}
	vs := []rollingVariant{
		{"a config change (heap 448m)", variantInventory(t, base, prefix+"-heap.yaml", heap), lab.AppVersion, "448m"},
		{"a new release (" + lab.NextAppVersion + ")", variantInventory(t, base, prefix+"-release.yaml", func(s string) string { return next(heap(s)) }), lab.NextAppVersion, "448m"},
	}
	if back {
		// Every mode's nodes order both kinds of unacknowledged changes
		// (configs.OrderedSendOptions): a rolling restart switches the mode under load,
		// and the way back switches it again.
		other := "written"
		if replicationOf(t, base) == other {
			other = "async"
		}
		vs = append(vs,
			rollingVariant{"a switch to " + other + " replication", withReplication(t, vs[1].inv, prefix+"-"+other+".yaml", other), lab.NextAppVersion, "448m"},
			rollingVariant{"back to the lab's inventory", base, lab.AppVersion, "512m"})
	}
	return vs
}

// rollingBase is the lab's inventory with the rolling scenarios' replication, deployed
// (without load) when the cluster runs with another one: a rollout that changes the
// replication mode is not what the scenarios measure.
func rollingBase(t *testing.T, l *lab.Lab, inv, name string) string {
	t.Helper()
	r := rollingReplication(t)
	if r == "" {
		t.Logf("session replication: %s (the inventory's own)", replicationOf(t, inv))
		return inv
	}
	base := withReplication(t, inv, name, r)
	if was := replicationOf(t, inv); was != r {
		start := time.Now()
		stopTomcatsAcrossModes(t, l, base)
		mustDeploy(t, base, runner.Apply)
		waitWebs(t, l)
		t.Logf("the cluster ran with %s session replication: %s deployed in %.1f s (no load)", was, r, time.Since(start).Seconds())
	}
	t.Logf("session replication: %s", r)
	return base
}

// rollUnderLoad deploys inv under the load check and holds the drained restart to the
// issue's bar: 0 failed requests, 0 broken counts, 0 sessions lost; every Tomcat was
// restarted by the drained handler; every node then serves version with the heap;
// and 100 new sessions per site spread 40-60% over the two nodes. It logs how long
// each phase of each node's restart took.
func rollUnderLoad(t *testing.T, l *lab.Lab, inv, version, heap string) (summary string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	var sites []loadcheck.Site
	for _, s := range sitesOf(l) {
		sites = append(sites, loadcheck.Site{Name: s.name, URL: s.url})
	}
	// The wall clock of the load's start: its report counts from it (+26121.6ms), the
	// nodes' logs in the evidence by the clock.
	t.Logf("%s: the load starts at %s", inv, time.Now().UTC().Format("15:04:05.000"))
	check, err := loadcheck.Start(ctx, loadcheck.Options{Sites: sites, Users: 16, Duration: 25 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	// Every user has its session, and has used it, before the change starts.
	time.Sleep(2 * time.Second)
	var mu sync.Mutex
	var phases []string
	byNode := map[string][]string{}
	pctx := recipes.WithRestartPhases(ctx, func(p recipes.RestartPhase) {
		mu.Lock()
		defer mu.Unlock()
		phases = append(phases, fmt.Sprintf("%s %s %.1fs", p.Node, p.Phase, p.Took.Seconds()))
		byNode[p.Node] = append(byNode[p.Node], p.Phase)
	})
	start := time.Now()
	d := deployWith(pctx, t, inv, runner.Apply)
	took := time.Since(start)
	// The last node's first requests after the settle are in the check too.
	time.Sleep(time.Second)
	r := check.Stop()
	recordLoad(t, "rolling deploy of "+filepath.Base(inv), r)
	t.Logf("%s: deploy %.1f s; restart phases: %s\n%s", filepath.Base(inv), took.Seconds(), strings.Join(phases, ", "), r)
	summary = fmt.Sprintf("deploy=%.1fs %s", took.Seconds(), r.Line())
	defer func() {
		if t.Failed() {
			summary += " FAILED"
		}
	}()
	if d.err != nil || d.rep == nil || d.rep.Failed() {
		t.Fatalf("deploy %s failed: %v\n%s", filepath.Base(inv), d.err, d.progress)
	}
	if r.FailedTotal != 0 || r.Broken != 0 || r.Lost != 0 {
		t.Errorf("under the rolling restart: %d failed requests %v, %d broken counts, %d sessions lost, want none", r.FailedTotal, r.Failed, r.Broken, r.Lost)
	}
	restarted := 0
	for _, h := range d.rep.Hosts {
		for _, hd := range h.Handlers {
			if hd.Handler != recipes.TomcatHandler {
				continue
			}
			restarted++
			if hd.Status != runner.StatusChanged || !strings.Contains(hd.Summary, "taken out of") {
				t.Errorf("%s: %s %s %q, want a drained restart", h.Host, hd.Handler, hd.Status, hd.Summary)
			}
		}
	}
	if restarted != len(webHosts(l)) {
		t.Errorf("%d Tomcats restarted, want every one (%d):\n%s", restarted, len(webHosts(l)), d.progress)
	}
	want := "[find the balancers take out stop start serves joined put back settle]"
	if r := replicationOf(t, inv); r == "async" || r == "written" {
		// The node replicates synchronously while it is taken out (recipes.TomcatNode:
		// every mode but sync).
		want = "[find the balancers sync replication take out stop start serves joined put back settle]"
	}
	mu.Lock()
	for _, h := range webHosts(l) {
		// A node that missed the session state is restarted once more while still out
		// (recipes.DrainedRestart): unseen by users, so noted, not failed.
		phases := byNode[h]
		// A node restarted once more while out (recipes.DrainedRestart): it had no
		// session state, or another node's cluster did not count it again.
		for _, why := range []string{"no session state", "a peer misses it"} {
			if i := slices.Index(phases, why); i >= 0 && i+1 < len(phases) && phases[i+1] == "restart again" {
				t.Logf("%s: %s, restarted once more while out: %v", h, why, phases)
				phases = slices.Delete(slices.Clone(phases), i, i+2)
			}
		}
		if got := fmt.Sprint(phases); got != want {
			t.Errorf("%s went through the phases %s, want %s", h, got, want)
		}
	}
	mu.Unlock()
	for _, h := range webHosts(l) {
		for _, app := range configs.DefaultApps("/unused") {
			out := mustHost(t, l, h, fmt.Sprintf("curl -fsS -m 5 http://127.0.0.1:%d%s", app.HTTPPort, lab.AppVersionPath))
			var v struct{ Version string }
			if err := json.Unmarshal([]byte(out), &v); err != nil || v.Version != version {
				t.Errorf("%s: %s%s says %q (%v), want version %s", h, app.Name, lab.AppVersionPath, out, err, version)
			}
		}
		if out := mustHost(t, l, h, "ps -o args= -C java"); !strings.Contains(out, "-Xmx"+heap) {
			t.Errorf("%s: Tomcat runs without -Xmx%s: %s", h, heap, out)
		}
		checkReleaseFolders(t, l, h)
	}
	// The rollout left nothing owed: the plan of the same inventory changes nothing and
	// runs no handler (the release switches ran after the restarts).
	if p := deployWith(ctx, t, inv, runner.Plan); p.err != nil || p.rep == nil {
		t.Errorf("plan after the rollout: %v\n%s", p.err, p.progress)
	} else if changed, handlers := changedSteps(p.rep), handlerRuns(p.rep); len(changed)+len(handlers) != 0 {
		t.Errorf("the plan after the rollout would change %v and run %v, want nothing", changed, handlers)
	}
	for _, s := range sites {
		start := time.Now()
		seen, err := loadcheck.Spread(ctx, s, 100)
		if err == nil {
			err = loadcheck.Even(seen, []string{s.Name + "1", s.Name + "2"})
		}
		t.Logf("new sessions on %s right after the rolling restart: %v (%.1f s)", s.Name, seen, time.Since(start).Seconds())
		summary += fmt.Sprintf(" new_%s=%d/%d", s.Name, seen[s.Name+"1"], seen[s.Name+"2"])
		if err != nil {
			t.Errorf("%s: %v", s.Name, err)
		}
	}
	return summary
}

// checkReleaseFolders holds host h's apps to the release layout (recipes.TomcatNode):
// server.xml names each app's release folder, source/<app> links to it, and besides it
// at most the previous release is left.
func checkReleaseFolders(t *testing.T, l *lab.Lab, h string) {
	t.Helper()
	home := configs.DefaultTomcatHome
	for _, app := range configs.DefaultApps(home) {
		script := fmt.Sprintf(`grep -o 'docBase="[^"]*"' %s/conf/server.xml | grep -F %s@ | cut -d'"' -f2; `+
			`readlink %s; ls -d %s@* | wc -l`, home, app.DocBase, app.DocBase, app.DocBase)
		out := strings.Fields(mustHost(t, l, h, script))
		if len(out) != 3 || path.Dir(out[0]) != path.Dir(app.DocBase) || out[1] != path.Base(out[0]) || (out[2] != "1" && out[2] != "2") {
			t.Errorf("%s: %s: docBase, link and number of releases are %q: want the link to name server.xml's release folder, and at most one release besides it", h, app.DocBase, out)
		}
	}
}

// rollingSummary is one line per scenario run, for the end of a test's output.
type rollingSummary []string

func (s *rollingSummary) add(name, line string) { *s = append(*s, name+": "+line) }

func (s rollingSummary) String() string { return "summary:\n  " + strings.Join(s, "\n  ") }

// sitesOf is sites(l) for any lab.
func sitesOf(l *lab.Lab) []site { return sites(l) }

func TestRollingRestartsAndAReleaseGoUnnoticedUnderLoadOnTheApacheLab(t *testing.T) {
	l := needDeployed(t)
	evidenceOnFailure(t, l)
	start := time.Now()
	base := rollingBase(t, l, l.DockerInventory, "inventory-rolling.yaml")
	rounds := rollingRounds(t)
	variants := rollingVariants(t, l, base, "inventory-rolling", rounds > 1)
	var sum rollingSummary
	for round := 1; round <= rounds; round++ {
		for _, v := range variants {
			name := fmt.Sprintf("round %d: %s", round, v.name)
			t.Run(name, func(t *testing.T) {
				line := "stopped before its end (see above)"
				defer func() { sum.add(name, line) }()
				line = rollUnderLoad(t, l, v.inv, v.version, v.heap)
			})
		}
	}
	t.Logf("the Apache lab's rolling scenarios (%s replication) took %.1f s; %s", replicationOf(t, base), time.Since(start).Seconds(), sum)
}

func TestRollingRestartsAndAReleaseGoUnnoticedUnderLoadOnTheNginxLab(t *testing.T) {
	l, nginx := upNginxLab(t)
	base := nginx
	if r := rollingReplication(t); r != "" {
		base = withReplication(t, nginx, "inventory-rolling-nginx.yaml", r)
	}
	t.Logf("session replication: %s", replicationOf(t, base))
	deployAndWaitUp(t, l, base)
	start := time.Now()
	variants := rollingVariants(t, l, base, "inventory-rolling-nginx", false)
	var sum rollingSummary
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			line := "stopped before its end (see above)"
			defer func() { sum.add(v.name, line) }()
			line = rollUnderLoad(t, l, v.inv, v.version, v.heap)
		})
	}
	t.Logf("the Nginx lab's rolling scenarios (%s replication) took %.1f s; %s", replicationOf(t, base), time.Since(start).Seconds(), sum)
	// The drain wrote the site with a node down and back: the site is as the recipe
	// wants it, so a second deploy of the last inventory changes nothing.
	last := variants[len(variants)-1].inv
	if d := mustDeploy(t, last, runner.Apply); d.rep.Changed() != 0 {
		t.Errorf("after the rolling restarts a deploy changed %v", changedSteps(d.rep))
	}
}

func TestTheStatusWorkerAnswersOnTheNodeAndIsRefusedFromOutside(t *testing.T) {
	l := needDeployed(t)
	evidenceOnFailure(t, l)
	status := configs.NewApacheStatus()
	for _, h := range webHosts(l) {
		host, err := l.Host(h)
		if err != nil {
			t.Fatal(err)
		}
		out := mustHost(t, l, h, "curl -fsS -m 5 '"+status.URL()+"?cmd=list&mime=prop'")
		if !strings.Contains(out, "worker.result.type=OK") {
			t.Errorf("%s: the status worker does not answer on the node:\n%.500s", h, out)
		}
		// From another host of the network: the port is closed, and the sites' ports
		// hand the path to the app, not to the status worker.
		outside := fmt.Sprintf("http://%s:%d%s?cmd=list&mime=prop", host.Address, status.Port, status.Path)
		// curl's exit status 7: it could not connect (the port is closed there).
		if out, err := hostOutput(context.Background(), l, "haproxy", "curl -sS -m 5 '"+outside+"' 2>&1"); transport.ExitStatus(err) != 7 {
			t.Errorf("%s's status worker from the haproxy host: %v, want curl unable to connect (exit 7):\n%.300s", h, err, out)
		}
		for _, port := range []int{80, 9090} {
			u := fmt.Sprintf("http://%s:%d%s?cmd=list&mime=prop", host.Address, port, status.Path)
			if out, _ := hostOutput(context.Background(), l, "haproxy", "curl -sS -m 5 '"+u+"' 2>&1"); strings.Contains(out, "worker.result") {
				t.Errorf("%s: the status worker answers on the site port %d from outside", h, port)
			}
		}
	}
}

func TestTheSessionClustersOfARunningTomcatTakeNewSendOptionsAndSayThem(t *testing.T) {
	l := needDeployed(t)
	evidenceOnFailure(t, l)
	apps := len(configs.DefaultApps("/unused"))
	for _, h := range webHosts(l) {
		env := mustHost(t, l, h, "systemctl show -p Environment --value "+configs.TomcatUnitName)
		var javaHome string
		for _, f := range strings.Fields(env) {
			if v, ok := strings.CutPrefix(f, "JAVA_HOME="); ok {
				javaHome = v
			}
		}
		c, err := l.Conn(h)
		if err != nil {
			t.Fatal(err)
		}
		// The program runs from the Tribes jar the deploy built (which must hold it),
		// from its source when there is no jar, and from its source when the jar is an
		// earlier cauldron's, without the class.
		jar := path.Join(topologyOf(t, l.DockerInventory).Cluster.TomcatHome, "lib", recipes.TribesJarName)
		mustHost(t, l, h, "unzip -l "+shell.Quote(jar)+" io/cauldron/tribes/SetClusterSendOptions.class")
		for _, from := range []struct{ name, jar string }{{"the jar", jar}, {"the source", ""}, {"the source beside a jar without it", "/etc/hostname"}} {
			s := recipes.ClusterSendOptions{JavaHome: javaHome, User: "gaia3d", Unit: configs.TomcatUnitName, Clusters: apps, Jar: from.jar}
			// The lab's own replication last, so that the cluster is left as it was.
			was := optionsOf(t, l.DockerInventory)
			other := recipes.SendOptionsSync
			if was == recipes.SendOptionsSync {
				other = recipes.SendOptionsAsync
			}
			for _, o := range []int{other, was} {
				began := time.Now()
				out, err := s.Set(context.Background(), c, o)
				if err != nil {
					t.Fatalf("%s, from %s: %v", h, from.name, err)
				}
				if got := strings.Count(out, "type=Cluster="+strconv.Itoa(o)); got != apps {
					t.Errorf("%s, from %s: set %d: %q, want %d clusters saying %d", h, from.name, o, out, apps, o)
				}
				t.Logf("%s: set %d from %s in %.1f s", h, o, from.name, time.Since(began).Seconds())
			}
		}
	}
	// A JVM without the clusters it should have is left as it is, with an error; then
	// the lab gets its own value back.
	c, err := l.Conn(webHosts(l)[0])
	if err != nil {
		t.Fatal(err)
	}
	env := mustHost(t, l, webHosts(l)[0], "systemctl show -p Environment --value "+configs.TomcatUnitName)
	javaHome := env[strings.Index(env, "JAVA_HOME=")+len("JAVA_HOME="):]
	javaHome = strings.Fields(javaHome)[0]
	s := recipes.ClusterSendOptions{JavaHome: javaHome, User: "gaia3d", Unit: configs.TomcatUnitName, Clusters: apps + 1}
	was := optionsOf(t, l.DockerInventory)
	other := recipes.SendOptionsSync
	if was == recipes.SendOptionsSync {
		other = recipes.SendOptionsAsync
	}
	if _, err := s.Set(context.Background(), c, other); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%d session clusters", apps)) {
		t.Errorf("with %d clusters wanted: %v, want an error saying there are %d", apps+1, err, apps)
	}
	s.Clusters = apps
	if out, err := s.Set(context.Background(), c, was); err != nil || strings.Count(out, "=") != 2*apps {
		t.Errorf("after the refused change: %q %v", out, err)
	}
}

// stopTomcatsAcrossModes stops every web host's Tomcat when deploying inv would switch
// the running cluster to a mode its nodes could not understand, where the Tomcat recipe
// refuses the switch while Tomcat runs (recipes.OrderingMismatch: nodes of an earlier
// cauldron order only their own mode's changes; since session 8 every node orders both
// and switches modes by a rolling restart). The deploy then starts each stopped Tomcat
// with the new mode. A host whose server.xml is not there yet is left alone.
func stopTomcatsAcrossModes(t testing.TB, l *lab.Lab, inv string) {
	t.Helper()
	topo := topologyOf(t, inv)
	want, err := configs.ParseReplication(topo.Global.Replication)
	if err != nil {
		t.Fatal(err)
	}
	serverXML := shell.Quote(path.Join(topo.Cluster.TomcatHome, "conf", "server.xml"))
	for _, h := range webHosts(l) {
		running := mustHost(t, l, h, "cat "+serverXML+" 2>/dev/null || true")
		if running == "" {
			continue
		}
		if problem := recipes.OrderingMismatch(running, want); problem != "" {
			t.Logf("%s: %s: Tomcat stopped before the deploy", h, problem)
			mustHost(t, l, h, "systemctl stop "+configs.TomcatUnitName)
		}
	}
}
