package steps

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/cauldron-go/cauldron/shell"
	"github.com/cauldron-go/cauldron/transport"
)

// Dir is a directory with a mode and owners. A zero Mode means 0755 for a new directory
// and the current mode for an existing one; empty Owner or Group keep what is there.
// Recurse makes Owner and Group hold for everything under it too (an unpacked Tomcat
// given to its service user); modes are never changed recursively.
type Dir struct {
	Path    string
	Mode    fs.FileMode
	Owner   string
	Group   string
	Recurse bool
}

func (d Dir) String() string { return "dir " + d.Path }

// Validate rejects a relative path and bad owners or mode.
func (d Dir) Validate() error {
	return errors.Join(checkAbsPath("Path", d.Path), checkMode("Mode", d.Mode),
		checkAccount("Owner", d.Owner), checkAccount("Group", d.Group))
}

// PathsRead is the directory, when Check needs no search under it (Recurse).
func (d Dir) PathsRead() []PathRead {
	if d.Recurse && (d.Owner != "" || d.Group != "") {
		return nil
	}
	return []PathRead{{Path: d.Path}}
}

// Check stats the directory and, with Recurse, looks for the first path under it with
// another owner, in one command.
func (d Dir) Check(ctx context.Context, c transport.Conn) (*Change, error) {
	w := ownership{Mode: d.Mode, Owner: d.Owner, Group: d.Group}
	recurse := d.Recurse && (d.Owner != "" || d.Group != "")
	var have pathState
	var rest string
	if !recurse {
		var err error
		if have, err = readPath(ctx, c, d.Path, false); err != nil {
			return nil, fmt.Errorf("dir %s: %w", d.Path, err)
		}
	} else {
		script := statScript(d.Path, false)
		var cond []string
		if d.Owner != "" {
			cond = append(cond, shell.Join("!", "-user", d.Owner))
		}
		if d.Group != "" {
			cond = append(cond, shell.Join("!", "-group", d.Group))
		}
		script += "; if [ -d " + shell.Quote(d.Path) + " ]; then find " + shell.Quote(d.Path) +
			" -mindepth 1 '(' " + strings.Join(cond, " -o ") + " ')' -print -quit; fi"
		out, err := transport.Output(ctx, c, script)
		if err != nil {
			return nil, fmt.Errorf("dir %s: %w", d.Path, err)
		}
		var first string
		first, rest, _ = strings.Cut(out, "\n")
		if have, err = parseStat(first + "\n"); err != nil {
			return nil, fmt.Errorf("dir %s: %w", d.Path, err)
		}
	}
	if !have.Exists {
		final := w.keep(have, 0o755)
		return &Change{
			Summary: fmt.Sprintf("create directory %s (mode %04o)", d.Path, uint32(final.Mode)),
			Apply: func(ctx context.Context) error {
				line := shell.Join("mkdir", "-p", "--", d.Path) + " && " + final.fixScript(d.Path, false)
				if _, err := transport.Output(ctx, c, line); err != nil {
					return fmt.Errorf("dir %s: %w", d.Path, err)
				}
				return nil
			},
		}, nil
	}
	if have.Kind != "directory" {
		return nil, fmt.Errorf("dir %s: is a %s, not a directory", d.Path, have.Kind)
	}
	drift := w.drift(have)
	stray := strings.TrimSpace(rest)
	if stray != "" {
		drift = append(drift, "owners under it (first: "+stray+")")
	}
	if len(drift) == 0 {
		return nil, nil
	}
	return &Change{
		Summary: d.Path + ": " + strings.Join(drift, ", "),
		Apply: func(ctx context.Context) error {
			line := w.fixScript(d.Path, recurse)
			if _, err := transport.Output(ctx, c, line); err != nil {
				return fmt.Errorf("dir %s: %w", d.Path, err)
			}
			return nil
		},
	}, nil
}
