package e2e_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cauldron-go/cauldron/configs"
	"github.com/cauldron-go/cauldron/lab"
	"github.com/cauldron-go/cauldron/runner"
)

// secretForms are the forms a secret could be read back in from an output: every form
// the config files write it in, each as a JSON string holds it, and URL-encoded.
func secretForms(s string) []string {
	var forms []string
	for _, f := range configs.SecretForms(s) {
		j, _ := json.Marshal(f)
		forms = append(forms, f, strings.Trim(string(j), `"`))
	}
	return append(forms, url.QueryEscape(s), url.PathEscape(s))
}

// trickyPasswords are database passwords that every file escapes differently: a
// backslash, a leading space, a non-ASCII letter, both quotes, '&', '<', '%'.
var trickyPasswords = [2]string{
	` a\b"ü'&<%c`,
	` Ö\\z'"&>%25 y`,
}

// TestATrickyDatabasePasswordAndItsRotationNeverShow deploys a database password with
// characters that application.properties escapes, then rotates it to another one: the
// plan of the rotation shows the password line changed, masked on both sides (the old
// password is only on the host: the run does not know it), and no form of either
// password appears in any output or report. The database answers through the chain
// after each deploy, and the lab's own password is put back at the end.
func TestATrickyDatabasePasswordAndItsRotationNeverShow(t *testing.T) {
	l := needDeployed(t)
	evidenceOnFailure(t, l)
	dir := filepath.Dir(l.SSHInventory)
	var inventories [2]string
	for i, pw := range trickyPasswords {
		name := "db_password_tricky" + string(rune('1'+i))
		if err := os.WriteFile(filepath.Join(dir, "secrets", name), []byte(pw), 0o600); err != nil {
			t.Fatal(err)
		}
		inventories[i] = variantInventory(t, l.SSHInventory, "inventory-ssh-"+name+".yaml", func(s string) string {
			return strings.Replace(s, "secrets/db_password", "secrets/"+name, 1)
		})
	}
	defer mustDeploy(t, l.SSHInventory, runner.Apply)

	noForm := func(what string, d deployRun) {
		t.Helper()
		for name, text := range map[string]string{"progress": d.progress, "report": d.json} {
			for i, pw := range trickyPasswords {
				for _, f := range secretForms(pw) {
					if strings.Contains(text, f) {
						t.Errorf("%s: the %s shows password %d in the form %q", what, name, i+1, f)
					}
				}
			}
		}
	}
	dbAnswers := func(what string) {
		t.Helper()
		for _, s := range sites(l) {
			code, _, body, err := get(s.url+"/db.json", nil)
			var a struct {
				DB string `json:"db"`
			}
			if err == nil && code == http.StatusOK {
				err = json.Unmarshal(body, &a)
			}
			if err != nil || code != http.StatusOK || a.DB != "ok" {
				t.Errorf("%s: %s /db.json: %d %v: %.300s", what, s.name, code, err, body)
			}
		}
	}

	noForm("first apply", mustDeploy(t, inventories[0], runner.Apply))
	waitWebs(t, l)
	dbAnswers("after the first password")

	plan := mustDeploy(t, inventories[1], runner.Plan)
	noForm("rotation plan", plan)
	diffs := 0
	for _, h := range plan.rep.Hosts {
		for _, s := range h.Steps {
			if !strings.HasSuffix(s.Step, "/application.properties") {
				continue
			}
			diffs++
			for _, want := range []string{"-spring.datasource.password=********\n", "+spring.datasource.password=********\n"} {
				if !strings.Contains(s.Diff, want) {
					t.Errorf("%s: %s: the diff lacks %q:\n%s", h.Host, s.Step, want, s.Diff)
				}
			}
		}
	}
	if diffs == 0 {
		t.Errorf("the rotation's plan changes no application.properties:\n%s", plan.progress)
	}

	noForm("rotation apply", mustDeploy(t, inventories[1], runner.Apply))
	waitWebs(t, l)
	dbAnswers("after the rotation")
}

// waitWebs waits until every web host's Tomcat serves again after a deploy.
func waitWebs(t *testing.T, l *lab.Lab) {
	t.Helper()
	for _, h := range webHosts(l) {
		waitTomcat(t, l, h)
	}
}

// TestNoSecretAppearsInAnyDeployOutput looks through the progress output and JSON report
// of every deploy of the run (plans, applies, the failed one) for every form of every
// secret of the inventories they used: rotated secrets are there too, since an earlier
// deploy used them. It runs last (its file sorts last).
func TestNoSecretAppearsInAnyDeployOutput(t *testing.T) {
	needLab(t)
	outputs.Lock()
	defer outputs.Unlock()
	if len(outputs.texts) == 0 || len(outputs.secrets) == 0 {
		t.Skip("no deploy ran in this test run")
	}
	checked := 0
	for i, text := range outputs.texts {
		if text == "" {
			continue
		}
		checked++
		for s := range outputs.secrets {
			for _, f := range secretForms(s) {
				if strings.Contains(text, f) {
					// The secret itself is never printed; which output and how long it is.
					t.Errorf("output %d of the run holds a form of a secret (%d characters)", i, len(s))
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("every output was empty")
	}
	t.Logf("%d outputs checked against every form of %d secrets", checked, len(outputs.secrets))
}
