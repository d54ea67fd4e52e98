package targets_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cauldron-go/cauldron/targets"
)

func TestDeployClusterWithAWrongInventoryNamesFileLineAndKeyAndConnectsNowhere(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	bad := "groups:\n  tomcat:\n    hosts: [web1, web3]\nhosts:\n  web1:\n    address: 10.0.0.11\n    ssh:\n      prot: 22\n"
	if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	dryrun := true
	err := targets.Deploy{}.Cluster(context.Background(), &path, &dryrun, nil, nil, nil, nil, nil)
	if err == nil {
		t.Fatal("a wrong inventory deployed")
	}
	for _, want := range []string{
		path + `:3: groups.tomcat.hosts[1]: unknown host "web3" (did you mean "web1"?)`,
		path + `:8: hosts.web1.ssh.prot: unknown key (did you mean "port"?)`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestTransportIsOnlyForTheLab(t *testing.T) {
	path, ssh := "inventory.yaml", "ssh"
	err := targets.Deploy{}.Cluster(context.Background(), &path, nil, &ssh, nil, nil, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "-transport=ssh is for the lab") {
		t.Fatalf("got %v", err)
	}
}

// A report that cannot be written stops deploy:cluster before it brings up the lab or
// loads an inventory, not after the run.
func TestAnUnwritableReportStopsDeployClusterBeforeTheLabComesUp(t *testing.T) {
	report := filepath.Join(t.TempDir(), "no", "such", "folder", "deploy.json")
	err := targets.Deploy{}.Cluster(context.Background(), nil, nil, nil, &report, nil, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "-report="+report) {
		t.Fatalf("got %v", err)
	}
}
