package configs_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cauldron-go/cauldron/configs"
)

// slowestColdCPong is the slowest CPong on a new AJP connection to a Tomcat that had
// just started, measured on the lab (3 web nodes, the load check's 16 users, CPU load
// average 17-28): 655 ms, 561 ms and 1,255 ms in three restarts. With 500 ms for it, a
// just-restarted node was put in error on every web host under a load with no fault,
// and its sessions sent to nodes that, with asynchronous replication, may not have them
// yet (a session lost in CI with no fault at all).
const slowestColdCPong = 1255 * time.Millisecond

// pooledCPingRetry is what mod_jk adds to each failed CPing before it tries the next
// connection: its lingering close (jk_connect.c, MS_TO_LINGER; in mod_jk's log, 500 ms
// timeouts 600 ms apart).
const pooledCPingRetry = 100 * time.Millisecond

// pooledToHungNode is how many idle pooled connections to a node that hangs a request
// for one of its sessions tries first: what a web host's child holds under the load
// check, as in TestARequestForAFrozenNodesSessionIsAnsweredByTheOtherNodeBeforeHAProxyGivesUp.
const pooledToHungNode = 4

func TestANodeGoesInErrorOnlyAfterACPingOnANewConnectionThatAJustStartedTomcatWouldHaveAnswered(t *testing.T) {
	for _, n := range []int{2, 3} {
		w := configs.NewWorkers(cluster(n))
		b, err := w.Render()
		if err != nil {
			t.Fatal(err)
		}
		file := string(b)
		for _, lb := range w.Balancers {
			for _, m := range lb.Members {
				connectPing := time.Duration(m.ConnectPingTimeoutMS) * time.Millisecond
				pooledPing := time.Duration(m.PingTimeoutMS) * time.Millisecond
				if connectPing < slowestColdCPong+slowestColdCPong/5 {
					t.Errorf("%d nodes, %s: the CPing on a new connection gives up after %s, within 20%% of the slowest a just-started Tomcat took (%s)", n, m.Name, connectPing, slowestColdCPong)
				}
				// A hung node (a frozen host) must still be left for another member inside
				// HAProxy's timeout server: the pooled CPings, then one on a new connection,
				// with room for the other node's answer on a loaded machine.
				if hung := pooledToHungNode*(pooledPing+pooledCPingRetry) + connectPing + pooledCPingRetry; hung > configs.HAProxyTimeoutServer-500*time.Millisecond {
					t.Errorf("%d nodes, %s: a hung node is left after %s, too close to HAProxy's timeout server %s", n, m.Name, hung, configs.HAProxyTimeoutServer)
				}
				for _, line := range []string{
					fmt.Sprintf("worker.%s.ping_mode=CP\n", m.Name),
					fmt.Sprintf("worker.%s.ping_timeout=%d\n", m.Name, m.PingTimeoutMS),
					fmt.Sprintf("worker.%s.connect_timeout=%d\n", m.Name, m.ConnectPingTimeoutMS),
				} {
					if !strings.Contains(file, line) {
						t.Errorf("%d nodes: workers.properties lacks %q", n, line)
					}
				}
			}
		}
	}
}

func TestAConnectPingTimeoutAloneIsTheOneCPingAfterEachConnect(t *testing.T) {
	w := configs.NewWorkers(cluster(2))
	for i := range w.Balancers {
		for j := range w.Balancers[i].Members {
			w.Balancers[i].Members[j].PingTimeoutMS = 0
		}
	}
	b, err := w.Render()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"worker.user1.ping_mode=C\n", fmt.Sprintf("worker.user1.ping_timeout=%d\n", configs.DefaultAJPConnectPingTimeoutMS)} {
		if !strings.Contains(string(b), want) {
			t.Errorf("workers.properties lacks %q:\n%s", want, b)
		}
	}
	if strings.Contains(string(b), ".connect_timeout=") {
		t.Errorf("with ping_mode C alone, ping_timeout is the connect CPing's; connect_timeout is not needed:\n%s", b)
	}
}
