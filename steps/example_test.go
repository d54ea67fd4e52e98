package steps_test

import (
	"fmt"

	"github.com/cauldron-go/cauldron/steps"
)

// A recipe is plain Go: the steps in order, and a handler that runs once, after them,
// when the unit or its configuration changed.
func ExampleNewRecipe() {
	r := steps.NewRecipe("sleeper",
		steps.Packages{Names: []string{"tree"}},
		steps.User{Name: "sleeper", Shell: "/usr/sbin/nologin"},
	).Add(
		steps.Dir{Path: "/etc/sleeper", Mode: 0o750, Owner: "root", Group: "sleeper"},
		steps.Notify(steps.File{Path: "/etc/sleeper/sleeper.conf", Content: steps.Text("seconds=60\n"), Mode: 0o640, Group: "sleeper"}, "restart sleeper"),
		steps.Notify(steps.SystemdUnit{Name: "sleeper.service", Content: steps.Text("[Service]\nUser=sleeper\nExecStart=/bin/sleep infinity\n")}, "restart sleeper"),
		steps.Service{Name: "sleeper.service", Enabled: new(true), State: steps.Started},
	).Handle("restart sleeper", steps.Restart{Name: "sleeper.service"})

	fmt.Println("valid:", r.Validate() == nil)
	for _, s := range r.Steps() {
		fmt.Println(s)
	}
	for _, h := range r.Handlers() {
		fmt.Println("handler", h.Name+":", h.Step)
	}
	// Output:
	// valid: true
	// packages tree
	// user sleeper
	// dir /etc/sleeper
	// file /etc/sleeper/sleeper.conf
	// systemd unit sleeper.service
	// service sleeper.service
	// handler restart sleeper: restart sleeper.service
}
