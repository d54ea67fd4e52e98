package e2e_test

// The faults a user must not notice, each under the load check (16 virtual users over
// both sites), on the apache lab and on the nginx lab: a Tomcat killed with kill -9,
// a web host frozen for 30 s (docker pause), a web host cut off for 30 s (docker
// network disconnect); and, after each, an even spread of new sessions. The scenarios
// of one lab share its deployed cluster, one after another. Each prints its numbers:
//
//	go test ./e2e -run 'TestFirstDeploy|TestFaults' -v
//
// CAULDRON_E2E_HA_STRICT=1 runs the scenarios of notYet too; CAULDRON_E2E_REPLICATION=sync
// (or async) deploys the cluster with that session_replication first, to compare them.

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cauldron-go/cauldron/configs"
	"github.com/cauldron-go/cauldron/lab"
	"github.com/cauldron-go/cauldron/loadcheck"
	"github.com/cauldron-go/cauldron/runner"
)

// faultLoad is the load every scenario runs under.
const (
	faultUsers    = 16
	faultDuration = 30 * time.Second
	// faultGrace is the start of a fault during which failed requests are allowed;
	// after it, not one GET may fail.
	faultGrace = 5 * time.Second
	// backWithin is how soon a node that serves again must get new sessions.
	backWithin = 15 * time.Second
)

// loadTable collects every scenario's numbers for one summary at the end.
var loadTable struct {
	sync.Mutex
	rows []string
}

func logLoad(t *testing.T, scenario string, r *loadcheck.Result) {
	t.Helper()
	row := recordLoad(t, scenario, r)
	// Stderr too: a failing package's output shows it.
	fmt.Fprintln(os.Stderr, row)
	t.Logf("%s\n%s", row, r)
}

// haTableEnv names a file (verify sets it) that every scenario's row is appended to:
// go test shows a passing package's output only with -v, so verify prints this file
// at the end, and its output holds every scenario's numbers whether e2e passed or not.
const haTableEnv = "CAULDRON_HA_TABLE"

// recordLoad adds the scenario's numbers to the summary at the end and to the file
// haTableEnv names, and returns them as a table row.
func recordLoad(t *testing.T, scenario string, r *loadcheck.Result) string {
	t.Helper()
	row := fmt.Sprintf("| %s | %d | %d | %d | %d | %d | %s | %s |", scenario, r.Requests, r.FailedTotal, r.Broken, r.Lost, r.Late,
		r.P50.Round(100*time.Microsecond), r.P99.Round(100*time.Microsecond))
	loadTable.Lock()
	defer loadTable.Unlock()
	loadTable.rows = append(loadTable.rows, row)
	if path := os.Getenv(haTableEnv); path != "" {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err == nil {
			_, err = fmt.Fprintln(f, row)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			t.Errorf("%s: %v", haTableEnv, err)
		}
	}
	return row
}

func startLoad(t *testing.T, l *lab.Lab) *loadcheck.Check {
	t.Helper()
	var ss []loadcheck.Site
	for _, s := range sites(l) {
		ss = append(ss, loadcheck.Site{Name: s.name, URL: s.url})
	}
	c, err := loadcheck.Start(context.Background(), loadcheck.Options{Sites: ss, Users: faultUsers, Duration: 5 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// faultReplication, when set (CAULDRON_E2E_REPLICATION=sync, written or async), deploys the
// fault scenarios' cluster with that session_replication instead of the default: the
// way the two modes are measured against each other.
var faultReplication = os.Getenv("CAULDRON_E2E_REPLICATION")

// faultInventory returns the inventory at path, or a variant of it with
// faultReplication.
func faultInventory(t *testing.T, path, web string) string {
	t.Helper()
	if faultReplication == "" {
		return path
	}
	if _, err := configs.ParseReplication(faultReplication); err != nil {
		t.Fatalf("CAULDRON_E2E_REPLICATION: %v", err)
	}
	return variantInventory(t, path, "inventory-docker-"+web+"-"+faultReplication+".yaml", func(s string) string {
		re := regexp.MustCompile(`(?m)^([ \t]*)web_server: ` + web + `$`)
		return re.ReplaceAllString(s, "${0}\n${1}session_replication: "+faultReplication)
	})
}

func TestFaultsUnderLoadOnTheApacheLab(t *testing.T) {
	l := needDeployed(t)
	if faultReplication != "" {
		inv := faultInventory(t, l.DockerInventory, "apache")
		stopTomcatsAcrossModes(t, l, inv)
		mustDeploy(t, inv, runner.Apply)
		for _, h := range webHosts(l) {
			waitTomcat(t, l, h)
			waitHAProxy(t, l, clusterVars(t, inv), h, "UP", 2*time.Minute)
		}
	}
	faultScenarios(t, l, "apache")
}

func TestFaultsUnderLoadOnTheNginxLab(t *testing.T) {
	l, nginx := upNginxLab(t)
	inv := faultInventory(t, nginx, "nginx")
	stopTomcatsAcrossModes(t, l, inv)
	deployAndWaitUp(t, l, inv)
	faultScenarios(t, l, "nginx")
}

// faultScenarios runs each fault on l under load, one after another, and checks the
// spread of new sessions after each.
func faultScenarios(t *testing.T, l *lab.Lab, web string) {
	evidenceOnFailure(t, l)
	t.Cleanup(func() {
		loadTable.Lock()
		defer loadTable.Unlock()
		t.Logf("| scenario | requests | failed | broken | lost | done late | p50 | p99 |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n%s",
			strings.Join(loadTable.rows, "\n"))
	})
	settle(t, l)
	t.Run("no fault", func(t *testing.T) {
		c := startLoad(t, l)
		time.Sleep(faultDuration / 2)
		r := c.Stop()
		logLoad(t, web+": no fault", r)
		if err := r.Err(); err != nil {
			t.Error(err)
		}
	})
	t.Run("kill -9 of the Tomcat that holds sessions", func(t *testing.T) {
		needStrict(t, web+": kill -9 of a Tomcat")
		back := killTomcatUnderLoad(t, l, web)
		checkSpread(t, l, back)
	})
	for _, f := range []struct {
		name       string
		start, end func(context.Context, string) error
		held       bool // a request for another node's session waits out the fault in the host
	}{
		{"web host frozen 30s", l.Pause, l.Unpause, true},
		{"web host cut off 30s", l.Disconnect, l.Reconnect, false},
	} {
		t.Run(f.name, func(t *testing.T) {
			needStrict(t, web+": "+f.name)
			back, held := hostFaultUnderLoad(t, l, web+": "+f.name, f.start, f.end, f.held)
			checkSpread(t, l, back)
			if held != nil {
				held.check(t, web+": "+f.name)
			}
		})
	}
}

// notYet are the fault scenarios that did not meet issue 7's bar on every run of the
// final configuration (0 failed and 0 broken after kill -9; no failed GET after the first
// 5 s of a frozen or cut-off host, 0 broken; an even spread after each), each with why.
// They run, and may fail, with CAULDRON_E2E_HA_STRICT=1; without it they are skipped and
// say so. The others always run.
//
// Measured (slot 2, load average 7-110 from other work): a frozen apache host met the
// bar in every run that could pause it (3 of 4; at a load average near 100 docker
// could not freeze the container). Asynchronous replication (the default, see
// configs.Replication) now and then loses the last answered update of the node that
// goes away: behind Nginx 5 counts broken after kill -9, 1 with a host frozen, 1 cut
// off, each in one of three runs; behind Apache 3 after kill -9 in one of four runs (at
// a load average near 100, where 504s came without any fault).
//
// The Apache lab's host cut off left notYet with static membership (the default since):
// its return had broken counts on its stale node because multicast membership never
// rejoined the second app's group after the interface came back (configs.Multicast);
// with static membership it met the bar in both runs (slot 2, load average 17-34), and
// so did the rolling scenarios run after the faults on the same lab, but for 1 count
// broken in one of four rollouts while the first node was taken out (the drain's
// switch-over, both nodes members). In those runs behind Nginx, kill -9 broke 1 count
// (a GET the killed Tomcat had done, passed again to the other node: proxy_next_upstream
// error) and 4 (each user's last answered update lost: asynchronous replication); a
// frozen host lost 2 sessions and broke 1 count within the first 0.2 s of the load,
// before the freeze, in one of two runs (cause not found); a host cut off met the bar
// in both.
//
// The Apache lab's frozen host left notYet in session 4: its lost session in a CI run
// of verify came from mod_jk putting a just-restarted node in error on a CPing to a new
// connection that took over 500 ms (configs.DefaultAJPConnectPingTimeoutMS, now 1.6 s), on
// the lab that had just grown a third node; since, 7 of 7 runs (slots 1 and 2, load
// average 2-41, 2 and 3 web nodes) had 12-14 failed, all in the first 5 s, 0 broken
// and 0 lost (one missed the spread's deadline only because the two sites were
// measured one after the other; they are measured at once now).
// The cut-off host, back in notYet: in the next CI run of verify (session 4) it broke
// one count, an update web1 answered while docker was cutting it off (+5.9 s into the
// load, docker's command from +5 s to +6 s) and had not yet sent to web2 (asynchronous
// replication, point 3 of issue 7).
// The frozen host followed it in the CI run after that: 3 counts broken, updates user1
// answered as docker began freezing it (+5.09 s) and had not yet sent to user2.
//
// Session 5 (slot 1, load average 14-31, another helper's Nginx lab running), five
// runs with asynchronous replication: kill -9 0 failed and 0 broken in all five; frozen
// 1 count broken in one (an update web1 answered as docker froze it); cut off 2 broken
// in one, 8 s after its return (web1 answered two of web2's sessions from its own
// copies, stale since the cut). Synchronous replication failed requests after the first
// 5 s of a freeze and a cut (configs.Replication).
//
// Session 6, the Nginx lab (slot 2, load average 1-36, 6 runs alternating written and
// asynchronous replication): with session_replication: written (channelSendOptions
// 256) the frozen host failed in 2 of 3 runs (5 and 4 GETs failed after the first 5 s,
// 5 and 4 sessions lost, 6 counts broken once) and the cut-off host in 3 of 3 (7 and 15
// counts broken, 2 sessions lost, 7 GETs failed after the first 5 s once). Written
// sends on the request thread, so the healthy node's requests stall when its peer
// cannot take the change: once its socket buffer is full after a freeze or a cut, and
// again when the peer returns (web2's Tomcat timed out nginx's 2 s read at both
// moments, in ParallelNioSender.sendMessage under ReplicationValve). Nginx then passes
// the session's request to the other node (proxy_next_upstream timeout), whose copy is
// stale since the fault, and JvmRouteBinderValve moves the session there: counts break
// or sessions are lost, as with sync in session 5. Asynchronous, in the runs between:
// frozen passed 3 of 3 (13, 15 and 13 failed, all in the first 5 s); cut off passed 1
// of 3: 1 and 2 counts broken (updates web1 answered as it was cut off: asynchronous
// replication's last update), and once 3 sessions of the healthy node lost about 4.5 s
// after the host's return (their next request on that same node started a new session;
// written lost 4 the same way after a freeze's end). The likely chain, from web1's
// nginx error log: requests HAProxy had passed to web1 as it was cut off went to their
// session's node, web2, unreachable at once (101), so nginx passed them to its backup,
// web1's own Tomcat, still reachable from web1; their answers could reach nobody (3
// requests done late, as many as sessions lost), but JvmRouteBinderValve moved each
// session to web1 and told web2 once the network was back, so web2 no longer knew the
// id its user sent. No nginx setting tells "my host is cut off" from "the other node is
// down": the rename is Tomcat's (not fixed). kill -9 passed 6 of 6 (0 failed, 0
// broken), the rolling scenarios 3 of 3 with async and had 2 × 504 in 1 of 2 with
// written.
//
// The Nginx lab's kill -9 left notYet in session 5: the load check sends an
// Idempotency-Key and the demo apps count a GET passed again to the other node once
// (proxy_next_upstream error; "replayed" in the summary); with asynchronous replication
// (the default) 4 of 4 runs (slot 2, load average 11-40) had 0 failed, 0 broken and 0
// lost. With sync replication 1 of 2 runs had 8 × 502 as the killed Tomcat came back
// (its peer stalled on the acknowledgements: configs.Replication), 0 broken.
//
// The Apache lab's kill -9 left notYet at the end of session 5 (0 failed and 0 broken in
// 5 of 5 runs on slot 1, mod_jk's recovery_options 19 and the Idempotency-Key) and came
// back after its first CI run of verify: 14,624 requests, 0 failed, 4 counts broken,
// each an admin user's last one or two updates that web1 answered in the 0.3 s before
// the kill and had not yet sent to web2 (asynchronous replication; the machine to
// itself, 398 requests a second).
//
// Session 6 (slot 1, load average 10-36, two other labs running), written replication
// (configs.WrittenReplication) in 4 runs: kill -9 0 failed, 0 broken in all four; frozen
// 11-14 failed, all in the first 5 s, 0 broken in all four; the rolling config change and
// release 0/0/0 in 3 of 4 (the fourth, with a 2 MiB sender buffer tried and taken out,
// lost 8 sessions). The cut-off host broke 16 counts in 2 of 2 runs with Tribes' default
// transport: when web1 came back, web2's written sends went over pooled connections left
// from the cut (Tribes' PooledSender.remove is a no-op, nothing closes them), whose kernel
// buffers were full and in retransmission backoff; each send on them waited out
// ParallelNioSender's fixed 5 s select on the request's thread, mod_jk's 2 s reply timeout
// put web2's healthy Tomcat in error, and its sessions went to web1's stale copies. The
// same stall, on a dispatch thread instead, is the likeliest cause of session 5's async
// "stale copies after the return" (not proved). Recycling the connections (keepAliveTime
// 3 s) fixed the return but broke 2 counts at the cut's start (reconnects to the cut-off
// peer stalled; a GET mod_jk passed again counted twice); a 2 MiB send buffer met the bar
// for the cut-off but the rolling restart after it lost 8 sessions. Both were taken out.
//
// Session 7 (slot 1, load average 5-47, up to three labs at once), written replication
// with cauldron's Tribes classes closing a member's pooled connections when it is added
// back (configs.ClassFreshConnectionsSender), the faults then the rolling restarts on
// the same lab: every Apache scenario met the bar in the run with the final classes and
// in 1 of the 2 runs before, which also closed them when the member disappeared (kill
// -9 0 failed, 0 broken; frozen 9-14 failed, cut off 4-6, all in the first 5 s, 0
// broken, 0 lost; the config change and the release after them 0/0/0). The other of
// those 2 failed 9 GETs after a cut's first 5 s and broke 3 counts: senders reconnected
// to the cut-off peer in the 0.5 s before TcpFailureDetector confirmed it gone, each
// waiting ParallelNioSender's 5 s on the healthy node's request thread (web2's log:
// "Unable to send message through cluster sender" at +6 s), so the classes close them
// only on the member's return. The Nginx lab, once: every fault met the bar (frozen 12
// failed, cut off 8, all in the first 5 s, 0 broken, 0 lost), the config change too,
// but the release broke 8 admin counts as web1 was drained (+80 s): admin2's copies
// were about 600 updates (35 s) behind admin1's, since web2's return; cause not found
// (the lab was gone with its logs). So written is not proven yet, and the scenarios
// stay here while async is the default.
//
// Session 8 (slot 2, load average 17-32, other workloads running): written replication,
// both labs, two runs each: every fault met the bar in all of them (kill -9 0 failed,
// 0 broken; frozen 11-14 and cut off 0-5 failed, all in the first 5 s; 0 broken, 0
// lost), and so did the rollouts of the first runs. Written became the default
// (recipes.Vars), and every scenario left notYet: verify runs them all.
var notYet = map[string]string{}

// haStrict runs the scenarios of notYet too.
var haStrict = os.Getenv("CAULDRON_E2E_HA_STRICT") == "1"

// needStrict skips a scenario of notYet unless CAULDRON_E2E_HA_STRICT=1, loudly: on
// stderr, which go test shows without -v.
func needStrict(t *testing.T, scenario string) {
	t.Helper()
	why, gated := notYet[scenario]
	if gated && !haStrict {
		fmt.Fprintf(os.Stderr, "e2e: NOT RUN: %s does not meet issue 7's bar on every run yet (%s); CAULDRON_E2E_HA_STRICT=1 runs it\n", scenario, why)
		t.Skipf("%s: does not meet issue 7's bar on every run yet (%s); CAULDRON_E2E_HA_STRICT=1 runs it", scenario, why)
	}
}

// killTomcatUnderLoad kills web1's JVM with SIGKILL under load: systemd must start it
// again, and once it answers its health check it must get new sessions within
// backWithin; no request fails, no count breaks. It returns when the Tomcat answered
// its health check again.
func killTomcatUnderLoad(t *testing.T, l *lab.Lab, web string) time.Time {
	const host = "web1"
	c := startLoad(t, l)
	time.Sleep(5 * time.Second) // every user has its session
	mustHost(t, l, host, "kill -9 \"$(systemctl show -p MainPID --value mago3d-tomcat.service)\"")
	killed := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// systemd's restart, then Tomcat's start: until then the other node serves.
	var healthy time.Time
	err := eventually(3*time.Minute, 250*time.Millisecond, func() error {
		_, err := hostOutput(ctx, l, host, "systemctl is-active -q mago3d-tomcat.service && curl -fsS -o /dev/null -m 2 http://127.0.0.1:8081/health && curl -fsS -o /dev/null -m 2 http://127.0.0.1:8080/health")
		return err
	})
	if err != nil {
		c.Stop()
		t.Fatalf("systemd did not bring %s's Tomcat back: %v", host, err)
		return time.Time{}
	}
	healthy = time.Now()
	var served time.Duration
	for _, s := range sites(l) {
		node := fmt.Sprintf("%s1", s.name)
		err := eventually(backWithin, 200*time.Millisecond, func() error {
			seen, err := loadcheck.Spread(ctx, loadcheck.Site{Name: s.name, URL: s.url}, 4)
			if err != nil {
				return err
			}
			if seen[node] == 0 {
				return fmt.Errorf("no new session on %s: %v", node, seen)
			}
			return nil
		})
		if err != nil {
			t.Errorf("%s site: %s answers its health check but gets no new session: %v", s.name, host, err)
		}
		served = max(served, time.Since(healthy))
	}
	time.Sleep(5 * time.Second)
	r := c.Stop()
	logLoad(t, web+": kill -9 of a Tomcat", r)
	t.Logf("%s's Tomcat answered its health check %s after kill -9, and got new sessions %s after that",
		host, healthy.Sub(killed).Round(100*time.Millisecond), served.Round(100*time.Millisecond))
	if err := r.Err(); err != nil {
		t.Error(err)
	}
	return healthy
}

// hostFaultUnderLoad makes the fault on web1 for 30 s under load: no GET may fail after
// the first faultGrace, no session may be lost, no count broken. It returns when the
// fault ended, and with held the request held by the host (heldRequest), to check once
// the spread after the host's return was measured.
func hostFaultUnderLoad(t *testing.T, l *lab.Lab, scenario string, start, end func(context.Context, string) error, held bool) (time.Time, *heldRequest) {
	const host = "web1"
	var h *heldRequest
	if held {
		h = newHeldRequest(t, l, host)
	}
	c := startLoad(t, l)
	time.Sleep(5 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	asked := time.Now()
	if err := start(ctx, host); err != nil {
		c.Stop()
		t.Fatal(err)
	}
	// The fault is in effect once docker's command returns: on a loaded machine the
	// command itself took up to 3.3 s (a disconnect whose first hung request HAProxy
	// logged 3.3 s after the command began), and a grace counted from the ask would
	// spend that on docker. Both counts are logged.
	began := time.Now()
	if h != nil {
		// Once HAProxy has the host out, so that none of the probe's own requests is
		// swallowed by the frozen host (and done again on its wake).
		waitHAProxy(t, l, clusterVars(t, l.DockerInventory), host, "DOWN", 30*time.Second)
		// And once the other node's cluster has dropped it (static membership: a
		// ping every 1 s, rpcTimeout 3 s, the failure detector's 0.5 s), so that the
		// changes below are not written into the frozen host's socket buffers, which
		// it would read on waking before it served the held request: they stay
		// missing there, as in a longer freeze.
		time.Sleep(6 * time.Second)
		h.atFreeze = h.count
		h.step(t, 3)
		h.hold(t)
		h.step(t, 3)
	}
	ended := false
	defer func() {
		if !ended {
			_ = end(context.Background(), host)
		}
	}()
	time.Sleep(faultDuration)
	if err := end(ctx, host); err != nil {
		c.Stop()
		t.Fatal(err)
	}
	ended = true
	over := time.Now()
	// The host comes back into rotation; the load goes on over its return.
	vars := clusterVars(t, l.DockerInventory)
	waitHAProxy(t, l, vars, host, "UP", 2*time.Minute)
	waitTomcat(t, l, host)
	// Load over the host's return: what goes wrong there does so in the first second.
	time.Sleep(3 * time.Second)
	r := c.Stop()
	logLoad(t, scenario, r)
	late := r.FailuresBetween(began.Add(faultGrace), time.Now(), "GET", "HEAD")
	t.Logf("%s: docker took %s; %d failed in the first %s of the fault, %d after it (%d after %s from docker's start), back in rotation %s after the fault",
		scenario, began.Sub(asked).Round(100*time.Millisecond), r.FailuresBetween(asked, began.Add(faultGrace)), faultGrace, late,
		r.FailuresBetween(asked.Add(faultGrace), time.Now(), "GET", "HEAD"), faultGrace, time.Since(over).Round(100*time.Millisecond))
	logWokenNodes(t, l, scenario)
	if late > 0 {
		for _, f := range r.Failures {
			if !f.At.Before(began.Add(faultGrace)) {
				t.Logf("late failure %s after the fault began: %s user %d %s: %s", f.At.Sub(began).Round(time.Millisecond), f.Site, f.User, f.Method, strings.SplitN(f.Detail, "\n", 2)[0])
			}
		}
		t.Errorf("%d GET requests failed after the first %s of the fault", late, faultGrace)
	}
	if r.Lost > 0 || r.Broken > 0 {
		t.Errorf("%d sessions lost, %d counts broken", r.Lost, r.Broken)
	}
	// Whatever a frozen host held it held for the whole freeze, past the deadline
	// HAProxy stamped (configs.HAProxyDefaults.GivesUpWithin, 25 s here): its Tomcats
	// and the other host's refuse it (configs.ClassAbandonedRequestValve) instead of
	// running it behind its user's back. Before the valve, 9-13 requests of every such
	// run were done late, and in one CI run a request was counted twice at the wake.
	if held && faultDuration > configs.NewHAProxy(configs.Cluster{}, "", "").Defaults.GivesUpWithin() && r.Late > 0 {
		t.Errorf("%d requests HAProxy had given up on were done after the host's wake", r.Late)
	}
	return over, h
}

// logWokenNodes logs what each web node's configs.ClassWokenNodeValve did: the pauses
// it found and how many requests for other nodes' sessions it refused after them (held
// by a frozen host and served with its stale copies otherwise); and how many requests
// configs.ClassAbandonedRequestValve refused since the node's logs began (held past the
// deadline HAProxy stamped on them).
func logWokenNodes(t *testing.T, l *lab.Lab, scenario string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, h := range l.Hosts {
		if h.Node == 0 {
			continue
		}
		out, err := hostOutput(ctx, l, h.Name, "cd /home/gaia3d/tools/mago3d-tomcat/logs && "+
			"echo \"$(cat catalina.*.log | grep -c 'Refused a request for a session') refused;"+
			" $(cat catalina.*.log | grep -c 'Refused a request its balancer gave up on') refused past HAProxy's deadline in all\"; "+
			"grep -h 'was frozen for' catalina.*.log | tail -n 4 | sed 's/^.*This node/This node/'")
		t.Logf("%s: %s's woken-node valve (%v): %s", scenario, h.Name, err, strings.TrimSpace(out))
	}
}

// checkSpread opens 100 new sessions on each site: each node must get its fair share
// (40-60% of two) within backWithin of back, when the node that had been away
// returned. Until then a balancer may still rest the node (mod_jk's recover_time after
// the last request that failed on it): each uneven try is logged, and tried again.
func checkSpread(t *testing.T, l *lab.Lab, back time.Time) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// The sites are measured at the same time: one after the other, the second site's
	// first try began only once the first site's 100 sessions were done (16.8 s after a
	// frozen host's return at load 25, with both sites even on their first try).
	var wg sync.WaitGroup
	for _, s := range sites(l) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			spreadAfterReturn(ctx, t, l, s, back)
		}()
	}
	wg.Wait()
}

// spreadAfterReturn measures one site's spread of 100 new sessions until it is even,
// from the node's return; an even spread must begin within backWithin of it.
// settle waits, up to settleWithin, until each site spreads 100 new sessions evenly
// over its nodes: the scenarios measure a cluster at rest. A test before them may have
// stopped a Tomcat (TestASessionSurvivesItsTomcatAndItsHostStopping), and an Apache
// that got no request since keeps that node in error until one tries it again
// (mod_jk's recover_time): a CI run's no-fault load check lost a session begun on
// such a node 53 ms before the other Apache sent its next request elsewhere. The new
// sessions are those requests.
func settle(t *testing.T, l *lab.Lab) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), settleWithin)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for _, s := range sites(l) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for try := 1; ; try++ {
				seen, err := evenSpread(ctx, l, s)
				if err == nil {
					t.Logf("%s site settled in %s (try %d): %v", s.name, time.Since(start).Round(100*time.Millisecond), try, seen)
					return
				}
				if ctx.Err() != nil {
					t.Errorf("%s site: not settled after %s: %v", s.name, settleWithin, err)
					return
				}
				time.Sleep(500 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
}

// settleWithin bounds settle.
const settleWithin = 90 * time.Second

// evenSpread starts 100 new sessions on s and says where they went, with an error
// unless they spread evenly over its nodes.
func evenSpread(ctx context.Context, l *lab.Lab, s site) (map[string]int, error) {
	seen, err := loadcheck.Spread(ctx, loadcheck.Site{Name: s.name, URL: s.url}, 100)
	if err == nil {
		err = loadcheck.Even(seen, wantRoutes(l, s))
	}
	return seen, err
}

func spreadAfterReturn(ctx context.Context, t *testing.T, l *lab.Lab, s site, back time.Time) {
	for try := 1; ; try++ {
		began := time.Since(back)
		seen, err := evenSpread(ctx, l, s)
		after := time.Since(back).Round(100 * time.Millisecond)
		if err == nil {
			t.Logf("%s site: 100 new sessions %s after the node's return (try %d): %v", s.name, after, try, seen)
			if began > backWithin {
				t.Errorf("%s site: the first even spread began %s after the node's return: that says nothing of the first %s", s.name, began.Round(100*time.Millisecond), backWithin)
			}
			return
		}
		if time.Since(back) > backWithin {
			t.Errorf("%s site: %s after the node's return (try %d): %v", s.name, after, try, err)
			return
		}
		t.Logf("%s site: not yet even %s after the node's return (try %d): %v", s.name, after, try, err)
		time.Sleep(500 * time.Millisecond)
	}
}
