package recipes_test

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/cauldron-go/cauldron/configs"
	"github.com/cauldron-go/cauldron/lab"
	"github.com/cauldron-go/cauldron/recipes"
	"github.com/cauldron-go/cauldron/steps"
	"github.com/cauldron-go/cauldron/transport"
)

// releaseRecipe is web1's Tomcat recipe with the demo WARs of version, written to dir.
func releaseRecipe(t *testing.T, dir, version string) *steps.Recipe {
	t.Helper()
	wars := map[string]string{}
	for _, app := range lab.AppNames {
		war, err := lab.BuildAppWARVersion(app, version)
		if err != nil {
			t.Fatal(err)
		}
		wars[app] = filepath.Join(dir, app+"-"+version+".war")
		if err := os.WriteFile(wars[app], war, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cluster := testCluster(2)
	r, err := recipes.TomcatNode(recipes.TomcatNodeConfig{
		Account: "gaia3d", Cluster: cluster, Node: cluster.Nodes[0],
		TomcatTarball: "/t/apache-tomcat-10.1.tar.gz", JDKTarball: "/t/jdk-17.0.2.tar.gz", WARs: wars,
		DB:   configs.AppProperties{URL: "jdbc:postgresql://10.10.0.5:5432/mago3d", Username: "mago3d", Password: "test-db-password"},
		Heap: "512m",
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// appSteps are the recipe's steps that put the apps and server.xml in place (not the
// JDK, Tomcat and its unit, which this test does without).
func appSteps(r *steps.Recipe) []steps.Step {
	var out []steps.Step
	for _, s := range r.Steps() {
		inner := s
		for {
			u, ok := inner.(interface{ Unwrap() steps.Step })
			if !ok {
				break
			}
			inner = u.Unwrap()
		}
		switch x := inner.(type) {
		case steps.Packages, steps.AddUser, steps.Dir, steps.UnpackWAR:
			out = append(out, s)
		case steps.Upload:
			if strings.HasSuffix(x.Dest, ".war") {
				out = append(out, s)
			}
		case steps.File:
			if strings.Contains(x.Path, "/source/") || strings.HasSuffix(x.Path, "/conf/server.xml") {
				out = append(out, s)
			}
		}
	}
	return out
}

// A release never changes the folder the running Tomcat serves: the WAR is unpacked
// into a folder of its own, which server.xml names and Tomcat takes at its restart;
// only after it does the link move and the old release go. A run that stops before
// the restart leaves nothing but the restart (and the switch after it) to do.
func TestARunningAppsFolderIsUntouchedByAReleaseUntilTheRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("converges the Tomcat recipe's app steps on a container")
	}
	ctx := context.Background()
	c, remove, err := lab.ScratchHost(ctx, "cauldron-test-recipes-release")
	if err != nil {
		t.Fatal(err)
	}
	defer remove()
	sh := func(line string) string {
		t.Helper()
		out, err := transport.Output(ctx, c, line)
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		return out
	}
	dir := t.TempDir()
	v1, v2 := releaseRecipe(t, dir, lab.AppVersion), releaseRecipe(t, dir, lab.NextAppVersion)
	converge := func(r *steps.Recipe) (changed []string) {
		t.Helper()
		for _, s := range appSteps(r) {
			ch, err := steps.Converge(ctx, c, s)
			if err != nil {
				t.Fatal(err)
			}
			if ch {
				changed = append(changed, s.String())
			}
		}
		return changed
	}
	home := configs.DefaultTomcatHome
	docBase := func() string { // the admin app's, as server.xml names it
		t.Helper()
		m := regexp.MustCompile(`docBase="([^"]*/mago3d-admin[^"]*)"`).FindStringSubmatch(sh("cat " + home + "/conf/server.xml"))
		if m == nil {
			t.Fatal("server.xml names no admin docBase")
		}
		return m[1]
	}
	// Tomcat stands in as a unit running in the docBase it read at start.
	start := func() {
		t.Helper()
		sh("systemctl stop mago3d-tomcat 2>/dev/null; systemctl reset-failed mago3d-tomcat 2>/dev/null; " +
			"systemd-run --quiet --unit=mago3d-tomcat --working-directory=" + docBase() + " sleep infinity")
	}
	switchReleases := func(r *steps.Recipe) error {
		t.Helper()
		for _, h := range r.Handlers() {
			if h.Name == recipes.TomcatHandler {
				continue
			}
			if _, err := steps.Converge(ctx, c, h.Step); err != nil {
				return err
			}
		}
		return nil
	}
	running := `pid=$(systemctl show -p MainPID --value mago3d-tomcat); d=$(readlink /proc/$pid/cwd); ` +
		`echo "$d"; (cd "$d" && find . -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum) 2>&1; true`

	sh("mkdir -p " + home + "/conf")
	converge(v1)
	sh("chown -R gaia3d: " + home)
	start()
	if err := switchReleases(v1); err != nil {
		t.Fatal(err)
	}
	before := sh(running)

	changed := converge(v2)
	if after := sh(running); after != before {
		t.Fatalf("the release changed the folder the running Tomcat serves (%s):\nbefore: %s\nafter:  %s", strings.Join(changed, ", "), before, after)
	}
	was := strings.SplitN(before, "\n", 2)[0]
	if got := docBase(); got == was || !strings.HasPrefix(got, home+"/source/mago3d-admin@") {
		t.Fatalf("server.xml names %s, want a new release folder beside %s", got, was)
	}
	if got := strings.TrimSpace(sh("readlink " + home + "/source/mago3d-admin")); home+"/source/"+got != was {
		t.Errorf("the link names %s before the restart, want the running %s", got, was)
	}
	// Stopped here (killed before the restart): the steps are converged, and the switch
	// refuses until Tomcat has restarted.
	if again := converge(v2); len(again) != 0 {
		t.Errorf("a second run before the restart changes %v, want nothing but the owed handlers", again)
	}
	if err := switchReleases(v2); err == nil || !strings.Contains(err.Error(), "started before") {
		t.Fatalf("the switch before the restart: %v, want a refusal", err)
	}

	start()
	if err := switchReleases(v2); err != nil {
		t.Fatal(err)
	}
	want := "mago3d-admin -> mago3d-admin@" + releaseOf(t, docBase()) + "\nmago3d-admin.previous -> mago3d-admin@" + releaseOf(t, was) + "\n"
	if got := sh(`cd ` + home + `/source && for f in mago3d-admin mago3d-admin.previous; do echo "$f -> $(readlink $f)"; done`); got != want {
		t.Errorf("after the restart:\n%s\nwant\n%s", got, want)
	}
	if again := converge(v2); len(again) != 0 {
		t.Errorf("a converged run changes %v", again)
	}
	if err := switchReleases(v2); err != nil {
		t.Fatal(err)
	}
	for _, h := range v2.Handlers() {
		if h.Name == recipes.TomcatHandler {
			continue
		}
		if ch, err := h.Step.Check(ctx, c); err != nil || ch != nil {
			t.Errorf("%s on a converged host: %v, %v", h.Name, ch, err)
		}
	}
	sh("systemctl stop mago3d-tomcat")
}

func releaseOf(t *testing.T, docBase string) string {
	t.Helper()
	_, r, ok := strings.Cut(docBase, "@")
	if !ok {
		t.Fatalf("%s is not a release folder", docBase)
	}
	return r
}
