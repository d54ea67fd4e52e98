package recipes_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"

	"github.com/cauldron-go/cauldron/configs"
	"github.com/cauldron-go/cauldron/recipes"
	"github.com/cauldron-go/cauldron/steps"
	"github.com/cauldron-go/cauldron/transport/local"
)

// exampleCluster is the runbook's two web nodes.
func exampleCluster() configs.Cluster {
	return configs.NewCluster([]configs.Node{
		{Name: "web1", Address: "10.0.0.11", Index: 1},
		{Name: "web2", Address: "10.0.0.12", Index: 2},
	}, "an-ajp-secret-from-a-file")
}

// WriteServerXML writes the server.xml a typed model describes: here the cluster's
// own for web1, with one value changed the way a user describes their own server
// (any field of configs.ServerXML can be set, or the whole model written by hand). It
// runs on this machine, in a temporary Tomcat folder; a second run changes nothing.
func ExampleWriteServerXML() {
	home, err := os.MkdirTemp("", "cauldron-tomcat-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(home)
	if err := os.Mkdir(filepath.Join(home, "conf"), 0o755); err != nil {
		log.Fatal(err)
	}

	c := exampleCluster()
	x := configs.NewServerXML(c, c.Nodes[0])
	x.Shutdown = "SHUTDOWN-web1" // the user's own choice: any field of the model
	write := recipes.WriteServerXML(home, x, "")
	for range 2 {
		changed, err := steps.Converge(context.Background(), local.New(), write)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("changed:", changed)
	}
	b, err := os.ReadFile(filepath.Join(home, "conf", "server.xml"))
	if err != nil {
		log.Fatal(err)
	}
	for _, want := range []string{`shutdown="SHUTDOWN-web1"`, `jvmRoute="admin1"`, `jvmRoute="user1"`} {
		fmt.Println(want, strings.Contains(string(b), want))
	}

	// A model Tomcat would not start with is refused before anything connects.
	x.Services[1].Connectors[0].Port = x.Services[0].Connectors[0].Port
	fmt.Println("valid:", steps.Validate(recipes.WriteServerXML(home, x, "")) == nil)
	// Output:
	// changed: true
	// changed: false
	// shutdown="SHUTDOWN-web1" true
	// jvmRoute="admin1" true
	// jvmRoute="user1" true
	// valid: false
}

// NullCatalinaOut edits one line of bin/catalina.sh, the one that sets CATALINA_OUT,
// as the runbook does by hand; every other line stays.
func ExampleNullCatalinaOut() {
	home, err := os.MkdirTemp("", "cauldron-tomcat-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(home)
	catalina := filepath.Join(home, "bin", "catalina.sh")
	if err := os.MkdirAll(filepath.Dir(catalina), 0o755); err != nil {
		log.Fatal(err)
	}
	// The lines of Tomcat 10.1's catalina.sh around the setting.
	if err := os.WriteFile(catalina, []byte("#!/bin/sh\nif [ -z \"$CATALINA_OUT\" ] ; then\n"+
		"  CATALINA_OUT=\"$CATALINA_BASE\"/logs/catalina.out\nfi\n"), 0o750); err != nil {
		log.Fatal(err)
	}

	s := recipes.NullCatalinaOut(home)
	if _, err := steps.Converge(context.Background(), local.New(), s); err != nil {
		log.Fatal(err)
	}
	b, err := os.ReadFile(catalina)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(string(b))
	// Output:
	// #!/bin/sh
	// if [ -z "$CATALINA_OUT" ] ; then
	//   CATALINA_OUT=/dev/null
	// fi
}

// ConfigureHAProxy is the load balancer's recipe: the package, haproxy.cfg from the
// typed model (checked with haproxy -c before it replaces the working one) and a
// reload only when it changed. The model is configs.NewHAProxy's, or your own.
func ExampleConfigureHAProxy() {
	cfg := configs.NewHAProxy(exampleCluster(), "admin", "a-stats-password-from-a-file")
	cfg.Defaults.Extra = append(cfg.Defaults.Extra, "option dontlognull")
	r, err := recipes.ConfigureHAProxy(cfg)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("valid:", r.Validate() == nil)
	for _, s := range r.Steps() {
		fmt.Println(s, steps.Notified(s))
	}
	for _, h := range r.Handlers() {
		fmt.Println("handler", h.Name+":", h.Step)
	}
	// Output:
	// valid: true
	// packages haproxy []
	// file /etc/haproxy/haproxy.cfg [reload haproxy]
	// service haproxy.service []
	// handler reload haproxy: reload haproxy.service and wait until it listens on its ports
}
