package configs_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/cauldron-go/cauldron/configs"
)

// oneApacheChild keeps a test's Apache to one child process, whose mod_jk pool is the
// one every request uses, with the lab's watchdog (configs.NewJkConf).
var oneApacheChild = []string{
	"StartServers 1", "ServerLimit 1", "ThreadsPerChild 25", "MaxRequestWorkers 25",
	"MinSpareThreads 1", "MaxSpareThreads 50", "JkWatchdogInterval 1",
}

// TestARequestForAFrozenNodesSessionIsAnsweredByTheOtherNodeBeforeHAProxyGivesUp: when a
// web host freezes (docker pause), so does its Tomcat, and the other web host's mod_jk
// still holds pooled connections to it. A request there for a session of the frozen node
// tries each idle pooled connection with a CPing (ping_timeout, then 100 ms of mod_jk's
// lingering close: jk_ajp_common.c ajp_send_request, jk_connect.c jk_shutdown_socket),
// then a new connection, whose CPing (connect_timeout) puts the node in error, and only
// then goes to the other node. That walk must end well inside HAProxy's timeout server, or
// HAProxy answers 504 for a healthy web host, seconds after the fault began (CI's ci60:
// one GET, more than 5 s after the freeze). A child of a lab web host held up to eight
// connections to one node under the load check (jkstatus: max_busy 8); the pool here
// holds four a moment old, or eight that a burst opened before a steadier load.
func TestARequestForAFrozenNodesSessionIsAnsweredByTheOtherNodeBeforeHAProxyGivesUp(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real Apache with mod_jk")
	}
	for _, c := range []struct {
		name      string
		burst     int
		steadyFor time.Duration
	}{
		{"four pooled connections a moment old", 4, 0},
		{"eight pooled connections opened by a burst, then a steady load", 8, 5 * time.Second},
	} {
		t.Run(c.name, func(t *testing.T) {
			frozen := newAJPNode(t, "node1", "")
			frozen.delay = 300 * time.Millisecond // so that a burst's requests overlap, each on its own connection
			healthy := newAJPNode(t, "node2", "")
			w, lb := balancerOver(frozen, healthy)
			b, err := w.Render()
			if err != nil {
				t.Fatal(err)
			}
			url, jkLog := runApacheModJk(t, b, lb.Name, oneApacheChild...)
			client := &http.Client{Timeout: 15 * time.Second}
			get := func() (string, time.Duration, error) {
				req, _ := http.NewRequest(http.MethodGet, url+"/session.json", nil)
				req.AddCookie(&http.Cookie{Name: "JSESSIONID", Value: "ABC." + lb.Members[0].Name})
				began := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					return "", time.Since(began), err
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					return "", time.Since(began), fmt.Errorf("status %d", resp.StatusCode)
				}
				return string(body), time.Since(began), nil
			}
			wantNode1 := func(when string) {
				if body, _, err := get(); err != nil || body != "node1" {
					t.Errorf("%s: %q, %v; want node1's answer", when, body, err)
				}
			}

			var wg sync.WaitGroup
			for range c.burst {
				wg.Add(1)
				go func() {
					defer wg.Done()
					wantNode1("the burst")
				}()
			}
			wg.Wait()
			for steady := time.Now(); time.Since(steady) < c.steadyFor; {
				wantNode1("the steady load")
			}
			frozen.freeze()

			body, took, err := get()
			log, _ := os.ReadFile(jkLog)
			t.Logf("answered by %q in %s (ping_timeout %d ms, connect_timeout %d ms, connection_pool_timeout %d s)",
				body, took.Round(time.Millisecond), lb.Members[0].PingTimeoutMS, lb.Members[0].ConnectPingTimeoutMS, lb.Members[0].IdlePoolSeconds)
			// HAProxy's own time and the other node's answer come on top, on a loaded machine.
			limit := configs.HAProxyTimeoutServer - 500*time.Millisecond
			if err != nil || body != "node2" || took > limit {
				t.Errorf("a GET for the frozen node's session: %q, %v after %s; want node2's answer within %s (HAProxy gives up at %s)\nmod_jk:\n%s",
					body, err, took.Round(time.Millisecond), limit, configs.HAProxyTimeoutServer, log)
			}
		})
	}
}
