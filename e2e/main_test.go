package e2e_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cauldron-go/cauldron/configs"
	"github.com/cauldron-go/cauldron/inventory"
	"github.com/cauldron-go/cauldron/lab"
	"github.com/cauldron-go/cauldron/recipes"
	"github.com/cauldron-go/cauldron/runner"
	"github.com/cauldron-go/cauldron/shell"
	"github.com/cauldron-go/cauldron/transport"
)

// The tests' labs, apart from a developer's running "cauldron" lab: their own names,
// subnets and ports (HAProxy on 127.0.0.1:8380/9390 and 8480/9490).
// CAULDRON_E2E_SLOT=N (1 to 9) moves both to other names, subnets and ports, so two
// runs of the suite on one machine stay apart.
var apacheOptions, nginxOptions = e2eLabs(os.Getenv("CAULDRON_E2E_SLOT"))

func e2eLabs(slot string) (apache, nginx lab.Options) {
	n, err := strconv.Atoi(slot)
	if err != nil || n < 1 || n > 9 {
		return lab.Options{Name: "cauldron-e2e", Subnet: "172.29.30.0/24", PortOffset: 300},
			lab.Options{Name: "cauldron-e2e-nginx", Subnet: "172.29.40.0/24", PortOffset: 400}
	}
	return lab.Options{Name: fmt.Sprintf("cauldron-e2e%d", n), Subnet: fmt.Sprintf("172.29.%d.0/24", 100+2*n), PortOffset: 1000 + 200*n},
		lab.Options{Name: fmt.Sprintf("cauldron-e2e%d-nginx", n), Subnet: fmt.Sprintf("172.29.%d.0/24", 101+2*n), PortOffset: 1100 + 200*n}
}

// labLog collects what the labs do, printed when a lab fails to come up.
var labLog lockedBuffer

// apacheLab is the main lab, brought up fresh by TestMain; nil under -short or when it
// failed to come up (upErr says why).
var (
	apacheLab *lab.Lab
	upErr     error
)

// deployed is set once the first deploy converged the apache lab: the tests that probe
// the running cluster need it.
var deployed bool

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run())
	}
	keep := os.Getenv("CAULDRON_E2E_KEEP") == "1"
	apacheOptions.Log, nginxOptions.Log = &labLog, &labLog
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	upErr = lab.EnsureDocker(ctx, apacheOptions)
	if upErr == nil {
		// The checks start from bare hosts (the dry run of a fresh lab): a lab left by
		// an earlier run with CAULDRON_E2E_KEEP=1 goes first.
		upErr = errors.Join(lab.Down(ctx, apacheOptions), lab.Down(ctx, nginxOptions))
	}
	if upErr == nil {
		apacheLab, upErr = lab.Up(ctx, apacheOptions)
	}
	cancel()
	if upErr != nil {
		fmt.Fprintf(os.Stderr, "e2e: lab %s did not come up: %v\n%s", apacheOptions.Name, upErr, labLog.String())
	}
	code := m.Run()
	if keep {
		fmt.Fprintf(os.Stderr, "e2e: CAULDRON_E2E_KEEP=1: labs %s and %s stay up\n", apacheOptions.Name, nginxOptions.Name)
		os.Exit(code)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for _, o := range []lab.Options{apacheOptions, nginxOptions} {
		if err := lab.Down(ctx, o); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: lab %s down: %v\n", o.Name, err)
			code = 1
		}
	}
	os.Exit(code)
}

// needLab returns the apache lab, or skips when there is none.
func needLab(t testing.TB) *lab.Lab {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end: needs the Docker lab; skipped with -short")
	}
	if apacheLab == nil {
		t.Fatalf("lab %s is not up: %v", apacheOptions.Name, upErr)
	}
	return apacheLab
}

// needDeployed returns the apache lab once the first deploy converged it.
func needDeployed(t testing.TB) *lab.Lab {
	t.Helper()
	l := needLab(t)
	if !deployed {
		t.Skip("the first deploy did not converge the lab (see TestFirstDeployOverDockerExecConvergesTheBareLab)")
	}
	return l
}

// deployRun is one runner.Run as deploy:cluster makes it, with what it printed.
type deployRun struct {
	inv      *inventory.Inventory
	rep      *runner.Report
	err      error
	progress string
	json     string
}

// outputs holds every deploy's progress and JSON report, with the secrets of its
// inventory, for TestNoSecretAppearsInAnyDeployOutput.
var outputs struct {
	sync.Mutex
	texts   []string
	secrets map[string]bool
}

// deploy runs the cluster's plays from the inventory at path, exactly as
// targets/deploy.go does: inventory.Load, recipes.Cluster, runner.Run with
// runner.DialHost and the inventory's secrets.
func deploy(t testing.TB, path string, mode runner.Mode) deployRun {
	t.Helper()
	return deployWith(context.Background(), t, path, mode)
}

// deployWith is deploy under ctx (its values reach the steps: recipes.WithRestartPhases).
func deployWith(parent context.Context, t testing.TB, path string, mode runner.Mode) deployRun {
	t.Helper()
	inv, err := inventory.Load(path)
	if err != nil {
		t.Fatalf("load inventory: %v", err)
	}
	plays, err := recipes.Cluster(inv)
	if err != nil {
		t.Fatalf("build the cluster's plays from %s: %v", path, err)
	}
	ctx, cancel := context.WithTimeout(parent, 15*time.Minute)
	defer cancel()
	var progress bytes.Buffer
	rep, err := runner.Run(ctx, plays, runner.Options{
		Mode: mode, Progress: &progress, Dial: runner.DialHost, Secrets: inv.Secrets(),
	})
	d := deployRun{inv: inv, rep: rep, err: err, progress: progress.String()}
	if rep != nil {
		var js bytes.Buffer
		if jerr := rep.WriteJSON(&js); jerr != nil {
			t.Errorf("write the JSON report: %v", jerr)
		}
		d.json = js.String()
	}
	outputs.Lock()
	outputs.texts = append(outputs.texts, d.progress, d.json)
	if outputs.secrets == nil {
		outputs.secrets = map[string]bool{}
	}
	for _, s := range inv.Secrets() {
		outputs.secrets[s] = true
	}
	outputs.Unlock()
	return d
}

// mustDeploy deploys and fails the test, with the progress output, unless every host
// converged.
func mustDeploy(t testing.TB, path string, mode runner.Mode) deployRun {
	t.Helper()
	d := deploy(t, path, mode)
	if d.err != nil || d.rep == nil || d.rep.Failed() {
		t.Fatalf("%s with %s failed: %v\n%s", mode, filepath.Base(path), d.err, d.progress)
	}
	return d
}

// stepResults lists every step result of the report, by host.
func stepResults(rep *runner.Report) map[string][]runner.StepResult {
	out := map[string][]runner.StepResult{}
	for _, h := range rep.Hosts {
		out[h.Host] = h.Steps
	}
	return out
}

// changedSteps lists "host: step" for every step that changed (or would change).
func changedSteps(rep *runner.Report) []string {
	var out []string
	for _, h := range rep.Hosts {
		for _, s := range h.Steps {
			if s.Status == runner.StatusChanged || s.Status == runner.StatusWouldChange {
				out = append(out, h.Host+": "+s.Step)
			}
		}
	}
	return out
}

// handlerRuns lists "host: handler (status)" for every handler in the report.
func handlerRuns(rep *runner.Report) []string {
	var out []string
	for _, h := range rep.Hosts {
		for _, hd := range h.Handlers {
			out = append(out, fmt.Sprintf("%s: %s (%s)", h.Host, hd.Handler, hd.Status))
		}
	}
	return out
}

// variantInventory writes a copy of the inventory at base, with edit applied to its
// text, beside it in the lab's state folder (its secret paths are relative to it).
func variantInventory(t testing.TB, base, name string, edit func(string) string) string {
	t.Helper()
	b, err := os.ReadFile(base)
	if err != nil {
		t.Fatal(err)
	}
	text := edit(string(b))
	if text == string(b) {
		t.Fatalf("variant %s: the edit changed nothing in %s", name, base)
	}
	p := filepath.Join(filepath.Dir(base), name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// hostOutput runs line on a lab host by docker exec and returns its output.
func hostOutput(ctx context.Context, l *lab.Lab, host, line string) (string, error) {
	c, err := l.Conn(host)
	if err != nil {
		return "", err
	}
	out, err := transport.Output(ctx, c, line)
	if err != nil {
		return out, fmt.Errorf("%s: %s: %w", host, line, err)
	}
	return out, nil
}

// mustHost runs line on a lab host and fails the test if it fails.
func mustHost(t testing.TB, l *lab.Lab, host, line string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := hostOutput(ctx, l, host, line)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	return out
}

// readHostFile reads a file on a lab host by docker exec.
func readHostFile(t testing.TB, l *lab.Lab, host, path string) []byte {
	t.Helper()
	c, err := l.Conn(host)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := c.Read(ctx, path)
	if err != nil {
		t.Fatalf("read %s on %s: %v", path, host, err)
	}
	return b
}

// eventually calls f until it returns nil or timeout passes, and returns f's last error.
func eventually(timeout, every time.Duration, f func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("still after %s: %w", timeout, err)
		}
		time.Sleep(every)
	}
}

// evidenceOnFailure logs the hosts' service logs when t fails: what a reader needs to
// tell a broken cluster from a broken check.
func evidenceOnFailure(t *testing.T, l *lab.Lab) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for _, h := range l.Hosts {
			var line string
			switch {
			case h.Name == "haproxy":
				// Every request HAProxy answered 5xx in the test (which host, how long
				// each phase took, its termination flags), then the last lines.
				line = "echo '--- answered 5xx:'; journalctl -u haproxy.service --no-pager 2>&1 | grep -E ' 50[0-9] [0-9]+ ' | tail -n 40; " +
					"echo '--- last lines:'; journalctl -u haproxy.service --no-pager -n 40 2>&1"
			case h.Node > 0:
				// mod_jk's own log says when a balancer put a node in error and why (a
				// CPing that timed out, a refused connect): what sends a session to a node
				// that may not hold it yet.
				line = "systemctl --no-pager status mago3d-tomcat.service apache2.service nginx.service 2>&1 | tail -n 40; " +
					"tail -n 30 /home/gaia3d/tools/mago3d-tomcat/logs/catalina.*.log /var/log/apache2/error.log /var/log/nginx/error.log 2>&1; " +
					"grep -h 'error state\\|cpong\\|failed\\|Tomcat is down' /var/log/apache2/mod_jk.log 2>/dev/null | tail -n 30; " +
					// A session created while its node's cluster has no member is never
					// announced (DeltaManager.sendCreateSession): the other node never
					// knows it. When each node saw the other go and come back:
					"echo '--- cluster members seen going and coming:'; " +
					"grep -h 'member disappeared\\|member added' /home/gaia3d/tools/mago3d-tomcat/logs/catalina.*.log 2>/dev/null | tail -n 60 | cut -c1-210"
			default:
				continue
			}
			out, err := hostOutput(ctx, l, h.Name, line)
			t.Logf("evidence from %s (%v):\n%s", h.Name, err, out)
		}
	})
}

// site is one of HAProxy's frontends on 127.0.0.1.
type site struct {
	name string // "user" or "admin": the prefix of the jvmRoutes that serve it
	url  string
}

func sites(l *lab.Lab) []site {
	return []site{
		{"user", fmt.Sprintf("http://127.0.0.1:%d", l.HTTPPort)},
		{"admin", fmt.Sprintf("http://127.0.0.1:%d", l.AdminPort)},
	}
}

// sessionAnswer is /session.json.
type sessionAnswer struct {
	App     string `json:"app"`
	Node    string `json:"node"`
	Session string `json:"session"`
	Count   int    `json:"count"`
}

// browser is one user: its own cookie, sent to one site.
type browser struct {
	site   site
	cookie string // JSESSIONID's value, as the site last set it
	client *http.Client
}

func newBrowser(s site) *browser {
	return &browser{site: s, client: &http.Client{
		Timeout: 15 * time.Second,
		// A new connection per request: HAProxy balances each one afresh.
		Transport: &http.Transport{DisableKeepAlives: true},
	}}
}

// session asks /session.json with the browser's cookie and keeps the cookie it gets.
func (b *browser) session() (sessionAnswer, error) {
	var a sessionAnswer
	req, err := http.NewRequest(http.MethodGet, b.site.url+"/session.json", nil)
	if err != nil {
		return a, err
	}
	if b.cookie != "" {
		req.AddCookie(&http.Cookie{Name: "JSESSIONID", Value: b.cookie})
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return a, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return a, err
	}
	if resp.StatusCode != http.StatusOK {
		return a, fmt.Errorf("GET %s/session.json: %s: %.300s", b.site.url, resp.Status, body)
	}
	if err := json.Unmarshal(body, &a); err != nil {
		return a, fmt.Errorf("GET %s/session.json: %w: %.300s", b.site.url, err, body)
	}
	for _, c := range resp.Cookies() {
		if c.Name == "JSESSIONID" {
			b.cookie = c.Value
		}
	}
	if b.cookie != a.Session {
		return a, fmt.Errorf("GET %s/session.json: the answer is about session %q, the cookie is %q", b.site.url, a.Session, b.cookie)
	}
	return a, nil
}

// mustSession is session that fails the test on an error.
func (b *browser) mustSession(t testing.TB) sessionAnswer {
	t.Helper()
	a, err := b.session()
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// hostOfRoute is the lab host whose Tomcat has the jvmRoute: user2 -> web2.
func hostOfRoute(t testing.TB, route string) string {
	t.Helper()
	for _, p := range []string{"user", "admin"} {
		if n, ok := strings.CutPrefix(route, p); ok && n != "" {
			return "web" + n
		}
	}
	t.Fatalf("jvmRoute %q is not userN or adminN", route)
	return ""
}

// get fetches url and returns the status and body.
func get(url string, header http.Header) (int, http.Header, []byte, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	c := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, body, err
}

// haproxyStatus returns each server's status ("UP", "DOWN"...) by "backend/server",
// from the stats page's CSV, with the stats password of the inventory.
func haproxyStatus(l *lab.Lab, user, password string) (map[string]string, error) {
	req, err := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/haproxy?stats;csv", l.HTTPPort), nil)
	if err != nil {
		return nil, err
	}
	req.SetBasicAuth(user, password)
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("stats page: %s", resp.Status)
	}
	r := csv.NewReader(resp.Body)
	r.FieldsPerRecord = -1
	rows, err := r.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("stats page csv: %w", err)
	}
	if len(rows) == 0 {
		return nil, errors.New("stats page csv: empty")
	}
	col := -1
	for i, name := range rows[0] {
		if strings.TrimPrefix(name, "# ") == "status" {
			col = i
		}
	}
	if col < 0 {
		return nil, fmt.Errorf("stats page csv: no status column in %v", rows[0])
	}
	out := map[string]string{}
	for _, row := range rows[1:] {
		if len(row) > col && row[1] != "FRONTEND" && row[1] != "BACKEND" {
			out[row[0]+"/"+row[1]] = row[col]
		}
	}
	return out, nil
}

// waitHAProxy polls the stats page until every backend's server for host has want
// status ("UP", "DOWN") and returns the last statuses.
func waitHAProxy(t testing.TB, l *lab.Lab, vars recipes.Vars, host, want string, timeout time.Duration) {
	t.Helper()
	err := eventually(timeout, 500*time.Millisecond, func() error {
		st, err := haproxyStatus(l, vars.HAProxyStatsUser, vars.HAProxyStatsPassword)
		if err != nil {
			return err
		}
		for _, backend := range []string{"user", "admin"} {
			if got := st[backend+"/"+host]; !strings.HasPrefix(got, want) {
				return fmt.Errorf("HAProxy says %s/%s is %q, want %s (all: %v)", backend, host, got, want, st)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// topologyOf is the topology a deploy of the inventory at path builds, secrets resolved.
func topologyOf(t testing.TB, path string) *recipes.Topology {
	t.Helper()
	inv, err := inventory.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	topo, err := recipes.NewTopology(inv)
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

// clusterVars are the cluster-wide variables of an inventory, secrets resolved.
func clusterVars(t testing.TB, path string) recipes.Vars {
	t.Helper()
	return topologyOf(t, path).Global
}

// webHosts are the lab's Tomcat/web hosts.
func webHosts(l *lab.Lab) []string {
	var out []string
	for _, h := range l.Hosts {
		if h.Node > 0 {
			out = append(out, h.Name)
		}
	}
	return out
}

// waitTomcat waits until the Tomcat on host serves both apps' health pages.
func waitTomcat(t testing.TB, l *lab.Lab, host string) {
	t.Helper()
	err := eventually(3*time.Minute, time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var probes []string
		for _, app := range configs.DefaultApps("/unused") {
			probes = append(probes, shell.Join("curl", "-fsS", "-o", "/dev/null", "-m", "2", fmt.Sprintf("http://127.0.0.1:%d/health", app.HTTPPort)))
		}
		_, err := hostOutput(ctx, l, host, strings.Join(probes, " && "))
		return err
	})
	if err != nil {
		t.Fatalf("Tomcat on %s does not serve: %v", host, err)
	}
}

// lockedBuffer is a bytes.Buffer safe for the labs' concurrent logs.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
