package recipes_test

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cauldron-go/cauldron/configs"
	"github.com/cauldron-go/cauldron/inventory"
	"github.com/cauldron-go/cauldron/lab"
	"github.com/cauldron-go/cauldron/recipes"
	"github.com/cauldron-go/cauldron/steps"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// loadCluster loads testdata/cluster.yaml with the demo WARs written to a temp folder
// and the secrets in the environment, after edit has changed the file's text.
func loadCluster(t *testing.T, edit func(string) string) *inventory.Inventory {
	t.Helper()
	dir := t.TempDir()
	for _, app := range lab.AppNames {
		war, err := lab.BuildAppWAR(app)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, app+".war"), war, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("TEST_AJP_SECRET", "ajp-secret-0123456789")
	t.Setenv("TEST_STATS_PASSWORD", "stats-secret-0123456789")
	t.Setenv("TEST_DB_PASSWORD", "db-secret-0123456789")
	t.Setenv("TEST_TOMCAT_PASSWORD_HASH", "$6$salt$hash")
	text, err := os.ReadFile("testdata/cluster.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := strings.ReplaceAll(string(text), "WAR_DIR", dir)
	if edit != nil {
		s = edit(s)
	}
	inv, err := inventory.LoadOptions{SSHConfig: os.DevNull}.Parse("cluster.yaml", []byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

// planOutline lists every play, host, step and handler the cluster's recipes build.
func planOutline(t *testing.T, inv *inventory.Inventory) string {
	t.Helper()
	plays, err := recipes.Cluster(inv)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, p := range plays {
		fmt.Fprintf(&b, "PLAY %s\n", p.Name)
		for _, h := range p.Hosts {
			r, err := p.Recipe(h)
			if err != nil {
				t.Fatalf("play %s, host %s: %v", p.Name, h.Name, err)
			}
			if err := r.Validate(); err != nil {
				t.Fatalf("play %s, host %s: %v", p.Name, h.Name, err)
			}
			fmt.Fprintf(&b, "  %s\n", h.Name)
			for _, s := range r.Steps() {
				notes := ""
				if n := steps.Notified(s); len(n) > 0 {
					notes = "  -> " + strings.Join(n, ", ")
				}
				fmt.Fprintf(&b, "    %s%s\n", s, notes)
			}
			for _, hd := range r.Handlers() {
				fmt.Fprintf(&b, "    handler %s: %s\n", hd.Name, hd.Step)
			}
		}
	}
	return b.String()
}

func TestTheClusterOfThreeNodesIsPlannedInDependencyOrder(t *testing.T) {
	got := planOutline(t, loadCluster(t, nil))
	golden := "testdata/cluster-plan.golden"
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("the plan changed (rerun with -update if that is intended):\n%s", got)
	}
	for _, secret := range []string{"ajp-secret", "stats-secret", "db-secret"} {
		if strings.Contains(got, secret) {
			t.Errorf("a secret (%s) is in a step's name", secret)
		}
	}
}

func TestNginxReplacesApacheWhenTheInventorySaysSo(t *testing.T) {
	got := planOutline(t, loadCluster(t, func(s string) string {
		return strings.Replace(s, "web_server: apache", "web_server: nginx", 1)
	}))
	if !strings.Contains(got, "file /etc/nginx/conf.d/mago3d.conf  -> reload nginx") || strings.Contains(got, "apache2") {
		t.Errorf("the web play is not Nginx's:\n%s", got)
	}
}

func TestAWrongClusterInventoryIsRefusedBeforeAnythingConnects(t *testing.T) {
	cases := []struct {
		name string
		edit func(string) string
		want string
	}{
		{"a Tomcat host without a node number",
			func(s string) string { return strings.Replace(s, "vars: {node: 2}", "vars: {}", 1) },
			"host web2: the Tomcat host needs a var node: N"},
		{"two hosts with one node number",
			func(s string) string { return strings.Replace(s, "vars: {node: 3}", "vars: {node: 1}", 1) },
			"hosts web1 and web3 both have node: 1"},
		{"no haproxy group",
			func(s string) string { return strings.Replace(s, "  haproxy: {hosts: [lb]}\n", "", 1) },
			`the cluster needs a group "haproxy"`},
		{"two database hosts",
			func(s string) string { return strings.Replace(s, "db: {hosts: [db]}", "db: {hosts: [db, lb]}", 1) },
			`group "db" has 2 hosts`},
		{"an unknown membership",
			func(s string) string {
				return strings.Replace(s, "web_server: apache", "session_membership: carrier-pigeon", 1)
			},
			`session_membership: "carrier-pigeon" is not multicast, static or none`},
		{"an unknown replication mode",
			func(s string) string {
				return strings.Replace(s, "web_server: apache", "session_replication: eventually", 1)
			},
			`session_replication: "eventually" is not sync, written or async`},
		{"an unknown web server, refused at its line",
			func(s string) string { return strings.Replace(s, "web_server: apache", "web_server: lighttpd", 1) },
			`cluster.yaml:3: vars.web_server: "lighttpd" is not apache or nginx`},
		{"a node number of the wrong type",
			func(s string) string { return strings.Replace(s, "vars: {node: 2}", "vars: {node: two}", 1) },
			"cluster.yaml:22: hosts.web2.vars.node"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := recipes.Cluster(loadCluster(t, tc.edit))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestTheSudoRuleGrantsOnlyTheUnitsOwnVerbs(t *testing.T) {
	rule := recipes.SudoRule("gaia3d", "mago3d-tomcat.service")
	for _, want := range []string{"/usr/bin/systemctl restart mago3d-tomcat.service", "/bin/systemctl status mago3d-tomcat.service"} {
		if !strings.Contains(rule, want) {
			t.Errorf("rule lacks %q:\n%s", want, rule)
		}
	}
	if strings.Contains(rule, "ALL=(ALL)") || strings.Contains(rule, "systemctl,") || strings.Contains(rule, "systemctl\n") {
		t.Errorf("rule grants more than the unit's verbs:\n%s", rule)
	}
}

func TestReplicationIsWrittenBehindEitherWebServerUnlessTheInventorySays(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(string) string
		want configs.Replication
	}{
		{"apache", func(s string) string { return s }, configs.WrittenReplication},
		{"nginx", func(s string) string { return strings.Replace(s, "web_server: apache", "web_server: nginx", 1) }, configs.WrittenReplication},
		{"nginx, sync", func(s string) string {
			return strings.Replace(s, "web_server: apache", "web_server: nginx\n  session_replication: sync", 1)
		}, configs.SyncReplication},
		{"apache, sync", func(s string) string {
			return strings.Replace(s, "web_server: apache", "web_server: apache\n  session_replication: sync", 1)
		}, configs.SyncReplication},
		{"nginx, async", func(s string) string {
			return strings.Replace(s, "web_server: apache", "web_server: nginx\n  session_replication: async", 1)
		}, configs.AsyncReplication},
	} {
		t.Run(tc.name, func(t *testing.T) {
			topo, err := recipes.NewTopology(loadCluster(t, tc.edit))
			if err != nil {
				t.Fatal(err)
			}
			if topo.Cluster.Replication != tc.want {
				t.Errorf("replication %s, want %s", topo.Cluster.Replication, tc.want)
			}
		})
	}
}

// An inventory that says nothing of session_membership gets static membership over
// every Tomcat host of the inventory (multicast does not come back from a network
// interface that goes away and returns: configs.Multicast); multicast stays a choice.
func TestAnInventoryWithoutSessionMembershipListsEveryTomcatAsAStaticMember(t *testing.T) {
	for _, tc := range []struct {
		edit  func(string) string
		class string
	}{
		{nil, configs.ClassStaticMembership},
		{func(s string) string {
			return strings.Replace(s, "web_server: apache", "web_server: apache\n  session_membership: multicast", 1)
		}, configs.ClassMcastService},
	} {
		inv := loadCluster(t, tc.edit)
		top, err := recipes.NewTopology(inv)
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		for _, h := range top.Tomcats {
			want = append(want, h.Address)
		}
		for _, n := range top.Cluster.Nodes {
			for _, svc := range configs.NewServerXML(top.Cluster, n).Services {
				m := svc.Engine.Cluster.Channel.Membership
				if m.ClassName != tc.class {
					t.Fatalf("%s %s: membership %s, want %s", n.Name, svc.Name, m.ClassName, tc.class)
				}
				var hosts []string
				for _, member := range m.Members {
					hosts = append(hosts, member.Host)
				}
				if tc.class == configs.ClassMcastService {
					want = nil
				}
				if fmt.Sprint(hosts) != fmt.Sprint(want) {
					t.Errorf("%s %s: members %v, want %v", n.Name, svc.Name, hosts, want)
				}
			}
		}
	}
}
