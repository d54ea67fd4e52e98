package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cauldron-go/cauldron/configs"
	"github.com/cauldron-go/cauldron/lab"
	"github.com/cauldron-go/cauldron/loadcheck"
	"github.com/cauldron-go/cauldron/recipes"
	"github.com/cauldron-go/cauldron/runner"
	"github.com/cauldron-go/cauldron/transport"
)

// rollingRounds is how many times the rolling scenarios repeat: once in verify,
// CAULDRON_ROLLING_ROUNDS times for the longer target (rolling:soak).
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

// rollingVariants are the inventories a round deploys, in order, from the lab's own
// (base): a config change (the heap), a new release (the next WARs), and back to base
// (both again). Each one restarts every Tomcat, drained, one node at a time.
func rollingVariants(t testing.TB, l *lab.Lab, base, prefix string) []struct{ name, inv, version, heap string } {
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
	return []struct{ name, inv, version, heap string }{
		{"a config change (heap 448m)", variantInventory(t, base, prefix+"-heap.yaml", heap), lab.AppVersion, "448m"},
		{"a new release (" + lab.NextAppVersion + ")", variantInventory(t, base, prefix+"-release.yaml", func(s string) string { return next(heap(s)) }), lab.NextAppVersion, "448m"},
		{"back to the lab's inventory", base, lab.AppVersion, "512m"},
	}
}

// rollUnderLoad deploys inv under the load check and holds the drained restart to the
// issue's bar: 0 failed requests, 0 broken counts, 0 sessions lost; every Tomcat was
// restarted by the drained handler; every node then serves version with the heap;
// and 100 new sessions per site spread 40-60% over the two nodes.
func rollUnderLoad(t *testing.T, l *lab.Lab, inv, version, heap string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	var sites []loadcheck.Site
	for _, s := range sitesOf(l) {
		sites = append(sites, loadcheck.Site{Name: s.name, URL: s.url})
	}
	check, err := loadcheck.Start(ctx, loadcheck.Options{Sites: sites, Users: 16, Duration: 25 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second) // every user has its session before the change starts
	d := deploy(t, inv, runner.Apply)
	time.Sleep(3 * time.Second)
	r := check.Stop()
	t.Logf("%s\n%s", filepath.Base(inv), r)
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
	}
	for _, s := range sites {
		seen, err := loadcheck.Spread(ctx, s, 100)
		if err == nil {
			err = loadcheck.Even(seen, []string{s.Name + "1", s.Name + "2"})
		}
		t.Logf("new sessions on %s right after the rolling restart: %v", s.Name, seen)
		if err != nil {
			t.Errorf("%s: %v", s.Name, err)
		}
	}
}

// sitesOf is sites(l) for any lab.
func sitesOf(l *lab.Lab) []site { return sites(l) }

func TestRollingRestartsAndAReleaseGoUnnoticedUnderLoadOnTheApacheLab(t *testing.T) {
	l := needDeployed(t)
	evidenceOnFailure(t, l)
	variants := rollingVariants(t, l, l.DockerInventory, "inventory-rolling")
	for round := 1; round <= rollingRounds(t); round++ {
		for _, v := range variants {
			t.Run(fmt.Sprintf("round %d: %s", round, v.name), func(t *testing.T) {
				rollUnderLoad(t, l, v.inv, v.version, v.heap)
			})
		}
	}
}

func TestRollingRestartsAndAReleaseGoUnnoticedUnderLoadOnTheNginxLab(t *testing.T) {
	needLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	l, err := lab.Up(ctx, nginxOptions)
	if err != nil {
		t.Fatalf("lab %s: %v\n%s", nginxOptions.Name, err, labLog.String())
	}
	evidenceOnFailure(t, l)
	base := variantInventory(t, l.DockerInventory, "inventory-docker-nginx.yaml", func(s string) string {
		return strings.Replace(s, "web_server: apache", "web_server: nginx", 1)
	})
	mustDeploy(t, base, runner.Apply)
	vars := clusterVars(t, base)
	for _, h := range webHosts(l) {
		waitHAProxy(t, l, vars, h, "UP", 2*time.Minute)
	}
	variants := rollingVariants(t, l, base, "inventory-rolling-nginx")
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) { rollUnderLoad(t, l, v.inv, v.version, v.heap) })
	}
	// The drain wrote the site with a node down and back: the site is as the recipe
	// wants it, so a second deploy changes nothing.
	if d := mustDeploy(t, base, runner.Apply); d.rep.Changed() != 0 {
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
