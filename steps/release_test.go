package steps_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cauldron-go/cauldron/steps"
)

// releaseHost sets up /srv/rel on the host: a config file and a unit "rel-app" that
// runs in the folder the config names (as Tomcat runs from the docBase it read at
// start), and returns the step for release r and a function that restarts the unit.
func releaseHost(t *testing.T) (step func(release string) steps.SwitchRelease, restart func(release string)) {
	t.Helper()
	needHost(t)
	sh(t, "systemctl stop rel-app 2>/dev/null; systemctl reset-failed rel-app 2>/dev/null; rm -rf /srv/rel; mkdir -p /srv/rel/source")
	t.Cleanup(func() {
		sh(t, "systemctl stop rel-app 2>/dev/null; systemctl reset-failed rel-app 2>/dev/null; rm -rf /srv/rel")
	})
	step = func(release string) steps.SwitchRelease {
		return steps.SwitchRelease{Link: "/srv/rel/source/app", Release: release, Unit: "rel-app", Config: "/srv/rel/server.conf", Owner: "daemon", Group: "daemon"}
	}
	restart = func(release string) {
		t.Helper()
		sh(t, "systemctl stop rel-app 2>/dev/null; systemctl reset-failed rel-app 2>/dev/null; "+
			"systemd-run --quiet --unit=rel-app --working-directory=/srv/rel/source/app@"+release+" sleep infinity")
	}
	return step, restart
}

// unpacked makes each release's folder, as UnpackWAR would.
func unpacked(t *testing.T, releases ...string) {
	t.Helper()
	for _, r := range releases {
		sh(t, "mkdir -p /srv/rel/source/app@"+r+" && echo "+r+" > /srv/rel/source/app@"+r+"/index.jsp")
	}
}

// configure writes the config naming release, later than any start before it by more
// than the check's resolution (10 ms).
func configure(t *testing.T, release string) {
	t.Helper()
	time.Sleep(100 * time.Millisecond)
	sh(t, "echo docBase=/srv/rel/source/app@"+release+" > /srv/rel/server.conf")
}

func layout(t *testing.T) string {
	t.Helper()
	return sh(t, `cd /srv/rel/source && for f in .[!.]* *; do [ -e "$f" ] || [ -L "$f" ] || continue; if [ -L "$f" ]; then echo "$f -> $(readlink "$f") $(stat -c %U "$f")"; else echo "$f"; fi; done`)
}

func TestAReleaseIsSwitchedOnlyOnceTheServiceRunsItAndOnlyThePreviousOneIsKept(t *testing.T) {
	step, restart := releaseHost(t)
	unpacked(t, "aaa")
	configure(t, "aaa")
	restart("aaa")
	converges(t, step("aaa"))
	if got, want := layout(t), "app -> app@aaa daemon\napp@aaa\n"; got != want {
		t.Fatalf("after the first release:\n%s\nwant\n%s", got, want)
	}

	// The next release is unpacked and configured; the service still runs the first.
	unpacked(t, "bbb")
	configure(t, "bbb")
	if _, err := step("bbb").Check(context.Background(), host); err == nil || !strings.Contains(err.Error(), "started before /srv/rel/server.conf was last written") {
		t.Fatalf("a switch before the restart: %v, want a refusal naming the configuration", err)
	}
	restart("bbb")
	converges(t, step("bbb"))
	if got, want := layout(t), "app -> app@bbb daemon\napp.previous -> app@aaa daemon\napp@aaa\napp@bbb\n"; got != want {
		t.Fatalf("after the second release:\n%s\nwant\n%s", got, want)
	}

	// A third: the first goes, with an unpack's leftover; the second is the previous.
	unpacked(t, "ccc")
	sh(t, "mkdir /srv/rel/source/.app@ddd.cauldron-x1Y2z3")
	configure(t, "ccc")
	restart("ccc")
	ch := converges(t, step("ccc"))
	contains(t, "the change", ch.Summary, "remove app@aaa")
	if got, want := layout(t), "app -> app@ccc daemon\napp.previous -> app@bbb daemon\napp@bbb\napp@ccc\n"; got != want {
		t.Fatalf("after the third release:\n%s\nwant\n%s", got, want)
	}

	// Back to the second, still there: the third is the previous now, nothing goes.
	configure(t, "bbb")
	restart("bbb")
	converges(t, step("bbb"))
	if got, want := layout(t), "app -> app@bbb daemon\napp.previous -> app@ccc daemon\napp@bbb\napp@ccc\n"; got != want {
		t.Fatalf("after the roll back:\n%s\nwant\n%s", got, want)
	}
}

func TestAStoppedServiceLetsTheReleaseSwitchAndAMissingReleaseFolderIsAnError(t *testing.T) {
	step, _ := releaseHost(t)
	unpacked(t, "aaa")
	configure(t, "aaa")
	converges(t, step("aaa")) // the unit does not run: nothing serves any release
	if _, err := step("zzz").Check(context.Background(), host); err == nil || !strings.Contains(err.Error(), "app@zzz is not there") {
		t.Fatalf("a switch to a release never unpacked: %v, want an error naming its folder", err)
	}
}

// An app folder from before releases had folders of their own (the runbook's, or an
// earlier cauldron's) is what ran: it becomes the previous release, named by its
// marker's sum, or it goes when that release is the one unpacked now.
func TestTheAppFolderOfTheOldLayoutBecomesThePreviousRelease(t *testing.T) {
	for _, c := range []struct {
		name, marker, release, want string
	}{
		{"another WAR", "fedcba9876543210", "aaa", "app -> app@aaa daemon\napp.previous -> app@fedcba987654 daemon\napp@aaa\napp@fedcba987654\n"},
		{"the same WAR", "0123456789abcdef", "0123456789ab", "app -> app@0123456789ab daemon\napp@0123456789ab\n"},
		{"no marker", "", "aaa", "app -> app@aaa daemon\napp.previous -> app@unpacked-by-hand daemon\napp@aaa\napp@unpacked-by-hand\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			step, restart := releaseHost(t)
			sh(t, "mkdir /srv/rel/source/app && echo old > /srv/rel/source/app/index.jsp")
			if c.marker != "" {
				sh(t, "echo "+c.marker+" > /srv/rel/source/app/.cauldron-war.sha256")
			}
			unpacked(t, c.release)
			configure(t, c.release)
			restart(c.release)
			converges(t, step(c.release))
			if got := layout(t); got != c.want {
				t.Fatalf("got\n%s\nwant\n%s", got, c.want)
			}
		})
	}
}
