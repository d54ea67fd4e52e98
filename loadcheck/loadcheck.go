// Package loadcheck drives session-bound load through a cluster and says whether a user
// would have noticed anything: N virtual users, each with a cookie jar of its own, ask a
// site's /session.json again and again; every answer must be 200 and its session count
// must be the one before plus one. It counts requests, failed requests by kind, broken
// counts, lost sessions (the count back to 1), the share of each node that answered, and
// the latency p50/p99.
//
// Each request carries its user's sequence number as an Idempotency-Key (RequestKeyHeader).
// A balancer that passes a GET to another node again, because the node that had it died
// before answering, sends the same key: an app that honours it (the demo apps do) answers
// the count it already made instead of counting twice, and says "replayed": true. An app
// that ignores the header is judged the same way, and such a retry shows as a broken
// count. An update that was answered and then lost still shows as broken: the next request
// has a new key.
//
// A check runs for a bounded time and a bounded number of requests. Start it, do what
// must not be noticed (a restart, a fault), then Stop it and read the Result; or Run it
// for its whole Duration.
package loadcheck

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Site is one site of the cluster: its base URL (scheme, host, port) and the prefix of
// the node names that serve it ("user" for user1, user2...).
type Site struct {
	Name string
	URL  string
}

// Options say what load to make. Zero values take the defaults.
type Options struct {
	// Sites are spread over the users: user i asks Sites[i % len(Sites)]. At least one.
	Sites []Site
	// Users is the number of virtual users (default 16); each keeps one session.
	Users int
	// Duration bounds the check (default 30 s, at most MaxDuration); Stop ends it sooner.
	Duration time.Duration
	// MaxRequests bounds the requests of the whole check (default 2,000,000).
	MaxRequests int
	// Path is the session page (default /session.json).
	Path string
	// Timeout is one request's limit (default 10 s): a request slower than that fails
	// as a timeout.
	Timeout time.Duration
	// Think is each user's pause between two requests (default none: as fast as the
	// cluster answers).
	Think time.Duration
	// KeepAlive keeps one connection per user open across its requests, as a browser
	// does. The default opens a new connection per request: the balancer then chooses
	// afresh every time, and no failure hides behind Go's silent retry of a GET on a
	// kept-alive connection that the server closed.
	KeepAlive bool
	// NoRequestKey sends no Idempotency-Key: a request a balancer passes again to another
	// node then counts twice even on an app that honours keys.
	NoRequestKey bool
	// Live, when set, gets a line every LiveEvery (default 5 s) with the numbers so far.
	Live      io.Writer
	LiveEvery time.Duration
}

// RequestKeyHeader carries each request's key: the user's sequence number, the same when a
// balancer passes the request to another node again.
const RequestKeyHeader = "Idempotency-Key"

// MaxDuration is the longest a check may run.
const MaxDuration = 2 * time.Hour

// DefaultUsers and DefaultDuration are what a check with no Users or Duration runs.
const (
	DefaultUsers    = 16
	DefaultDuration = 30 * time.Second
)

// Limits of what a Result keeps, so that a long check stays bounded in memory.
const (
	maxFailuresKept = 10000
	defaultMaxReqs  = 2000000
)

func (o *Options) fill() error {
	if len(o.Sites) == 0 {
		return errors.New("load check: no site to load")
	}
	for _, s := range o.Sites {
		u, err := url.Parse(s.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("load check: site %s: %q is not an http(s) URL", s.Name, s.URL)
		}
	}
	if o.Users == 0 {
		o.Users = DefaultUsers
	}
	if o.Users < 0 || o.Users > 10000 {
		return fmt.Errorf("load check: %d users: want 1 to 10000", o.Users)
	}
	if o.Duration == 0 {
		o.Duration = DefaultDuration
	}
	if o.Duration < 0 || o.Duration > MaxDuration {
		return fmt.Errorf("load check: duration %s: want up to %s", o.Duration, MaxDuration)
	}
	if o.MaxRequests == 0 {
		o.MaxRequests = defaultMaxReqs
	}
	if o.MaxRequests < 0 {
		return fmt.Errorf("load check: max requests %d is negative", o.MaxRequests)
	}
	if o.Path == "" {
		o.Path = "/session.json"
	}
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Second
	}
	if o.LiveEvery == 0 {
		o.LiveEvery = 5 * time.Second
	}
	return nil
}

// Kinds of failed requests.
const (
	KindTimeout    = "timeout"    // no answer within Options.Timeout
	KindConnection = "connection" // refused, reset, closed before an answer
	KindBadAnswer  = "bad answer" // 200 but not a session answer (or another app's)
	KindCookie     = "cookie"     // the answer is about another session than the cookie says
	// A status other than 200 is its own kind: "status 503".
)

// Failure is one failed request.
type Failure struct {
	At     time.Time
	Site   string
	User   int
	Method string
	Kind   string
	Detail string
}

// Break is one answer whose count was not the one before plus one: which session broke
// or was lost, on which node before and after, and when, so that the balancers' and the
// nodes' logs of that moment can be read.
type Break struct {
	At   time.Time
	Site string
	User int
	// Node answered with the broken count; NodeBefore gave the answer before it.
	Node, NodeBefore string
	Before, After    int
	// Session is the session of the broken answer; SessionBefore the one the user's
	// cookie named (a lost session: another id; a failover: the same id with another
	// route suffix).
	Session, SessionBefore string
	// Previous is when the answer before came; Began is when SessionBefore gave its
	// first answer (a session lost seconds after it began may never have reached the
	// other nodes).
	Previous, Began time.Time
	// Unanswered counts the user's requests between Before and After that got no
	// answer: the count may have gone up by one for each of them too.
	Unanswered int
	// Pending counts the user's unanswered requests that no count had shown done yet
	// (any of them may be done later, by a host that held it); LateAt is when the
	// last count before showed one done after a later answer (zero: none did). A
	// break with Pending 0 and a recent LateAt is a request done twice.
	Pending int
	LateAt  time.Time
	// Lost tells that the session is gone: a new one began at count 1.
	Lost bool
}

// Check is a running load check.
type Check struct {
	opts   Options
	start  time.Time
	cancel context.CancelFunc
	done   chan struct{}

	mu        sync.Mutex
	late      int
	requests  int
	failed    map[string]int
	failures  []Failure
	breaks    []Break
	broken    int
	lost      int
	nodes     map[string]int
	latencies []time.Duration
	sessions  int
	replayed  int
	stopped   time.Time
}

// Start begins the load and returns at once. The check ends after Options.Duration,
// after MaxRequests, when ctx ends, or at Stop.
func Start(ctx context.Context, o Options) (*Check, error) {
	if err := o.fill(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, o.Duration)
	c := &Check{opts: o, start: time.Now(), cancel: cancel, done: make(chan struct{}),
		failed: map[string]int{}, nodes: map[string]int{}}
	var wg sync.WaitGroup
	for i := range o.Users {
		u, err := newUser(i, o.Sites[i%len(o.Sites)], o)
		if err != nil {
			cancel()
			return nil, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			u.run(ctx, c)
		}()
	}
	liveDone := make(chan struct{})
	if o.Live != nil {
		go c.live(ctx, liveDone)
	} else {
		close(liveDone)
	}
	go func() {
		wg.Wait()
		<-liveDone
		c.mu.Lock()
		c.stopped = time.Now()
		c.mu.Unlock()
		close(c.done)
	}()
	return c, nil
}

// Run makes the load for the whole Options.Duration and returns its result.
func Run(ctx context.Context, o Options) (*Result, error) {
	c, err := Start(ctx, o)
	if err != nil {
		return nil, err
	}
	return c.Wait(), nil
}

// Stop ends the load, waits for the requests under way and returns the result.
func (c *Check) Stop() *Result {
	c.cancel()
	return c.Wait()
}

// Wait waits until the check ends by itself (its duration, its request bound, its
// context) and returns the result.
func (c *Check) Wait() *Result {
	<-c.done
	c.cancel()
	return c.Snapshot()
}

// Started is when the load began.
func (c *Check) Started() time.Time { return c.start }

// Snapshot returns the numbers so far; the check goes on.
func (c *Check) Snapshot() *Result {
	c.mu.Lock()
	defer c.mu.Unlock()
	end := c.stopped
	if end.IsZero() {
		end = time.Now()
	}
	r := &Result{
		Started:  c.start,
		Duration: end.Sub(c.start),
		Users:    c.opts.Users,
		Requests: c.requests,
		Failed:   maps(c.failed),
		Failures: slices.Clone(c.failures),
		Broken:   c.broken,
		Lost:     c.lost,
		Breaks:   slices.Clone(c.breaks),
		Nodes:    maps(c.nodes),
		Sessions: c.sessions,
		Late:     c.late,
		Replayed: c.replayed,
	}
	for _, n := range c.failed {
		r.FailedTotal += n
	}
	r.P50, r.P99, r.Max = percentiles(c.latencies)
	return r
}

func maps(m map[string]int) map[string]int {
	out := make(map[string]int, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// percentiles of the latencies: nearest-rank p50 and p99, and the maximum.
func percentiles(ls []time.Duration) (p50, p99, highest time.Duration) {
	if len(ls) == 0 {
		return 0, 0, 0
	}
	s := slices.Clone(ls)
	slices.Sort(s)
	rank := func(p float64) time.Duration {
		i := int(p*float64(len(s))+0.999999) - 1
		return s[min(max(i, 0), len(s)-1)]
	}
	return rank(0.50), rank(0.99), s[len(s)-1]
}

// live prints a line every LiveEvery until ctx ends.
func (c *Check) live(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(c.opts.LiveEvery)
	defer t.Stop()
	last := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r := c.Snapshot()
			rate := float64(r.Requests-last) / c.opts.LiveEvery.Seconds()
			last = r.Requests
			fmt.Fprintf(c.opts.Live, "%5.0fs  %s  (%.0f/s)\n", r.Duration.Seconds(), r.Line(), rate)
		}
	}
}

// record takes one request's outcome.
func (c *Check) record(latency time.Duration, f *Failure, b *Break, node string, newSession bool, late int, replayed bool) (more bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.requests++
	c.late += late
	if replayed {
		c.replayed++
	}
	if f != nil {
		c.failed[f.Kind]++
		if len(c.failures) < maxFailuresKept {
			c.failures = append(c.failures, *f)
		}
	} else {
		c.latencies = append(c.latencies, latency)
		c.nodes[node]++
		if newSession {
			c.sessions++
		}
	}
	if b != nil {
		if b.Lost {
			c.lost++
		} else {
			c.broken++
		}
		if len(c.breaks) < maxFailuresKept {
			c.breaks = append(c.breaks, *b)
		}
	}
	return c.requests < c.opts.MaxRequests
}

// user is one virtual user: one site, one cookie jar, one session.
type user struct {
	id     int
	site   Site
	url    string
	client *http.Client
	jar    http.CookieJar

	// count is the last count seen, 0 before the first answer; unsure counts the
	// requests since then whose answer never came (the server may have counted them);
	// pending counts every request whose answer never came and that no count has shown
	// done yet: a hung host does the requests it held when it wakes, long after.
	count   int
	session string
	unsure  int
	pending int
	// node gave the last answer, at lastAt; began is when the session gave its first.
	node          string
	lastAt, began time.Time
	// lateDone counts, for the answer being judged, the requests it shows done long
	// after they went unanswered; lateAt is when an answer last did.
	lateDone int
	lateAt   time.Time
	// seq numbers the user's requests: the key of each (Options.NoRequestKey: none).
	seq   int
	noKey bool
}

func newUser(id int, s Site, o Options) (*user, error) {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{
		Proxy:               nil, // the load goes to the cluster itself, never through a proxy
		DialContext:         (&net.Dialer{Timeout: o.Timeout}).DialContext,
		DisableKeepAlives:   !o.KeepAlive,
		MaxIdleConnsPerHost: 1,
		IdleConnTimeout:     30 * time.Second,
	}
	return &user{id: id, site: s, url: strings.TrimRight(s.URL, "/") + o.Path, jar: jar, noKey: o.NoRequestKey,
		client: &http.Client{Jar: jar, Timeout: o.Timeout, Transport: tr}}, nil
}

func (u *user) run(ctx context.Context, c *Check) {
	defer u.client.CloseIdleConnections()
	for ctx.Err() == nil {
		o := u.once(ctx)
		if o.f != nil && ctx.Err() != nil {
			return // cut short by the end of the check: not the cluster's failure
		}
		if !c.record(o.lat, o.f, o.b, o.node, o.isNew, o.late, o.replayed) {
			c.cancel()
			return
		}
		if c.opts.Think > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(c.opts.Think):
			}
		}
	}
}

// answer is /session.json.
type answer struct {
	App     string `json:"app"`
	Node    string `json:"node"`
	Session string `json:"session"`
	Count   *int   `json:"count"`
	// Replayed: the app answered a request it had counted already (the same key).
	Replayed bool `json:"replayed"`
}

// outcome is one request's outcome: its latency, its failure or its broken count, the
// node that answered, whether it began a session or was a replay, and how many earlier
// unanswered requests its count shows done.
type outcome struct {
	lat      time.Duration
	f        *Failure
	b        *Break
	node     string
	isNew    bool
	replayed bool
	late     int
}

// once makes one request and judges it; late counts the earlier unanswered requests its
// count shows done.
func (u *user) once(ctx context.Context) outcome {
	o := u.ask(ctx)
	if o.f != nil {
		u.pending++
		u.unsure++
		return outcome{f: o.f}
	}
	o.late = u.lateDone
	u.lateDone = 0
	return o
}

// ask makes one request and judges its answer.
func (u *user) ask(ctx context.Context) outcome {
	fail := func(kind, detail string) outcome {
		return outcome{f: &Failure{At: time.Now(), Site: u.site.Name, User: u.id, Method: http.MethodGet, Kind: kind, Detail: detail}}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.url, nil)
	if err != nil {
		return fail(KindConnection, err.Error())
	}
	u.seq++
	if !u.noKey {
		req.Header.Set(RequestKeyHeader, strconv.Itoa(u.seq))
	}
	began := time.Now()
	resp, err := u.client.Do(req)
	if err != nil {
		return fail(errorKind(err), err.Error())
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	lat := time.Since(began)
	if err != nil {
		return fail(errorKind(err), err.Error())
	}
	if resp.StatusCode != http.StatusOK {
		// A 5xx from a balancer may or may not have reached a Tomcat.
		return fail(fmt.Sprintf("status %d", resp.StatusCode), snippet(body))
	}
	var a answer
	if err := json.Unmarshal(body, &a); err != nil || a.Count == nil || a.Session == "" {
		return fail(KindBadAnswer, snippet(body))
	}
	if want := u.site.Name; want != "" && !strings.HasPrefix(a.Node, want) {
		return fail(KindBadAnswer, fmt.Sprintf("node %q does not serve site %s", a.Node, want))
	}
	if cookie := u.cookie(); cookie != a.Session {
		return fail(KindCookie, fmt.Sprintf("answer for session %q, cookie %q", a.Session, cookie))
	}
	b := u.judge(*a.Count, a.Node, a.Session)
	isNew := u.count == 0 && b == nil || b != nil && b.Lost
	now := time.Now()
	if isNew {
		u.began = now
	}
	u.count, u.session, u.unsure, u.node, u.lastAt = *a.Count, a.Session, 0, a.Node, now
	return outcome{lat: lat, b: b, node: a.Node, isNew: isNew, replayed: a.Replayed}
}

// judge says whether count follows the user's last count. A request that got no answer
// may have been done, then or later (a frozen host does what it held when it wakes): any
// count up to one more per such request not yet seen done follows, and those seen done
// are counted as late.
func (u *user) judge(count int, node, session string) *Break {
	switch {
	case u.count == 0 && count == 1:
		return nil
	case u.count > 0 && count > u.count && count <= u.count+1+u.pending:
		done := count - u.count - 1
		u.pending -= done
		if extra := done - u.unsure; extra > 0 {
			u.lateDone += extra // done after a later request was answered
			u.lateAt = time.Now()
		}
		return nil
	}
	return &Break{At: time.Now(), Site: u.site.Name, User: u.id, Node: node, NodeBefore: u.node, Before: u.count, After: count,
		Session: session, SessionBefore: u.session, Previous: u.lastAt, Began: u.began,
		Unanswered: u.unsure, Pending: u.pending, LateAt: u.lateAt, Lost: u.count > 0 && count == 1}
}

// cookie is the JSESSIONID the jar would send to the site now.
func (u *user) cookie() string {
	pu, err := url.Parse(u.url)
	if err != nil {
		return ""
	}
	for _, c := range u.jar.Cookies(pu) {
		if c.Name == "JSESSIONID" {
			return c.Value
		}
	}
	return ""
}

func errorKind(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return KindTimeout
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF):
		return KindConnection
	}
	return KindConnection
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
