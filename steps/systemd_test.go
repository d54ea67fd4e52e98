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
