package recipes_test

import (
	"os"
	"strings"
	"testing"

	"github.com/cauldron-go/cauldron/configs"
	"github.com/cauldron-go/cauldron/recipes"
)

func TestAModeSwitchIsRefusedOnlyWhereTheRunningNodesCouldNotUnderstandTheNewOnes(t *testing.T) {
	b, err := os.ReadFile("../configs/testdata/2nodes/server-web1.xml") // both OrderInterceptors, async
	if err != nil {
		t.Fatal(err)
	}
	both := string(b)
	const flag8 = `<Interceptor className="io.cauldron.tribes.GaplessOrderInterceptor" optionFlag="8" forwardExpired="false"></Interceptor>`
	const flag256 = `<Interceptor className="io.cauldron.tribes.GaplessOrderInterceptor" optionFlag="256" forwardExpired="false"></Interceptor>`
	if !strings.Contains(both, flag8) || !strings.Contains(both, flag256) {
		t.Fatalf("the golden server.xml no longer has both OrderInterceptors as this test expects")
	}
	only8 := strings.ReplaceAll(both, flag256, "")
	only256 := strings.ReplaceAll(strings.ReplaceAll(both, flag8, ""), `channelSendOptions="8"`, `channelSendOptions="256"`)
	everything := strings.ReplaceAll(only8, ` optionFlag="8"`, "")
	none := strings.ReplaceAll(only8, flag8, "")
	stock := `<Server port="8005"><!-- <Cluster className="org.apache.catalina.ha.tcp.SimpleTcpCluster"/> --></Server>`
	for _, tc := range []struct {
		name    string
		running string
		want    configs.Replication
		refused string
	}{
		{"both interceptors, to written", both, configs.WrittenReplication, ""},
		{"both interceptors, to async", both, configs.AsyncReplication, ""},
		// Tribes' own numbers on the wire as cauldron's subclass does.
		{"both of Tribes' own interceptors (before session 16), to written", strings.ReplaceAll(both,
			"io.cauldron.tribes.GaplessOrderInterceptor", "org.apache.catalina.tribes.group.interceptors.OrderInterceptor"), configs.WrittenReplication, ""},
		{"Tribes' own, an earlier async node, to written", strings.ReplaceAll(only8,
			"io.cauldron.tribes.GaplessOrderInterceptor", "org.apache.catalina.tribes.group.interceptors.OrderInterceptor"), configs.WrittenReplication, "orders only optionFlag=8"},
		{"an earlier async node, to async", only8, configs.AsyncReplication, ""},
		{"an earlier async node, to sync", only8, configs.SyncReplication, ""},
		{"an earlier async node, to written", only8, configs.WrittenReplication, "orders only optionFlag=8"},
		{"an earlier written node, to async", only256, configs.AsyncReplication, "orders only optionFlag=256"},
		{"an earlier written node, to written", only256, configs.WrittenReplication, ""},
		{"a node ordering every message, to written", everything, configs.WrittenReplication, ""},
		{"a cluster without OrderInterceptor", none, configs.AsyncReplication, "no OrderInterceptor"},
		{"Tomcat's own server.xml, its cluster commented out", stock, configs.WrittenReplication, ""},
		{"no server.xml", "", configs.WrittenReplication, ""},
	} {
		got := recipes.OrderingMismatch(tc.running, tc.want)
		if tc.refused == "" && got != "" || tc.refused != "" && !strings.Contains(got, tc.refused) {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.refused)
		}
	}
}
