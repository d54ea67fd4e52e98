package recipes_test

import (
	"context"
	"fmt"
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

func TestMarkDownTakesOnlyTheNodesServersOutOfEveryUpstream(t *testing.T) {
	site, err := configs.NewNginxSite(testCluster(3)).Render()
	if err != nil {
		t.Fatal(err)
	}
	down, err := recipes.MarkDown(site, []string{"10.10.0.12:8080", "10.10.0.12:8081"})
	if err != nil {
		t.Fatal(err)
	}
	var downs []string
	for _, l := range strings.Split(string(down), "\n") {
		if strings.Contains(l, " down;") {
			downs = append(downs, strings.TrimSpace(l))
		}
	}
	// The node's server lines as the site writes them, each with down before its ';'.
	var want []string
	for _, l := range strings.Split(string(site), "\n") {
		if t := strings.TrimSpace(l); strings.HasPrefix(t, "server 10.10.0.12:") {
			want = append(want, strings.TrimSuffix(t, ";")+" down;")
		}
	}
	// Per app: the upstream over every node, node 2's own upstream, and the other two
	// nodes' upstreams, where it is a backup.
	if len(want) != 8 {
		t.Fatalf("the site has %d server lines of node 2, want 8:\n%s", len(want), site)
	}
	if fmt.Sprint(downs) != fmt.Sprint(want) {
		t.Errorf("servers down: %q, want %q", downs, want)
	}
	// Nothing else changed, and marking twice changes nothing more.
	if strings.ReplaceAll(string(down), " down;", ";") != string(site) {
		t.Errorf("MarkDown changed more than the node's servers:\n%s", down)
	}
	again, err := recipes.MarkDown(down, []string{"10.10.0.12:8080"})
	if err != nil || string(again) != string(down) {
		t.Errorf("marking a down server again: %v\n%s", err, again)
	}
	if _, err := recipes.MarkDown(site, []string{"10.10.0.99:8080"}); err == nil || !strings.Contains(err.Error(), "10.10.0.99:8080") {
		t.Errorf("a server not in the site: %v, want an error naming it", err)
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
	node1Down, err := recipes.MarkDown(site, []string{"10.10.0.11:8080", "10.10.0.11:8081"})
	if err != nil {
		t.Fatal(err)
	}
	err = recipes.OthersUp(node1Down, node2)
	if err == nil || !strings.Contains(err.Error(), "upstream mago3d_admin has no other server up") || !strings.Contains(err.Error(), "mago3d_user") {
		t.Errorf("node 1 left down, taking node 2 out: %v, want both upstreams named", err)
	}
}

func TestNginxAcceptsTheSiteWithANodeDown(t *testing.T) {
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		t.Skip("nginx is not installed")
	}
	site, err := configs.NewNginxSite(testCluster(2)).Render()
	if err != nil {
		t.Fatal(err)
	}
	down, err := recipes.MarkDown(site, []string{"10.10.0.11:8080", "10.10.0.11:8081"})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	siteFile := filepath.Join(dir, "site.conf")
	if err := os.WriteFile(siteFile, down, 0o644); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf("pid %[1]s/nginx.pid;\nerror_log %[1]s/error.log;\nevents {}\nhttp {\n access_log off;\n include %[2]s;\n}\n", dir, siteFile)
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(nginx, "-t", "-q", "-p", dir, "-c", filepath.Join(dir, "nginx.conf")).CombinedOutput()
	if err != nil {
		t.Fatalf("nginx -t rejects the site with a node down: %v\n%s", err, out)
	}
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
	if want := "[web1 take out]"; fmt.Sprint(phases) != want {
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

func TestOnlyAnAsynchronousClustersNodeReplicatesSynchronouslyWhileItIsDrained(t *testing.T) {
	for _, c := range []struct {
		name        string
		replication configs.Replication
		membership  configs.Membership
		want        bool
	}{
		{"async", configs.AsyncReplication, configs.Multicast, true},
		{"sync", configs.SyncReplication, configs.Multicast, false},
		{"no replication", configs.AsyncReplication, configs.NoReplication, false},
	} {
		cluster := testCluster(2)
		cluster.Replication, cluster.Membership = c.replication, c.membership
		r, err := recipes.TomcatNode(recipes.TomcatNodeConfig{
			Account: "gaia3d", Cluster: cluster, Node: cluster.Nodes[0],
			TomcatTarball: "/t/apache-tomcat-10.1.tar.gz", JDKTarball: "/t/jdk-17.0.2.tar.gz",
			WARs: map[string]string{"mago3d-admin": "/t/admin.war", "mago3d-user": "/t/user.war"},
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
		if got != nil && (got.JavaHome != "/home/gaia3d/tools/jdk-17.0.2" || got.User != "gaia3d" || got.Clusters != len(cluster.Apps)) {
			t.Errorf("%s: SyncWhileDraining %+v, want the node's JDK, account and %d clusters", c.name, got, len(cluster.Apps))
		}
	}
}
