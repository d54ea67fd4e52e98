package runner_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cauldron-go/cauldron/configs"
	"github.com/cauldron-go/cauldron/inventory"
	"github.com/cauldron-go/cauldron/runner"
	"github.com/cauldron-go/cauldron/steps"
	"github.com/cauldron-go/cauldron/transport"
)

// everyForm is every way a secret could be read back out of a text: the forms the
// config models write it in, each as JSON writes it too, and URL-encoded.
func everyForm(s string) []string {
	var forms []string
	for _, f := range configs.SecretForms(s) {
		j, _ := json.Marshal(f)
		forms = append(forms, f, strings.Trim(string(j), `"`))
	}
	return append(forms, url.QueryEscape(s), url.PathEscape(s))
}

// TestEveryFormOfASecretIsMaskedInProgressAndReport plans application.properties
// with a password that the file escapes, through a real steps.File without secret
// lines (so only the masker stands between the password and the output), and a step
// whose error quotes the password as JSON and in a URL.
func TestEveryFormOfASecretIsMaskedInProgressAndReport(t *testing.T) {
	for _, pw := range []string{
		`back\slash`, ` leading space`, `naïve-Ü`, `quo"te's`, `amp&<gt>%25`, `trailing\`,
		`#hash!=:`, `emoji😀`, `\u00e9-literal`, `a/b?c=d e+f`,
	} {
		t.Run(pw, func(t *testing.T) {
			props, err := (&configs.AppProperties{URL: configs.JDBCURL("db", 5432, "d"), Username: "u", Password: pw}).Render()
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "application.properties")
			quoted, _ := json.Marshal(map[string]string{"password": pw})
			var out, js bytes.Buffer
			rep, err := runner.Run(context.Background(), []runner.Play{{
				Name: "db", Hosts: hosts("web1"),
				Recipe: same(func(*inventory.Host) *steps.Recipe {
					return steps.NewRecipe("db",
						steps.File{Path: path, Content: steps.Bytes(props)},
						steps.Func{Name: "login", CheckFunc: func(context.Context, transport.Conn) (*steps.Change, error) {
							return nil, errors.New("rejected " + string(quoted) + " at postgres://u:" + url.QueryEscape(pw) + "@db/d?p=" + url.PathEscape(pw))
						}},
					)
				}),
			}}, runner.Options{Mode: runner.Plan, Dial: newDialer().Dial, Progress: &out, Secrets: []string{pw}})
			if err == nil {
				t.Fatal("the failing step did not fail the run")
			}
			if err := rep.WriteJSON(&js); err != nil {
				t.Fatal(err)
			}
			for name, text := range map[string]string{"progress": out.String(), "report": js.String(), "error": err.Error()} {
				for _, f := range everyForm(pw) {
					if strings.Contains(text, f) {
						t.Errorf("%s shows the password as %q:\n%s", name, f, text)
					}
				}
			}
			if want := "+spring.datasource.password=********\n"; !strings.Contains(out.String(), want) {
				t.Errorf("progress lacks %q:\n%s", want, out.String())
			}
		})
	}
}
