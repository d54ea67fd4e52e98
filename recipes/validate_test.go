package recipes_test

import (
	"context"
	"strings"
	"testing"

	"github.com/cauldron-go/cauldron/lab"
	"github.com/cauldron-go/cauldron/recipes"
	"github.com/cauldron-go/cauldron/steps"
	"github.com/cauldron-go/cauldron/transport"
)

// A web server's config file is checked by the server's own test, with the rest of the
// live configuration, before it goes live: a broken one fails its step with the
// server's message and the working file stays; a good one replaces it.
func TestABrokenWebServerConfigNeverReplacesTheWorkingOne(t *testing.T) {
	if testing.Short() {
		t.Skip("installs Apache and Nginx on a container: runs without -short")
	}
	cases := []struct {
		server, pkg, rel string
		file             func(rel string, c steps.Content) steps.File
		good, bad        string
		message          string
	}{
		{"apache", "apache2", "conf-available/cauldron-test.conf", recipes.ApacheConfigFile,
			"ServerSignature Off\n", "ServerSignature Sometimes\n", "ServerSignature"},
		{"nginx", "nginx", "conf.d/cauldron-test.conf", recipes.NginxConfigFile,
			"server_tokens off;\n", "server_tokens sometimes;\n", `invalid value "sometimes"`},
	}
	for _, tc := range cases {
		t.Run(tc.server, func(t *testing.T) {
			ctx := context.Background()
			c, remove, err := lab.ScratchHost(ctx, "cauldron-test-recipes-"+tc.server)
			if err != nil {
				t.Fatal(err)
			}
			defer remove()
			// A plan for the bare host cannot check the file yet, and says so.
			if ch, err := tc.file(tc.rel, steps.Text(tc.good)).Check(ctx, c); err != nil || ch == nil || !strings.Contains(ch.Summary, "not validated: "+tc.pkg) {
				t.Fatalf("plan on a bare host: %v %+v", err, ch)
			}
			if _, err := steps.Converge(ctx, c, steps.Packages{Names: []string{tc.pkg}}); err != nil {
				t.Fatal(err)
			}
			if tc.server == "apache" {
				// conf-available is only read once enabled: enable it, as the recipes do with theirs.
				if _, err := transport.Output(ctx, c, "ln -s ../conf-available/cauldron-test.conf /etc/apache2/conf-enabled/"); err != nil {
					t.Fatal(err)
				}
			}
			good := tc.file(tc.rel, steps.Text(tc.good))
			if _, err := steps.Converge(ctx, c, good); err != nil {
				t.Fatalf("a good file was refused: %v", err)
			}
			// A plan runs the server's test on a copy and says what it rejects.
			if _, err := tc.file(tc.rel, steps.Text(tc.bad)).Check(ctx, c); err == nil || !strings.Contains(err.Error(), tc.message) {
				t.Fatalf("the plan of a broken file: got %v, want the server's message (%s)", err, tc.message)
			}
			if live, err := c.Read(ctx, good.Path); err != nil || string(live) != tc.good {
				t.Fatalf("after the plan the working file is %q (%v)", live, err)
			}
			_, err = steps.Converge(ctx, c, tc.file(tc.rel, steps.Text(tc.bad)))
			if err == nil || !strings.Contains(err.Error(), tc.message) {
				t.Fatalf("a broken file: got %v, want the server's message (%s)", err, tc.message)
			}
			if live, err := c.Read(ctx, good.Path); err != nil || string(live) != tc.good {
				t.Fatalf("the working file is now %q (%v)", live, err)
			}
		})
	}
}
