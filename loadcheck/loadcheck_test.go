package loadcheck_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cauldron-go/cauldron/loadcheck"
)

// sessionServer answers /session.json as the demo apps do: a JSESSIONID cookie with a
// route suffix, and a count that goes up by one per request. fault, when set, may
// change an answer: it gets the request number (from 1) and the session's new count,
// and returns what to do.
type sessionServer struct {
	mu       sync.Mutex
	nodes    []string
	counts   map[string]int
	requests int
	fault    func(n int, count int) fault
	// honourKeys makes it answer a request with the Idempotency-Key of the one it counted
	// last in the session with that count again, "replayed", as the demo apps do.
	honourKeys bool
	lastKey    map[string]string
	keys       []string // every request's key, "" for none
}

type fault struct {
	status   int           // answer this status instead
	body     string        // answer this body instead
	hang     time.Duration // wait this long first
	hangup   bool          // close the connection without an answer
	count    int           // answer this count instead (the session keeps the true one)
	forget   bool          // drop the session: it starts again at 1
	uncount  bool          // the request does not count (count stays)
	notFound bool          // the session id is unknown
	// passAgain: a node counts the request and dies before answering; the balancer passes
	// the request to another node (nginx's proxy_next_upstream), which answers it.
	passAgain bool
}

func newSessionServer(t *testing.T, nodes ...string) (*sessionServer, loadcheck.Site) {
	s := &sessionServer{nodes: nodes, counts: map[string]int{}, lastKey: map[string]string{}}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, loadcheck.Site{Name: "user", URL: srv.URL}
}

func (s *sessionServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/session.json" {
		http.NotFound(w, r)
		return
	}
	s.mu.Lock()
	s.requests++
	n := s.requests
	id := ""
	if c, err := r.Cookie("JSESSIONID"); err == nil {
		if _, ok := s.counts[c.Value]; ok {
			id = c.Value
		}
	}
	var f fault
	if s.fault != nil {
		f = s.fault(n, s.counts[id]+1)
	}
	if id == "" || f.forget {
		b := make([]byte, 8)
		rand.Read(b)
		id = strings.ToUpper(hex.EncodeToString(b)) + "." + s.nodes[n%len(s.nodes)]
		s.counts[id] = 0
	}
	key := r.Header.Get(loadcheck.RequestKeyHeader)
	s.keys = append(s.keys, key)
	countOnce := func() (replayed bool) {
		if s.honourKeys && key != "" && s.lastKey[id] == key {
			return true
		}
		s.counts[id]++
		s.lastKey[id] = key
		return false
	}
	replayed := false
	if !f.uncount {
		if f.passAgain {
			countOnce() // the node that died before answering
		}
		replayed = countOnce()
	}
	count := s.counts[id]
	s.mu.Unlock()

	if f.hang > 0 {
		time.Sleep(f.hang)
	}
	if f.hangup {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
		return
	}
	if f.count != 0 {
		count = f.count
	}
	http.SetCookie(w, &http.Cookie{Name: "JSESSIONID", Value: id, Path: "/"})
	if f.status != 0 {
		w.WriteHeader(f.status)
	}
	if f.body != "" {
		fmt.Fprint(w, f.body)
		return
	}
	node := id[strings.LastIndexByte(id, '.')+1:]
	more := ""
	if replayed {
		more = `, "replayed": true`
	}
	fmt.Fprintf(w, `{"app": "mago3d-user", "node": %q, "session": %q, "count": %d%s}`, node, id, count, more)
}

func run(t *testing.T, o loadcheck.Options) *loadcheck.Result {
	t.Helper()
	r, err := loadcheck.Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", r)
	return r
}

func TestAHealthyClusterGivesNoFailureAndNoBrokenCount(t *testing.T) {
	_, site := newSessionServer(t, "user1", "user2")
	r := run(t, loadcheck.Options{Sites: []loadcheck.Site{site}, Users: 4, Duration: 300 * time.Millisecond})
	if !r.OK() || r.Err() != nil {
		t.Fatalf("a healthy server: %v", r.Err())
	}
	if r.Requests < 20 {
		t.Errorf("only %d requests in 300ms", r.Requests)
	}
	if r.Sessions != 4 {
		t.Errorf("%d sessions, want one per user (4)", r.Sessions)
	}
	if r.Nodes["user1"]+r.Nodes["user2"] != r.Requests {
		t.Errorf("nodes %v do not add up to %d requests", r.Nodes, r.Requests)
	}
	if r.P50 <= 0 || r.P99 < r.P50 || r.Max < r.P99 {
		t.Errorf("latencies p50 %s p99 %s max %s", r.P50, r.P99, r.Max)
	}
}

func TestEachKindOfFailedRequestIsCountedByItsKind(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    fault
		kind string
	}{
		{"a balancer's 503", fault{status: 503, body: "no server"}, "status 503"},
		{"a hung node", fault{hang: 400 * time.Millisecond}, loadcheck.KindTimeout},
		{"a cut connection", fault{hangup: true}, loadcheck.KindConnection},
		{"an error page with 200", fault{body: "<html>oops</html>"}, loadcheck.KindBadAnswer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, site := newSessionServer(t, "user1")
			s.fault = func(n, _ int) fault {
				if n == 3 {
					return tc.f
				}
				return fault{}
			}
			r := run(t, loadcheck.Options{Sites: []loadcheck.Site{site}, Users: 1, MaxRequests: 6,
				Timeout: 200 * time.Millisecond, Duration: 5 * time.Second})
			if r.FailedTotal != 1 || r.Failed[tc.kind] != 1 {
				t.Errorf("failed %d %v, want one of kind %q", r.FailedTotal, r.Failed, tc.kind)
			}
			if len(r.Failures) != 1 || r.Failures[0].Method != http.MethodGet || r.Failures[0].At.Before(r.Started) {
				t.Errorf("failures %+v", r.Failures)
			}
			if r.OK() || r.Err() == nil {
				t.Error("a failed request leaves the check OK")
			}
		})
	}
}

func TestACountThatIsNotTheOneBeforePlusOneIsBrokenOrLost(t *testing.T) {
	for _, tc := range []struct {
		name         string
		f            fault
		broken, lost int
	}{
		{"a count that skips one", fault{count: 99}, 1, 0},
		{"an update lost on the way", fault{uncount: true}, 1, 0},
		{"a session gone, begun again at 1", fault{forget: true}, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, site := newSessionServer(t, "user1")
			s.fault = func(n, _ int) fault {
				if n == 4 {
					return tc.f
				}
				return fault{}
			}
			r := run(t, loadcheck.Options{Sites: []loadcheck.Site{site}, Users: 1, MaxRequests: 4, Duration: 5 * time.Second})
			if r.Broken != tc.broken || r.Lost != tc.lost || r.FailedTotal != 0 {
				t.Errorf("broken %d lost %d failed %d, want broken %d lost %d failed 0", r.Broken, r.Lost, r.FailedTotal, tc.broken, tc.lost)
			}
			if len(r.Breaks) != 1 || r.Breaks[0].Before != 3 {
				t.Errorf("breaks %+v, want one after count 3", r.Breaks)
			}
			if r.OK() {
				t.Error("a broken count leaves the check OK")
			}
		})
	}
}

func TestALostSessionSaysWhichSessionOnWhichNodeBeforeAndAfterAndWhen(t *testing.T) {
	s, site := newSessionServer(t, "user1", "user2")
	s.fault = func(n, _ int) fault {
		if n == 4 {
			return fault{forget: true}
		}
		return fault{}
	}
	r := run(t, loadcheck.Options{Sites: []loadcheck.Site{site}, Users: 1, MaxRequests: 4, Duration: 5 * time.Second})
	if len(r.Breaks) != 1 || !r.Breaks[0].Lost {
		t.Fatalf("breaks %+v, want one lost session", r.Breaks)
	}
	k := r.Breaks[0]
	// The server named the first session after request 1's node (user2) and the new one
	// after request 4's (user1).
	if k.SessionBefore == "" || k.Session == "" || k.Session == k.SessionBefore {
		t.Errorf("sessions %q before, %q after: want two different ids", k.SessionBefore, k.Session)
	}
	if k.NodeBefore != "user2" || k.Node != "user1" {
		t.Errorf("nodes %q before, %q after, want user2 then user1", k.NodeBefore, k.Node)
	}
	if k.Began.Before(r.Started) || k.Previous.Before(k.Began) || k.At.Before(k.Previous) {
		t.Errorf("times out of order: started %s, began %s, previous answer %s, lost at %s", r.Started, k.Began, k.Previous, k.At)
	}
	for _, want := range []string{"lost at +", "count 1 after 3", k.SessionBefore + " on user2 (began +", k.Session + " on user1"} {
		if !strings.Contains(r.String(), want) {
			t.Errorf("the summary lacks %q:\n%s", want, r)
		}
	}
}

func TestACountThatGoesOnAfterARequestWithoutAnswerIsNotBroken(t *testing.T) {
	// The server counted the request whose answer was lost: the next count is two up.
	for _, f := range []fault{{hangup: true}, {hang: 300 * time.Millisecond}} {
		s, site := newSessionServer(t, "user1")
		s.fault = func(n, _ int) fault {
			if n == 3 {
				return f
			}
			return fault{}
		}
		r := run(t, loadcheck.Options{Sites: []loadcheck.Site{site}, Users: 1, MaxRequests: 6, Duration: 5 * time.Second, Timeout: 100 * time.Millisecond})
		if r.Broken != 0 || r.Lost != 0 || r.FailedTotal != 1 {
			t.Errorf("%+v: broken %d lost %d failed %d, want 0 0 1: %+v", f, r.Broken, r.Lost, r.FailedTotal, r.Breaks)
		}
	}
}

func TestTheCheckEndsAtItsRequestBound(t *testing.T) {
	_, site := newSessionServer(t, "user1")
	r := run(t, loadcheck.Options{Sites: []loadcheck.Site{site}, Users: 3, MaxRequests: 50, Duration: time.Minute})
	if r.Requests < 50 || r.Requests > 52 {
		t.Errorf("%d requests, want 50 (and at most one more per other user)", r.Requests)
	}
	if r.Duration > 10*time.Second {
		t.Errorf("the check ran %s", r.Duration)
	}
}

func TestStopEndsTheLoadAndKeepsWhatItSaw(t *testing.T) {
	s, site := newSessionServer(t, "user1", "user2")
	c, err := loadcheck.Start(context.Background(), loadcheck.Options{Sites: []loadcheck.Site{site}, Users: 2, Duration: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	r := c.Stop()
	served := func() int {
		time.Sleep(50 * time.Millisecond) // the requests cut short by Stop reach the server
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.requests
	}
	before, after := served(), served()
	// The requests under way when Stop came (at most one per user) are not counted:
	// their answers never came, through no fault of the cluster.
	if r.Requests == 0 || r.Requests > before || r.Requests < before-2 {
		t.Errorf("the check counted %d requests, the server served %d", r.Requests, before)
	}
	if !r.OK() {
		t.Errorf("stopping the check made failures: %v\n%s", r.Err(), r)
	}
	if after != before {
		t.Errorf("requests went on after Stop: %d then %d", before, after)
	}
}

func TestTheLiveLineComesEveryIntervalWithTheNumbersSoFar(t *testing.T) {
	_, site := newSessionServer(t, "user1")
	var live bytes.Buffer
	run(t, loadcheck.Options{Sites: []loadcheck.Site{site}, Users: 1, Duration: 350 * time.Millisecond,
		Live: &live, LiveEvery: 100 * time.Millisecond, Think: time.Millisecond})
	lines := strings.Split(strings.TrimSpace(live.String()), "\n")
	if len(lines) < 2 || len(lines) > 4 {
		t.Fatalf("%d live lines in 350ms every 100ms:\n%s", len(lines), live.String())
	}
	for _, l := range lines {
		if !strings.Contains(l, "requests=") || !strings.Contains(l, "failed=0") || !strings.Contains(l, "user1:100%") {
			t.Errorf("live line %q lacks the numbers", l)
		}
	}
}

func TestUsersAreSpreadOverTheSitesEachWithItsOwnSession(t *testing.T) {
	_, user := newSessionServer(t, "user1")
	_, admin := newSessionServer(t, "admin1")
	admin.Name = "admin"
	r := run(t, loadcheck.Options{Sites: []loadcheck.Site{user, admin}, Users: 4, Duration: 200 * time.Millisecond})
	if !r.OK() || r.Nodes["user1"] == 0 || r.Nodes["admin1"] == 0 || r.Sessions != 4 {
		t.Errorf("ok %v nodes %v sessions %d", r.OK(), r.Nodes, r.Sessions)
	}
}

func TestAnAnswerFromTheOtherSiteIsABadAnswer(t *testing.T) {
	_, site := newSessionServer(t, "admin1")
	r := run(t, loadcheck.Options{Sites: []loadcheck.Site{site}, Users: 1, MaxRequests: 2, Duration: 5 * time.Second})
	if r.Failed[loadcheck.KindBadAnswer] != 2 {
		t.Errorf("the user site answered by admin1: failed %v", r.Failed)
	}
}

func TestBadOptionsAreRefusedBeforeAnyRequest(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    loadcheck.Options
		want string
	}{
		{"no site", loadcheck.Options{}, "no site"},
		{"not a URL", loadcheck.Options{Sites: []loadcheck.Site{{Name: "user", URL: "127.0.0.1:8080"}}}, "not an http(s) URL"},
		{"too long", loadcheck.Options{Sites: []loadcheck.Site{{URL: "http://127.0.0.1:1"}}, Duration: 3 * time.Hour}, "duration"},
		{"negative users", loadcheck.Options{Sites: []loadcheck.Site{{URL: "http://127.0.0.1:1"}}, Users: -1}, "users"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadcheck.Start(context.Background(), tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one about %q", err, tc.want)
			}
		})
	}
}

func TestFailuresBetweenCountsOnlyThatWindow(t *testing.T) {
	t0 := time.Now()
	r := &loadcheck.Result{Failures: []loadcheck.Failure{
		{At: t0.Add(1 * time.Second), Method: "GET"},
		{At: t0.Add(6 * time.Second), Method: "GET"},
		{At: t0.Add(7 * time.Second), Method: "POST"},
	}}
	if n := r.FailuresBetween(t0.Add(5*time.Second), t0.Add(30*time.Second), "GET", "HEAD"); n != 1 {
		t.Errorf("%d GET failures after 5s, want 1", n)
	}
	if n := r.FailuresBetween(t0, t0.Add(30*time.Second)); n != 3 {
		t.Errorf("%d failures in all, want 3", n)
	}
}

func TestSpreadCountsNewSessionsByNode(t *testing.T) {
	_, site := newSessionServer(t, "user1", "user2")
	seen, err := loadcheck.Spread(context.Background(), site, 100)
	if err != nil {
		t.Fatal(err)
	}
	if seen["user1"] != 50 || seen["user2"] != 50 {
		t.Errorf("round robin gave %v", seen)
	}
	if err := loadcheck.Even(seen, []string{"user1", "user2"}); err != nil {
		t.Error(err)
	}
}

func TestEvenAcceptsOnlyAFairSpread(t *testing.T) {
	for _, tc := range []struct {
		seen  map[string]int
		nodes []string
		ok    bool
	}{
		{map[string]int{"u1": 40, "u2": 60}, []string{"u1", "u2"}, true},
		{map[string]int{"u1": 39, "u2": 61}, []string{"u1", "u2"}, false},
		{map[string]int{"u1": 100}, []string{"u1", "u2"}, false},
		{map[string]int{"u1": 24, "u2": 33, "u3": 43}, []string{"u1", "u2", "u3"}, true},
		{map[string]int{"u1": 22, "u2": 33, "u3": 45}, []string{"u1", "u2", "u3"}, false},
		{map[string]int{"u1": 50, "x9": 50}, []string{"u1", "u2"}, false},
	} {
		t.Run(fmt.Sprint(tc.seen), func(t *testing.T) {
			if err := loadcheck.Even(tc.seen, tc.nodes); (err == nil) != tc.ok {
				t.Errorf("Even(%v) = %v, want ok %v", tc.seen, err, tc.ok)
			}
		})
	}
}

func TestARequestThatFailedAndIsDoneLaterIsLateNotBroken(t *testing.T) {
	// Request 3 gets no answer and is not done; a hung host does it when it wakes,
	// after requests 4 and 5 were answered: request 6 shows it done.
	s, site := newSessionServer(t, "user1")
	s.fault = func(n, _ int) fault {
		switch n {
		case 3:
			return fault{hangup: true, uncount: true}
		case 6:
			s.counts[s.onlySession()]++ // the late one, done just before
		}
		return fault{}
	}
	r := run(t, loadcheck.Options{Sites: []loadcheck.Site{site}, Users: 1, MaxRequests: 8, Duration: 5 * time.Second})
	if r.Broken != 0 || r.Late != 1 || r.FailedTotal != 1 {
		t.Errorf("broken %d late %d failed %d, want 0 1 1: %+v", r.Broken, r.Late, r.FailedTotal, r.Breaks)
	}
	// A second jump has no unanswered request left to explain it.
	s2, site2 := newSessionServer(t, "user1")
	s2.fault = func(n, _ int) fault {
		switch n {
		case 3:
			return fault{hangup: true, uncount: true}
		case 5, 7:
			s2.counts[s2.onlySession()]++
		}
		return fault{}
	}
	r = run(t, loadcheck.Options{Sites: []loadcheck.Site{site2}, Users: 1, MaxRequests: 8, Duration: 5 * time.Second})
	if r.Broken != 1 || r.Late != 1 {
		t.Errorf("broken %d late %d, want 1 1: %+v", r.Broken, r.Late, r.Breaks)
	}
}

func TestARequestDoneButUnansweredShowsInTheNextCountAndIsNeitherLateNorBroken(t *testing.T) {
	s, site := newSessionServer(t, "user1")
	s.fault = func(n, _ int) fault {
		if n == 3 {
			return fault{hangup: true} // counted, but the answer never comes
		}
		return fault{}
	}
	r := run(t, loadcheck.Options{Sites: []loadcheck.Site{site}, Users: 1, MaxRequests: 8, Duration: 5 * time.Second})
	if r.Broken != 0 || r.Late != 0 || r.FailedTotal != 1 {
		t.Errorf("broken %d late %d failed %d, want 0 0 1: %+v", r.Broken, r.Late, r.FailedTotal, r.Breaks)
	}
}

func TestABreakSaysWhenARequestWasLastSeenDoneLate(t *testing.T) {
	// Request 3 hangs, is done late (seen at request 5), and is done again before 7:
	// the break at 7 has nothing left unanswered and says when the late one showed.
	s, site := newSessionServer(t, "user1")
	s.fault = func(n, _ int) fault {
		switch n {
		case 3:
			return fault{hangup: true, uncount: true}
		case 5, 7:
			s.counts[s.onlySession()]++
		}
		return fault{}
	}
	r := run(t, loadcheck.Options{Sites: []loadcheck.Site{site}, Users: 1, MaxRequests: 8, Duration: 5 * time.Second})
	if len(r.Breaks) != 1 {
		t.Fatalf("breaks %+v, want 1", r.Breaks)
	}
	b := r.Breaks[0]
	if b.Pending != 0 || b.LateAt.IsZero() || !b.LateAt.Before(b.At) {
		t.Errorf("break %+v: want Pending 0 and LateAt before At", b)
	}
	if !strings.Contains(r.String(), "0 unanswered not yet seen done, last seen done late +") {
		t.Errorf("the report does not say it:\n%s", r)
	}
}

// onlySession is the one session of a one-user server; call with s.mu held.
func (s *sessionServer) onlySession() string {
	for id := range s.counts {
		return id
	}
	return ""
}

func TestARequestABalancerPassesAgainCountsOnceOnAnAppThatHonoursItsKey(t *testing.T) {
	for _, tc := range []struct {
		name              string
		honourKeys, noKey bool
		broken, replayed  int
	}{
		{"the app honours the key", true, false, 0, 3},
		{"the app ignores the key", false, false, 3, 0},
		{"the check sends no key", true, true, 3, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, site := newSessionServer(t, "user1", "user2")
			s.honourKeys = tc.honourKeys
			s.fault = func(n, _ int) fault {
				return fault{passAgain: n == 3 || n == 4 || n == 8}
			}
			r := run(t, loadcheck.Options{Sites: []loadcheck.Site{site}, Users: 1, MaxRequests: 10, Duration: 5 * time.Second, NoRequestKey: tc.noKey})
			if r.Broken != tc.broken || r.Lost != 0 || r.FailedTotal != 0 || r.Replayed != tc.replayed {
				t.Errorf("broken %d lost %d failed %d replayed %d, want %d 0 0 %d: %+v", r.Broken, r.Lost, r.FailedTotal, r.Replayed, tc.broken, tc.replayed, r.Breaks)
			}
			if tc.replayed > 0 && !strings.Contains(r.String(), "replayed 3 requests") {
				t.Errorf("the summary does not say the replays:\n%s", r)
			}
		})
	}
}

func TestAnAnsweredUpdateLostOnTheWayIsBrokenEvenWithKeys(t *testing.T) {
	// The node that answered count 3 died before replicating it: request 4 (a new key)
	// is counted from count 2 on the other node.
	s, site := newSessionServer(t, "user1")
	s.honourKeys = true
	s.fault = func(n, _ int) fault {
		if n == 4 {
			s.counts[s.onlySession()]--
		}
		return fault{}
	}
	r := run(t, loadcheck.Options{Sites: []loadcheck.Site{site}, Users: 1, MaxRequests: 5, Duration: 5 * time.Second})
	if r.Broken != 1 || r.Replayed != 0 || len(r.Breaks) != 1 || r.Breaks[0].Before != 3 || r.Breaks[0].After != 3 {
		t.Errorf("broken %d replayed %d, breaks %+v: want one, count 3 after 3", r.Broken, r.Replayed, r.Breaks)
	}
}

func TestEachRequestOfAUserCarriesItsOwnKey(t *testing.T) {
	s, site := newSessionServer(t, "user1")
	run(t, loadcheck.Options{Sites: []loadcheck.Site{site}, Users: 1, MaxRequests: 4, Duration: 5 * time.Second})
	if got, want := strings.Join(s.keys, ","), "1,2,3,4"; got != want {
		t.Errorf("keys %s, want %s", got, want)
	}
}
