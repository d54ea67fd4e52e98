package configs_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cauldron-go/cauldron/configs"
	"github.com/cauldron-go/cauldron/internal/nginxtest"
)

// The rendered site, served by a real nginx on 127.0.0.1 in front of two backends that
// answer with their route: a session stays on the node its JSESSIONID names, goes to
// the other when that node is down, and a request without a session goes to any node.
func TestNginxKeepsASessionOnItsNodeAndSendsItToAnotherWhenTheNodeIsDown(t *testing.T) {
	nginx := need(t, "nginx")
	backends := map[string]*httptest.Server{}
	site := configs.NginxSite{}
	srv := configs.NginxServer{
		Listen: freePort(t), Upstream: "mago3d_user", Root: t.TempDir(),
		NextUpstream:          []string{"error", "timeout", "http_502", "http_503"},
		ConnectTimeoutSeconds: 1, ReadTimeoutSeconds: 3, MaxFails: 1, FailTimeoutSeconds: 5,
	}
	for _, route := range []string{"user1", "user2"} {
		b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, route) }))
		t.Cleanup(b.Close)
		backends[route] = b
		srv.Backends = append(srv.Backends, backendOf(t, b, route))
	}
	site.Servers = append(site.Servers, srv)
	url := startNginx(t, nginx, &site)

	answers := func(cookie string, n int) map[string]int {
		t.Helper()
		seen := map[string]int{}
		for range n {
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
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("cookie %q: status %d: %s", cookie, resp.StatusCode, body)
			}
			seen[string(body)]++
		}
		return seen
	}
	for _, tc := range []struct {
		cookie string
		want   map[string]int
	}{
		{"0123ABCD.user1", map[string]int{"user1": 10}},
		{"0123ABCD.user2", map[string]int{"user2": 10}},
		{"0123ABCD.user9", map[string]int{"user1": 5, "user2": 5}},
		{"", map[string]int{"user1": 5, "user2": 5}},
	} {
		if got := answers(tc.cookie, 10); fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("cookie %q: answered by %v, want %v", tc.cookie, got, tc.want)
		}
	}
	backends["user1"].Close()
	if got := answers("0123ABCD.user1", 10); fmt.Sprint(got) != fmt.Sprint(map[string]int{"user2": 10}) {
		t.Errorf("node user1 down: a session of user1 answered by %v, want user2 every time", got)
	}
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

// startNginx runs nginx in the foreground with site on 127.0.0.1 and returns its URL.
func startNginx(t *testing.T, nginx string, site *configs.NginxSite) string {
	t.Helper()
	data, err := site.Render()
	if err != nil {
		t.Fatal(err)
	}
	return nginxtest.Run(t, nginx, data, site.Servers[0].Listen)
}

// A node that failed once (a kill -9, a freeze, a restart) and then came back: nginx
// tries it again after fail_timeout with one request, and until that request is answered
// it skipped the node for every other request of its sessions (ngx_http_upstream_get_peer:
// fails >= max_fails and checked within fail_timeout), sending them to the backup node,
// which with asynchronous replication may not hold a session begun a moment before: a
// session lost in the first 0.1 s of a load, with no fault at the time (the Nginx lab,
// 2 of 6 loads in session 4, once more in session 5). A session's node must get each of
// its requests while it answers.
func TestASessionStaysOnItsNodeWhileNginxTriesTheNodeThatCameBackAgain(t *testing.T) {
	nginx := need(t, "nginx")
	var failing, slow atomic.Bool
	site := configs.NginxSite{}
	srv := configs.NginxServer{
		Listen: freePort(t), Upstream: "mago3d_user", Root: t.TempDir(),
		NextUpstream:          []string{"error", "timeout", "http_502", "http_503"},
		ConnectTimeoutSeconds: 1, ReadTimeoutSeconds: 3, MaxFails: 1, FailTimeoutSeconds: 1,
	}
	for _, route := range []string{"user1", "user2"} {
		b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			if route == "user1" && failing.Load() {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			if route == "user1" && slow.Load() {
				time.Sleep(400 * time.Millisecond)
			}
			io.WriteString(w, route)
		}))
		t.Cleanup(b.Close)
		srv.Backends = append(srv.Backends, backendOf(t, b, route))
	}
	site.Servers = append(site.Servers, srv)
	url := startNginx(t, nginx, &site)
	ask := func() string {
		req, err := http.NewRequest(http.MethodGet, url+"session.json", nil)
		if err != nil {
			t.Error(err)
			return ""
		}
		req.Header.Set("Cookie", "JSESSIONID=0123ABCD.user1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			return ""
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return fmt.Sprintf("%d %s", resp.StatusCode, body)
	}

	failing.Store(true)
	if got := ask(); got != "200 user2" {
		t.Fatalf("user1 failing: %q, want the other node's 200 user2", got)
	}
	failing.Store(false)
	time.Sleep(2100 * time.Millisecond) // past fail_timeout (nginx counts whole seconds)
	slow.Store(true)
	first := make(chan string)
	go func() { first <- ask() }()
	time.Sleep(150 * time.Millisecond) // the first request is with user1
	if got := ask(); got != "200 user1" {
		t.Errorf("a request while user1 answers another after its failure: %q, want 200 user1", got)
	}
	if got := <-first; got != "200 user1" {
		t.Errorf("the first request after user1's failure: %q, want 200 user1", got)
	}
}

// A request nginx first passed on long ago (a web host frozen 30 s wakes with the
// requests it held; the balancer in front gave up on them after its timeout server) is
// not passed to another node when it fails: that node's answer would reach nobody, and
// it would take the session over from the node that still serves it. A request that
// failed at once still is.
func TestARequestThatFailedAfterTheNextUpstreamTimeoutIsNotPassedToAnotherNode(t *testing.T) {
	nginx := need(t, "nginx")
	for _, tc := range []struct {
		name   string
		hang   time.Duration
		status int
		user2  int32
	}{
		{"failed at once", 0, http.StatusOK, 1},
		{"failed after the timeout", 1500 * time.Millisecond, http.StatusBadGateway, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var user2 atomic.Int32
			site := configs.NginxSite{}
			srv := configs.NginxServer{
				Listen: freePort(t), Upstream: "mago3d_user", Root: t.TempDir(),
				NextUpstream:               []string{"error", "timeout", "http_502", "http_503"},
				NextUpstreamTimeoutSeconds: 1,
				ConnectTimeoutSeconds:      1, ReadTimeoutSeconds: 3,
			}
			for _, route := range []string{"user1", "user2"} {
				b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
					if route == "user2" {
						user2.Add(1)
						io.WriteString(w, route)
						return
					}
					time.Sleep(tc.hang)
					if c, _, err := w.(http.Hijacker).Hijack(); err == nil {
						c.Close() // no answer: nginx's "error"
					}
				}))
				t.Cleanup(b.Close)
				srv.Backends = append(srv.Backends, backendOf(t, b, route))
			}
			site.Servers = append(site.Servers, srv)
			url := startNginx(t, nginx, &site)
			req, err := http.NewRequest(http.MethodGet, url+"session.json", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Cookie", "JSESSIONID=0123ABCD.user1")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.status || user2.Load() != tc.user2 {
				t.Errorf("status %d, user2 asked %d times; want %d and %d", resp.StatusCode, user2.Load(), tc.status, tc.user2)
			}
		})
	}
}

// backendOf is the test server b as the Nginx backend of route.
func backendOf(t *testing.T, b *httptest.Server, route string) configs.NginxBackend {
	t.Helper()
	host, port, err := net.SplitHostPort(b.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	return configs.NginxBackend{Host: host, Port: p, Route: route}
}
