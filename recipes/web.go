package recipes

import (
	"archive/zip"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"path"
	"slices"
	"strings"

	"github.com/cauldron-go/cauldron/configs"
	"github.com/cauldron-go/cauldron/inventory"
	"github.com/cauldron-go/cauldron/shell"
	"github.com/cauldron-go/cauldron/steps"
	"github.com/cauldron-go/cauldron/transport"
)

// Handlers of the web servers. A reload re-reads the configuration without dropping
// connections, Listen changes included.
const (
	ApacheHandler = "reload apache2"
	NginxHandler  = "reload nginx"
)

// Where the Apache recipe writes its files, in Debian's layout.
const (
	apacheRoot      = "/etc/apache2"
	apacheSite      = "sites-available/mago3d.conf"
	apacheJkConf    = "mods-available/jk.conf"
	apachePortsConf = "ports.conf"
)

// Apache returns the recipe of a web node with Apache httpd and mod_jk in front of the
// cluster's Tomcats: workers.properties with a load-balancer worker per app over every
// node, the two sites (80 to user, 9090 to admin) with static paths served by Apache,
// and each file checked by `apache2 -t` (what apachectl configtest runs) against a copy
// of the configuration before it replaces the live one. statics maps a static root
// (/var/www/mago3d-user) to the files under it.
func Apache(c configs.Cluster, statics map[string]map[string][]byte) (*steps.Recipe, error) {
	var errs []error
	content := func(f configs.File) steps.Content {
		b, err := rendered(f)
		errs = append(errs, err)
		return b
	}
	workers := configs.NewWorkers(c)
	r := steps.NewRecipe("apache",
		steps.Packages{Names: []string{"apache2", "libapache2-mod-jk"}},
		steps.Notify(steps.File{Path: configs.DefaultJkWorkersFile, Content: content(workers),
			Mode: 0o640, Owner: "root", Group: "www-data", SecretLines: workers.SecretLines()}, ApacheHandler),
		steps.Notify(ApacheConfigFile(apacheJkConf, content(configs.NewJkConf())), ApacheHandler),
		steps.Notify(steps.Command{Name: "enable mod_jk", Line: "a2enmod -q jk",
			Creates: path.Join(apacheRoot, "mods-enabled", "jk.load")}, ApacheHandler),
	)
	// The sites name their document roots and JkMount workers: those come first.
	r.Include(staticFiles(withWebCheck(c, statics)))
	r.Add(
		steps.Notify(ApacheConfigFile(apachePortsConf, content(configs.NewApachePorts(c))), ApacheHandler),
		steps.Notify(ApacheConfigFile(apacheSite, content(configs.NewApacheSite(c))), ApacheHandler),
		steps.Notify(steps.Command{Name: "enable site mago3d", Line: "a2ensite -q mago3d",
			Creates: path.Join(apacheRoot, "sites-enabled", "mago3d.conf")}, ApacheHandler),
		steps.Notify(steps.Command{Name: "disable site 000-default", Line: "a2dissite -q 000-default",
			Unless: shell.Join("test", "!", "-e", path.Join(apacheRoot, "sites-enabled", "000-default.conf"))}, ApacheHandler),
		steps.Service{Name: "apache2.service", Enabled: ptr(true), State: steps.Started},
	)
	r.Handle(ApacheHandler, steps.Reload{Name: "apache2.service"})
	return r, errors.Join(errs...)
}

// ApacheConfigFile is a file at rel under /etc/apache2 that must pass apache2 -t (with the
// rest of the live configuration) before it replaces the working one.
func ApacheConfigFile(rel string, content steps.Content) steps.File {
	return steps.File{Path: path.Join(apacheRoot, rel), Content: content, Mode: 0o644, Owner: "root", Group: "root",
		ValidateFunc: apacheConfigTest(rel)}
}

// apacheConfigTest checks a candidate file the way `apachectl configtest` would once it
// is in place: in a copy of /etc/apache2 with the candidate at its real name, since
// Debian's apache2.conf includes everything relative to the server root.
func apacheConfigTest(rel string) func(ctx context.Context, c transport.Conn, tmp string) error {
	return testInCopy("apache2 -t", apacheRoot, rel, `. `+apacheRoot+`/envvars && apache2 -t -d "$t" -f "$t"/apache2.conf`)
}

// testInCopy returns a validator that copies the server's configuration folder root,
// puts the candidate file at rel in the copy, and runs test there ($t is the copy): a
// file that is only meaningful with the rest of the configuration is checked with it,
// and the live configuration is not touched.
func testInCopy(what, root, rel, test string) func(ctx context.Context, c transport.Conn, tmp string) error {
	prog, _, _ := strings.Cut(what, " ")
	return func(ctx context.Context, c transport.Conn, tmp string) error {
		// A plan for a host without the server yet has nothing to check with.
		script := `command -v ` + shell.Quote(prog) + ` >/dev/null 2>&1 && test -d ` + shell.Quote(root) + ` || exit 3; ` +
			`t=$(mktemp -d) || exit 1; trap 'rm -rf "$t"' EXIT; cp -a ` + shell.Quote(root) + `/. "$t"/ && ` +
			`cp ` + shell.Quote(tmp) + ` "$t"/` + shell.Quote(rel) + ` && { ` + test + `; } 2>&1`
		out, err := transport.Output(ctx, c, script)
		if transport.ExitStatus(err) == 3 {
			return fmt.Errorf("%s: %w", prog, steps.ErrNoValidator)
		}
		if err != nil {
			return fmt.Errorf("%s rejects the new %s: %s%w", what, rel, out, err)
		}
		return nil
	}
}

// nginxSiteRel is the cluster's Nginx site, under /etc/nginx.
const nginxSiteRel = "conf.d/mago3d.conf"

// nginxDefaultSite is the site Debian's nginx package enables, which holds port 80.
const nginxDefaultSite = "/etc/nginx/sites-enabled/default"

// Nginx returns the recipe of a web node with Nginx in place of Apache: both sites
// proxy to every node's HTTP connector, going on to the next node on an error or a
// timeout; the site is checked with `nginx -t` before it goes live.
func Nginx(c configs.Cluster, statics map[string]map[string][]byte) (*steps.Recipe, error) {
	site, err := rendered(configs.NewNginxSite(c))
	if err != nil {
		return nil, err
	}
	r := steps.NewRecipe("nginx",
		steps.Packages{Names: []string{"nginx"}},
		steps.Notify(NginxConfigFile(nginxSiteRel, site), NginxHandler),
		steps.Notify(steps.Command{Name: "disable site default", Line: shell.Join("rm", "-f", nginxDefaultSite),
			Unless: shell.Join("test", "!", "-e", nginxDefaultSite)}, NginxHandler),
	)
	r.Include(staticFiles(withWebCheck(c, statics)))
	r.Add(steps.Service{Name: "nginx.service", Enabled: ptr(true), State: steps.Started})
	r.Handle(NginxHandler, steps.Reload{Name: "nginx.service"})
	return r, nil
}

// NginxConfigFile is a file at rel under /etc/nginx that must pass nginx -t (with the
// rest of the live configuration) before it replaces the working one.
func NginxConfigFile(rel string, content steps.Content) steps.File {
	return steps.File{Path: path.Join("/etc/nginx", rel), Content: content, Mode: 0o644, Owner: "root", Group: "root",
		ValidateFunc: nginxConfigTest(rel)}
}

// nginxConfigTest runs nginx -t on a copy of /etc/nginx with the candidate in place;
// Debian's nginx.conf names its includes by absolute path, so the copy's are rewritten.
func nginxConfigTest(rel string) func(ctx context.Context, c transport.Conn, tmp string) error {
	return testInCopy("nginx -t", "/etc/nginx", rel, `sed -i "s#/etc/nginx/#$t/#g" "$t"/nginx.conf && nginx -t -q -c "$t"/nginx.conf`)
}

// withWebCheck returns statics with configs.WebCheckPath in every app's static root:
// the file the web server answers HAProxy's health check with, itself.
func withWebCheck(c configs.Cluster, statics map[string]map[string][]byte) map[string]map[string][]byte {
	out := make(map[string]map[string][]byte, len(statics))
	for root, files := range statics {
		out[root] = maps.Clone(files)
	}
	for _, a := range c.Apps {
		if out[a.StaticRoot] == nil {
			out[a.StaticRoot] = map[string][]byte{}
		}
		out[a.StaticRoot][strings.TrimPrefix(configs.WebCheckPath, "/")] = []byte(configs.WebCheckBody)
	}
	return out
}

// staticFiles puts each app's static files where the web server serves them from.
func staticFiles(statics map[string]map[string][]byte) *steps.Recipe {
	r := steps.NewRecipe("static files")
	roots := make([]string, 0, len(statics))
	for root := range statics {
		roots = append(roots, root)
	}
	slices.Sort(roots)
	for _, root := range roots {
		files := statics[root]
		names := make([]string, 0, len(files))
		for n := range files {
			names = append(names, n)
		}
		slices.Sort(names)
		// The root and every folder between it and a file, parents first.
		dirs := map[string]bool{root: true}
		for _, n := range names {
			for d := path.Dir(path.Join(root, n)); strings.HasPrefix(d, root+"/"); d = path.Dir(d) {
				dirs[d] = true
			}
		}
		dirList := make([]string, 0, len(dirs))
		for d := range dirs {
			dirList = append(dirList, d)
		}
		slices.Sort(dirList)
		for _, d := range dirList {
			r.Add(steps.Dir{Path: d, Mode: 0o755, Owner: "root", Group: "root"})
		}
		for _, n := range names {
			r.Add(steps.File{Path: path.Join(root, n), Content: steps.Bytes(files[n]), Mode: 0o644, Owner: "root", Group: "root"})
		}
	}
	return r
}

// StaticFromWARs reads each app's static files out of its WAR: the paths the web
// server serves itself, keyed by the app's static root.
func StaticFromWARs(c configs.Cluster, wars map[string]string) (map[string]map[string][]byte, error) {
	out := map[string]map[string][]byte{}
	for _, app := range c.Apps {
		war, ok := wars[path.Base(app.DocBase)]
		if !ok {
			return nil, fmt.Errorf("no WAR for app %s (artifacts.apps.%s)", app.Name, path.Base(app.DocBase))
		}
		files, err := warFiles(war, app.StaticPaths)
		if err != nil {
			return nil, err
		}
		out[app.StaticRoot] = files
	}
	return out, nil
}

func warFiles(war string, prefixes []string) (map[string][]byte, error) {
	zr, err := zip.OpenReader(war)
	if err != nil {
		return nil, fmt.Errorf("read WAR: %w", err)
	}
	defer zr.Close()
	files := map[string][]byte{}
	for _, f := range zr.File {
		if f.FileInfo().IsDir() || !slices.ContainsFunc(prefixes, func(p string) bool {
			return strings.HasPrefix("/"+f.Name, p)
		}) {
			continue
		}
		if strings.Contains(f.Name, "..") {
			return nil, fmt.Errorf("%s: entry %q leaves the app", war, f.Name)
		}
		rc, err := f.Open()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", war, err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", war, err)
		}
		files[f.Name] = b
	}
	return files, nil
}

func (t *Topology) webRecipe(h *inventory.Host) (*steps.Recipe, error) {
	v, err := t.Vars(h)
	if err != nil {
		return nil, err
	}
	statics, err := StaticFromWARs(t.Cluster, v.Artifacts.Apps)
	if err != nil {
		return nil, fmt.Errorf("host %s: %w", h.Name, err)
	}
	switch v.WebServer {
	case "apache":
		return Apache(t.Cluster, statics)
	case "nginx":
		return Nginx(t.Cluster, statics)
	}
	return nil, fmt.Errorf("host %s: web_server %q is not apache or nginx", h.Name, v.WebServer)
}
