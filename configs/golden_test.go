package configs_test

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/cauldron-go/cauldron/configs"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// testSecret is a stand-in AJP secret; the golden files hold it.
const testSecret = "test-ajp-secret-7f3a"

func nodes(n int) []configs.Node {
	var ns []configs.Node
	for i := 1; i <= n; i++ {
		ns = append(ns, configs.Node{Name: fmt.Sprintf("web%d", i), Address: fmt.Sprintf("10.10.0.%d", 10+i), Index: i})
	}
	return ns
}

// cluster is n nodes running the apps' releases 3f2a9c01b2d4 (admin) and 0b7e44d1a9c2
// (user): server.xml names each release's own folder.
func cluster(n int) configs.Cluster {
	c := configs.NewCluster(nodes(n), testSecret)
	c.Apps[0].Release, c.Apps[1].Release = "3f2a9c01b2d4", "0b7e44d1a9c2"
	return c
}

// golden compares got with testdata/name, or rewrites the file under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	file := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run go test ./configs -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the rendered file (run with -update if the change is meant):\n--- got ---\n%s\n--- want ---\n%s", file, got, want)
	}
}

// renderers builds every file of a cluster, keyed by its golden file's base name.
func renderers(c configs.Cluster) []struct {
	name string
	file configs.File
} {
	static := c
	static.Membership = configs.Static
	written := static
	written.Replication = configs.WrittenReplication
	return []struct {
		name string
		file configs.File
	}{
		{"server-web1.xml", configs.NewServerXML(c, c.Nodes[0])},
		{"server-web2.xml", configs.NewServerXML(c, c.Nodes[1])},
		{"server-static-web1.xml", configs.NewServerXML(static, c.Nodes[0])},
		{"server-written-web1.xml", configs.NewServerXML(written, c.Nodes[0])},
		{"workers.properties", configs.NewWorkers(c)},
		{"apache-site.conf", configs.NewApacheSite(c)},
		{"apache-jk.conf", configs.NewJkConf()},
		{"apache-ports.conf", configs.NewApachePorts(c)},
		{"nginx-site.conf", configs.NewNginxSite(c)},
		{"haproxy.cfg", configs.NewHAProxy(c, "admin", "stats-pw-test")},
		{"pg_hba.conf", configs.NewPgHBA(c, "mago3d", "mago3d")},
		{"postgres-listen.conf", configs.NewPostgresListen("10.10.0.5")},
		{"setenv.sh", configs.NewSetEnv("/home/gaia3d/tools/jdk-17")},
		{"mago3d-tomcat.service", configs.NewSystemdUnit(c, "gaia3d", "/home/gaia3d/tools/jdk-17")},
		{"application.properties", &configs.AppProperties{
			URL: configs.JDBCURL("10.10.0.5", 5432, "mago3d"), Username: "mago3d", Password: `pa ss#wörd\1`,
		}},
	}
}

func TestEveryFileMatchesItsGoldenFile(t *testing.T) {
	for _, n := range []int{2, 3} {
		c := cluster(n)
		if err := c.Validate(); err != nil {
			t.Fatalf("the %d-node test cluster is invalid: %v", n, err)
		}
		for _, r := range renderers(c) {
			t.Run(fmt.Sprintf("%d-nodes/%s", n, r.name), func(t *testing.T) {
				got, err := r.file.Render()
				if err != nil {
					t.Fatalf("Render: %v", err)
				}
				golden(t, fmt.Sprintf("%dnodes/%s", n, r.name), got)
			})
		}
	}
}
