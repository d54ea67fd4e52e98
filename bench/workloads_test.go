package bench_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cauldron-go/cauldron/bench"
	"github.com/cauldron-go/cauldron/configs"
	"github.com/cauldron-go/cauldron/inventory"
)

// The bench's hosts get the runbook's Tomcat node and nothing of cauldron's own: a
// server.xml naming a class from cauldron's Tribes jar, which only a lab node gets,
// stops their Tomcat at start (the bench then found it restarting on the converged run).
func TestTheBenchsTomcatNodesClusterWithTomcatsOwnClassesOnly(t *testing.T) {
	dir := t.TempDir()
	a := bench.Artifacts{JDK: "/x/jdk-17.0.2.tar.gz", Tomcat: "/x/apache-tomcat-10.1.60.tar.gz",
		WARs: map[string]string{"mago3d-admin": "/x/admin.war", "mago3d-user": "/x/user.war"}}
	hosts := []*inventory.Host{{Name: "node001", Address: "172.30.0.11"}, {Name: "node002", Address: "172.30.0.12"}}
	if err := bench.WriteTomcatWorkload(dir, a, hosts); err != nil {
		t.Fatal(err)
	}
	for _, h := range hosts {
		b, err := os.ReadFile(filepath.Join(dir, "server-"+h.Name+".xml"))
		if err != nil {
			t.Fatal(err)
		}
		x := string(b)
		if strings.Contains(x, "io.cauldron.") {
			t.Errorf("%s's server.xml names cauldron's own classes:\n%s", h.Name, x)
		}
		for _, want := range []string{configs.ClassTcpFailureDetector, "org.apache.catalina.ha.tcp.SimpleTcpCluster"} {
			if !strings.Contains(x, want) {
				t.Errorf("%s's server.xml lacks %s:\n%s", h.Name, want, x)
			}
		}
	}
}
