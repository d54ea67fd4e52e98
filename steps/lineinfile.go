package steps

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/cauldron-go/cauldron/transport"
)

// LineInFile makes one line of a file the package owns right (a setting in
// /etc/default/..., a line in setenv.sh) without owning the whole file, as Ansible's
// lineinfile does. The last line matching Regexp is replaced by Line; when none matches
// and Line is not there yet, Line is inserted: after the last line matching
// InsertAfter, or before the last line matching InsertBefore, or, when neither is set
// or its regexp matches no line, at the end. An empty Regexp matches Line itself. A
// missing file is created with just Line. The file keeps its mode and owners.
//
//	steps.LineInFile{Path: "/etc/default/tomcat", Regexp: `^JAVA_OPTS=`,
//		Line: `JAVA_OPTS="-Xmx512m"`, InsertAfter: `^# JAVA_OPTS`}
type LineInFile struct {
	Path   string
	Regexp string
	Line   string
	// InsertAfter and InsertBefore (at most one of them) are regexps that say where a
	// missing Line goes.
	InsertAfter  string
	InsertBefore string
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
	if l.InsertAfter != "" && l.InsertBefore != "" {
		errs = append(errs, errors.New("InsertAfter and InsertBefore: both set, a line goes in one place"))
	}
	if _, err := regexp.Compile(l.InsertAfter); err != nil {
		errs = append(errs, fmt.Errorf("InsertAfter: %w", err))
	}
	if _, err := regexp.Compile(l.InsertBefore); err != nil {
		errs = append(errs, fmt.Errorf("InsertBefore: %w", err))
	}
	return errors.Join(errs...)
}

// PathsRead is the file, content and all.
func (l LineInFile) PathsRead() []PathRead { return []PathRead{{Path: l.Path, Content: true}} }

// Check reads the file and its metadata in one command and shows the edit as a diff.
func (l LineInFile) Check(ctx context.Context, c transport.Conn) (*Change, error) {
	if err := l.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", l, err)
	}
	have, err := readPath(ctx, c, l.Path, true)
	if err != nil {
		return nil, err
	}
	want := []byte(l.edit(string(have.Content)))
	return File{Path: l.Path}.changeFrom(c, have, want)
}

// edit returns content with l's line in place. The regexps are valid: Check validates
// first.
func (l LineInFile) edit(content string) string {
	re := regexp.MustCompile(l.Regexp)
	var at insertAt
	switch {
	case l.InsertAfter != "":
		at = insertAt{re: regexp.MustCompile(l.InsertAfter), after: true}
	case l.InsertBefore != "":
		at = insertAt{re: regexp.MustCompile(l.InsertBefore)}
	}
	return editLine(content, l.Regexp != "", re, l.Line, at)
}

// insertAt says where a missing line goes: after (or before) the last line re matches;
// a nil re, or one matching no line, means at the end.
type insertAt struct {
	re    *regexp.Regexp
	after bool
}

// editLine returns content with line in place: replacing the last line matched by re,
// or inserted where at says when none matches and line is not already there.
func editLine(content string, useRe bool, re *regexp.Regexp, line string, at insertAt) string {
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
	if at.re != nil {
		anchor := -1
		for i, ln := range lines {
			if at.re.MatchString(strings.TrimRight(ln, "\r\n")) {
				anchor = i
			}
		}
		if anchor >= 0 {
			if at.after {
				anchor++
			}
			if anchor > 0 && !strings.HasSuffix(lines[anchor-1], "\n") {
				lines[anchor-1] += "\n"
			}
			lines = slices.Insert(lines, anchor, line+"\n")
			return strings.Join(lines, "")
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

// PathsRead is the file, content and all.
func (k KeyValue) PathsRead() []PathRead { return k.lineInFile().PathsRead() }

// Check is LineInFile's check of the key's line.
func (k KeyValue) Check(ctx context.Context, c transport.Conn) (*Change, error) {
	return k.lineInFile().Check(ctx, c)
}
