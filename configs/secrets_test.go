package configs_test

import (
	"context"
	"encoding/xml"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cauldron-go/cauldron/configs"
	"github.com/cauldron-go/cauldron/steps"
	"github.com/cauldron-go/cauldron/transport/local"
)

// nastyPasswords are database passwords that application.properties must escape.
var nastyPasswords = []string{
	`back\slash`, ` leading space`, `naïve-Ünïcode`, `quo"te's`, `amp&lt<gt>pct%`,
	`trailing\`, `#hash!=:colon`, `emoji😀tab`, `\u0041-literal`, `  two  spaces  `,
}

// secretFiles are the models that hold a secret, each built with secret s.
var secretFiles = []struct {
	name string
	// secrets the model accepts: the AJP secret and the stats password have a safe
	// alphabet, the database password takes nearly anything.
	secrets [2]string
	build   func(s string) configs.SecretFile
}{
	{"workers.properties", [2]string{"Old-AJP_secret.1", "New-AJP_secret.2"},
		func(s string) configs.SecretFile { return configs.NewWorkers(configs.NewCluster(nodes(2), s)) }},
	{"server.xml", [2]string{"Old-AJP_secret.1", "New-AJP_secret.2"},
		func(s string) configs.SecretFile {
			return configs.NewServerXML(configs.NewCluster(nodes(2), s), nodes(2)[0])
		}},
	{"haproxy.cfg", [2]string{"old&st<ats>%pw", "néw&st<ats>$pw"},
		func(s string) configs.SecretFile { return configs.NewHAProxy(cluster(2), "admin", s) }},
	{"application.properties", [2]string{`old\pw "ü" `, ` new\\pw's ü&<%`},
		func(s string) configs.SecretFile {
			return &configs.AppProperties{URL: configs.JDBCURL("10.10.0.20", 5432, "mago3d"), Username: "mago3d", Password: s}
		}},
}

func render(t *testing.T, f configs.File) string {
	t.Helper()
	b, err := f.Render()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// maskForms masks every form of every secret, longest first as the runner does, so
// that the escaped form is masked whole, not the plain one inside it.
func maskForms(text string, secrets ...string) string {
	var forms []string
	for _, s := range secrets {
		forms = append(forms, configs.SecretForms(s)...)
	}
	slices.SortStableFunc(forms, func(a, b string) int { return len(b) - len(a) })
	for _, f := range forms {
		text = strings.ReplaceAll(text, f, "********")
	}
	return text
}

// TestSecretFormsCoverEveryFormAFileWrites renders each file with two different
// secrets: once every form SecretForms gives is masked, the two files are the same, so
// no form of the secret is left in either.
func TestSecretFormsCoverEveryFormAFileWrites(t *testing.T) {
	for _, tc := range secretFiles {
		t.Run(tc.name, func(t *testing.T) {
			a, b := render(t, tc.build(tc.secrets[0])), render(t, tc.build(tc.secrets[1]))
			if a == b {
				t.Fatal("the secret does not change the file")
			}
			if ma, mb := maskForms(a, tc.secrets[0]), maskForms(b, tc.secrets[1]); ma != mb {
				t.Errorf("a form of the secret is left after masking:\n%s\n---\n%s", ma, mb)
			}
		})
	}
	for _, pw := range nastyPasswords {
		t.Run("application.properties/"+pw, func(t *testing.T) {
			p := func(s string) string {
				return render(t, &configs.AppProperties{URL: configs.JDBCURL("db", 5432, "d"), Username: "u", Password: s})
			}
			if a, b := maskForms(p(pw), pw), maskForms(p("x"), "x"); a != b {
				t.Errorf("a form of %q is left after masking:\n%s", pw, a)
			}
		})
	}
}

// TestSecretFormsIncludeWhatEncodingXMLWrites checks the XML form against a Connector
// encoded by itself: the model's Validate keeps such an AJP secret out of server.xml,
// but a Connector a user encodes carries it escaped.
func TestSecretFormsIncludeWhatEncodingXMLWrites(t *testing.T) {
	for _, s := range nastyPasswords {
		b, err := xml.Marshal(configs.Connector{Port: 8009, Protocol: configs.ProtocolAJP, Secret: s})
		if err != nil {
			t.Fatal(err)
		}
		if got := maskForms(string(b), s); !strings.Contains(got, `secret="********"`) {
			t.Errorf("%q: the Connector's secret is not masked: %s", s, got)
		}
	}
}

func TestSecretFormsOfNothingIsNothing(t *testing.T) {
	if f := configs.SecretForms(""); len(f) != 0 {
		t.Errorf("SecretForms(\"\") = %q, want none", f)
	}
}

// TestARotatedSecretIsMaskedOnBothSidesOfTheDiff puts the file with the old secret on
// the (local) host and checks it against the file with the new one: the diff shows
// the secret lines changed, with the value masked on both sides, and nothing else
// hidden. The run knows neither secret here: the lines alone say what to mask.
func TestARotatedSecretIsMaskedOnBothSidesOfTheDiff(t *testing.T) {
	for _, tc := range secretFiles {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, tc.name)
			oldFile, newFile := tc.build(tc.secrets[0]), tc.build(tc.secrets[1])
			if err := os.WriteFile(p, []byte(render(t, oldFile)), 0o600); err != nil {
				t.Fatal(err)
			}
			f := steps.File{Path: p, Content: steps.Text(render(t, newFile)), SecretLines: newFile.SecretLines()}
			if err := steps.Validate(f); err != nil {
				t.Fatal(err)
			}
			ch, err := f.Check(context.Background(), local.New())
			if err != nil {
				t.Fatal(err)
			}
			if ch == nil {
				t.Fatal("no change for a rotated secret")
			}
			diff := strings.ReplaceAll(ch.Diff, dir, "/dir")
			for _, s := range tc.secrets {
				for _, form := range configs.SecretForms(s) {
					if strings.Contains(diff, form) {
						t.Errorf("the diff shows the secret %q as %q", s, form)
					}
				}
			}
			golden(t, filepath.Join("rotation", tc.name+".diff"), []byte(diff))
		})
	}
}

// TestASecretLineMasksOnlyTheValue diffs hand-written lines in the other forms a file
// may hold them in (another quote, spacing, separator): only the value is masked.
func TestASecretLineMasksOnlyTheValue(t *testing.T) {
	for _, tc := range []struct {
		name      string
		file      configs.SecretFile
		have      string
		wantShown string
	}{
		{"properties with a colon", &configs.AppProperties{}, "spring.datasource.password : hunter2\n", "-spring.datasource.password : ********\n"},
		{"properties with a blank", &configs.AppProperties{}, "  spring.datasource.password hunter2\n", "-  spring.datasource.password ********\n"},
		{"properties, other keys stay", &configs.AppProperties{}, "spring.datasource.username=hunter2\n", "-spring.datasource.username=hunter2\n"},
		{"xml in single quotes", &configs.ServerXML{}, "<Connector secret='hunter2' secretRequired=\"true\" port=\"8009\"/>\n", "-<Connector secret='********' secretRequired=\"true\" port=\"8009\"/>\n"},
		{"xml, two on a line", &configs.ServerXML{}, `<A secret="hunter2"/><B secret = "hunter3"/>` + "\n", `-<A secret="********"/><B secret = "********"/>` + "\n"},
		{"workers with blanks", &configs.Workers{}, "worker.user1.secret = hunter2  \n", "-worker.user1.secret = ********  \n"},
		{"haproxy quoted", &configs.HAProxy{}, "    stats auth admin:\"hun ter2\" # old\n", "-    stats auth admin:******** # old\n"},
		{"haproxy escaped", &configs.HAProxy{}, "    stats auth admin:hun\\ ter2\n", "-    stats auth admin:********\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "f")
			if err := os.WriteFile(p, []byte(tc.have), 0o600); err != nil {
				t.Fatal(err)
			}
			ch, err := steps.File{Path: p, Content: steps.Text(""), SecretLines: tc.file.SecretLines()}.Check(context.Background(), local.New())
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(ch.Diff, tc.wantShown) {
				t.Errorf("the diff lacks %q:\n%s", tc.wantShown, ch.Diff)
			}
		})
	}
}
