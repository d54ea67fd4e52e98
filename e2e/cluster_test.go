package e2e_test

// The checks of the apache lab, in the order they run: each leaves the cluster as the
// next one expects it (converged, every node serving). Go runs a file's tests in source
// order; the ones that need the converged cluster skip when the first deploy failed.

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cauldron-go/cauldron/configs"
	"github.com/cauldron-go/cauldron/inventory"
	"github.com/cauldron-go/cauldron/lab"
	"github.com/cauldron-go/cauldron/recipes"
	"github.com/cauldron-go/cauldron/runner"
	"github.com/cauldron-go/cauldron/shell"
)

func TestADryRunOfTheBareLabChangesNothing(t *testing.T) {
	l := needLab(t)
	d := deploy(t, l.DockerInventory, runner.Plan)
	if d.err != nil || d.rep.Failed() {
		t.Fatalf("the dry run failed: %v\n%s", d.err, d.progress)
	}
	for _, h := range d.rep.Hosts {
		for _, s := range h.Steps {
			if s.Status == runner.StatusFailed || s.Status == runner.StatusSkipped {
				t.Errorf("%s: step %q: %s %s%s", h.Host, s.Step, s.Status, s.Error, s.Reason)
			}
		}
		if h.Counts.Changed == 0 {
			t.Errorf("%s: a bare host reports nothing to change", h.Host)
		}
	}
	if d.rep.Mode != runner.Plan {
		t.Errorf("report mode %s, want plan", d.rep.Mode)
	}
	// Nothing was installed or written.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for host, line := range map[string]string{
		"haproxy": "dpkg -s haproxy",
		"db":      "dpkg -s postgresql",
		"web1":    "dpkg -s apache2",
		"web2":    "id gaia3d",
	} {
		if out, err := hostOutput(ctx, l, host, line); err == nil {
			t.Errorf("after the dry run, %q succeeds on %s: it changed the host\n%s", line, host, out)
		}
	}
	if t.Failed() {
		t.Logf("progress:\n%s", d.progress)
	}
}

func TestFirstDeployOverDockerExecConvergesTheBareLab(t *testing.T) {
	l := needLab(t)
	evidenceOnFailure(t, l)
	d := mustDeploy(t, l.DockerInventory, runner.Apply)
	if d.rep.Changed() == 0 {
		t.Fatalf("the first deploy on bare hosts changed nothing\n%s", d.progress)
	}
	for _, h := range d.rep.Hosts {
		if h.Counts.Changed == 0 {
			t.Errorf("%s: the first deploy changed nothing on it", h.Host)
		}
	}
	t.Logf("first deploy: %d changes in %s", d.rep.Changed(), d.rep.Duration.Round(time.Second))
	deployed = !t.Failed()
}

func TestASecondDeployOverSSHChangesNothing(t *testing.T) {
	l := needDeployed(t)
	d := mustDeploy(t, l.SSHInventory, runner.Apply)
	if n := d.rep.Changed(); n != 0 {
		t.Errorf("the second deploy (over SSH, after docker exec) changed %d things: %v\n%s", n, changedSteps(d.rep), d.progress)
	}
	if hs := handlerRuns(d.rep); len(hs) != 0 {
		t.Errorf("the second deploy ran handlers: %v", hs)
	}
	for _, h := range d.rep.Hosts {
		if len(h.Steps) == 0 || h.Counts.OK != len(h.Steps) {
			t.Errorf("%s: %d steps, %d ok: %+v", h.Host, len(h.Steps), h.Counts.OK, h.Counts)
		}
		// A converged host's checks, all its plays' and the pending-handler read, go
		// in one command over its channel: one round trip, two at most (a cold SSH
		// connection's shell start).
		if h.Traffic == nil || h.Traffic.RoundTrips > 2 || h.Traffic.Commands != 1 {
			t.Errorf("%s: traffic %+v, want 1 command in at most 2 round trips for a converged host", h.Host, h.Traffic)
		} else {
			t.Logf("%s: %d commands in %d round trips", h.Host, h.Traffic.Commands, h.Traffic.RoundTrips)
		}
	}
	t.Logf("converged re-check over SSH: %s", d.rep.Duration.Round(time.Millisecond))
}

// routesSeen opens n new sessions on s and returns the jvmRoutes that served them.
func routesSeen(t testing.TB, s site, n int) map[string]int {
	t.Helper()
	seen := map[string]int{}
	for range n {
		a := newBrowser(s).mustSession(t)
		if a.Count != 1 {
			t.Errorf("%s: a new session starts at count %d, want 1", s.name, a.Count)
		}
		seen[a.Node]++
	}
	return seen
}

// wantRoutes is every jvmRoute the site should be served by: admin1, admin2...
func wantRoutes(l *lab.Lab, s site) []string {
	var out []string
	for _, h := range l.Hosts {
		if h.Node > 0 {
			out = append(out, s.name+strconv.Itoa(h.Node))
		}
	}
	return out
}

// checkEveryNodeServes opens new sessions until every node served the site, or fails.
func checkEveryNodeServes(t *testing.T, l *lab.Lab) {
	t.Helper()
	for _, s := range sites(l) {
		want := wantRoutes(l, s)
		seen := routesSeen(t, s, 12*len(want))
		for _, r := range want {
			if seen[r] == 0 {
				t.Errorf("%s site: no new session was served by %s (served: %v)", s.name, r, seen)
			}
		}
		for r := range seen {
			if !slices.Contains(want, r) {
				t.Errorf("%s site: a session was served by %q, not one of %v", s.name, r, want)
			}
		}
	}
}

func TestBothWebNodesServeBothSitesAndASessionSticksToItsNode(t *testing.T) {
	l := needDeployed(t)
	evidenceOnFailure(t, l)
	checkEveryNodeServes(t, l)
	for _, s := range sites(l) {
		b := newBrowser(s)
		first := b.mustSession(t)
		if first.App != "mago3d-"+s.name {
			t.Errorf("%s site answers for app %q", s.name, first.App)
		}
		for i := 2; i <= 8; i++ {
			a := b.mustSession(t)
			if a.Node != first.Node || a.Session != first.Session {
				t.Errorf("%s site, request %d: served by %s as %s, the session began on %s as %s", s.name, i, a.Node, a.Session, first.Node, first.Session)
			}
			if a.Count != i {
				t.Errorf("%s site, request %d: count %d", s.name, i, a.Count)
			}
		}
	}
}

func TestTheDatabaseAnswersThroughTheWholeChain(t *testing.T) {
	l := needDeployed(t)
	evidenceOnFailure(t, l)
	for _, s := range sites(l) {
		var last int
		for i := range 3 {
			code, _, body, err := get(s.url+"/db.json", nil)
			if err != nil || code != http.StatusOK {
				t.Fatalf("%s /db.json: %d %v: %s", s.name, code, err, body)
			}
			var a struct {
				DB     string `json:"db"`
				Visits int    `json:"visits"`
			}
			if err := json.Unmarshal(body, &a); err != nil || a.DB != "ok" {
				t.Fatalf("%s /db.json: %v: %s", s.name, err, body)
			}
			if i > 0 && a.Visits <= last {
				t.Errorf("%s /db.json: visits %d after %d: the row was not recorded", s.name, a.Visits, last)
			}
			last = a.Visits
		}
	}
}

func TestAJPStatsPageAndSudoAreLockedDown(t *testing.T) {
	l := needDeployed(t)
	evidenceOnFailure(t, l)
	vars := clusterVars(t, l.SSHInventory)
	inv, err := inventory.Load(l.SSHInventory)
	if err != nil {
		t.Fatal(err)
	}
	topo, err := recipes.NewTopology(inv)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("AJP listens on the node's private address only and carries the secret", func(t *testing.T) {
		for _, w := range topo.Tomcats {
			listening := mustHost(t, l, w.Name, "ss -Hltn")
			for _, app := range topo.Cluster.Apps {
				want := fmt.Sprintf("%s:%d", w.Address, app.AJPPort)
				var binds []string
				for _, line := range strings.Split(listening, "\n") {
					f := strings.Fields(line)
					if len(f) >= 4 && strings.HasSuffix(f[3], fmt.Sprintf(":%d", app.AJPPort)) {
						binds = append(binds, f[3])
					}
				}
				if len(binds) != 1 || binds[0] != want {
					t.Errorf("%s: AJP port %d is bound at %v, want only %s\n%s", w.Name, app.AJPPort, binds, want, listening)
				}
			}
			serverXML := string(readHostFile(t, l, w.Name, path.Join(topo.Cluster.TomcatHome, "conf", "server.xml")))
			workers := string(readHostFile(t, l, w.Name, configs.DefaultJkWorkersFile))
			// Counted, never printed: the secret stays out of the test log too.
			if n := strings.Count(serverXML, `secret="`+vars.AJPSecret+`"`); n != len(topo.Cluster.Apps) {
				t.Errorf("%s: server.xml carries the AJP secret on %d connectors, want %d", w.Name, n, len(topo.Cluster.Apps))
			}
			if n := strings.Count(workers, vars.AJPSecret); n < len(topo.Cluster.Nodes) {
				t.Errorf("%s: workers.properties carries the AJP secret %d times, want one per worker", w.Name, n)
			}
			if strings.Contains(serverXML, `secretRequired="false"`) {
				t.Errorf("%s: server.xml turns the AJP secret off", w.Name)
			}
		}
	})

	t.Run("the stats page wants the password", func(t *testing.T) {
		u := sites(l)[0].url + "/haproxy?stats"
		code, _, _, err := get(u, nil)
		if err != nil || code != http.StatusUnauthorized {
			t.Errorf("stats page without a password: %d %v, want 401", code, err)
		}
		wrong := http.Header{}
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		req.SetBasicAuth(vars.HAProxyStatsUser, "not-the-password")
		wrong.Set("Authorization", req.Header.Get("Authorization"))
		if code, _, _, err := get(u, wrong); err != nil || code != http.StatusUnauthorized {
			t.Errorf("stats page with a wrong password: %d %v, want 401", code, err)
		}
		right := http.Header{}
		req.SetBasicAuth(vars.HAProxyStatsUser, vars.HAProxyStatsPassword)
		right.Set("Authorization", req.Header.Get("Authorization"))
		code, _, body, err := get(u, right)
		if err != nil || code != http.StatusOK || !strings.Contains(string(body), "Statistics Report") {
			t.Errorf("stats page with the password: %d %v, want 200 and the report", code, err)
		}
	})

	t.Run("sudo lets the account manage its own unit and nothing else", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
		defer cancel()
		host := topo.Tomcats[len(topo.Tomcats)-1].Name
		as := func(cmd string) (string, error) {
			return hostOutput(ctx, l, host, "runuser -u "+vars.TomcatUser+" -- "+cmd+" 2>&1")
		}
		if out, err := as("sudo -n systemctl restart mago3d-tomcat.service"); err != nil {
			t.Errorf("%s may not restart its own unit: %v\n%s", vars.TomcatUser, err, out)
		}
		for _, cmd := range []string{"sudo -n systemctl restart ssh", "sudo -n id", "sudo -n systemctl stop haproxy", "sudo -n /bin/sh -c id"} {
			if out, err := as(cmd); err == nil {
				t.Errorf("%s may run %q:\n%s", vars.TomcatUser, cmd, out)
			}
		}
		waitTomcat(t, l, host)
		waitHAProxy(t, l, vars, host, "UP", time.Minute)
	})
}

// unitState is what tells a unit was restarted (its main PID and start time) or
// reloaded (systemd's "Reloaded" lines for it in the journal).
type unitState struct {
	main    string
	reloads int
}

// unitStates reads the state of every service of the cluster, "host/unit" keyed.
func unitStates(t testing.TB, l *lab.Lab) map[string]unitState {
	t.Helper()
	out := map[string]unitState{}
	read := func(host, unit string) {
		s := mustHost(t, l, host, "systemctl show -p ExecMainPID -p ExecMainStartTimestampMonotonic "+unit+
			"; echo reloads=$(journalctl -u "+unit+" -o cat --no-pager | grep -c '^Reloaded')")
		var st unitState
		var main []string
		for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
			if n, ok := strings.CutPrefix(line, "reloads="); ok {
				st.reloads, _ = strconv.Atoi(n)
				continue
			}
			main = append(main, line)
		}
		slices.Sort(main)
		st.main = strings.Join(main, " ")
		if strings.Contains(st.main, "ExecMainPID=0") {
			t.Fatalf("%s: %s has no main process: %s", host, unit, st.main)
		}
		out[host+"/"+unit] = st
	}
	for _, h := range l.Hosts {
		switch {
		case h.Name == "haproxy":
			read(h.Name, "haproxy.service")
		case h.Node > 0:
			read(h.Name, configs.TomcatUnitName)
			read(h.Name, "apache2.service")
		}
	}
	return out
}

func TestDriftIsShownByAPlanAndRepairedWithOnlyItsOwnHandler(t *testing.T) {
	l := needDeployed(t)
	evidenceOnFailure(t, l)
	tomcatHome := "/home/gaia3d/tools/mago3d-tomcat"
	for _, c := range []struct {
		name, host, file, handler string
		// unit is the one service the repair restarts or reloads.
		unit    string
		restart bool
		// plan and apply name the transports: both must see the same drift.
		plan, apply string
		edit        string
	}{
		{"server.xml on web1", "web1", tomcatHome + "/conf/server.xml", recipes.TomcatHandler,
			"web1/" + configs.TomcatUnitName, true, l.SSHInventory, l.DockerInventory, "<!-- edited by hand -->"},
		{"haproxy.cfg", "haproxy", recipes.HAProxyConfigPath, recipes.HAProxyHandler,
			"haproxy/haproxy.service", false, l.DockerInventory, l.SSHInventory, "# edited by hand"},
		{"workers.properties on web2", "web2", configs.DefaultJkWorkersFile, recipes.ApacheHandler,
			"web2/apache2.service", false, l.SSHInventory, l.DockerInventory, "# edited by hand"},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := readHostFile(t, l, c.host, c.file)
			units := unitStates(t, l)
			mustHost(t, l, c.host, "printf '%s\\n' "+shell.Quote(c.edit)+" >> "+shell.Quote(c.file))
			edited := readHostFile(t, l, c.host, c.file)

			plan := mustDeploy(t, c.plan, runner.Plan)
			want := []string{c.host + ": file " + c.file}
			if got := changedSteps(plan.rep); !slices.Equal(got, want) {
				t.Errorf("the plan shows %v, want %v\n%s", got, want, plan.progress)
			}
			for _, s := range stepResults(plan.rep)[c.host] {
				if s.Step == "file "+c.file && (!strings.Contains(s.Diff, "@@") || !strings.Contains(s.Diff, "-"+c.edit)) {
					t.Errorf("the plan's diff does not show the edit:\n%s", s.Diff)
				}
			}
			// server.xml names the apps' release folders: its change also notifies the
			// switch of each app's release link, which finds it as it is.
			var switches []string
			if c.handler == recipes.TomcatHandler {
				for _, app := range configs.DefaultApps(tomcatHome) {
					switches = append(switches, recipes.ReleaseHandler(app))
				}
			}
			handlers := func(status runner.Status, switched runner.Status) []string {
				l := []string{fmt.Sprintf("%s: %s (%s)", c.host, c.handler, status)}
				for _, h := range switches {
					l = append(l, fmt.Sprintf("%s: %s (%s)", c.host, h, switched))
				}
				return l
			}
			if got, want := handlerRuns(plan.rep), handlers(runner.StatusWouldRun, runner.StatusWouldRun); !slices.Equal(got, want) {
				t.Errorf("the plan's handlers: %v, want %v", got, want)
			}
			if now := readHostFile(t, l, c.host, c.file); string(now) != string(edited) {
				t.Errorf("the plan changed %s on %s", c.file, c.host)
			}
			if now := unitStates(t, l); !mapsEqual(now, units) {
				t.Errorf("the plan restarted or reloaded a service:\nbefore %v\nafter  %v", units, now)
			}

			apply := mustDeploy(t, c.apply, runner.Apply)
			if got := changedSteps(apply.rep); !slices.Equal(got, want) {
				t.Errorf("the repair changed %v, want %v\n%s", got, want, apply.progress)
			}
			if got, want := handlerRuns(apply.rep), handlers(runner.StatusChanged, runner.StatusOK); !slices.Equal(got, want) {
				t.Errorf("the repair's handlers: %v, want %v\n%s", got, want, apply.progress)
			}
			if now := readHostFile(t, l, c.host, c.file); string(now) != string(before) {
				t.Errorf("%s on %s is not back as it was:\n%s", c.file, c.host, now)
			}
			after := unitStates(t, l)
			for key, was := range units {
				now := after[key]
				switch {
				case key != c.unit:
					if now != was {
						t.Errorf("%s was restarted or reloaded: %v, then %v", key, was, now)
					}
				case c.restart:
					if now.main == was.main {
						t.Errorf("%s was not restarted: %v", key, now)
					}
				default:
					if now.main != was.main || now.reloads <= was.reloads {
						t.Errorf("%s was not reloaded (or was restarted): %v, then %v", key, was, now)
					}
				}
			}
		})
	}
}

func TestABrokenHAProxyConfigNeverGoesLive(t *testing.T) {
	l := needDeployed(t)
	evidenceOnFailure(t, l)
	broken := variantInventory(t, l.SSHInventory, "inventory-ssh-broken-haproxy.yaml", func(s string) string {
		return strings.Replace(s, "\nvars:\n", "\nvars:\n  haproxy_extra: [\"this-is-not-an-option 1\"]\n", 1)
	})
	sum := func() [32]byte { return sha256.Sum256(readHostFile(t, l, "haproxy", recipes.HAProxyConfigPath)) }
	was := sum()
	units := unitStates(t, l)

	d := deploy(t, broken, runner.Apply)
	if d.err == nil || !d.rep.Failed() {
		t.Fatalf("the deploy of a broken haproxy.cfg succeeded: %v\n%s", d.err, d.progress)
	}
	var failed []string
	for _, h := range d.rep.Hosts {
		if h.Failed != (h.Host == "haproxy") {
			t.Errorf("%s: failed %v", h.Host, h.Failed)
		}
		for _, s := range h.Steps {
			if s.Status == runner.StatusFailed {
				failed = append(failed, h.Host+": "+s.Step)
				if !strings.Contains(s.Error, "this-is-not-an-option") || !strings.Contains(s.Error, "unknown keyword") {
					t.Errorf("the step's error lacks haproxy's own message: %s", s.Error)
				}
			}
		}
	}
	if want := []string{"haproxy: file " + recipes.HAProxyConfigPath}; !slices.Equal(failed, want) {
		t.Errorf("failed steps %v, want %v\n%s", failed, want, d.progress)
	}
	if hs := handlerRuns(d.rep); len(hs) != 0 {
		t.Errorf("handlers ran: %v", hs)
	}
	if sum() != was {
		t.Errorf("the live haproxy.cfg changed")
	}
	if now := unitStates(t, l); !mapsEqual(now, units) {
		t.Errorf("a service was restarted or reloaded:\nbefore %v\nafter  %v", units, now)
	}
	for _, s := range sites(l) {
		newBrowser(s).mustSession(t)
	}
}

func TestUserAndAdminSessionsStaySeparate(t *testing.T) {
	l := needDeployed(t)
	evidenceOnFailure(t, l)
	all := sites(l)
	user, admin := newBrowser(all[0]), newBrowser(all[1])
	u1, a1 := user.mustSession(t), admin.mustSession(t)
	user.mustSession(t)
	// The user's cookie sent to the admin site, and the admin's to the user site: each
	// app knows only its own sessions, so each starts a new one.
	for _, c := range []struct {
		from, to *browser
		was      sessionAnswer
	}{{user, admin, u1}, {admin, user, a1}} {
		stray := newBrowser(c.to.site)
		stray.cookie = c.from.cookie
		a := stray.mustSession(t)
		if a.Count != 1 || a.Session == c.from.cookie || a.App == c.was.App {
			t.Errorf("the %s cookie on the %s site: %+v, want a new %s session", c.from.site.name, c.to.site.name, a, c.to.site.name)
		}
	}
	if a := user.mustSession(t); a.Count != 3 || a.Session != u1.Session {
		t.Errorf("the user session after the admin visits: %+v, want count 3 of %s", a, u1.Session)
	}
	if a := admin.mustSession(t); a.Count != 2 || a.Session != a1.Session {
		t.Errorf("the admin session after the user visits: %+v, want count 2 of %s", a, a1.Session)
	}
}

// changesBeforeStop makes a few more requests of the session back to back, just before
// its node is stopped, and returns the last answer: the count the failover must go on
// from. Changes of one session milliseconds apart are what lost updates before the
// channels had OrderInterceptor ("count 2 after 2": the other node applied an older
// change after a newer one, or a change before the session's creation), so they are
// made here as fast as the browser can, with no pause for replication to settle.
func changesBeforeStop(t testing.TB, b *browser) sessionAnswer {
	t.Helper()
	var a sessionAnswer
	for range 3 {
		a = b.mustSession(t)
	}
	return a
}

// failover asks the browser's next answer after its node went away: within a short
// window it must come from another node, with the counter going on.
//
// Each attempt may take the whole window: when a host vanishes, the web server in front
// of the survivors waits for the session's own node to time out before it turns to
// another (seen: 25 s, past a browser's usual 15 s), and an attempt the browser gave up
// on still counts once it gets through. So the count may go on by one more for each
// attempt that failed, and by exactly one when none did. A lost update (the count not
// going beyond the last answer before the stop) fails whatever happened.
func failover(t *testing.T, b *browser, last sessionAnswer, window time.Duration) sessionAnswer {
	t.Helper()
	patient := *b
	patient.client = &http.Client{Timeout: window, Transport: &http.Transport{DisableKeepAlives: true}}
	var a sessionAnswer
	var failed []string
	err := eventually(window, 500*time.Millisecond, func() error {
		var err error
		if a, err = patient.session(); err != nil {
			failed = append(failed, err.Error())
		}
		return err
	})
	b.cookie = patient.cookie
	if err != nil {
		t.Fatalf("%s site: the session %s did not go on: %v", b.site.name, last.Session, err)
	}
	if len(failed) > 0 {
		t.Logf("%s site: %d attempts failed before the session went on: %s", b.site.name, len(failed), strings.Join(failed, "; "))
	}
	if a.Count <= last.Count || a.Count > last.Count+1+len(failed) {
		t.Errorf("%s site: count %d after %d (%d attempts failed): the session was not carried over", b.site.name, a.Count, last.Count, len(failed))
	}
	if a.Node == last.Node || !strings.HasSuffix(a.Session, "."+a.Node) {
		t.Errorf("%s site: after %s went away the session is %s on %s", b.site.name, last.Node, a.Session, a.Node)
	}
	return a
}

func TestASessionSurvivesItsTomcatAndItsHostStopping(t *testing.T) {
	l := needDeployed(t)
	evidenceOnFailure(t, l)
	vars := clusterVars(t, l.DockerInventory)
	var browsers []*browser
	var last []sessionAnswer
	for _, s := range sites(l) {
		b := newBrowser(s)
		b.mustSession(t)
		browsers = append(browsers, b)
		last = append(last, changesBeforeStop(t, b))
	}

	t.Run("its Tomcat stops", func(t *testing.T) {
		host := hostOfRoute(t, last[0].Node)
		mustHost(t, l, host, "systemctl stop mago3d-tomcat")
		for i, b := range browsers {
			if hostOfRoute(t, last[i].Node) != host {
				continue // the admin session began elsewhere: nothing to prove with it here
			}
			last[i] = failover(t, b, last[i], 30*time.Second)
		}
		for i, b := range browsers {
			last[i] = changesBeforeStop(t, b)
		}
		mustHost(t, l, host, "systemctl start mago3d-tomcat")
		waitTomcat(t, l, host)
		waitHAProxy(t, l, vars, host, "UP", time.Minute)
	})
	if t.Failed() {
		return
	}

	t.Run("its host stops", func(t *testing.T) {
		host := hostOfRoute(t, last[0].Node)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			if err := l.StartHost(ctx, host); err != nil {
				t.Errorf("restore %s: %v", host, err)
			}
		})
		if err := l.StopHost(ctx, host); err != nil {
			t.Fatal(err)
		}
		waitHAProxy(t, l, vars, host, "DOWN", time.Minute)
		for i, b := range browsers {
			if hostOfRoute(t, last[i].Node) == host {
				last[i] = failover(t, b, last[i], time.Minute)
			}
		}
	})

	t.Run("a deploy brings the host back", func(t *testing.T) {
		// The stopped host is started again (by the cleanup above); its Tomcat may or
		// may not be up yet: the deploy makes sure.
		d := mustDeploy(t, l.DockerInventory, runner.Apply)
		for _, s := range changedSteps(d.rep) {
			if !strings.Contains(s, "service") {
				t.Errorf("restoring changed more than a service's state: %s\n%s", s, d.progress)
			}
		}
		for _, h := range webHosts(l) {
			waitTomcat(t, l, h)
			waitHAProxy(t, l, vars, h, "UP", time.Minute)
		}
		// More than one more: an attempt the failover window gave up on while the
		// host was away may still have reached a node and counted.
		for i, b := range browsers {
			if a := b.mustSession(t); a.Count <= last[i].Count || a.Session != b.cookie {
				t.Errorf("%s site: count %d after %d: the session did not go on", b.site.name, a.Count, last[i].Count)
			}
		}
	})
}

// mapsEqual compares two unit state maps.
func mapsEqual(a, b map[string]unitState) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
