package recipes_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cauldron-go/cauldron/inventory"
	"github.com/cauldron-go/cauldron/lab"
	"github.com/cauldron-go/cauldron/recipes"
	"github.com/cauldron-go/cauldron/runner"
	"github.com/cauldron-go/cauldron/steps"
	"github.com/cauldron-go/cauldron/transport"
	"github.com/cauldron-go/cauldron/transport/local"
)

// addVars puts lines at the start of the inventory's global vars.
func addVars(lines string) func(string) string {
	return func(s string) string { return strings.Replace(s, "vars:\n", "vars:\n"+lines, 1) }
}

// Every value a recipe would write into a file or a command is checked before anything
// connects, and a wrong one is named by the file, line and key where it is set.
func TestAWrongClusterValueIsRefusedAtItsFileLineAndKey(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		edit func(string) string
		want string
	}{
		{"tomcat_user root", nil, func(s string) string { return strings.Replace(s, "tomcat_user: gaia3d", "tomcat_user: root", 1) },
			`cluster.yaml:4: vars.tomcat_user: "root" is a system account`},
		{"tomcat_user www-data", nil, func(s string) string { return strings.Replace(s, "tomcat_user: gaia3d", "tomcat_user: www-data", 1) },
			`cluster.yaml:4: vars.tomcat_user: "www-data" is a system account`},
		{"tomcat_user daemon", nil, func(s string) string { return strings.Replace(s, "tomcat_user: gaia3d", "tomcat_user: daemon", 1) },
			`cluster.yaml:4: vars.tomcat_user: "daemon" is a system account`},
		{"tomcat_user nobody", nil, func(s string) string { return strings.Replace(s, "tomcat_user: gaia3d", "tomcat_user: nobody", 1) },
			`cluster.yaml:4: vars.tomcat_user: "nobody" is a system account`},
		{"tomcat_user with a space", nil, func(s string) string { return strings.Replace(s, "tomcat_user: gaia3d", "tomcat_user: gaia 3d", 1) },
			`cluster.yaml:4: vars.tomcat_user: "gaia 3d" is not a user name`},
		{"an AJP secret with #", map[string]string{"BAD_AJP": "abc#def0123"}, ajpFrom("BAD_AJP"),
			"cluster.yaml:6: vars.ajp_secret: the AJP secret may hold only letters, digits and"},
		{"an AJP secret with ${...}", map[string]string{"BAD_AJP": "x${user.name}y"}, ajpFrom("BAD_AJP"),
			"cluster.yaml:6: vars.ajp_secret: the AJP secret may hold only"},
		{"an AJP secret with $(...)", map[string]string{"BAD_AJP": "x$(id)y"}, ajpFrom("BAD_AJP"),
			"cluster.yaml:6: vars.ajp_secret: the AJP secret may hold only"},
		{"db_port 0", nil, addVars("  db_port: 0\n"), "cluster.yaml:3: vars.db_port: 0 is not a port number 1-65535"},
		{"db_port 70000", nil, addVars("  db_port: 70000\n"), "cluster.yaml:3: vars.db_port: 70000 is not a port number 1-65535"},
		{"heap of words", nil, addVars("  heap: lots\n"), `cluster.yaml:3: vars.heap: "lots" is not a JVM heap size`},
		{"heap 512mb", nil, addVars("  heap: 512mb\n"), `cluster.yaml:3: vars.heap: "512mb" is not a JVM heap size`},
		{"heap of bytes too small to start", nil, addVars("  heap: 512\n"), `cluster.yaml:3: vars.heap: "512" is not a JVM heap size`},
		{"heap of 0m", nil, addVars("  heap: 0m\n"), `cluster.yaml:3: vars.heap: "0m" is not a JVM heap size`},
		{"heap past what a JVM reserves", nil, addVars("  heap: 99999999999g\n"), `vars.heap: "99999999999g" is not a JVM heap size`},
		{"node 2.7", nil, func(s string) string { return strings.Replace(s, "vars: {node: 2}", "vars: {node: 2.7}", 1) },
			"cluster.yaml:22: hosts.web2.vars.node: cannot decode a number with a fraction into int: write a whole number"},
		{"heap_size", nil, addVars("  heap_size: 1g\n"), `cluster.yaml:3: vars.heap_size: unknown variable (did you mean "heap"?)`},
		{"ajp_secet on a host", nil, func(s string) string {
			return strings.Replace(s, "vars: {node: 3}", "vars: {node: 3, ajp_secet: x}", 1)
		},
			`cluster.yaml:23: hosts.web3.vars.ajp_secet: unknown variable (did you mean "ajp_secret"?)`},
		{"a secret written inline", nil, func(s string) string {
			return strings.Replace(s, "db_password: {from_env: TEST_DB_PASSWORD}", "db_password: hunter2hunter2", 1)
		}, "cluster.yaml:8: vars.db_password: a secret written in the inventory: use {from_file: PATH} or {from_env: NAME}"},
		{"hosts that disagree on a cluster-wide value", nil, func(s string) string {
			return strings.Replace(addVars("  db_name: one\n")(s), "vars: {node: 2}", "vars: {node: 2, db_name: other}", 1)
		}, "cluster.yaml:23: hosts.web2.vars.db_name: host web2 sees a value other than host db, which sees the one set at cluster.yaml:3 (vars.db_name); db_name is cluster-wide"},
		{"a cluster-wide value set on one host of a group", nil, func(s string) string {
			return strings.Replace(s, "vars: {node: 2}", "vars: {node: 2, db_name: other}", 1)
		}, "cluster.yaml:22: hosts.web2.vars.db_name: set for host web2 but not for host web1 of group tomcat; db_name is cluster-wide"},
		{"web_server misspelled", nil, func(s string) string { return strings.Replace(s, "web_server: apache", "web_server: apach", 1) },
			`cluster.yaml:3: vars.web_server: "apach" is not apache or nginx`},
		{"a database name SQL would misread", nil, addVars("  db_name: \"x; drop\"\n"), `cluster.yaml:3: vars.db_name: "x; drop" is not a plain SQL name`},
		{"a stats password with #", map[string]string{"BAD_STATS": "pass#word"}, func(s string) string {
			return strings.Replace(s, "{from_env: TEST_STATS_PASSWORD}", "{from_env: BAD_STATS}", 1)
		}, "cluster.yaml:7: vars.haproxy_stats_password: the password may not hold"},
		{"an extra HAProxy line that is two", nil, addVars("  haproxy_extra: [\"timeout check 5s\\nbackend evil\"]\n"),
			"cluster.yaml:3: vars.haproxy_extra: line 1 is empty or holds a line break"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			want := tc.want
			_, err := recipes.Cluster(loadCluster(t, tc.edit))
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("got %v\nwant an error containing %q", err, want)
			}
			for _, secret := range tc.env {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("the error shows the secret: %v", err)
				}
			}
		})
	}
}

func ajpFrom(env string) func(string) string {
	return func(s string) string {
		return strings.Replace(s, "ajp_secret: {from_env: TEST_AJP_SECRET}", "ajp_secret: {from_env: "+env+"}", 1)
	}
}

// Cluster-wide values set on the tomcat group (which the database host is not in) are
// the cluster's values: before, they were read from the database host's view only.
func TestClusterWideValuesSetOnTheTomcatGroupAreTheClustersValues(t *testing.T) {
	inv := loadCluster(t, func(s string) string {
		s = strings.Replace(s, "  ajp_secret: {from_env: TEST_AJP_SECRET}\n", "", 1)
		s = strings.Replace(s, "  tomcat_user: gaia3d\n", "", 1)
		return strings.Replace(s, "tomcat: {hosts: [web1, web2, web3]}",
			"tomcat: {hosts: [web1, web2, web3], vars: {tomcat_user: mago, ajp_secret: {from_env: TEST_AJP_SECRET}, db_name: tomcatdb}}", 1)
	})
	topo, err := recipes.NewTopology(inv)
	if err != nil {
		t.Fatal(err)
	}
	if topo.Global.TomcatUser != "mago" || topo.Global.DBName != "tomcatdb" || topo.Cluster.AJPSecret != "ajp-secret-0123456789" {
		t.Errorf("tomcat_user %q, db_name %q, AJP secret set %t", topo.Global.TomcatUser, topo.Global.DBName, topo.Cluster.AJPSecret != "")
	}
	db, _ := inv.Host("db")
	v, err := topo.Vars(db)
	if err != nil || v.DBName != "tomcatdb" {
		t.Errorf("the database host's db_name = %q, %v; want the cluster's", v.DBName, err)
	}
	files := fileContents(t, topo, "db")
	if !strings.Contains(files["/etc/postgresql/15/main/pg_hba.conf"], "tomcatdb") {
		t.Errorf("pg_hba.conf does not let the apps into tomcatdb:\n%s", files["/etc/postgresql/15/main/pg_hba.conf"])
	}
}

// db_port reaches PostgreSQL (its port) and the apps (their JDBC URL) alike.
func TestDBPortReachesPostgreSQLAndTheApps(t *testing.T) {
	topo, err := recipes.NewTopology(loadCluster(t, addVars("  db_port: 5433\n")))
	if err != nil {
		t.Fatal(err)
	}
	if conf := fileContents(t, topo, "db")["/etc/postgresql/15/main/conf.d/cauldron.conf"]; !strings.Contains(conf, "\nport = 5433\n") {
		t.Errorf("cauldron.conf does not set the port:\n%s", conf)
	}
	props := appProperties(t, fileContents(t, topo, "web1"), "/home/gaia3d/tools/mago3d-tomcat/source/mago3d-user")
	if !strings.Contains(props, "jdbc:postgresql://10.9.0.10:5433/mago3d") {
		t.Errorf("the JDBC URL does not name port 5433:\n%q", props)
	}
	// The default port is left unwritten: a cluster made before db_port sees no change.
	topo, err = recipes.NewTopology(loadCluster(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	if conf := fileContents(t, topo, "db")["/etc/postgresql/15/main/conf.d/cauldron.conf"]; strings.Contains(conf, "port") {
		t.Errorf("cauldron.conf sets a port by default:\n%s", conf)
	}
}

// Relative artifact paths are relative to the inventory's folder, as the README says,
// whatever the working directory.
func TestRelativeArtifactPathsAreRelativeToTheInventorysFolder(t *testing.T) {
	loadCluster(t, nil) // sets the secrets' environment
	dir := filepath.Join(t.TempDir(), "site")
	text, err := os.ReadFile("testdata/cluster.yaml")
	if err != nil {
		t.Fatal(err)
	}
	wars := t.TempDir()
	s := strings.ReplaceAll(string(text), "WAR_DIR", wars)
	s = strings.Replace(s, "tomcat: /srv/setup/apache-tomcat-10.1.60.tar.gz", "tomcat: setup/apache-tomcat-10.1.60.tar.gz", 1)
	s = strings.Replace(s, "apps: {mago3d-admin: "+wars+"/mago3d-admin.war", "apps: {mago3d-admin: ../admin.war", 1)
	inv, err := inventory.LoadOptions{SSHConfig: os.DevNull}.Parse(filepath.Join(dir, "cluster.yaml"), []byte(s))
	if err != nil {
		t.Fatal(err)
	}
	topo, err := recipes.NewTopology(inv)
	if err != nil {
		t.Fatal(err)
	}
	a := topo.Global.Artifacts
	if want := filepath.Join(dir, "setup", "apache-tomcat-10.1.60.tar.gz"); a.Tomcat != want {
		t.Errorf("artifacts.tomcat = %s; want %s", a.Tomcat, want)
	}
	if want := filepath.Join(filepath.Dir(dir), "admin.war"); a.Apps["mago3d-admin"] != want {
		t.Errorf("artifacts.apps.mago3d-admin = %s; want %s", a.Apps["mago3d-admin"], want)
	}
	if a.JDK != "/srv/setup/jdk-17.0.21.1.tar.gz" {
		t.Errorf("an absolute path changed: %s", a.JDK)
	}
}

// A recipe of your own declares the variables it reads; the cluster then accepts them.
func TestDeclaredVariablesAreAccepted(t *testing.T) {
	edit := addVars("  motd_text_for_vars_test: hello\n")
	if _, err := recipes.Cluster(loadCluster(t, edit)); err == nil || !strings.Contains(err.Error(), "motd_text_for_vars_test: unknown variable") {
		t.Fatalf("an undeclared variable: got %v", err)
	}
	recipes.DeclareVars("motd_text_for_vars_test")
	if _, err := recipes.Cluster(loadCluster(t, edit)); err != nil {
		t.Fatalf("a declared variable: %v", err)
	}
}

// An account that exists on the host with a uid below UID_MIN stops the Tomcat recipe
// before the account's home is moved or its password set.
func TestAnExistingSystemAccountStopsTheHost(t *testing.T) {
	c := local.New()
	for _, name := range []string{"root", "daemon", "nobody"} {
		_, err := recipes.NotASystemAccount{Name: name}.Check(context.Background(), c)
		if err == nil || !strings.Contains(err.Error(), "is a system account on this host") {
			t.Errorf("%s: got %v", name, err)
		}
	}
	if ch, err := (recipes.NotASystemAccount{Name: "no-such-account-here"}).Check(context.Background(), c); err != nil || ch != nil {
		t.Errorf("an account that does not exist: %v, %v", ch, err)
	}
}

// fileContents renders the content of every file step of the host's recipe.
// appProperties is the application.properties of the app whose docBase is docBase,
// in the folder of the release the recipe unpacks (docBase@<the WAR's sum>), from
// fileContents' files.
func appProperties[C string | []byte](t testing.TB, files map[string]C, docBase string) C {
	t.Helper()
	var found []C
	for p, content := range files {
		release, ok := strings.CutPrefix(p, docBase+"@")
		if ok && strings.HasSuffix(release, "/WEB-INF/classes/application.properties") && !strings.Contains(strings.TrimSuffix(release, "/WEB-INF/classes/application.properties"), "/") {
			found = append(found, content)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d application.properties in %s's release folders, want 1", len(found), docBase)
	}
	return found[0]
}

func fileContents(t *testing.T, topo *recipes.Topology, host string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, p := range topo.Plays() {
		for _, h := range p.Hosts {
			if h.Name != host {
				continue
			}
			r, err := p.Recipe(h)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range r.Steps() {
				for {
					u, ok := s.(interface{ Unwrap() steps.Step })
					if !ok {
						break
					}
					s = u.Unwrap()
				}
				if f, ok := s.(steps.File); ok && f.Content != nil {
					b, err := f.Content.Bytes(context.Background())
					if err != nil {
						t.Fatal(err)
					}
					out[f.Path] = string(b)
				}
			}
		}
	}
	if len(out) == 0 {
		t.Fatal(errors.New("no files for " + host))
	}
	return out
}

// The lab's own inventories (as lab.Up writes them) pass every check of the cluster's
// variables and build every recipe.
func TestTheLabsInventoriesPassTheClusterChecks(t *testing.T) {
	for _, variant := range []string{"ssh", "docker"} {
		t.Run(variant, func(t *testing.T) {
			golden, err := os.ReadFile("../lab/testdata/inventory-" + variant + ".golden.yaml")
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			for _, app := range lab.AppNames {
				war, err := lab.BuildAppWAR(app)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, app+".war"), war, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			hash, err := lab.SHA512Crypt("lab-password", "saltsaltsalt")
			if err != nil {
				t.Fatal(err)
			}
			secrets := map[string]string{"ajp_secret": "Ab0Cd1Ef2Gh3", "db_password": "Db0Pw1", "haproxy_stats_password": "St4ts", "tomcat_password_hash": hash}
			if err := os.Mkdir(filepath.Join(dir, "secrets"), 0o700); err != nil {
				t.Fatal(err)
			}
			for name, v := range secrets {
				if err := os.WriteFile(filepath.Join(dir, "secrets", name), []byte(v+"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			text := strings.NewReplacer("$ARTIFACTS", dir, "$STATE", dir, "$TOMCAT_VERSION", "10.1.60", "$JDK_VERSION", "17.0.2").Replace(string(golden))
			inv, err := inventory.LoadOptions{SSHConfig: os.DevNull}.Parse(filepath.Join(dir, "inventory.yaml"), []byte(text))
			if err != nil {
				t.Fatal(err)
			}
			plays, err := recipes.Cluster(inv)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range plays {
				for _, h := range p.Hosts {
					r, err := p.Recipe(h)
					if err == nil {
						err = r.Validate()
					}
					if err != nil {
						t.Fatalf("play %s, host %s: %v", p.Name, h.Name, err)
					}
				}
			}
		})
	}
}

// unlisted is NotASystemAccount without its fixed list, so that the host's own check
// (the uid) is what stops the run.
type unlisted struct{ recipes.NotASystemAccount }

func (unlisted) Validate() error { return nil }

// When the host says the account is a system account, no later step of the host is
// applied: the account's home is never moved nor its password set.
func TestASystemAccountOnTheHostStopsItBeforeAnyLaterStepIsApplied(t *testing.T) {
	dir := t.TempDir()
	inv, err := inventory.LoadOptions{SSHConfig: os.DevNull}.Parse(filepath.Join(dir, "i.yaml"),
		[]byte("hosts:\n  here: {transport: local, vars: {cauldron_state_dir: "+dir+"/state}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	later := filepath.Join(dir, "stands-in-for-usermod")
	play := runner.Play{Name: "account", Hosts: inv.Hosts, Recipe: func(*inventory.Host) (*steps.Recipe, error) {
		return steps.NewRecipe("account",
			unlisted{recipes.NotASystemAccount{Name: "daemon"}},
			steps.File{Path: later, Content: steps.Text("applied\n"), Mode: 0o600},
		), nil
	}}
	var progress strings.Builder
	_, err = runner.Run(context.Background(), []runner.Play{play}, runner.Options{Mode: runner.Apply, Progress: &progress,
		Dial: func(context.Context, *inventory.Host) (transport.Conn, error) { return local.New(), nil }})
	if err == nil {
		t.Fatal("the run succeeded")
	}
	if !strings.Contains(progress.String(), "account daemon is a system account on this host") {
		t.Errorf("the run does not say why it stopped:\n%s", progress.String())
	}
	if _, statErr := os.Stat(later); statErr == nil {
		t.Errorf("a step after the failed account check was applied (run error: %v)", err)
	}
}
