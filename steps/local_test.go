package steps_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cauldron-go/cauldron/steps"
	"github.com/cauldron-go/cauldron/transport/local"
)

// The file-shaped steps need no container: these run them over the local transport in
// a temporary folder, with or without -short, in well under a second. Owners are left
// out (a contributor need not be root); the container tests cover them.

// localConverges checks s on this machine, applies the change and checks again: the
// first check must find summary, the second nothing.
func localConverges(t *testing.T, s steps.Step, summary string) *steps.Change {
	t.Helper()
	ctx := context.Background()
	if err := steps.Validate(s); err != nil {
		t.Fatal(err)
	}
	ch, err := s.Check(ctx, local.New())
	if err != nil {
		t.Fatalf("check %s: %v", s, err)
	}
	if ch == nil || !strings.Contains(ch.Summary, summary) {
		t.Fatalf("check %s: got %+v, want a change saying %q", s, ch, summary)
	}
	if err := ch.Apply(ctx); err != nil {
		t.Fatalf("apply %s: %v", s, err)
	}
	if again, err := s.Check(ctx, local.New()); err != nil || again != nil {
		t.Fatalf("check %s after apply: %+v, %v", s, again, err)
	}
	return ch
}

// entries lists dir's names: a leftover temporary file shows here.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func readLocal(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestAFileIsCreatedThenDriftIsPutBackOverTheLocalTransport(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.conf")
	f := steps.File{Path: path, Content: steps.Text("port=8009\n"), Mode: 0o640}

	ch := localConverges(t, f, "create "+path)
	if !strings.Contains(ch.Diff, "+port=8009") {
		t.Errorf("diff: %q", ch.Diff)
	}
	writeLocal(t, path, "port=8009\ndrift\n")
	ch = localConverges(t, f, "update "+path)
	if !strings.Contains(ch.Diff, "-drift") {
		t.Errorf("diff: %q", ch.Diff)
	}
	if err := os.Chmod(path, 0o604); err != nil {
		t.Fatal(err)
	}
	localConverges(t, f, "mode 0604 -> 0640")
	if got := readLocal(t, path); got != "port=8009\n" {
		t.Fatalf("content %q", got)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o640 {
		t.Fatalf("mode %v (%v)", fi.Mode(), err)
	}
	if got := entries(t, dir); !slices.Equal(got, []string{"app.conf"}) {
		t.Fatalf("leftovers: %q", got)
	}
}

func TestAFileTheValidatorRejectsNeverReplacesTheWorkingOneOverTheLocalTransport(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "run.sh")
	good := steps.File{Path: path, Content: steps.Text("echo fine\n"), Mode: 0o755, ValidateCmd: "sh -n %s"}
	localConverges(t, good, "create")
	bad := good
	bad.Content = steps.Text("if then fi (\n")
	// The check (so a plan) runs the validator on a copy and says what it rejects.
	if _, err := bad.Check(context.Background(), local.New()); err == nil || !strings.Contains(err.Error(), "Syntax error") || !strings.Contains(err.Error(), "nothing was changed") {
		t.Fatalf("check: %v", err)
	}
	// Content the validator rejects only by the time of the apply is stopped there.
	reject := filepath.Join(t.TempDir(), "reject")
	later := steps.File{Path: path, Content: steps.Text("echo later\n"), Mode: 0o755, ValidateCmd: "test ! -e " + reject + " && sh -n %s"}
	ch, err := later.Check(context.Background(), local.New())
	if err != nil || ch == nil {
		t.Fatalf("check: %v %v", ch, err)
	}
	writeLocal(t, reject, "")
	if err := ch.Apply(context.Background()); err == nil || !strings.Contains(err.Error(), "the old file stays") {
		t.Fatalf("apply: %v", err)
	}
	if got := readLocal(t, path); got != "echo fine\n" {
		t.Fatalf("the working file is now %q", got)
	}
	if got := entries(t, dir); !slices.Equal(got, []string{"run.sh"}) {
		t.Fatalf("leftovers: %q", got)
	}
}

func TestDirMoveUploadKeyValueAndCommandConvergeOverTheLocalTransport(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "setup.bin")
	writeLocal(t, src, "a tarball's bytes")
	writeLocal(t, filepath.Join(dir, "old-name"), "moved")
	writeLocal(t, filepath.Join(dir, "server.properties"), "# settings\nport = 80\nname=web\n")
	cases := []struct {
		step    steps.Step
		summary string
		path    string
		want    string
	}{
		{steps.Dir{Path: filepath.Join(dir, "tools", "jdk"), Mode: 0o750}, "", filepath.Join(dir, "tools", "jdk"), ""},
		{steps.Move{From: filepath.Join(dir, "old-name"), To: filepath.Join(dir, "new-name")}, "", filepath.Join(dir, "new-name"), "moved"},
		{steps.Upload{Src: src, Dest: filepath.Join(dir, "tools", "setup.bin"), Mode: 0o640}, "", filepath.Join(dir, "tools", "setup.bin"), "a tarball's bytes"},
		{steps.KeyValue{Path: filepath.Join(dir, "server.properties"), Key: "port", Value: "8080", Separator: " = "}, "",
			filepath.Join(dir, "server.properties"), "# settings\nport = 8080\nname=web\n"},
		{steps.Command{Line: "echo ran >> " + filepath.Join(dir, "log"), Creates: filepath.Join(dir, "log")}, "", filepath.Join(dir, "log"), "ran\n"},
	}
	for _, tc := range cases {
		t.Run(tc.step.String(), func(t *testing.T) {
			localConverges(t, tc.step, tc.summary)
			fi, err := os.Stat(tc.path)
			if err != nil {
				t.Fatal(err)
			}
			if !fi.IsDir() {
				if got := readLocal(t, tc.path); got != tc.want {
					t.Fatalf("content %q, want %q", got, tc.want)
				}
			}
		})
	}
}

func TestANewWARReplacesTheWholeAppOverTheLocalTransport(t *testing.T) {
	if _, err := exec.LookPath("unzip"); err != nil {
		t.Skip("UnpackWAR needs unzip on the host: apt-get install unzip")
	}
	dir := t.TempDir()
	war, app := filepath.Join(dir, "app.war"), filepath.Join(dir, "apps", "app")
	if err := os.Mkdir(filepath.Join(dir, "apps"), 0o755); err != nil {
		t.Fatal(err)
	}
	u := steps.UnpackWAR{LocalWAR: war, WAR: war, Dest: app}
	writeWAR(t, war, map[string]string{"index.jsp": "v1", "old.jsp": "gone in v2"})
	localConverges(t, u, "unpack "+war)
	writeWAR(t, war, map[string]string{"index.jsp": "v2"})
	localConverges(t, u, "replace "+app)
	if got := readLocal(t, filepath.Join(app, "index.jsp")); got != "v2" {
		t.Fatalf("index.jsp: %q", got)
	}
	if _, err := os.Stat(filepath.Join(app, "old.jsp")); !os.IsNotExist(err) {
		t.Fatalf("a file of the old WAR lingers: %v", err)
	}
	if got := entries(t, filepath.Join(dir, "apps")); !slices.Equal(got, []string{"app"}) {
		t.Fatalf("leftovers: %q", got)
	}
}

// TestAFailedSwapOfAWARKeepsTheOldApp makes the last rename of UnpackWAR fail (a mv on
// PATH that refuses to move the new app onto the app folder, standing in for a full
// disk or a busy mount) and checks the old app is back in place, not deleted with the
// temporary folders.
func TestAFailedSwapOfAWARKeepsTheOldApp(t *testing.T) {
	if _, err := exec.LookPath("unzip"); err != nil {
		t.Skip("UnpackWAR needs unzip on the host: apt-get install unzip")
	}
	realMV, err := exec.LookPath("mv")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	war, app := filepath.Join(dir, "app.war"), filepath.Join(dir, "apps", "app")
	if err := os.Mkdir(filepath.Join(dir, "apps"), 0o755); err != nil {
		t.Fatal(err)
	}
	u := steps.UnpackWAR{LocalWAR: war, WAR: war, Dest: app}
	writeWAR(t, war, map[string]string{"index.jsp": "v1"})
	localConverges(t, u, "unpack "+war)

	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	// It refuses to move the new app in; putting the old one back (from *.old) works.
	shim := "#!/bin/sh\nfor last; do src=$prev; prev=$last; done\n" +
		"case $src in *.old) ;; *) if [ \"$last\" = " + app + " ]; then echo 'mv: no space left on device' >&2; exit 1; fi ;; esac\n" +
		"exec " + realMV + " \"$@\"\n"
	if err := os.WriteFile(filepath.Join(bin, "mv"), []byte(shim), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))

	writeWAR(t, war, map[string]string{"index.jsp": "v2"})
	ch, err := u.Check(context.Background(), local.New())
	if err != nil || ch == nil {
		t.Fatalf("check: %+v, %v", ch, err)
	}
	if err := ch.Apply(context.Background()); err == nil {
		t.Fatal("apply succeeded although the swap failed")
	}
	if got := readLocal(t, filepath.Join(app, "index.jsp")); got != "v1" {
		t.Fatalf("after a failed swap index.jsp is %q, want the old app's v1", got)
	}
	if got := entries(t, filepath.Join(dir, "apps")); !slices.Equal(got, []string{"app"}) {
		t.Fatalf("leftovers: %q", got)
	}
}
