package runner

import (
	"cmp"
	"slices"
	"strings"
)

// masked is what a secret becomes in anything the runner prints or reports.
const masked = "********"

// masker replaces every secret by masked.
type masker struct{ r *strings.Replacer }

func newMasker(secrets []string) masker {
	// Longest first, so that a secret containing another is masked whole.
	s := slices.DeleteFunc(slices.Clone(secrets), func(s string) bool { return s == "" })
	slices.SortFunc(s, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	var pairs []string
	for _, x := range s {
		pairs = append(pairs, x, masked)
	}
	return masker{r: strings.NewReplacer(pairs...)}
}

func (m masker) String(s string) string { return m.r.Replace(s) }

func (m masker) err(err error) string {
	if err == nil {
		return ""
	}
	return m.r.Replace(err.Error())
}
