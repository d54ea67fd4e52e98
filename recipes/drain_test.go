package recipes_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cauldron-go/cauldron/configs"
	"github.com/cauldron-go/cauldron/internal/nginxtest"
	"github.com/cauldron-go/cauldron/recipes"
	"github.com/cauldron-go/cauldron/transport/local"
)

func testCluster(n int) configs.Cluster {
	var nodes []configs.Node
	for i := 1; i <= n; i++ {
		nodes = append(nodes, configs.Node{Name: fmt.Sprintf("web%d", i), Address: fmt.Sprintf("10.10.0.%d", 10+i), Index: i})
	}
	return configs.NewCluster(nodes, "test-ajp-secret")
}

func TestLeaveOutTakesOnlyTheNodesServersOutOfEveryUpstream(t *testing.T) {
	site, err := configs.NewNginxSite(testCluster(3)).Render()
	if err != nil {
		t.Fatal(err)
	}
	out, err := recipes.LeaveOut(site, []string{"10.10.0.12:8080", "10.10.0.12:8081"})
	if err != nil {
		t.Fatal(err)
	}
	// Per app: the upstream over every node, node 2's own upstream (whose backups
	// become its servers), and the other two nodes' upstreams, where it is a backup.
	want := string(site)
	for _, app := range []struct{ name, port string }{{"admin", "8080"}, {"user", "8081"}} {
		want = strings.Replace(want, "    server 10.10.0.12:"+app.port+" max_fails=1 fail_timeout=5s;\n", "", 1)
		want = strings.Replace(want, "    server 10.10.0.12:"+app.port+" max_fails=0;\n", "", 1)
		want = strings.Replace(want, "    server 10.10.0.12:"+app.port+" max_fails=0 backup;\n", "", 2)
		own := "upstream mago3d_" + app.name + "_" + app.name + "2 {\n"
		want = strings.Replace(want,
			own+"    server 10.10.0.11:"+app.port+" max_fails=0 backup;\n    server 10.10.0.13:"+app.port+" max_fails=0 backup;\n",
			own+"    server 10.10.0.11:"+app.port+" max_fails=0;\n    server 10.10.0.13:"+app.port+" max_fails=0;\n", 1)
	}
	if string(out) != want {
		t.Errorf("LeaveOut of node 2:\n%s\nwant:\n%s", out, want)
	}
	if strings.Contains(string(out), "10.10.0.12:") {
		t.Errorf("node 2 is still in the site:\n%s", out)
	}
	if _, err := recipes.LeaveOut(site, []string{"10.10.0.99:8080"}); err == nil || !strings.Contains(err.Error(), "10.10.0.99:8080") {
		t.Errorf("a server not in the site: %v, want an error naming it", err)
	}
	one, err := configs.NewNginxSite(testCluster(1)).Render()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := recipes.LeaveOut(one, []string{"10.10.0.11:8080"}); err == nil || !strings.Contains(err.Error(), "upstream mago3d_admin would have no server left") {
		t.Errorf("leaving out the only node: %v, want an error naming the upstream", err)
	}
}

func TestOthersUpSaysWhenAnUpstreamWouldBeLeftWithoutAServer(t *testing.T) {
	site, err := configs.NewNginxSite(testCluster(2)).Render()
	if err != nil {
		t.Fatal(err)
	}
	node2 := []string{"10.10.0.12:8080", "10.10.0.12:8081"}
	if err := recipes.OthersUp(site, node2); err != nil {
		t.Errorf("both nodes up: %v", err)
	}
	node1Out, err := recipes.LeaveOut(site, []string{"10.10.0.11:8080", "10.10.0.11:8081"})
	if err != nil {
		t.Fatal(err)
	}
	err = recipes.OthersUp(node1Out, node2)
	if err == nil || !strings.Contains(err.Error(), "upstream mago3d_admin has no other server up") || !strings.Contains(err.Error(), "mago3d_user") {
		t.Errorf("node 1 left out, taking node 2 out: %v, want both upstreams named", err)
	}
	// A site written by an earlier version marked the node down instead.
	marked := strings.ReplaceAll(string(site), "10.10.0.11:8081 max_fails=1 fail_timeout=5s", "10.10.0.11:8081 max_fails=1 fail_timeout=5s down")
	if err := recipes.OthersUp([]byte(marked), node2); err == nil || !strings.Contains(err.Error(), "upstream mago3d_user has no other server up") {
		t.Errorf("node 1 marked down, taking node 2 out: %v, want mago3d_user named", err)
	}
}

func TestNginxAcceptsTheSiteWithANodeLeftOut(t *testing.T) {
	nginx := needNginx(t)
	for _, nodes := range []int{2, 3} {
		site, err := configs.NewNginxSite(testCluster(nodes)).Render()
		if err != nil {
			t.Fatal(err)
		}
		out, err := recipes.LeaveOut(site, []string{"10.10.0.11:8080", "10.10.0.11:8081"})
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		siteFile := filepath.Join(dir, "site.conf")
		if err := os.WriteFile(siteFile, out, 0o644); err != nil {
			t.Fatal(err)
		}
		conf := fmt.Sprintf("pid %[1]s/nginx.pid;\nerror_log %[1]s/error.log;\nevents {}\nhttp {\n access_log off;\n include %[2]s;\n}\n", dir, siteFile)
		if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(nginx, "-t", "-q", "-p", dir, "-c", filepath.Join(dir, "nginx.conf")).CombinedOutput(); err != nil {
			t.Fatalf("%d nodes: nginx -t rejects the site with node 1 left out: %v\n%s", nodes, err, out)
		}
	}
}

// While one node is drained, the other serves alone: one answer of it slower than
// proxy_read_timeout (a busy machine, a long GC) must not take it out of the site for
// fail_timeout. With the drained node's servers marked down, nginx counted that failure
// against the node left, and answered 502 "no live upstreams" to its sessions for the
// next fail_timeout (the Nginx lab's release under load: 102 failed with 502). A real
// nginx in front of two backends.
func TestTheNodeLeftServingWhileTheOtherIsDrainedOutlivesASlowAnswer(t *testing.T) {
	nginx := needNginx(t)
	var slow sync.Once
	user2 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		slow.Do(func() { time.Sleep(1500 * time.Millisecond) })
		fmt.Fprint(w, "user2")
	}))
	t.Cleanup(user2.Close)
	user1 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "user1") }))
	t.Cleanup(user1.Close)
	srv := configs.NginxServer{
		Listen: freePort(t), Upstream: "mago3d_user", Root: t.TempDir(),
		NextUpstream:          []string{"error", "timeout", "http_502", "http_503"},
		ConnectTimeoutSeconds: 1, ReadTimeoutSeconds: 1, MaxFails: 1, FailTimeoutSeconds: 5,
	}
	for route, b := range map[string]*httptest.Server{"user1": user1, "user2": user2} {
		addr := b.Listener.Addr().(*net.TCPAddr)
		srv.Backends = append(srv.Backends, configs.NginxBackend{Host: addr.IP.String(), Port: addr.Port, Route: route})
	}
	slices.SortFunc(srv.Backends, func(a, b configs.NginxBackend) int { return strings.Compare(a.Route, b.Route) })
	site, err := (&configs.NginxSite{Servers: []configs.NginxServer{srv}}).Render()
	if err != nil {
		t.Fatal(err)
	}
	drained, err := recipes.LeaveOut(site, []string{user1.Listener.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	url := nginxtest.Run(t, nginx, drained, srv.Listen)
	get := func(cookie string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		if cookie != "" {
			req.Header.Set("Cookie", "JSESSIONID="+cookie)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	// The slow answer: nginx gives up on it (504), there is no other node to try.
	if code, _ := get("0123ABCD.user2"); code != http.StatusGatewayTimeout {
		t.Logf("the slow answer: %d (nginx gives up after its read timeout: 504 expected)", code)
	}
	for _, cookie := range []string{"0123ABCD.user2", "0123ABCD.user1", ""} {
		for i := range 5 {
			if code, body := get(cookie); code != http.StatusOK || body != "user2" {
				t.Errorf("cookie %q, request %d after the slow answer: %d %q, want 200 from user2", cookie, i+1, code, body)
			}
		}
	}
}

func needNginx(t *testing.T) string {
	t.Helper()
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		t.Skip("nginx is not installed")
	}
	return nginx
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestADrainedRestartRefusesToTakeOutTheLastServingNode(t *testing.T) {
	// The node itself serves (a real listener on the loopback); its only peer does not.
	srv := newHealthServer(t)
	var log []string
	step := recipes.DrainedRestart{
		Unit: "never-restarted.service", Node: "web1",
		HealthURLs: []string{srv + "/health"},
		Peers:      []string{"http://127.0.0.1:1/health"},
		Balancers:  []recipes.Balancer{recordingBalancer{"mod_jk on web1", &log}},
		Timeout:    2 * time.Second,
	}
	ch, err := step.Check(context.Background(), local.New())
	if err != nil || ch == nil {
		t.Fatalf("Check: %v %v", ch, err)
	}
	err = ch.Apply(context.Background())
	if err == nil || !strings.Contains(err.Error(), `gate "another node serves"`) {
		t.Errorf("Apply: %v, want a failed gate named \"another node serves\"", err)
	}
	if len(log) != 0 {
		t.Errorf("the last serving node was taken out: %v", log)
	}
}

func TestADrainedRestartNeedsAUnitANodeAndHealthURLs(t *testing.T) {
	for _, s := range []recipes.DrainedRestart{
		{Node: "web1", HealthURLs: []string{"http://127.0.0.1:8080/health"}},
		{Unit: "x.service", HealthURLs: []string{"http://127.0.0.1:8080/health"}},
		{Unit: "x.service", Node: "web1"},
		{Unit: "x.service", Node: "web1", HealthURLs: []string{"http://127.0.0.1:8080/health"}, Timeout: -time.Second},
	} {
		if err := s.Validate(); err == nil {
			t.Errorf("%+v: valid, want an error", s)
		}
	}
}

// newHealthServer answers 200 at /health on the loopback, for the local transport's curl.
func newHealthServer(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "ok")
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// recordingBalancer is a balancer double that logs what the restart asks of it (the
// restart asks every balancer at once).
type recordingBalancer struct {
	name string
	log  *[]string
}

var recordingMu sync.Mutex

func (b recordingBalancer) record(what string) {
	recordingMu.Lock()
	defer recordingMu.Unlock()
	*b.log = append(*b.log, what)
}

func (b recordingBalancer) String() string                         { return b.name }
func (b recordingBalancer) InFront(context.Context) (bool, error)  { return true, nil }
func (b recordingBalancer) OthersInRotation(context.Context) error { return nil }
func (b recordingBalancer) TakeOut(context.Context) error {
	b.record("take out of " + b.name)
	return nil
}
func (b recordingBalancer) PutBack(context.Context) error {
	b.record("put back into " + b.name)
	return nil
}

func TestAFailedRestartStopsTheRolloutWithTheNodeLeftOutOfEveryBalancer(t *testing.T) {
	node, peer := newHealthServer(t), newHealthServer(t)
	var log []string
	step := recipes.DrainedRestart{
		// No such unit: systemctl fails (or is missing), as a broken start would.
		Unit: "cauldron-no-such-unit-" + fmt.Sprint(time.Now().UnixNano()) + ".service", Node: "web1",
		HealthURLs: []string{node + "/health"}, Peers: []string{peer + "/health"},
		Balancers: []recipes.Balancer{recordingBalancer{"mod_jk on web1", &log}, recordingBalancer{"mod_jk on web2", &log}},
		Timeout:   2 * time.Second,
	}
	ch, err := step.Check(context.Background(), local.New())
	if err != nil {
		t.Fatal(err)
	}
	if want := "restart " + step.Unit + " on web1, taken out of mod_jk on web1, mod_jk on web2 meanwhile"; ch.Summary != want {
		t.Errorf("summary %q, want %q", ch.Summary, want)
	}
	var phases []string
	ctx := recipes.WithRestartPhases(context.Background(), func(p recipes.RestartPhase) {
		phases = append(phases, p.Node+" "+p.Phase)
	})
	err = ch.Apply(ctx)
	if err == nil || !strings.Contains(err.Error(), `gate "restart"`) || !strings.Contains(err.Error(), "web1 is left out of the balancers") {
		t.Errorf("Apply: %v, want the restart gate named and the node left out", err)
	}
	slices.Sort(log)
	if want := "[take out of mod_jk on web1 take out of mod_jk on web2]"; fmt.Sprint(log) != want {
		t.Errorf("balancers were asked %v, want %s (and nothing put back)", log, want)
	}
	// Only the phases that ended are reported: the node was taken out, the stop failed.
	if want := "[web1 find the balancers web1 take out]"; fmt.Sprint(phases) != want {
		t.Errorf("phases reported %v, want %s", phases, want)
	}
}

func TestANodeThatDoesNotServeIsRestartedWithoutTheDrain(t *testing.T) {
	var log []string
	step := recipes.DrainedRestart{
		Unit: "cauldron-no-such-unit.service", Node: "web1",
		HealthURLs: []string{"http://127.0.0.1:1/health"}, Peers: []string{"http://127.0.0.1:1/health"},
		Balancers: []recipes.Balancer{recordingBalancer{"mod_jk on web2", &log}},
		Timeout:   time.Second,
	}
	ch, err := step.Check(context.Background(), local.New())
	if err != nil {
		t.Fatal(err)
	}
	err = ch.Apply(context.Background())
	if err == nil || !strings.Contains(err.Error(), `gate "restart"`) || strings.Contains(err.Error(), "left out") {
		t.Errorf("Apply: %v, want the restart gate, the node not taken out", err)
	}
	if len(log) != 0 {
		t.Errorf("a node that did not serve was taken out of its balancers: %v", log)
	}
}

func TestAClusterCheckPathThatIsNotAURLPathIsRefused(t *testing.T) {
	for _, p := range []string{"cluster.json", "/a b", "/x?y", "/$(id)"} {
		_, err := recipes.TomcatNode(recipes.TomcatNodeConfig{
			Account: "gaia3d", Cluster: testCluster(2), Node: testCluster(2).Nodes[0],
			TomcatTarball: "/t/apache-tomcat-10.1.tar.gz", JDKTarball: "/t/jdk-17.tar.gz",
			ClusterCheckPath: p,
		})
		if err == nil || !strings.Contains(err.Error(), "cluster_check_path") {
			t.Errorf("cluster_check_path %q: %v, want refused", p, err)
		}
	}
}

// refusingBalancer is a balancer double whose TakeOut fails.
type refusingBalancer struct{ recordingBalancer }

func (b refusingBalancer) TakeOut(context.Context) error {
	b.record("refused by " + b.name)
	return fmt.Errorf("%s: status worker answered 500", b.name)
}

func TestAFailedTakeOutPutsTheNodeBackIntoTheBalancersThatTookItOut(t *testing.T) {
	node, peer := newHealthServer(t), newHealthServer(t)
	var log []string
	step := recipes.DrainedRestart{
		Unit: "never-restarted.service", Node: "web1",
		HealthURLs: []string{node + "/health"}, Peers: []string{peer + "/health"},
		Balancers: []recipes.Balancer{
			recordingBalancer{"mod_jk on web1", &log},
			refusingBalancer{recordingBalancer{"mod_jk on web2", &log}},
		},
		Timeout: 2 * time.Second,
	}
	ch, err := step.Check(context.Background(), local.New())
	if err != nil {
		t.Fatal(err)
	}
	err = ch.Apply(context.Background())
	if err == nil || !strings.Contains(err.Error(), `gate "take out of mod_jk on web2"`) || strings.Contains(err.Error(), "left out") {
		t.Errorf("Apply: %v, want the gate naming the balancer that refused, the node not left out", err)
	}
	slices.Sort(log)
	if want := "[put back into mod_jk on web1 refused by mod_jk on web2 take out of mod_jk on web1]"; fmt.Sprint(log) != want {
		t.Errorf("balancers were asked %v, want %s", log, want)
	}
}

func TestOnlyANodeThatDoesNotWaitForAcknowledgementsReplicatesSynchronouslyWhileItIsDrained(t *testing.T) {
	for _, c := range []struct {
		name        string
		replication configs.Replication
		membership  configs.Membership
		want        bool
	}{
		{"async", configs.AsyncReplication, configs.Multicast, true},
		{"written", configs.WrittenReplication, configs.Multicast, true},
		{"sync", configs.SyncReplication, configs.Multicast, false},
		{"no replication", configs.AsyncReplication, configs.NoReplication, false},
	} {
		cluster := testCluster(2)
		cluster.Replication, cluster.Membership = c.replication, c.membership
		// The recipe reads the WARs: each release's folder is named by its sum.
		wars := map[string]string{"mago3d-admin": filepath.Join(t.TempDir(), "admin.war"), "mago3d-user": filepath.Join(t.TempDir(), "user.war")}
		for app, war := range wars {
			if err := os.WriteFile(war, []byte(app), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		r, err := recipes.TomcatNode(recipes.TomcatNodeConfig{
			Account: "gaia3d", Cluster: cluster, Node: cluster.Nodes[0],
			TomcatTarball: "/t/apache-tomcat-10.1.tar.gz", JDKTarball: "/t/jdk-17.0.2.tar.gz",
			WARs: wars,
			DB:   configs.AppProperties{URL: "jdbc:postgresql://10.10.0.5:5432/mago3d", Username: "mago3d", Password: "test-db-password"},
			Heap: "512m",
		})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		var restart *recipes.DrainedRestart
		for _, h := range r.Handlers() {
			if d, ok := h.Step.(recipes.DrainedRestart); ok && h.Name == recipes.TomcatHandler {
				restart = &d
			}
		}
		if restart == nil {
			t.Fatalf("%s: no drained restart among the handlers", c.name)
		}
		got := restart.SyncWhileDraining
		if (got != nil) != c.want {
			t.Errorf("%s: SyncWhileDraining %+v, want set: %v", c.name, got, c.want)
		}
		if got != nil && (got.JavaHome != "/home/gaia3d/tools/jdk-17.0.2" || got.User != "gaia3d" || got.Clusters != len(cluster.Apps) || got.Configured != c.replication.ChannelSendOptions()) {
			t.Errorf("%s: SyncWhileDraining %+v, want the node's JDK, account, %d clusters and its own options back", c.name, got, len(cluster.Apps))
		}
	}
}
