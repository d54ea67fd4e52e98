package configs_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/cauldron-go/cauldron/configs"
)

// TestHAProxyKeepsServingWhenEveryWebHostFailsItsCheck runs the real haproxy with the
// rendered backends over two web hosts on the loopback (127.0.0.2 and 127.0.0.3) whose
// check file fails, as on a machine too loaded to answer HAProxy's checks in time:
// every request must still be served, by the unchecked fallbacks; without them HAProxy
// answers 503 once both hosts are down.
func TestHAProxyKeepsServingWhenEveryWebHostFailsItsCheck(t *testing.T) {
	for _, fallback := range []bool{true, false} {
		t.Run(fmt.Sprintf("fallback %t", fallback), func(t *testing.T) {
			status := servedWhileEveryCheckFails(t, fallback)
			if fallback && status != http.StatusOK {
				t.Errorf("with fallbacks, a request while every check fails answered %d, want 200", status)
			}
			// The other half proves the scene: the checks did take both hosts out.
			if !fallback && status != http.StatusServiceUnavailable {
				t.Errorf("without fallbacks, a request while every check fails answered %d, want HAProxy's 503", status)
			}
		})
	}
}

// servedWhileEveryCheckFails starts haproxy over two web hosts whose WebCheckPath answers
// 500, waits until the checks took both out, and returns the status of a request.
func servedWhileEveryCheckFails(t *testing.T, fallback bool) int {
	t.Helper()
	haproxy := need(t, "haproxy")
	port := freePort(t)
	var nodes []configs.Node
	for i, addr := range []string{"127.0.0.2", "127.0.0.3"} {
		l, err := net.Listen("tcp", net.JoinHostPort(addr, strconv.Itoa(port)))
		if err != nil {
			t.Skipf("no second loopback address here: %v", err)
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == configs.WebCheckPath {
				http.Error(w, "too busy", http.StatusInternalServerError)
				return
			}
			fmt.Fprintf(w, "served by %s", addr)
		})}
		go srv.Serve(l)
		t.Cleanup(func() { srv.Close() })
		nodes = append(nodes, configs.Node{Name: fmt.Sprintf("web%d", i+1), Address: addr, Index: i + 1})
	}
	c := configs.NewCluster(nodes, testSecret)
	c.Apps = c.Apps[1:] // the user site only
	c.Apps[0].SitePort = port
	h := configs.NewHAProxy(c, "admin", "stats-pw-test")
	h.Global = configs.HAProxyGlobal{} // no syslog, socket or user switch in a test
	h.Frontends[0].BindAddress = "127.0.0.1"
	h.Backends[0].Fallback = fallback
	file := write(t, t.TempDir(), "haproxy.cfg", h)
	runHAProxy(t, haproxy, file)
	url := fmt.Sprintf("http://127.0.0.1:%d/session.json", port)
	client := &http.Client{Timeout: 5 * time.Second}
	get := func() (int, error) {
		resp, err := client.Get(url)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, nil
	}
	// HAProxy starts with its servers up; fall 2 checks at inter, then fastinter, take
	// them out within about 1.5 s.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := get(); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(3 * time.Second)
	status, err := get()
	if err != nil {
		t.Fatal(err)
	}
	return status
}
