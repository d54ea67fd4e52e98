package steps_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cauldron-go/cauldron/steps"
	"github.com/cauldron-go/cauldron/transport"
	"github.com/cauldron-go/cauldron/transport/local"
)

// rendezvous is a step whose apply returns only once every other rendezvous step of
// the same meeting has begun its apply too (or fails after a minute): steps applied one
// after another never meet.
func rendezvous(name string, meeting chan struct{}, n int) steps.Step {
	return steps.Func{Name: name, CheckFunc: func(context.Context, transport.Conn) (*steps.Change, error) {
		return &steps.Change{Summary: "meet " + name, Apply: func(ctx context.Context) error {
			meeting <- struct{}{}
			alone := time.After(time.Minute)
			for len(meeting) < n {
				select {
				case <-time.After(time.Millisecond):
				case <-alone:
					return errors.New(name + " waited alone")
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			return nil
		}}, nil
	}}
}

func TestStepsTogetherApplyAtTheSameTime(t *testing.T) {
	meeting := make(chan struct{}, 3)
	s := steps.Together(rendezvous("a", meeting, 3), rendezvous("b", meeting, 3), rendezvous("c", meeting, 3))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ch, err := s.Check(ctx, local.New())
	if err != nil || ch == nil {
		t.Fatalf("check: %+v, %v", ch, err)
	}
	if want := "meet a; meet b; meet c"; ch.Summary != want {
		t.Errorf("summary %q, want %q", ch.Summary, want)
	}
	if err := ch.Apply(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestATogetherOfRealStepsConvergesAndSaysOnlyWhatChanges(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(t.TempDir(), "jdk.tgz")
	writeTarball(t, src, 1<<20, true)
	for _, d := range []string{"setup", "tools"} {
		if err := steps.Validate(steps.Dir{Path: filepath.Join(dir, d)}); err != nil {
			t.Fatal(err)
		}
		ch, _ := steps.Dir{Path: filepath.Join(dir, d)}.Check(context.Background(), local.New())
		if err := ch.Apply(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	readme := steps.File{Path: filepath.Join(dir, "README"), Content: steps.Text("hello\n")}
	untar := steps.Untar{Upload: &steps.Upload{Src: src, Dest: filepath.Join(dir, "setup", "jdk.tgz")},
		Dest: filepath.Join(dir, "tools", "jdk"), StripComponents: 1, Creates: filepath.Join(dir, "tools", "jdk", "bin", "java")}
	s := steps.Together(steps.Notify(readme, "reload"), steps.Notify(untar, "restart", "reload"))
	if err := steps.Validate(s); err != nil {
		t.Fatal(err)
	}
	if got := steps.Notified(s); !slices.Equal(got, []string{"reload", "restart"}) {
		t.Errorf("notifies %q, want every handler of its steps once", got)
	}
	ctx := context.Background()
	c := local.New()
	ch, err := s.Check(ctx, c)
	if err != nil || ch == nil {
		t.Fatalf("check: %+v, %v", ch, err)
	}
	contains(t, "summary", ch.Summary, "create "+readme.Path)
	contains(t, "summary", ch.Summary, "unpacked into "+untar.Dest)
	contains(t, "diff", ch.Diff, "+hello")
	if err := ch.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	if again, err := s.Check(ctx, c); err != nil || again != nil {
		t.Fatalf("check after apply: %+v, %v", again, err)
	}
	if got := readLocal(t, filepath.Join(untar.Dest, "bin", "java")); got != "#!/bin/sh\n" {
		t.Errorf("bin/java: %q", got)
	}
	// One step off again: the change is that step's alone.
	writeLocal(t, readme.Path, "changed by hand\n")
	ch, err = s.Check(ctx, c)
	if err != nil || ch == nil {
		t.Fatalf("check: %+v, %v", ch, err)
	}
	if strings.Contains(ch.Summary, "untar") || strings.Contains(ch.Summary, untar.Dest) {
		t.Errorf("summary %q names the converged untar", ch.Summary)
	}
}

func TestATogetherAppliesEveryStepAndReturnsAllTheirErrors(t *testing.T) {
	dir := t.TempDir()
	fail := func(name string) steps.Step {
		return steps.Func{Name: name, CheckFunc: func(context.Context, transport.Conn) (*steps.Change, error) {
			return &steps.Change{Summary: name, Apply: func(context.Context) error { return errors.New(name + " failed") }}, nil
		}}
	}
	good := steps.File{Path: filepath.Join(dir, "written"), Content: steps.Text("x\n")}
	s := steps.Together(fail("first"), good, fail("third"))
	ch, err := s.Check(context.Background(), local.New())
	if err != nil || ch == nil {
		t.Fatalf("check: %+v, %v", ch, err)
	}
	err = ch.Apply(context.Background())
	for _, want := range []string{"first failed", "third failed"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("apply: %v, want %q in it", err, want)
		}
	}
	if got := readLocal(t, good.Path); got != "x\n" {
		t.Errorf("the step between the failures wrote %q", got)
	}
}

func TestATogetherIsRefusedEmptyOrWithABadStep(t *testing.T) {
	for _, tc := range []struct {
		s    steps.Step
		want string
	}{
		{steps.Together(), "no steps"},
		{steps.Together(steps.File{Path: "relative", Content: steps.Text("")}), `step "file relative"`},
		{steps.Together(nil), "step 1 is nil"},
	} {
		if err := steps.Validate(tc.s); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%s) = %v, want %q in it", tc.s, err, tc.want)
		}
	}
}

func TestTwoUntarsTogetherKilledMidTransferLeaveNoTreeARerunTakesForDone(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"setup", "tools"} {
		os.MkdirAll(filepath.Join(dir, d), 0o755)
	}
	var untars []steps.Untar
	for _, name := range []string{"jdk", "tomcat"} {
		src := filepath.Join(t.TempDir(), name+".tgz")
		writeTarball(t, src, 4<<20, true)
		untars = append(untars, steps.Untar{Upload: &steps.Upload{Src: src, Dest: filepath.Join(dir, "setup", name+".tgz"), Mode: 0o640},
			Dest: filepath.Join(dir, "tools", name), StripComponents: 1, Creates: filepath.Join(dir, "tools", name, "bin", "java"),
			SendPlain: name == "jdk", CacheDir: t.TempDir()})
	}
	s := steps.Together(untars[0], untars[1])
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	killed := &stallingConn{Conn: local.New(), after: 1 << 20, stalled: make(chan struct{})}
	ch, err := s.Check(ctx, killed)
	if err != nil || ch == nil {
		t.Fatalf("check: %+v, %v", ch, err)
	}
	go func() {
		<-killed.stalled
		time.Sleep(200 * time.Millisecond) // tar writes what it has
		cancel()
	}()
	if err := ch.Apply(ctx); err == nil {
		t.Fatal("an apply killed mid-transfer succeeded")
	}
	for _, u := range untars {
		if _, err := os.Stat(u.Creates); err == nil {
			t.Fatalf("%s is there after a killed extract", u.Creates)
		}
	}
	again := context.Background()
	ch, err = s.Check(again, local.New())
	if err != nil || ch == nil {
		t.Fatalf("the re-run's check: %+v, %v; want both untars", ch, err)
	}
	if err := ch.Apply(again); err != nil {
		t.Fatalf("the re-run's apply: %v", err)
	}
	if ch, err := s.Check(again, local.New()); err != nil || ch != nil {
		t.Fatalf("check after the re-run: %+v, %v", ch, err)
	}
	for _, u := range untars {
		if got, want := readLocal(t, u.Upload.Dest), readLocal(t, u.Upload.Src); got != want {
			t.Errorf("%s is not its source after the re-run", u.Upload.Dest)
		}
		if fi, err := os.Stat(filepath.Join(u.Dest, "lib", "modules")); err != nil || fi.Size() != 4<<20 {
			t.Errorf("%s/lib/modules after the re-run: %v, %v", u.Dest, fi, err)
		}
	}
}
