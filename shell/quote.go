// Package shell builds POSIX shell command lines. Every command line that cauldron sends
// to a host is assembled here, so that one function, fuzz-tested, decides how a value
// is quoted.
package shell

import "strings"

// Quote returns s as one word of a POSIX shell command line: s itself when it holds
// only characters that are never special, otherwise s in single quotes with each
// single quote written as '\”.
func Quote(s string) string {
	if s == "" {
		return "''"
	}
	if isPlain(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Join quotes each argument and joins them with spaces: the command line that runs
// argv[0] with the other arguments, each received exactly as given.
func Join(argv ...string) string {
	quoted := make([]string, len(argv))
	for i, a := range argv {
		quoted[i] = Quote(a)
	}
	return strings.Join(quoted, " ")
}

func isPlain(s string) bool {
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case strings.ContainsRune("-_./:@%+,=", r):
		default:
			return false
		}
	}
	return true
}
