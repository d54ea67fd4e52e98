package steps_test

import (
	"context"
	"strings"
	"testing"

	"github.com/cauldron-go/cauldron/steps"
)

func TestSystemdUnitReloadsOnlyWhenChangedAndServiceKeepsItRunning(t *testing.T) {
	needHost(t)
	ctx := context.Background()
	unit := func(desc string) steps.InstallUnit {
		return steps.InstallUnit{Name: "cauldron-sleep.service", Content: steps.Text(
			"[Unit]\nDescription=" + desc + "\n\n[Service]\nExecStart=/bin/sleep infinity\n\n[Install]\nWantedBy=multi-user.target\n")}
	}
	svc := steps.Service{Name: "cauldron-sleep.service", Enabled: new(true), State: steps.Started}
	needReload := func() string {
		return strings.TrimSpace(sh(t, "systemctl show -p NeedDaemonReload cauldron-sleep.service"))
	}

	contains(t, "summary", converges(t, unit("first")).Summary, "daemon-reload")
	contains(t, "summary", converges(t, svc).Summary, "enable and start")
	if got := sh(t, "systemctl is-enabled cauldron-sleep.service; systemctl is-active cauldron-sleep.service"); got != "enabled\nactive\n" {
		t.Fatalf("got %q", got)
	}

	// Writing the unit by hand leaves systemd wanting a reload: the step must do it.
	sh(t, "sed -i s/first/by-hand/ /etc/systemd/system/cauldron-sleep.service")
	if got := needReload(); got != "NeedDaemonReload=yes" {
		t.Fatalf("after a change by hand: %q", got)
	}
	ch := converges(t, unit("second"))
	contains(t, "diff", ch.Diff, "+Description=second")
	if got := needReload(); got != "NeedDaemonReload=no" {
		t.Fatalf("after the step: %q", got)
	}
	contains(t, "description", sh(t, "systemctl show -p Description cauldron-sleep.service"), "second")

	changed, err := steps.Converge(ctx, host, steps.Restart{Name: "cauldron-sleep"})
	if err != nil || !changed {
		t.Fatalf("restart: %v %v", changed, err)
	}
	changed, err = steps.Converge(ctx, host, steps.Reload{Name: "cauldron-sleep.service"})
	if err == nil || changed {
		t.Fatalf("reload of a service without ExecReload: %v %v", changed, err)
	}

	sh(t, "systemctl stop cauldron-sleep.service && systemctl disable cauldron-sleep.service 2>/dev/null")
	contains(t, "summary", converges(t, svc).Summary, "enable and start")

	stopped := steps.Service{Name: "cauldron-sleep.service", Enabled: new(false), State: steps.Stopped}
	contains(t, "summary", converges(t, stopped).Summary, "disable and stop")
	if got := sh(t, "systemctl is-enabled cauldron-sleep.service; systemctl is-active cauldron-sleep.service || true"); got != "disabled\ninactive\n" {
		t.Fatalf("got %q", got)
	}
}

func TestEnablingAServiceWhoseUnitSystemdHasAsOnDiskCostsNoDaemonReload(t *testing.T) {
	needHost(t)
	unit := func(name, desc string) steps.InstallUnit {
		return steps.InstallUnit{Name: name, Content: steps.Text(
			"[Unit]\nDescription=" + desc + "\n\n[Service]\nExecStart=/bin/sleep infinity\n\n[Install]\nWantedBy=multi-user.target\n")}
	}
	needReload := func(name string) string {
		return strings.TrimSpace(sh(t, "systemctl show -p NeedDaemonReload "+name))
	}
	t.Cleanup(func() {
		sh(t, "systemctl disable --now cauldron-noreload.service cauldron-witness.service 2>/dev/null; "+
			"rm -f /etc/systemd/system/cauldron-noreload.service /etc/systemd/system/cauldron-witness.service; systemctl daemon-reload")
	})
	converges(t, unit("cauldron-noreload.service", "installed"))
	converges(t, unit("cauldron-witness.service", "first"))
	// A witness: a running unit changed by hand keeps NeedDaemonReload=yes until systemd
	// reloads (one not running is unloaded, then read afresh when asked).
	sh(t, "systemctl start cauldron-witness.service && sed -i s/first/by-hand/ /etc/systemd/system/cauldron-witness.service")
	if got := needReload("cauldron-witness.service"); got != "NeedDaemonReload=yes" {
		t.Fatalf("the witness after a change by hand: %q", got)
	}

	svc := steps.Service{Name: "cauldron-noreload", Enabled: new(true), State: steps.Started}
	contains(t, "summary", converges(t, svc).Summary, "enable and start")
	if got := sh(t, "systemctl is-enabled cauldron-noreload.service; systemctl is-active cauldron-noreload.service"); got != "enabled\nactive\n" {
		t.Fatalf("got %q", got)
	}
	if got := needReload("cauldron-witness.service"); got != "NeedDaemonReload=yes" {
		t.Errorf("enabling a unit systemd had as on disk reloaded systemd: the witness says %q", got)
	}

	// A unit changed on disk unseen: enable reloads, and the unit started is the one on disk.
	sh(t, "systemctl disable --now cauldron-noreload.service 2>/dev/null; sed -i s/installed/by-hand/ /etc/systemd/system/cauldron-noreload.service")
	contains(t, "summary", converges(t, svc).Summary, "enable and start")
	contains(t, "description", sh(t, "systemctl show -p Description cauldron-noreload.service"), "by-hand")
	if got := needReload("cauldron-noreload.service"); got != "NeedDaemonReload=no" {
		t.Errorf("after enabling a unit changed on disk: %q", got)
	}
}

func TestInstallingAUnitSystemdDoesNotHaveYetCostsNoDaemonReload(t *testing.T) {
	needHost(t)
	unit := func(name, desc string) steps.InstallUnit {
		return steps.InstallUnit{Name: name, Content: steps.Text(
			"[Unit]\nDescription=" + desc + "\n\n[Service]\nExecStart=/bin/sleep infinity\n\n[Install]\nWantedBy=multi-user.target\n")}
	}
	show := func(name string) string {
		return strings.TrimSpace(sh(t, "systemctl show -p LoadState -p NeedDaemonReload -p Description "+name))
	}
	t.Cleanup(func() {
		sh(t, "systemctl disable --now cauldron-brandnew.service cauldron-witness2.service 2>/dev/null; "+
			"rm -f /etc/systemd/system/cauldron-brandnew.service /etc/systemd/system/cauldron-witness2.service; systemctl daemon-reload")
	})
	converges(t, unit("cauldron-witness2.service", "first"))
	// The witness: a running unit changed by hand keeps NeedDaemonReload=yes until
	// systemd reloads.
	sh(t, "systemctl start cauldron-witness2.service && sed -i s/first/by-hand/ /etc/systemd/system/cauldron-witness2.service")
	if got := show("cauldron-witness2.service"); !strings.Contains(got, "NeedDaemonReload=yes") {
		t.Fatalf("the witness after a change by hand: %q", got)
	}
	// Asked about before its file exists, as a check made ahead does.
	if got := show("cauldron-brandnew.service"); !strings.Contains(got, "LoadState=not-found") {
		t.Fatalf("the new unit before it is installed: %q", got)
	}
	contains(t, "summary", converges(t, unit("cauldron-brandnew.service", "brand new")).Summary, "daemon-reload")
	got := show("cauldron-brandnew.service")
	for _, want := range []string{"LoadState=loaded", "NeedDaemonReload=no", "Description=brand new"} {
		contains(t, "the new unit", got, want)
	}
	if got := show("cauldron-witness2.service"); !strings.Contains(got, "NeedDaemonReload=yes") {
		t.Errorf("installing a unit systemd did not have reloaded systemd: the witness says %q", got)
	}
	svc := steps.Service{Name: "cauldron-brandnew", Enabled: new(true), State: steps.Started}
	contains(t, "summary", converges(t, svc).Summary, "enable and start")
	if got := sh(t, "systemctl is-enabled cauldron-brandnew.service; systemctl is-active cauldron-brandnew.service"); got != "enabled\nactive\n" {
		t.Fatalf("got %q", got)
	}
	// A change to a unit systemd has loaded still reloads.
	converges(t, unit("cauldron-brandnew.service", "changed"))
	contains(t, "the changed unit", show("cauldron-brandnew.service"), "Description=changed")
	if got := show("cauldron-witness2.service"); !strings.Contains(got, "NeedDaemonReload=no") {
		t.Errorf("a changed unit did not reload systemd: the witness says %q", got)
	}
}

// A converged cluster re-check runs a Service check on every host: it starts one
// systemctl, not one each for is-enabled, is-active and NeedDaemonReload (each costs
// the host about 5 ms of CPU, systemd's share included). A wrapper in front of the
// real systemctl, first on the PATH, counts the calls.
func TestAServiceCheckStartsOneSystemctl(t *testing.T) {
	needHost(t)
	sh(t, `cat > /usr/local/sbin/systemctl <<'EOS'
#!/bin/sh
echo x >> /tmp/cauldron-systemctl-calls
exec /usr/bin/systemctl "$@"
EOS
chmod 0755 /usr/local/sbin/systemctl; rm -f /tmp/cauldron-systemctl-calls`)
	t.Cleanup(func() { sh(t, "rm -f /usr/local/sbin/systemctl /tmp/cauldron-systemctl-calls") })
	for _, tc := range []struct {
		name string
		step steps.Service
		want string // "" for converged, else a word of the summary
	}{
		{"a running enabled service", steps.Service{Name: "dbus", Enabled: new(true), State: steps.Started}, ""},
		{"a missing service", steps.Service{Name: "cauldron-nosuch", Enabled: new(true), State: steps.Started}, "enable and start"},
		{"a missing service, wanted stopped", steps.Service{Name: "cauldron-nosuch", Enabled: new(false), State: steps.Stopped}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sh(t, "rm -f /tmp/cauldron-systemctl-calls")
			ch := check(t, tc.step)
			switch {
			case tc.want == "" && ch != nil:
				t.Errorf("check found a change: %s", ch.Summary)
			case tc.want != "" && ch == nil:
				t.Errorf("check found no change, want %q", tc.want)
			case tc.want != "":
				contains(t, "summary", ch.Summary, tc.want)
			}
			if got := strings.Count(sh(t, "cat /tmp/cauldron-systemctl-calls 2>/dev/null; true"), "x"); got != 1 {
				t.Errorf("the check ran systemctl %d times, want 1", got)
			}
		})
	}
}
