package lab_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"encoding/xml"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cauldron-go/cauldron/configs"
	"github.com/cauldron-go/cauldron/lab"
	"github.com/cauldron-go/cauldron/shell"
)

// The golden files are rewritten with `go test ./lab -run App -update`. The flag is
// looked up rather than declared when another test file of the package declares it.
func init() {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite golden files")
	}
}

func appUpdateGolden() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// appWAR builds the named WAR and opens it as a zip.
func appWAR(t *testing.T, name string) ([]byte, *zip.Reader) {
	t.Helper()
	war, err := lab.BuildAppWAR(name)
	if err != nil {
		t.Fatalf("BuildAppWAR(%q): %v", name, err)
	}
	zr, err := zip.NewReader(bytes.NewReader(war), int64(len(war)))
	if err != nil {
		t.Fatalf("the WAR of %s is not a zip: %v", name, err)
	}
	return war, zr
}

func appEntry(t *testing.T, zr *zip.Reader, name string) []byte {
	t.Helper()
	f, err := zr.Open(name)
	if err != nil {
		t.Fatalf("WAR entry %s: %v", name, err)
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		t.Fatalf("read WAR entry %s: %v", name, err)
	}
	return data
}

// appListing is one line per WAR entry: name, mode, size and content hash.
func appListing(t *testing.T, zr *zip.Reader) string {
	t.Helper()
	var b strings.Builder
	for _, f := range zr.File {
		if f.FileInfo().IsDir() {
			fmt.Fprintf(&b, "%s %v\n", f.Name, f.Mode())
			continue
		}
		sum := sha256.Sum256(appEntry(t, zr, f.Name))
		fmt.Fprintf(&b, "%s %v %d sha256:%x\n", f.Name, f.Mode(), f.UncompressedSize64, sum[:8])
	}
	return b.String()
}

func TestEachAppWARMatchesItsGoldenListing(t *testing.T) {
	for _, name := range lab.AppNames {
		t.Run(name, func(t *testing.T) {
			_, zr := appWAR(t, name)
			got := appListing(t, zr)
			golden := filepath.Join("..", "testdata", "apps", "golden", name+".war.txt")
			if appUpdateGolden() {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to write it)", err)
			}
			if got != string(want) {
				t.Errorf("the WAR of %s changed; run with -update if that is intended.\ngot:\n%s\nwant:\n%s", name, got, want)
			}
		})
	}
}

func TestEachAppWARHoldsThePagesAndAnEmptyClassesFolderButNoSettingsOrDriver(t *testing.T) {
	for _, name := range lab.AppNames {
		t.Run(name, func(t *testing.T) {
			_, zr := appWAR(t, name)
			var names []string
			for _, f := range zr.File {
				names = append(names, f.Name)
				if strings.HasSuffix(f.Name, ".jar") {
					t.Errorf("the WAR bundles %s; the JDBC driver comes from Tomcat's lib/", f.Name)
				}
				if !f.Modified.Equal(time.Date(2020, time.June, 1, 0, 0, 0, 0, time.UTC)) {
					t.Errorf("%s has time %v, not the fixed one", f.Name, f.Modified)
				}
			}
			for _, want := range []string{
				"index.jsp", "WEB-INF/web.xml", "WEB-INF/classes/", "WEB-INF/jsp/session.jsp",
				"WEB-INF/jsp/health.jsp", "WEB-INF/jsp/db.jsp", lab.AppStaticDir + "/app.css",
			} {
				if !slices.Contains(names, want) {
					t.Errorf("the WAR has no %s; it has %v", want, names)
				}
			}
			if slices.Contains(names, lab.AppPropertiesPath) {
				t.Errorf("the WAR holds %s, which the recipe writes per cluster", lab.AppPropertiesPath)
			}
			if !slices.IsSorted(names) {
				t.Errorf("entries are not sorted: %v", names)
			}
			for _, n := range names {
				if strings.HasSuffix(n, "/") {
					continue
				}
				if strings.Contains(string(appEntry(t, zr, n)), "@APP_NAME@") {
					t.Errorf("%s still holds the app name placeholder", n)
				}
			}
		})
	}
}

func TestBuildingAWARTwiceGivesTheSameBytes(t *testing.T) {
	for _, name := range lab.AppNames {
		first, _ := appWAR(t, name)
		second, _ := appWAR(t, name)
		if !bytes.Equal(first, second) {
			t.Errorf("two builds of %s differ (%d and %d bytes)", name, len(first), len(second))
		}
	}
}

// appWebApp is the part of web.xml the tests check.
type appWebApp struct {
	XMLName       xml.Name  `xml:"https://jakarta.ee/xml/ns/jakartaee web-app"`
	Version       string    `xml:"version,attr"`
	DisplayName   string    `xml:"display-name"`
	Distributable *struct{} `xml:"distributable"`
	Params        []struct {
		Name  string `xml:"param-name"`
		Value string `xml:"param-value"`
	} `xml:"context-param"`
	Servlets []struct {
		Name    string `xml:"servlet-name"`
		JSPFile string `xml:"jsp-file"`
	} `xml:"servlet"`
	Mappings []struct {
		Name string `xml:"servlet-name"`
		URL  string `xml:"url-pattern"`
	} `xml:"servlet-mapping"`
}

func TestWebXMLIsDistributableJakartaSixAndNamesItsApp(t *testing.T) {
	for _, name := range lab.AppNames {
		t.Run(name, func(t *testing.T) {
			_, zr := appWAR(t, name)
			var app appWebApp
			if err := xml.Unmarshal(appEntry(t, zr, "WEB-INF/web.xml"), &app); err != nil {
				t.Fatalf("web.xml: %v", err)
			}
			if app.Distributable == nil {
				t.Error("web.xml has no <distributable/>: sessions would not replicate")
			}
			if app.Version != "6.0" {
				t.Errorf("web-app version %q, want 6.0 (Tomcat 10.1)", app.Version)
			}
			if app.DisplayName != name {
				t.Errorf("display-name %q, want %q", app.DisplayName, name)
			}
			if len(app.Params) != 2 || app.Params[0].Name != "app.name" || app.Params[0].Value != name ||
				app.Params[1].Name != "app.version" || app.Params[1].Value != lab.AppVersion {
				t.Errorf("context params %+v, want app.name=%s and app.version=%s", app.Params, name, lab.AppVersion)
			}
			jsp := map[string]string{}
			for _, s := range app.Servlets {
				jsp[s.Name] = s.JSPFile
			}
			routes := map[string]string{}
			for _, m := range app.Mappings {
				routes[m.URL] = jsp[m.Name]
			}
			for url, file := range map[string]string{
				"/session.json":    "/WEB-INF/jsp/session.jsp",
				lab.AppHealthPath:  "/WEB-INF/jsp/health.jsp",
				"/db.json":         "/WEB-INF/jsp/db.jsp",
				lab.AppVersionPath: "/WEB-INF/jsp/version.jsp",
				lab.AppClusterPath: "/WEB-INF/jsp/cluster.jsp",
			} {
				if routes[url] != file {
					t.Errorf("%s maps to %q, want %q", url, routes[url], file)
				}
				if appEntry(t, zr, strings.TrimPrefix(file, "/")) == nil {
					t.Errorf("%s is mapped but not in the WAR", file)
				}
			}
		})
	}
}

func TestTheNextReleaseDiffersOnlyInItsVersion(t *testing.T) {
	for _, name := range lab.AppNames {
		_, cur := appWAR(t, name)
		next, err := lab.BuildAppWARVersion(name, lab.NextAppVersion)
		if err != nil {
			t.Fatal(err)
		}
		nz, err := zip.NewReader(bytes.NewReader(next), int64(len(next)))
		if err != nil {
			t.Fatal(err)
		}
		if len(nz.File) != len(cur.File) {
			t.Fatalf("%s: the next release has %d entries, the current %d", name, len(nz.File), len(cur.File))
		}
		differ := 0
		for i, f := range cur.File {
			if nz.File[i].Name != f.Name || f.FileInfo().IsDir() {
				continue
			}
			c, n := string(appEntry(t, cur, f.Name)), string(appEntry(t, nz, f.Name))
			if c != n {
				differ++
				if strings.ReplaceAll(c, lab.AppVersion, lab.NextAppVersion) != n {
					t.Errorf("%s: %s differs between the releases beyond the version", name, f.Name)
				}
			}
		}
		if differ != 1 {
			t.Errorf("%s: %d files differ between the releases, want only web.xml", name, differ)
		}
	}
	for _, bad := range []string{"", "1.0 <x>", "../1", strings.Repeat("9", 65)} {
		if _, err := lab.BuildAppWARVersion("mago3d-user", bad); err == nil {
			t.Errorf("version %q accepted", bad)
		}
	}
}

func TestTheTwoAppsDifferOnlyInTheirName(t *testing.T) {
	_, admin := appWAR(t, "mago3d-admin")
	_, user := appWAR(t, "mago3d-user")
	if len(admin.File) != len(user.File) {
		t.Fatalf("admin has %d entries, user %d", len(admin.File), len(user.File))
	}
	for i, f := range admin.File {
		if user.File[i].Name != f.Name {
			t.Fatalf("entry %d: admin %s, user %s", i, f.Name, user.File[i].Name)
		}
		if f.FileInfo().IsDir() {
			continue
		}
		// The admin WAR says "mago3d-admin" where the user WAR says "mago3d-user".
		a := strings.ReplaceAll(string(appEntry(t, admin, f.Name)), "mago3d-admin", "mago3d-user")
		u := string(appEntry(t, user, f.Name))
		if a != u {
			t.Errorf("%s differs between the apps beyond the name", f.Name)
		}
	}
}

func ExampleBuildAppWAR() {
	war, err := lab.BuildAppWAR("mago3d-user")
	if err != nil {
		fmt.Println(err)
		return
	}
	zr, err := zip.NewReader(bytes.NewReader(war), int64(len(war)))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, f := range zr.File {
		fmt.Println(f.Name)
	}
	// Output:
	// WEB-INF/
	// WEB-INF/classes/
	// WEB-INF/jsp/
	// WEB-INF/jsp/cluster.jsp
	// WEB-INF/jsp/db.jsp
	// WEB-INF/jsp/health.jsp
	// WEB-INF/jsp/session.jsp
	// WEB-INF/jsp/version.jsp
	// WEB-INF/jspf/
	// WEB-INF/jspf/app.jspf
	// WEB-INF/web.xml
	// index.jsp
	// static/
	// static/app.css
}

func TestAnUnknownAppNameIsRefused(t *testing.T) {
	for _, name := range []string{"", "mago3d", "../mago3d-admin", "MAGO3D-ADMIN"} {
		if war, err := lab.BuildAppWAR(name); err == nil {
			t.Errorf("BuildAppWAR(%q) gave %d bytes, want an error", name, len(war))
		}
	}
}

// The real run: both WARs on a real Tomcat 10.1 (Debian's tomcat10 package), with a
// real PostgreSQL behind /db.json when Debian's postgresql is installed.

const (
	appCatalinaHome = "/usr/share/tomcat10"
	appJvmRoute     = "h4node1"
	// appDBPassword has characters that need escaping in application.properties and
	// one outside ASCII, so the real app proves configs.AppProperties' escaping.
	appDBPassword = `pa ss\wörd=#!:"'`
)

// appFreePort returns a TCP port on 127.0.0.1 that nothing listened on a moment ago.
func appFreePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// appUnzip writes the WAR's entries under dir, as the deployment unpacks it.
func appUnzip(t *testing.T, war []byte, dir string) {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(war), int64(len(war)))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range zr.File {
		p := filepath.Join(dir, filepath.FromSlash(f.Name))
		if f.FileInfo().IsDir() {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(p, appEntry(t, zr, f.Name), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func appCopyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// appTomcatLib lists the jars the test Tomcat needs beyond its own, skipping the test
// when one is missing.
func appTomcatLib(t *testing.T) []string {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a real Tomcat")
	}
	if _, err := os.Stat(appCatalinaHome + "/bin/catalina.sh"); err != nil {
		t.Skip("no Tomcat 10 (apt-get install tomcat10 libpostgresql-jdbc-java):", err)
	}
	if _, err := exec.LookPath("java"); err != nil {
		t.Skip("no java:", err)
	}
	jars := []string{
		// Without a Java compiler Tomcat answers every JSP with "No Java compiler available".
		"/usr/share/java/eclipse-jdt-core.jar",
		"/usr/share/java/postgresql.jar",
	}
	for _, j := range jars {
		if _, err := os.Stat(j); err != nil {
			t.Skip("missing", j, "(apt-get install tomcat10 libpostgresql-jdbc-java)")
		}
	}
	return jars
}

// appPostgres starts a throwaway PostgreSQL cluster on 127.0.0.1 with a user "cauldron"
// whose password is appDBPassword, and returns its port and a function that runs one
// query in database postgres; port 0 when PostgreSQL is not installed. It is stopped
// at the end of the test.
func appPostgres(t *testing.T) (int, func(query string) string) {
	t.Helper()
	initdbs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	pgUser, err := user.Lookup("postgres")
	if len(initdbs) == 0 || err != nil {
		t.Log("no PostgreSQL installed: /db.json is checked against an unreachable database only")
		return 0, nil
	}
	bin := filepath.Dir(initdbs[len(initdbs)-1])
	uid, _ := strconv.Atoi(pgUser.Uid)
	gid, _ := strconv.Atoi(pgUser.Gid)

	// Not t.TempDir: its folders are private to root, and initdb refuses to run as root.
	dir, err := os.MkdirTemp("", "cauldron-apps-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	pwfile := filepath.Join(dir, "pwfile")
	if err := os.WriteFile(pwfile, []byte(appDBPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dir, pwfile} {
		if err := os.Chown(p, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	asPostgres := func(name string, args ...string) error {
		cmd := exec.Command(filepath.Join(bin, name), args...)
		cmd.Dir = dir
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s: %w\n%s", name, err, out)
		}
		return nil
	}
	data := filepath.Join(dir, "data")
	if err := asPostgres("initdb", "-D", data, "-U", "cauldron", "--pwfile", pwfile,
		"--auth", "scram-sha-256", "-E", "UTF8", "--no-sync"); err != nil {
		t.Fatal(err)
	}
	port := appFreePort(t)
	// pg_ctl hands -o to a shell.
	opts := shell.Join("-p", strconv.Itoa(port), "-k", dir, "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off")
	if err := asPostgres("pg_ctl", "-D", data, "-o", opts, "-l", filepath.Join(dir, "log"), "-w", "start"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := asPostgres("pg_ctl", "-D", data, "-m", "immediate", "stop"); err != nil {
			t.Log(err)
		}
	})
	query := func(q string) string {
		t.Helper()
		cmd := exec.Command(filepath.Join(bin, "psql"), "-h", "127.0.0.1", "-p", strconv.Itoa(port),
			"-U", "cauldron", "-d", "postgres", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", q)
		// The password goes by environment, never on the command line.
		cmd.Env = append(os.Environ(), "PGPASSWORD="+appDBPassword)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("psql %q: %v\n%s", q, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	return port, query
}

// appTomcat starts Tomcat with a fresh CATALINA_BASE holding the given web apps
// (context path -> unpacked folder writer) and returns its base URL once every app
// answers its health page. Tomcat is killed at the end of the test.
func appTomcat(t *testing.T, jars []string, apps map[string]func(dir string)) string {
	t.Helper()
	base := t.TempDir()
	for _, d := range []string{"conf", "lib", "logs", "temp", "webapps", "work"} {
		if err := os.Mkdir(filepath.Join(base, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"web.xml", "catalina.properties", "logging.properties", "context.xml"} {
		appCopyFile(t, filepath.Join("/etc/tomcat10", f), filepath.Join(base, "conf", f))
	}
	for _, j := range jars {
		if err := os.Symlink(j, filepath.Join(base, "lib", filepath.Base(j))); err != nil {
			t.Fatal(err)
		}
	}
	port := appFreePort(t)
	serverXML := fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>
<Server port="-1" shutdown="SHUTDOWN">
  <Service name="Catalina">
    <Connector port="%d" address="127.0.0.1" protocol="HTTP/1.1" connectionTimeout="20000"/>
    <Engine name="Catalina" defaultHost="localhost" jvmRoute="%s">
      <Host name="localhost" appBase="webapps" unpackWARs="false" autoDeploy="false" deployOnStartup="true"/>
    </Engine>
  </Service>
</Server>
`, port, appJvmRoute)
	if err := os.WriteFile(filepath.Join(base, "conf", "server.xml"), []byte(serverXML), 0o644); err != nil {
		t.Fatal(err)
	}
	for ctxPath, write := range apps {
		dir := filepath.Join(base, "webapps", ctxPath)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		write(dir)
	}

	console, err := os.Create(filepath.Join(base, "logs", "console.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer console.Close()
	cmd := exec.Command(appCatalinaHome+"/bin/catalina.sh", "run")
	cmd.Env = append(os.Environ(),
		"CATALINA_HOME="+appCatalinaHome,
		"CATALINA_BASE="+base,
		"CATALINA_TMPDIR="+filepath.Join(base, "temp"),
		// Small and quick to start on a shared 2-core machine.
		"CATALINA_OPTS=-Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.security.egd=file:/dev/./urandom",
	)
	cmd.Stdout, cmd.Stderr = console, console
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start Tomcat: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		// catalina.sh run execs java, so its process group is Tomcat.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
		if t.Failed() {
			for _, log := range []string{"console.log"} {
				out, _ := os.ReadFile(filepath.Join(base, "logs", log))
				if len(out) > 8000 {
					out = out[len(out)-8000:]
				}
				t.Logf("Tomcat %s (end):\n%s", log, out)
			}
		}
	})

	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for ctxPath := range apps {
		for {
			resp, err := appClient.Get(url + "/" + ctxPath + lab.AppHealthPath)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			select {
			case err := <-exited:
				exited <- err
				t.Fatalf("Tomcat exited before %s answered: %v", ctxPath, err)
			case <-ctx.Done():
				t.Fatalf("%s did not answer %s: %v", ctxPath, lab.AppHealthPath, err)
			case <-time.After(250 * time.Millisecond):
			}
		}
	}
	return url
}

// appClient guards against a Tomcat that accepts and never answers; nothing is timed.
var appClient = &http.Client{Timeout: time.Minute}

type appSessionJSON struct {
	App     string `json:"app"`
	Node    string `json:"node"`
	Session string `json:"session"`
	Count   int    `json:"count"`
	// Replayed: the request carried the Idempotency-Key of the one counted last.
	Replayed bool `json:"replayed"`
}

type appDBJSON struct {
	DB     string `json:"db"`
	Visits int    `json:"visits"`
	Reason string `json:"reason"`
}

// appGet fetches url and returns the response (body read and closed) and the body.
func appGet(t *testing.T, c *http.Client, url string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp, string(body)
}

func appGetJSON(t *testing.T, c *http.Client, url string, wantStatus int, v any) *http.Response {
	t.Helper()
	resp, body := appGet(t, c, url)
	if resp.StatusCode != wantStatus {
		t.Fatalf("GET %s: status %d, want %d; body %s", url, resp.StatusCode, wantStatus, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("GET %s: Content-Type %q, want application/json", url, ct)
	}
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("GET %s: %v in %s", url, err, body)
	}
	return resp
}

func TestBothAppsServeSessionsHealthAndDatabaseOnARealTomcat(t *testing.T) {
	jars := appTomcatLib(t)
	pgPort, pgQuery := appPostgres(t)
	deadPort := appFreePort(t) // nothing listens here: the unreachable database

	deploy := func(name, jdbcURL, password string) func(dir string) {
		return func(dir string) {
			war, err := lab.BuildAppWAR(name)
			if err != nil {
				t.Fatal(err)
			}
			appUnzip(t, war, dir)
			props, err := (&configs.AppProperties{URL: jdbcURL, Username: "cauldron", Password: password}).Render()
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, filepath.FromSlash(lab.AppPropertiesPath)), props, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	deadURL := fmt.Sprintf("jdbc:postgresql://127.0.0.1:%d/postgres", deadPort)
	apps := map[string]func(string){
		"mago3d-admin": deploy("mago3d-admin", deadURL, appDBPassword),
		"mago3d-user":  deploy("mago3d-user", deadURL, appDBPassword),
	}
	liveURL := fmt.Sprintf("jdbc:postgresql://127.0.0.1:%d/postgres", pgPort)
	if pgPort != 0 {
		apps["mago3d-user"] = deploy("mago3d-user", liveURL, appDBPassword)
		// The same app with a wrong password, under a context path of its own.
		apps["wrong-password"] = deploy("mago3d-user", liveURL, "not-"+appDBPassword)
	}
	url := appTomcat(t, jars, apps)

	for _, name := range lab.AppNames {
		root := url + "/" + name
		t.Run(name+" health answers ok without a session", func(t *testing.T) {
			resp, body := appGet(t, appClient, root+lab.AppHealthPath)
			if resp.StatusCode != http.StatusOK || body != "ok" {
				t.Errorf("status %d body %q, want 200 \"ok\"", resp.StatusCode, body)
			}
			if c := resp.Header.Values("Set-Cookie"); len(c) != 0 {
				t.Errorf("the health page made a session: Set-Cookie %q", c)
			}
		})

		t.Run(name+" session counts each request on its node", func(t *testing.T) {
			jar, _ := cookiejar.New(nil)
			client := &http.Client{Jar: jar, Timeout: appClient.Timeout}
			var first appSessionJSON
			for want := 1; want <= 3; want++ {
				var got appSessionJSON
				appGetJSON(t, client, root+"/session.json", http.StatusOK, &got)
				if want == 1 {
					first = got
				}
				if got.Count != want || got.Session != first.Session {
					t.Errorf("request %d: count %d session %q, want count %d in session %q", want, got.Count, got.Session, want, first.Session)
				}
				if got.App != name || got.Node != appJvmRoute || !strings.HasSuffix(got.Session, "."+appJvmRoute) {
					t.Errorf("request %d: %+v, want app %s on node %s", want, got, name, appJvmRoute)
				}
			}

			resp, page := appGet(t, client, root+"/")
			if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
				t.Errorf("GET /: status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			for _, want := range []string{
				"<h1>" + name + "</h1>",
				`<td id="node">` + appJvmRoute + "</td>",
				`<td id="session">` + first.Session + "</td>",
				`<td id="count">4</td>`,
			} {
				if !strings.Contains(page, want) {
					t.Errorf("the page has no %s:\n%s", want, page)
				}
			}

			var fresh appSessionJSON
			appGetJSON(t, appClient, root+"/session.json", http.StatusOK, &fresh)
			if fresh.Count != 1 || fresh.Session == first.Session {
				t.Errorf("without the cookie: %+v, want a new session counting 1", fresh)
			}
		})

		t.Run(name+" session counts a request passed again with its Idempotency-Key once", func(t *testing.T) {
			jar, _ := cookiejar.New(nil)
			client := &http.Client{Jar: jar, Timeout: appClient.Timeout}
			ask := func(key string) (a appSessionJSON) {
				req, err := http.NewRequest(http.MethodGet, root+"/session.json", nil)
				if err != nil {
					t.Fatal(err)
				}
				if key != "" {
					req.Header.Set("Idempotency-Key", key)
				}
				resp, err := client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				if err := json.NewDecoder(resp.Body).Decode(&a); err != nil || resp.StatusCode != http.StatusOK {
					t.Fatalf("key %q: status %d, %v", key, resp.StatusCode, err)
				}
				return a
			}
			// What a balancer that passes a GET to another node again sends: the same key.
			for i, tc := range []struct {
				key      string
				count    int
				replayed bool
			}{
				{"1", 1, false},
				{"1", 1, true},
				{"2", 2, false},
				{"2", 2, true},
				{"2", 2, true},
				{"3", 3, false},
				{"", 4, false},  // no key: counts, always
				{"3", 5, false}, // a key before the one counted last is a new request
				{strings.Repeat("k", 65), 6, false},
				{strings.Repeat("k", 65), 7, false}, // too long: ignored, counts each time
			} {
				got := ask(tc.key)
				if got.Count != tc.count || got.Replayed != tc.replayed {
					t.Errorf("request %d (key %.8q): count %d replayed %v, want %d %v", i+1, tc.key, got.Count, got.Replayed, tc.count, tc.replayed)
				}
			}
		})

		t.Run(name+" serves its static file", func(t *testing.T) {
			resp, body := appGet(t, appClient, root+"/"+lab.AppStaticDir+"/app.css")
			if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/css") || !strings.Contains(body, "body {") {
				t.Errorf("status %d Content-Type %q body %q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
			}
		})
	}

	t.Run("db.json answers 503 with a reason when the database is unreachable", func(t *testing.T) {
		var got appDBJSON
		resp := appGetJSON(t, appClient, url+"/mago3d-admin/db.json", http.StatusServiceUnavailable, &got)
		if got.DB != "error" || got.Reason == "" {
			t.Errorf("got %+v, want db error with a reason", got)
		}
		if !strings.Contains(got.Reason, strconv.Itoa(deadPort)) {
			t.Errorf("the reason %q does not say what was unreachable", got.Reason)
		}
		if len(resp.Header.Values("Set-Cookie")) != 0 {
			t.Error("db.json made a session")
		}
	})

	if pgPort == 0 {
		return
	}
	t.Run("db.json records visits in a real PostgreSQL", func(t *testing.T) {
		for want := 1; want <= 2; want++ {
			var got appDBJSON
			appGetJSON(t, appClient, url+"/mago3d-user/db.json", http.StatusOK, &got)
			if got.DB != "ok" || got.Visits != want {
				t.Errorf("visit %d: got %+v", want, got)
			}
		}
		// db.json has no session to read the node from; it asks the Engine over JMX.
		if nodes := pgQuery("SELECT string_agg(DISTINCT app || ' ' || node, ',') FROM visits"); nodes != "mago3d-user "+appJvmRoute {
			t.Errorf("the visits were recorded as %q, want app mago3d-user on node %s", nodes, appJvmRoute)
		}
	})
	t.Run("db.json never shows the password when the database refuses it", func(t *testing.T) {
		resp, body := appGet(t, appClient, url+"/wrong-password/db.json")
		var got appDBJSON
		if err := json.Unmarshal([]byte(body), &got); err != nil {
			t.Fatalf("%v in %s", err, body)
		}
		if resp.StatusCode != http.StatusServiceUnavailable || got.DB != "error" || !strings.Contains(got.Reason, "password") {
			t.Errorf("status %d body %s, want 503 and a failed-password reason", resp.StatusCode, body)
		}
		for _, secret := range []string{"not-" + appDBPassword, appDBPassword, "pa ss", "wörd"} {
			if strings.Contains(body, secret) || strings.Contains(strings.ReplaceAll(body, `\\`, `\`), secret) {
				t.Errorf("the answer shows (part of) the password: %s", body)
			}
		}
	})
}
