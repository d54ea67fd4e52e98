package inventory

import (
	"fmt"
	"sort"
	"strings"
)

// Error is one problem found in an inventory file. Load and Parse return every Error they
// find joined with errors.Join, so errors.As finds the first and a type switch on
// Unwrap() []error finds them all.
type Error struct {
	File string
	// Line is 1-based; 0 when the problem has no single line (an empty file).
	Line int
	// Path is the key path, such as hosts.web1.ssh.port; empty for the whole file.
	Path string
	Msg  string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// suggest returns ` (did you mean "x"?)` when one of the candidates is a likely typo of
// got, or else the empty string.
func suggest(got string, candidates []string) string {
	best, bestDist := "", -1
	for _, c := range candidates {
		d := editDistance(strings.ToLower(got), strings.ToLower(c))
		if bestDist < 0 || d < bestDist {
			best, bestDist = c, d
		}
	}
	// Short words are too easily one edit from each other for a guess to help.
	limit := 2
	if len([]rune(got)) <= 4 {
		limit = 1
	}
	if bestDist < 0 || bestDist > limit {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// unknownKeyMsg is the message for a key not in allowed: a likely spelling, or else the
// whole list so the reader need not open the documentation.
func unknownKeyMsg(key string, allowed []string) string {
	if s := suggest(key, allowed); s != "" {
		return "unknown key" + s
	}
	sorted := append([]string(nil), allowed...)
	sort.Strings(sorted)
	return "unknown key (expected one of: " + strings.Join(sorted, ", ") + ")"
}

// editDistance is the optimal-string-alignment distance: insertions, deletions,
// substitutions and swaps of two neighbours each cost one, so "prot" is one from "port".
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	// Names longer than this are not typos of a key; skip the quadratic work.
	if len(ra) > 64 || len(rb) > 64 {
		if a == b {
			return 0
		}
		return 1 << 20
	}
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}
