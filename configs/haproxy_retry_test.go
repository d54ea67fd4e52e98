package configs_test

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cauldron-go/cauldron/configs"
)

// TestAGetWhoseTomcatDiesAnsweringIsAnsweredByTheOtherNodeAndAPostIsNot runs the web tier
// of the lab for real: haproxy with the rendered backend over two Apaches with mod_jk
// and the rendered workers, in front of two stand-in Tomcats (ajpNode). The session's
// node sends the answer's headers and dies (kill -9 in the middle of an answer: CI saw
// it as two 502s at the kill). mod_jk 1.2.48 never recovers a request once Tomcat sent
// headers (jk_ajp_common.c, ajp_get_reply), whatever recovery_options says, and answers
// 502; HAProxy then has to send the GET again, to the other web host, whose mod_jk finds
// the dead node refusing and goes to the other node. A POST answered 502 is never sent
// again: it may have changed something.
func TestAGetWhoseTomcatDiesAnsweringIsAnsweredByTheOtherNodeAndAPostIsNot(t *testing.T) {
	if testing.Short() {
		t.Skip("starts haproxy and two Apaches with mod_jk")
	}
	haproxy := need(t, "haproxy")
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		t.Run(method, func(t *testing.T) {
			dying := newAJPNode(t, "node1", "die answering")
			healthy := newAJPNode(t, "node2", "")
			w, lb := balancerOver(dying, healthy)
			workers, err := w.Render()
			if err != nil {
				t.Fatal(err)
			}
			var webPorts []int
			var jkLogs []string
			for range 2 {
				webURL, jkLog := runApacheModJk(t, workers, lb.Name)
				u, err := url.Parse(webURL)
				if err != nil {
					t.Fatal(err)
				}
				port, _ := strconv.Atoi(u.Port())
				webPorts = append(webPorts, port)
				jkLogs = append(jkLogs, jkLog)
			}

			site := freePort(t)
			c := cluster(2)
			c.Apps = c.Apps[:1]
			c.Apps[0].SitePort = site
			h := configs.NewHAProxy(c, "admin", "stats-pw-test")
			h.Global = configs.HAProxyGlobal{} // no syslog, socket or user switch in a test
			h.Frontends[0].BindAddress = "127.0.0.1"
			b := &h.Backends[0]
			// Connect checks only: the check file would go through to the stand-ins here
			// (the lab's web servers serve it themselves) and could kill node1 first.
			b.HealthCheck = ""
			b.Balance = "first" // the GET goes to the first web host, the retry elsewhere
			for i := range b.Servers {
				b.Servers[i].Address, b.Servers[i].Port = "127.0.0.1", webPorts[i]
			}
			file := write(t, t.TempDir(), "haproxy.cfg", h)
			haproxyOut := runHAProxy(t, haproxy, file)

			var body io.Reader
			if method == http.MethodPost {
				body = strings.NewReader("x")
			}
			req, _ := http.NewRequest(method, fmt.Sprintf("http://127.0.0.1:%d/session.json", site), body)
			req.AddCookie(&http.Cookie{Name: "JSESSIONID", Value: "ABC." + lb.Members[0].Name})
			var resp *http.Response
			client := &http.Client{Timeout: 10 * time.Second}
			for deadline := time.Now().Add(10 * time.Second); ; {
				if method == http.MethodPost {
					req.Body = io.NopCloser(strings.NewReader("x"))
				}
				resp, err = client.Do(req)
				if err == nil || time.Now().After(deadline) {
					break
				}
				time.Sleep(100 * time.Millisecond) // haproxy not listening yet
			}
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()

			evidence := func() string {
				var b strings.Builder
				for i, f := range jkLogs {
					log, _ := os.ReadFile(f)
					fmt.Fprintf(&b, "\nmod_jk of web host %d:\n%s", i+1, log)
				}
				return b.String() + "\nhaproxy:\n" + haproxyOut.String()
			}
			if dying.requests() != 1 {
				t.Fatalf("the dying node took %d requests, want 1 (the scene did not happen)%s", dying.requests(), evidence())
			}
			switch method {
			case http.MethodGet:
				if resp.StatusCode != http.StatusOK || string(got) != "node2" || healthy.requests() != 1 {
					t.Errorf("a GET whose node died answering: status %d %q, the other node took %d requests; want 200 \"node2\" and 1%s",
						resp.StatusCode, got, healthy.requests(), evidence())
				}
			case http.MethodPost:
				// 502, or 504 when the stand-in's reset beat its headers to mod_jk.
				if (resp.StatusCode != http.StatusBadGateway && resp.StatusCode != http.StatusGatewayTimeout) || healthy.requests() != 0 {
					t.Errorf("a POST whose node died answering: status %d, the other node took %d requests; want 502 or 504 and 0 (never sent twice)%s",
						resp.StatusCode, healthy.requests(), evidence())
				}
			}
		})
	}
}
