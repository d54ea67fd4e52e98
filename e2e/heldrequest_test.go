package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
	"time"

	"github.com/cauldron-go/cauldron/configs"
	"github.com/cauldron-go/cauldron/lab"
	"github.com/cauldron-go/cauldron/shell"
	"github.com/cauldron-go/cauldron/transport"
)

// heldRequest is a session of the admin site that the frozen host does not serve, and a
// request for it that the frozen host holds: sent straight to the frozen host's Tomcat
// while it is frozen, so its kernel keeps it until the host wakes, as it keeps whatever
// a balancer sent it before it was found out. The session's count goes on at the other
// node meanwhile; after the wake the next count must follow it: if the woken Tomcat
// served the held request with its copy from before the freeze, it replicated that
// older count over the newer one (measured on the Nginx lab in session 10, a count
// went from 1,062 back to 122). configs.ClassWokenNodeValve refuses such a request.
type heldRequest struct {
	l      *lab.Lab
	frozen lab.Host
	client *http.Client
	url    string
	id     string // the session id, never on a command line
	count  int
	// atFreeze is the count when the host froze: what its copy holds.
	atFreeze int
	answer   chan heldAnswer
}

// heldAnswer is what the frozen host answered the held request.
type heldAnswer struct {
	status string
	count  int // when it served it
	node   string
	err    error
}

func (a heldAnswer) String() string {
	s := a.status
	if a.count > 0 {
		s += fmt.Sprintf(" (count %d on %s)", a.count, a.node)
	}
	if a.err != nil {
		s += " (" + a.err.Error() + ")"
	}
	return s
}

// newHeldRequest opens an admin session that lives on another node than frozen's and
// takes it to a few counts.
func newHeldRequest(t *testing.T, l *lab.Lab, frozen string) *heldRequest {
	t.Helper()
	h := &heldRequest{l: l, url: fmt.Sprintf("http://127.0.0.1:%d/session.json", l.AdminPort), answer: make(chan heldAnswer, 1)}
	for _, host := range l.Hosts {
		if host.Name == frozen {
			h.frozen = host
		}
	}
	own := fmt.Sprintf(".admin%d", h.frozen.Node)
	for try := 0; try < 20; try++ {
		jar, _ := cookiejar.New(nil)
		h.client = &http.Client{Jar: jar, Timeout: 10 * time.Second}
		a, err := h.get()
		if err != nil {
			t.Fatalf("held request: a new admin session: %v", err)
		}
		if !strings.HasSuffix(a.Session, own) && strings.Contains(a.Session, ".admin") {
			h.id, h.count = a.Session, a.Count
			break
		}
	}
	if h.id == "" {
		t.Fatalf("held request: 20 new admin sessions all on %s", h.frozen.Name)
	}
	h.step(t, 5)
	return h
}

func (h *heldRequest) get() (sessionAnswer, error) {
	var a sessionAnswer
	resp, err := h.client.Get(h.url)
	if err != nil {
		return a, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return a, fmt.Errorf("status %d", resp.StatusCode)
	}
	return a, json.Unmarshal(body, &a)
}

// step takes the session n counts on through HAProxy, each exactly one more.
func (h *heldRequest) step(t *testing.T, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		var a sessionAnswer
		var err error
		for try := 0; try < 10; try++ {
			if a, err = h.get(); err == nil {
				break
			}
			time.Sleep(time.Second)
		}
		if err != nil {
			t.Fatalf("held request: the probe session's request: %v", err)
		}
		if a.Count != h.count+1 {
			t.Errorf("held request: the probe session's count went from %d to %d (node %s)", h.count, a.Count, a.Node)
		}
		h.count = a.Count
	}
}

// hold sends the request to the frozen host's admin Tomcat from the haproxy host, with
// the session's cookie on curl's stdin; its answer (the status) comes once the host
// woke and answered it.
func (h *heldRequest) hold(t *testing.T) {
	t.Helper()
	port := configs.DefaultApps("/unused")[0].HTTPPort
	line := shell.Join("curl", "-sS", "-w", "\n%{http_code}", "-m", "120", "-H", "@-",
		fmt.Sprintf("http://%s:%d/session.json", h.frozen.Address, port))
	c, err := h.l.Conn("haproxy")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		out, err := transport.OutputWithInput(ctx, c, line, strings.NewReader("Cookie: JSESSIONID="+h.id+"\n"))
		body, status, _ := strings.Cut(strings.TrimSpace(out), "\n")
		if status == "" {
			body, status = "", body
		}
		a := heldAnswer{status: status, err: err}
		var s sessionAnswer
		if json.Unmarshal([]byte(body), &s) == nil {
			a.count, a.node = s.Count, s.Node
		}
		h.answer <- a
	}()
}

// check waits for the held request's answer, then takes the session on for a while
// (about 5 s, after the woken host took requests again and its held changes came): each
// count must follow the one the other node had, whatever the woken host did. A held
// request served from the copy of before the freeze fails the check too: what it
// replicates can come at any later time.
func (h *heldRequest) check(t *testing.T, scenario string) {
	t.Helper()
	var got heldAnswer
	select {
	case got = <-h.answer:
	case <-time.After(2 * time.Minute):
		got.status = "no answer in 2 min"
	}
	before := h.count
	if got.status == "200" && got.count == before+1 {
		h.count = got.count // served from an up-to-date copy: a count of the session's own
	}
	for i := 0; i < 10; i++ {
		h.step(t, 1)
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("%s: a request for another node's session held by the frozen host was answered %s after its wake (the count was %d when it froze, %d before the wake); the next 10 counts went from %d to %d",
		scenario, got, h.atFreeze, before, before, h.count)
	if got.status == "200" && got.count != before+1 {
		t.Errorf("%s: the frozen host served a request it held from its stale copy of another node's session: count %d, when the session was at %d", scenario, got.count, before)
	}
}
