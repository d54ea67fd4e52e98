package steps

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/cauldron-go/cauldron/transport"
)

// LineInFile makes one line of a file the package owns right (a setting in
// /etc/default/..., a line in setenv.sh) without owning the whole file. The last line
// matching Regexp is replaced by Line; when none matches and Line is not there yet, Line
// is appended. An empty Regexp matches Line itself. A missing file is created with
// just Line. The file keeps its mode and owners.
type LineInFile struct {
	Path   string
	Regexp string
	Line   string
}

func (l LineInFile) String() string { return "line in " + l.Path }

// Validate rejects a relative path, a bad regexp and a Line with a line break.
func (l LineInFile) Validate() error {
	errs := []error{checkAbsPath("Path", l.Path)}
	if _, err := regexp.Compile(l.Regexp); err != nil {
		errs = append(errs, fmt.Errorf("Regexp: %w", err))
	}
	if strings.ContainsAny(l.Line, "\n\r") {
		errs = append(errs, errors.New("Line: holds a line break"))
	}
	return errors.Join(errs...)
}

// Check reads the file and its metadata in one command and shows the edit as a diff.
func (l LineInFile) Check(ctx context.Context, c transport.Conn) (*Change, error) {
	re, err := regexp.Compile(l.Regexp)
	if err != nil {
		return nil, fmt.Errorf("%s: Regexp: %w", l, err)
	}
	have, err := readPath(ctx, c, l.Path, true)
	if err != nil {
		return nil, err
	}
	want := []byte(editLine(string(have.Content), l.Regexp != "", re, l.Line))
	return File{Path: l.Path}.changeFrom(c, have, want)
}

// editLine returns content with line in place: replacing the last line matched by re,
// or appended when none matches and line is not already there.
func editLine(content string, useRe bool, re *regexp.Regexp, line string) string {
	lines := strings.SplitAfter(content, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	last := -1
	for i, ln := range lines {
		text := strings.TrimRight(ln, "\r\n")
		if (useRe && re.MatchString(text)) || (!useRe && text == line) {
			last = i
		}
	}
	if last >= 0 {
		end := lines[last][len(strings.TrimRight(lines[last], "\r\n")):]
		if end == "" {
			end = "\n"
		}
		lines[last] = line + end
		return strings.Join(lines, "")
	}
	for _, ln := range lines {
		if strings.TrimRight(ln, "\r\n") == line {
			return content
		}
	}
	if content != "" && !strings.HasSuffix(content, "\n") {
		content += "\n"
	}
	return content + line + "\n"
}

// KeyValue is one `key<sep>value` line of a properties file or shell assignment file
// (CATALINA_OUT=/dev/null in setenv.sh): the last line setting Key is replaced, or the
// setting is appended. Separator defaults to "=".
type KeyValue struct {
	Path      string
	Key       string
	Value     string
	Separator string
}

func (k KeyValue) String() string { return "setting " + k.Key + " in " + k.Path }

func (k KeyValue) lineInFile() LineInFile {
	sep := k.Separator
	if sep == "" {
		sep = "="
	}
	re := `^[ \t]*` + regexp.QuoteMeta(k.Key)
	if s := strings.TrimSpace(sep); s != "" {
		re += `[ \t]*` + regexp.QuoteMeta(s)
	} else {
		re += `([ \t]|$)`
	}
	return LineInFile{Path: k.Path, Regexp: re, Line: k.Key + sep + k.Value}
}

// Validate rejects an empty key and what LineInFile rejects.
func (k KeyValue) Validate() error {
	var errs []error
	if strings.TrimSpace(k.Key) == "" {
		errs = append(errs, errors.New("Key: empty"))
	}
	if strings.ContainsAny(k.Value+k.Separator, "\n\r") {
		errs = append(errs, errors.New("Value: holds a line break"))
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	return k.lineInFile().Validate()
}

// Check is LineInFile's check of the key's line.
func (k KeyValue) Check(ctx context.Context, c transport.Conn) (*Change, error) {
	return k.lineInFile().Check(ctx, c)
}
