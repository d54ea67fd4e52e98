package steps

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aymanbagabas/go-udiff"

	"github.com/cauldron-go/cauldron/shell"
	"github.com/cauldron-go/cauldron/transport"
)

// File is a file with the given content, mode and owners. A zero Mode means 0644 for a
// new file and the current mode for an existing one; an empty Owner or Group likewise
// keeps what is there (the connecting user for a new file).
//
// The new content is always written to a temporary file beside Path and renamed over it,
// so readers never see half a file. A validator, when given, checks that temporary file
// first: if it rejects the content, the old file stays and the error carries the
// validator's output. Check runs the validator too, on a private copy of new content
// that is removed afterwards, so a plan fails the step with the validator's message
// instead of an apply finding out (ErrNoValidator says why it could not).
type File struct {
	Path    string
	Content Content
	Mode    fs.FileMode
	Owner   string
	Group   string
	// ValidateCmd is a shell command line run on the new content, where %s stands for
	// the (quoted) temporary file's path: "visudo -cf %s", "haproxy -c -f %s".
	ValidateCmd string
	// ValidateFunc is for validators that need more than one command, such as a copy of
	// the file at its real name (nginx and apache resolve includes relative to it). It
	// gets the temporary file's path on the host (at check time a private copy in the
	// temporary folder); a non-nil error rejects the content. It must only read the file.
	ValidateFunc func(ctx context.Context, c transport.Conn, tempPath string) error
	// Sensitive keeps the content out of the diff (keys, passwords).
	Sensitive bool
	// SecretLines are patterns of the lines that carry a secret, each with a group
	// named "secret" around the value (configs' models give theirs: Workers.SecretLines).
	// The diff shows such a line with the value masked, on both sides: a secret the run
	// does not know, such as the old one on the host after a rotation, is never shown.
	// The rest of the file is diffed as usual.
	SecretLines []*regexp.Regexp
}

// Masked is what a secret becomes in a diff, a summary or a report.
const Masked = "********"

func (f File) String() string { return "file " + f.Path }

// Validate rejects a relative path, bad owners or mode, and a missing content.
func (f File) Validate() error {
	var errs []error
	errs = append(errs, checkAbsPath("Path", f.Path), checkMode("Mode", f.Mode),
		checkAccount("Owner", f.Owner), checkAccount("Group", f.Group))
	if f.Content == nil {
		errs = append(errs, errors.New("Content: missing (use steps.Text, steps.Bytes, steps.Template or steps.Pipe)"))
	}
	if f.ValidateCmd != "" && !strings.Contains(f.ValidateCmd, "%s") {
		errs = append(errs, fmt.Errorf("ValidateCmd: %q does not say where the file goes (%%s)", f.ValidateCmd))
	}
	if f.ValidateCmd != "" && f.ValidateFunc != nil {
		errs = append(errs, errors.New("ValidateCmd and ValidateFunc: give one, not both"))
	}
	for i, re := range f.SecretLines {
		if re == nil || !slices.Contains(re.SubexpNames(), "secret") {
			errs = append(errs, fmt.Errorf("SecretLines[%d]: %v has no group named secret", i, re))
		}
	}
	return errors.Join(errs...)
}

func (f File) ownership() ownership { return ownership{Mode: f.Mode, Owner: f.Owner, Group: f.Group} }

// PathsRead is the file, content and all.
func (f File) PathsRead() []PathRead { return []PathRead{{Path: f.Path, Content: true}} }

// Check reads the file, its mode and owners in one command.
func (f File) Check(ctx context.Context, c transport.Conn) (*Change, error) {
	want, err := f.Content.Bytes(ctx)
	if err != nil {
		return nil, fmt.Errorf("file %s: content: %w", f.Path, err)
	}
	have, err := readPath(ctx, c, f.Path, true)
	if err != nil {
		return nil, err
	}
	ch, err := f.changeFrom(c, have, want)
	if err != nil || ch == nil || (have.Exists && bytes.Equal(have.Content, want)) {
		return ch, err
	}
	note, err := f.validateCandidate(ctx, c, f.ownership().keep(have, 0o644), want)
	if err != nil {
		return nil, err
	}
	ch.Summary += note
	return ch, nil
}

// changeFrom is the change from have to the wanted content, shared by the steps that
// compute a file's content from the file itself.
func (f File) changeFrom(c transport.Conn, have pathState, want []byte) (*Change, error) {
	if have.Exists && !have.isRegular() {
		return nil, fmt.Errorf("file %s: is a %s, not a regular file", f.Path, have.Kind)
	}
	w := f.ownership()
	if !have.Exists || !bytes.Equal(have.Content, want) {
		verb := "update"
		if !have.Exists {
			verb = "create"
		}
		summary := verb + " " + f.Path
		if d := w.drift(have); have.Exists && len(d) > 0 {
			summary += " (" + strings.Join(d, ", ") + ")"
		}
		final := w.keep(have, 0o644)
		return &Change{
			Summary: summary,
			Diff:    f.diff(have.Content, want),
			Apply:   func(ctx context.Context) error { return f.install(ctx, c, final, want) },
		}, nil
	}
	d := w.drift(have)
	if len(d) == 0 {
		return nil, nil
	}
	return &Change{
		Summary: f.Path + ": " + strings.Join(d, ", "),
		Apply: func(ctx context.Context) error {
			if _, err := transport.Output(ctx, c, w.fixScript(f.Path, false)); err != nil {
				return fmt.Errorf("file %s: %w", f.Path, err)
			}
			return nil
		},
	}, nil
}

func (f File) diff(have, want []byte) string {
	if f.Sensitive {
		return "content differs (sensitive, diff not shown)"
	}
	if !isText(have) || !isText(want) {
		return fmt.Sprintf("binary content differs (%d bytes on host, %d wanted)", len(have), len(want))
	}
	return maskSecretLines(udiff.Unified(f.Path+" (on host)", f.Path+" (wanted)", string(have), string(want)), f.SecretLines)
}

// maskSecretLines masks, in each line of a unified diff, the secret groups of the
// patterns that match it. Headers and hunk marks are left alone.
func maskSecretLines(diff string, patterns []*regexp.Regexp) string {
	if len(patterns) == 0 || diff == "" {
		return diff
	}
	lines := strings.SplitAfter(diff, "\n")
	for i, l := range lines {
		if i < 2 && (strings.HasPrefix(l, "--- ") || strings.HasPrefix(l, "+++ ")) || strings.HasPrefix(l, "@@") || l == "" {
			continue
		}
		body, nl := strings.CutSuffix(l[1:], "\n")
		for _, re := range patterns {
			body = maskGroups(body, re)
		}
		if nl {
			body += "\n"
		}
		lines[i] = l[:1] + body
	}
	return strings.Join(lines, "")
}

// maskGroups replaces every group named secret of every match of re in line.
func maskGroups(line string, re *regexp.Regexp) string {
	names := re.SubexpNames()
	var b strings.Builder
	last := 0
	for _, m := range re.FindAllStringSubmatchIndex(line, -1) {
		for g, name := range names {
			start, end := m[2*g], m[2*g+1]
			if name != "secret" || start < 0 || start < last {
				continue
			}
			b.WriteString(line[last:start])
			b.WriteString(Masked)
			last = end
		}
	}
	b.WriteString(line[last:])
	return b.String()
}

// ErrNoValidator is what a File's ValidateFunc returns (wrapped or not) when the
// program that validates is not on the host yet, as in a plan for a bare host whose
// package step has not run: the content cannot be checked before the apply, which
// checks it again before the file goes live.
var ErrNoValidator = errors.New("the validator is not installed on the host yet")

// validateCandidate runs the file's validator on the wanted content when it differs
// from the host's, so a plan says that the server would reject it, with the
// validator's message, instead of an apply finding out. The content goes to a private
// temporary file (mode 0600 while it is written, then the file's own mode and owners,
// which sudoers checks need) that is removed afterwards; the live file is never
// touched. The note is for the summary when the validator is not there yet.
func (f File) validateCandidate(ctx context.Context, c transport.Conn, w ownership, want []byte) (note string, err error) {
	if f.ValidateCmd == "" && f.ValidateFunc == nil {
		return "", nil
	}
	// The program is the first word that is not a variable assignment.
	prog := ""
	for _, w := range strings.Fields(f.ValidateCmd) {
		if !strings.Contains(w, "=") {
			prog = w
			break
		}
	}
	script := "t=$(mktemp \"${TMPDIR:-/tmp}/.cauldron-check-XXXXXX\") || exit 1; "
	if f.ValidateFunc == nil {
		script = "command -v " + shell.Quote(prog) + " >/dev/null 2>&1 || exit " + strconv.Itoa(noValidator) + "; " + script +
			`trap 'rm -f "$t"' EXIT; trap 'exit 1' HUP INT TERM; `
	} else {
		script += `trap 'rm -f "$t"; exit 1' HUP INT TERM; `
	}
	script += `cat >"$t" || exit 1; ` + fmt.Sprintf(`chmod %04o "$t"; `, uint32(w.Mode))
	if o := w.chown(); o != "" {
		// An owner made by an earlier step of the same plan does not exist yet.
		script += `chown -- ` + shell.Quote(o) + ` "$t" 2>/dev/null; `
	}
	if f.ValidateFunc != nil {
		script += `printf '%s\n' "$t"`
	} else {
		check := strings.ReplaceAll(f.ValidateCmd, "%s", `"$t"`)
		script += fmt.Sprintf(`if ! out=$( { %s; } 2>&1 ); then printf '%%s\n' "$out" >&2; exit %d; fi`, check, validatorFailed)
	}
	out, err := transport.OutputWithInput(ctx, c, script, bytes.NewReader(want))
	var ee *transport.ExitError
	switch {
	case errors.As(err, &ee) && ee.Status == noValidator:
		return fmt.Sprintf(" (not validated: %s is not on the host yet)", prog), nil
	case errors.As(err, &ee) && ee.Status == validatorFailed:
		return "", fmt.Errorf("file %s: %q rejects the new content (nothing was changed): %s", f.Path, f.ValidateCmd, strings.TrimSpace(ee.Stderr))
	case err != nil:
		return "", fmt.Errorf("file %s: validate the new content: %w", f.Path, err)
	case f.ValidateCmd != "":
		return "", nil
	}
	tmp := strings.TrimSpace(out)
	verr := f.ValidateFunc(ctx, c, tmp)
	// The copy holds the new content, secrets and all: it goes even when the run was
	// cancelled during the validation.
	rmCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if _, err := transport.Output(rmCtx, c, shell.Join("rm", "-f", "--", tmp)); err != nil {
		return "", fmt.Errorf("file %s: remove the validated copy %s: %w", f.Path, tmp, err)
	}
	switch {
	case errors.Is(verr, ErrNoValidator):
		return " (not validated: " + verr.Error() + ")", nil
	case verr != nil:
		return "", fmt.Errorf("file %s: the new content is rejected (nothing was changed): %w", f.Path, verr)
	}
	return "", nil
}

// noValidator is the exit status of the validation script when the validator is not on
// the host.
const noValidator = 3

func isText(b []byte) bool { return utf8.Valid(b) && !bytes.ContainsRune(b, 0) }

// install writes content with w through the transport's atomic put, validated when
// asked.
func (f File) install(ctx context.Context, c transport.Conn, w ownership, content []byte) error {
	put := transport.File{Path: f.Path, Content: content, Mode: w.Mode, Owner: w.Owner, Group: w.Group, Check: f.ValidateCmd}
	if f.ValidateFunc != nil {
		put.CheckFunc = func(ctx context.Context, tempPath string) error { return f.ValidateFunc(ctx, c, tempPath) }
	}
	err := c.Put(ctx, put)
	var rejected *transport.RejectedError
	if errors.As(err, &rejected) {
		return fmt.Errorf("file %w", err)
	}
	if err != nil {
		return fmt.Errorf("file %s: write: %w", f.Path, err)
	}
	return nil
}
