package steps

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"unicode/utf8"

	"github.com/aymanbagabas/go-udiff"

	"github.com/cauldron-go/cauldron/transport"
)

// File is a file with the given content, mode and owners. A zero Mode means 0644 for a
// new file and the current mode for an existing one; an empty Owner or Group likewise
// keeps what is there (the connecting user for a new file).
//
// The new content is always written to a temporary file beside Path and renamed over it,
// so readers never see half a file. A validator, when given, checks that temporary file
// first: if it rejects the content, the old file stays and the error carries the
// validator's output.
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
	// gets the temporary file's path on the host; a non-nil error rejects the content.
	ValidateFunc func(ctx context.Context, c transport.Conn, tempPath string) error
	// Sensitive keeps the content out of the diff (keys, passwords).
	Sensitive bool
}

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
	return errors.Join(errs...)
}

func (f File) ownership() ownership { return ownership{Mode: f.Mode, Owner: f.Owner, Group: f.Group} }

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
	return f.changeFrom(c, have, want)
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
	return udiff.Unified(f.Path+" (on host)", f.Path+" (wanted)", string(have), string(want))
}

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
