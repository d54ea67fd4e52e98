package configs_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cauldron-go/cauldron/configs"
	"github.com/cauldron-go/cauldron/recipes"
	"github.com/cauldron-go/cauldron/transport/local"
)

// These tests hand the rendered files to the real programs that read them. They need
// haproxy, nginx, and apache2 with libapache2-mod-jk installed (no service running), and
// are skipped where a program is missing.

func need(t *testing.T, program string) string {
	t.Helper()
	p, err := exec.LookPath(program)
	if err != nil {
		for _, dir := range []string{"/usr/sbin", "/sbin"} {
			if _, statErr := os.Stat(filepath.Join(dir, program)); statErr == nil {
				return filepath.Join(dir, program)
			}
		}
		t.Skipf("%s is not installed", program)
	}
	return p
}

func write(t *testing.T, dir, name string, f configs.File) string {
	t.Helper()
	data, err := f.Render()
	if err != nil {
		t.Fatalf("render %s: %v", name, err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// run runs argv and returns its combined output and whether it exited 0.
func run(t *testing.T, argv ...string) (string, bool) {
	t.Helper()
	out, err := exec.CommandContext(context.Background(), argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		if _, ok := err.(*exec.ExitError); !ok {
			t.Fatalf("%s: %v", argv[0], err)
		}
		return string(out), false
	}
	return string(out), true
}

func TestHAProxyAcceptsTheRenderedConfigAndRejectsABadOption(t *testing.T) {
	haproxy := need(t, "haproxy")
	for _, n := range []int{2, 3} {
		t.Run(fmt.Sprintf("%d-nodes", n), func(t *testing.T) {
			h := configs.NewHAProxy(cluster(n), "admin", "stats-pw-test")
			file := write(t, t.TempDir(), "haproxy.cfg", h)
			if out, ok := run(t, haproxy, "-c", "-f", file); !ok {
				t.Fatalf("haproxy -c rejects the rendered file:\n%s", out)
			}
			h.Backends[0].Extra = append(h.Backends[0].Extra, "option no-such-option")
			file = write(t, t.TempDir(), "haproxy.cfg", h)
			if out, ok := run(t, haproxy, "-c", "-f", file); ok {
				t.Fatalf("haproxy -c accepts an unknown option:\n%s", out)
			}
		})
	}
}

func TestNginxAcceptsTheRenderedSiteAndRejectsABrokenOne(t *testing.T) {
	nginx := need(t, "nginx")
	for _, n := range []int{2, 3} {
		t.Run(fmt.Sprintf("%d-nodes", n), func(t *testing.T) {
			site := configs.NewNginxSite(cluster(n))
			check := func(extra string) (string, bool) {
				dir := t.TempDir()
				siteFile := write(t, dir, "site.conf", site)
				if extra != "" {
					f, err := os.OpenFile(siteFile, os.O_APPEND|os.O_WRONLY, 0)
					if err != nil {
						t.Fatal(err)
					}
					_, err = f.WriteString(extra)
					if cerr := f.Close(); err == nil {
						err = cerr
					}
					if err != nil {
						t.Fatal(err)
					}
				}
				main := fmt.Sprintf(`pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events {}
http {
    access_log %[1]s/access.log;
    include %[1]s/site.conf;
}
`, dir)
				if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(main), 0o644); err != nil {
					t.Fatal(err)
				}
				return run(t, nginx, "-t", "-q", "-p", dir, "-c", filepath.Join(dir, "nginx.conf"))
			}
			if out, ok := check(""); !ok {
				t.Fatalf("nginx -t rejects the rendered site:\n%s", out)
			}
			// A second upstream of the same name shows that nginx -t really reads the site
			// (upstream host names are not tried: nginx -t would resolve them).
			dup := fmt.Sprintf("upstream %s {\n    server 127.0.0.1:1;\n}\n", site.Servers[0].Upstream)
			if out, ok := check(dup); ok {
				t.Fatalf("nginx -t accepts a duplicate upstream:\n%s", out)
			}
		})
	}
}

func TestApacheAcceptsTheRenderedSiteWithModJk(t *testing.T) {
	apache := need(t, "apache2")
	const modules = "/usr/lib/apache2/modules"
	if _, err := os.Stat(filepath.Join(modules, "mod_jk.so")); err != nil {
		t.Skip("libapache2-mod-jk is not installed")
	}
	for _, n := range []int{2, 3} {
		t.Run(fmt.Sprintf("%d-nodes", n), func(t *testing.T) {
			c := cluster(n)
			check := func(site *configs.ApacheSite, workersFile string) (string, bool) {
				dir := t.TempDir()
				jk := configs.NewJkConf()
				jk.WorkersFile = write(t, dir, "workers.properties", configs.NewWorkers(c))
				if workersFile != "" {
					jk.WorkersFile = workersFile
				}
				jk.ShmFile = filepath.Join(dir, "jk-shm")
				jk.LogFile = filepath.Join(dir, "mod_jk.log")
				write(t, dir, "jk.conf", jk)
				write(t, dir, "ports.conf", configs.NewApachePorts(c))
				write(t, dir, "site.conf", site)
				// The parts of Debian's apache2.conf the site relies on, with every path in dir.
				main := fmt.Sprintf(`ServerRoot %[1]s
Define APACHE_LOG_DIR %[1]s
PidFile %[1]s/apache2.pid
ErrorLog %[1]s/error.log
LoadModule mpm_event_module %[2]s/mod_mpm_event.so
LoadModule authz_core_module %[2]s/mod_authz_core.so
LoadModule authz_host_module %[2]s/mod_authz_host.so
LoadModule jk_module %[2]s/mod_jk.so
Include %[1]s/ports.conf
Include %[1]s/jk.conf
Include %[1]s/site.conf
`, dir, modules)
				conf := filepath.Join(dir, "apache2.conf")
				if err := os.WriteFile(conf, []byte(main), 0o644); err != nil {
					t.Fatal(err)
				}
				return run(t, apache, "-t", "-d", dir, "-f", conf)
			}
			site := configs.NewApacheSite(c)
			if out, ok := check(site, ""); !ok || !strings.Contains(out, "Syntax OK") {
				t.Fatalf("apache2 -t rejects the rendered site:\n%s", out)
			}
			// mod_jk checks at parse time that its workers file exists: this shows the
			// test's apache2 -t really loads mod_jk and reads jk.conf.
			if out, ok := check(site, filepath.Join(t.TempDir(), "missing.properties")); ok {
				t.Fatalf("apache2 -t accepts a missing JkWorkersFile:\n%s", out)
			}
		})
	}
}

// TestTomcatReadsEveryAttributeOfServerXML runs the installed Tomcat 10.1's configtest,
// which parses server.xml with the Digester that start uses and warns about every
// attribute no Tomcat class takes ("did not find a matching property" or "failed to
// set property"). It needs the tomcat10 package and a JDK.
func TestTomcatReadsEveryAttributeOfServerXML(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Tomcat's configtest (a JVM) for each case, about 50 s: runs without -short")
	}
	const home = "/usr/share/tomcat10"
	catalina := filepath.Join(home, "bin", "catalina.sh")
	if _, err := os.Stat(catalina); err != nil {
		t.Skip("tomcat10 is not installed")
	}
	need(t, "java")
	jar := cauldronJar(t, home)
	configtest := func(t *testing.T, c configs.Cluster, mangle func(string) string) string {
		base := t.TempDir()
		for _, d := range []string{"conf", "lib", "logs", "temp", "webapps", "work"} {
			if err := os.MkdirAll(filepath.Join(base, d), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		// A clustered Engine names cauldron's valve (configs.ClassWokenNodeValve).
		if err := os.Symlink(jar, filepath.Join(base, "lib", filepath.Base(jar))); err != nil {
			t.Fatal(err)
		}
		webXML, err := os.ReadFile(filepath.Join(home, "etc", "web.xml"))
		if err != nil {
			t.Skipf("Tomcat's default web.xml: %v", err)
		}
		if err := os.WriteFile(filepath.Join(base, "conf", "web.xml"), webXML, 0o644); err != nil {
			t.Fatal(err)
		}
		for i := range c.Apps {
			// configtest binds the connectors: keep clear of ports in real use.
			c.Apps[i].HTTPPort += 30000
			c.Apps[i].AJPPort += 30000
			c.Apps[i].DocBase = filepath.Join(base, c.Apps[i].Name)
			if err := os.Mkdir(c.Apps[i].DocBase, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		s := configs.NewServerXML(c, c.Nodes[0])
		s.Port = -1 // nothing to listen on for a configtest
		data, err := s.Render()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(base, "conf", "server.xml"), []byte(mangle(string(data))), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.CommandContext(context.Background(), catalina, "configtest")
		cmd.Env = append(os.Environ(), "CATALINA_HOME="+home, "CATALINA_BASE="+base, "CATALINA_PID=")
		out, err := cmd.CombinedOutput()
		if err != nil {
			if _, ok := err.(*exec.ExitError); !ok {
				t.Fatalf("catalina.sh configtest: %v", err)
			}
		}
		return string(out)
	}
	// Loopback addresses, for the same reason.
	c := configs.NewCluster([]configs.Node{
		{Name: "web1", Address: "127.0.0.1", Index: 1},
		{Name: "web2", Address: "127.0.0.2", Index: 2},
	}, testSecret)
	for _, m := range []configs.Membership{configs.Multicast, configs.Static} {
		t.Run(m.String(), func(t *testing.T) {
			c.Membership = m
			c.Apps = configs.DefaultApps(c.TomcatHome)
			out := configtest(t, c, func(s string) string { return s })
			if unknownAttribute(out) || !strings.Contains(out, "Server initialization") {
				t.Fatalf("Tomcat does not take server.xml as written:\n%s", out)
			}
			c.Apps = configs.DefaultApps(c.TomcatHome)
			out = configtest(t, c, func(s string) string {
				return strings.Replace(s, "secretRequired=", "secretRequird=", 1)
			})
			if !unknownAttribute(out) {
				t.Fatalf("configtest does not report a misspelt attribute:\n%s", out)
			}
		})
	}
}

// cauldronJar builds cauldron's jar (recipes.TribesJar) with this machine's JDK against
// the Tomcat in home, in a folder of the test's, and returns its path.
func cauldronJar(t *testing.T, home string) string {
	t.Helper()
	javac, err := filepath.EvalSymlinks(need(t, "javac"))
	if err != nil {
		t.Fatal(err)
	}
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	tomcat := t.TempDir()
	for _, p := range []string{"lib/catalina-tribes.jar", "lib/catalina.jar", "lib/servlet-api.jar", "bin/tomcat-juli.jar"} {
		if err := os.MkdirAll(filepath.Join(tomcat, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join(home, p), filepath.Join(tomcat, p)); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	step := recipes.TribesJar{JavaHome: filepath.Dir(filepath.Dir(javac)), TomcatHome: tomcat, Owner: me.Username}
	change, err := step.Check(ctx, local.New())
	if err != nil || change == nil {
		t.Fatalf("the jar's Check = %+v, %v; want a build", change, err)
	}
	if err := change.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(tomcat, "lib", recipes.TribesJarName)
}

func unknownAttribute(tomcatLog string) bool {
	return strings.Contains(tomcatLog, "matching property") || strings.Contains(tomcatLog, "failed to set property")
}

// runHAProxy runs haproxy in the foreground on file until the test ends, and returns
// what it prints (read it once the test is done with it).
func runHAProxy(t *testing.T, haproxy, file string) *strings.Builder {
	t.Helper()
	cmd := exec.Command(haproxy, "-db", "-f", file)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return &out
}
