package e2e_test

import (
	"bytes"
	"context"
	"io/fs"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cauldron-go/cauldron"
	"github.com/cauldron-go/cauldron/lab"
	"github.com/cauldron-go/cauldron/runner"
)

// TestNginxInPlaceOfApacheServesTheCluster is the per-cluster choice web_server: nginx,
// on a lab of its own.
func TestNginxInPlaceOfApacheServesTheCluster(t *testing.T) {
	l, dockerInv := upNginxLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	sshInv := variantInventory(t, l.SSHInventory, "inventory-ssh-nginx.yaml", toNginx)

	d := mustDeploy(t, dockerInv, runner.Apply)
	t.Logf("nginx lab deploy: %d changes in %s", d.rep.Changed(), d.rep.Duration.Round(time.Second))
	vars := clusterVars(t, dockerInv)
	for _, h := range webHosts(l) {
		if out, err := hostOutput(ctx, l, h, "systemctl is-active nginx.service && ! systemctl is-active apache2.service"); err != nil {
			t.Errorf("%s: nginx, and not apache, should run: %v\n%s", h, err, out)
		}
		waitHAProxy(t, l, vars, h, "UP", 2*time.Minute)
	}

	t.Run("both sites answer from every node", func(t *testing.T) {
		checkEveryNodeServes(t, l)
	})

	t.Run("nginx serves the static files itself", func(t *testing.T) {
		want, err := fs.ReadFile(cauldron.AppSources(), "demo/static/app.css")
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range sites(l) {
			code, header, body, err := get(s.url+"/static/app.css", nil)
			if err != nil || code != http.StatusOK {
				t.Fatalf("%s /static/app.css: %d %v", s.name, code, err)
			}
			if !bytes.Equal(body, want) {
				t.Errorf("%s /static/app.css is not the app's file:\n%s", s.name, body)
			}
			if server := header.Get("Server"); !strings.HasPrefix(server, "nginx") {
				t.Errorf("%s /static/app.css: Server %q, want nginx", s.name, server)
			}
		}
	})

	t.Run("a session goes on when one node's Tomcat stops", func(t *testing.T) {
		b := newBrowser(sites(l)[0])
		b.mustSession(t)
		last := changesBeforeStop(t, b)
		host := hostOfRoute(t, last.Node)
		mustHost(t, l, host, "systemctl stop mago3d-tomcat")
		t.Cleanup(func() {
			mustHost(t, l, host, "systemctl start mago3d-tomcat")
			waitTomcat(t, l, host)
		})
		// Nginx keeps no stickiness: every answer must now come from the other nodes,
		// the counter going on, without a single error (proxy_next_upstream).
		for range 6 {
			a, err := b.session()
			if err != nil {
				t.Fatalf("with %s's Tomcat stopped: %v", host, err)
			}
			if a.Count != last.Count+1 || hostOfRoute(t, a.Node) == host {
				t.Errorf("with %s's Tomcat stopped: %+v after count %d", host, a, last.Count)
			}
			last = a
		}
	})

	t.Run("a second deploy over SSH changes nothing", func(t *testing.T) {
		d := mustDeploy(t, sshInv, runner.Apply)
		if d.rep.Changed() != 0 || len(handlerRuns(d.rep)) != 0 {
			t.Errorf("the second deploy changed %v, handlers %v\n%s", changedSteps(d.rep), handlerRuns(d.rep), d.progress)
		}
	})
}

// toNginx turns a lab inventory into the same cluster with Nginx in place of Apache.
func toNginx(s string) string {
	return strings.Replace(s, "web_server: apache", "web_server: nginx", 1)
}

// upNginxLab brings up the Nginx lab (nginxOptions, a lab of its own) and returns it
// with its docker inventory turned to web_server: nginx; a failing test shows the lab's
// evidence.
func upNginxLab(t *testing.T) (*lab.Lab, string) {
	t.Helper()
	needLab(t) // the Docker engine answers
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	l, err := lab.Up(ctx, nginxOptions)
	if err != nil {
		t.Fatalf("lab %s: %v\n%s", nginxOptions.Name, err, labLog.String())
	}
	evidenceOnFailure(t, l)
	return l, variantInventory(t, l.DockerInventory, "inventory-docker-nginx.yaml", toNginx)
}

// deployAndWaitUp deploys inv onto l and waits until HAProxy has every web host UP.
func deployAndWaitUp(t *testing.T, l *lab.Lab, inv string) {
	t.Helper()
	mustDeploy(t, inv, runner.Apply)
	vars := clusterVars(t, inv)
	for _, h := range webHosts(l) {
		waitHAProxy(t, l, vars, h, "UP", 2*time.Minute)
	}
}
