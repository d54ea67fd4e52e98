package lab

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/cauldron-go/cauldron"
)

// AppNames are the two demo apps.
var AppNames = []string{"mago3d-admin", "mago3d-user"}

// Paths inside a demo app, for the recipes that deploy it and the front servers that
// serve part of it.
const (
	// AppPropertiesPath is where the deployment writes the app's database settings
	// (configs.AppProperties), relative to the app's root. The WAR holds the folder but
	// never the file.
	AppPropertiesPath = "WEB-INF/classes/application.properties"
	// AppStaticDir is the app's folder of static files (URL <context>/static/), which
	// Apache or Nginx serve themselves.
	AppStaticDir = "static"
	// AppHealthPath answers 200 "ok" without making a session: the load balancer's check.
	AppHealthPath = "/health"
)

// appSourceDir is the one source tree both apps are built from, inside
// cauldron.AppSources().
const appSourceDir = "demo"

// appNameToken in web.xml is replaced by the app's name; it is the only difference
// between the two WARs. appVersionToken is replaced by the release's version.
const (
	appNameToken    = "@APP_NAME@"
	appVersionToken = "@APP_VERSION@"
)

// The demo apps' two releases: AppVersion is what the lab deploys; NextAppVersion is
// the new release a rolling update installs (the same pages and session format, only
// the version differs, so sessions carry over between the two).
const (
	AppVersion     = "1.0.0"
	NextAppVersion = "1.1.0"
)

// AppVersionPath answers the release the node runs, as JSON {"app", "version", "node"}.
const AppVersionPath = "/version"

// AppClusterPath answers whether the node has joined its session cluster, as JSON
// {"members": other members seen, "stateTransferred": whether it received the sessions}.
const AppClusterPath = "/cluster.json"

// appWebXML is the file that carries the app's name.
const appWebXML = "WEB-INF/web.xml"

// appEntryTime is every WAR entry's modification time, so that the same sources give
// the same bytes (the day the runbook's finished version was published).
var appEntryTime = time.Date(2020, time.June, 1, 0, 0, 0, 0, time.UTC)

// BuildAppWAR returns the WAR (zip bytes) of the named demo app at AppVersion, built
// from testdata/apps with archive/zip, deterministic (fixed timestamps, sorted entries)
// so the same input gives the same bytes.
func BuildAppWAR(name string) ([]byte, error) {
	return BuildAppWARVersion(name, AppVersion)
}

// versionRE is what a release version may be: it goes into web.xml as it is.
var versionRE = regexp.MustCompile(`^[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}$`)

// BuildAppWARVersion is BuildAppWAR for a given release version, which the app shows in
// /session.json and /version.
func BuildAppWARVersion(name, version string) ([]byte, error) {
	if !versionRE.MatchString(version) {
		return nil, fmt.Errorf("build WAR of %s: version %q is not letters, digits, '.', '+', '_' or '-'", name, version)
	}
	if !slices.Contains(AppNames, name) {
		return nil, fmt.Errorf("build WAR: unknown app %q (the demo apps are %s)", name, strings.Join(AppNames, ", "))
	}
	src, err := fs.Sub(cauldron.AppSources(), appSourceDir)
	if err != nil {
		return nil, fmt.Errorf("build WAR of %s: %w", name, err)
	}

	files := map[string][]byte{}
	// WEB-INF/classes/ is always there, empty, so that the deployment can write
	// application.properties into it.
	dirs := map[string]bool{"WEB-INF/": true, "WEB-INF/classes/": true}
	err = fs.WalkDir(src, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == "." {
			return nil
		}
		if d.IsDir() {
			dirs[p+"/"] = true
			return nil
		}
		if p == AppPropertiesPath {
			// Written per cluster by the recipe, with the cluster's database and password.
			return nil
		}
		data, err := fs.ReadFile(src, p)
		if err != nil {
			return err
		}
		files[p] = data
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("build WAR of %s: read sources: %w", name, err)
	}

	webXML, ok := files[appWebXML]
	if !ok {
		return nil, fmt.Errorf("build WAR of %s: the sources have no %s", name, appWebXML)
	}
	if !bytes.Contains(webXML, []byte(appNameToken)) {
		return nil, fmt.Errorf("build WAR of %s: %s has no %s to put the app name in", name, appWebXML, appNameToken)
	}
	if !bytes.Contains(webXML, []byte(appVersionToken)) {
		return nil, fmt.Errorf("build WAR of %s: %s has no %s to put the version in", name, appWebXML, appVersionToken)
	}
	webXML = bytes.ReplaceAll(webXML, []byte(appNameToken), []byte(name))
	files[appWebXML] = bytes.ReplaceAll(webXML, []byte(appVersionToken), []byte(version))

	// Every file's parent folders get an entry too, as jar and unzip make them.
	for p := range files {
		for dir := path.Dir(p); dir != "."; dir = path.Dir(dir) {
			dirs[dir+"/"] = true
		}
	}
	names := make([]string, 0, len(files)+len(dirs))
	for p := range files {
		names = append(names, p)
	}
	for d := range dirs {
		names = append(names, d)
	}
	slices.Sort(names)

	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, n := range names {
		h := &zip.FileHeader{Name: n, Modified: appEntryTime}
		if strings.HasSuffix(n, "/") {
			h.Method = zip.Store
			h.SetMode(fs.ModeDir | 0o755)
		} else {
			h.Method = zip.Deflate
			h.SetMode(0o644)
		}
		w, err := zw.CreateHeader(h)
		if err != nil {
			return nil, fmt.Errorf("build WAR of %s: add %s: %w", name, n, err)
		}
		if data, isFile := files[n]; isFile {
			if _, err := w.Write(data); err != nil {
				return nil, fmt.Errorf("build WAR of %s: write %s: %w", name, n, err)
			}
		}
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("build WAR of %s: %w", name, err)
	}
	return buf.Bytes(), nil
}
