package runner

import (
	"bytes"
	"cmp"
	"encoding/json"
	"net/url"
	"slices"
	"strings"

	"github.com/cauldron-go/cauldron/configs"
	"github.com/cauldron-go/cauldron/steps"
)

// masked is what a secret becomes in anything the runner prints or reports.
const masked = steps.Masked

// masker replaces every form of every secret by masked.
type masker struct{ r *strings.Replacer }

func newMasker(secrets []string) masker {
	seen := map[string]bool{}
	var forms []string
	for _, s := range secrets {
		for _, f := range secretForms(s) {
			if !seen[f] {
				seen[f] = true
				forms = append(forms, f)
			}
		}
	}
	// Longest first, so that a form containing another is masked whole.
	slices.SortStableFunc(forms, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	var pairs []string
	for _, f := range forms {
		pairs = append(pairs, f, masked)
	}
	return masker{r: strings.NewReplacer(pairs...)}
}

// secretForms are the forms in which s may reach a line the runner prints: every form
// the config models write it in (configs.SecretForms), each also as it reads inside a
// JSON string (a diff of a JSON file), and URL-encoded (a URL in a message).
func secretForms(s string) []string {
	var forms []string
	for _, f := range configs.SecretForms(s) {
		forms = append(forms, f, jsonString(f, true), jsonString(f, false))
	}
	if s != "" {
		forms = append(forms, url.QueryEscape(s), url.PathEscape(s))
	}
	return slices.DeleteFunc(forms, func(f string) bool { return f == "" })
}

// jsonString is s as encoding/json writes it between a string's quotes, with '<', '>'
// and '&' escaped (escapeHTML, the encoder's default) or not.
func jsonString(s string, escapeHTML bool) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(escapeHTML)
	if err := enc.Encode(s); err != nil {
		return ""
	}
	out := strings.TrimSuffix(b.String(), "\n")
	return strings.TrimSuffix(strings.TrimPrefix(out, `"`), `"`)
}

func (m masker) String(s string) string { return m.r.Replace(s) }

func (m masker) err(err error) string {
	if err == nil {
		return ""
	}
	return m.r.Replace(err.Error())
}
