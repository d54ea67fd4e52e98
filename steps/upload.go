package steps

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/cauldron-go/cauldron/shell"
	"github.com/cauldron-go/cauldron/transport"
)

// Upload copies a big local file (a setup tarball) to the host. It compares sha256 sums
// rather than content, so a converged check moves a few bytes, and streams the file
// only when it differs. Zero Mode and empty owners behave as in File.
type Upload struct {
	Src   string // on the control machine
	Dest  string // on the host
	Mode  fs.FileMode
	Owner string
	Group string
}

func (u Upload) String() string { return "upload " + u.Dest }

// Validate rejects a missing source, a relative destination and bad owners or mode.
func (u Upload) Validate() error {
	var errs []error
	if u.Src == "" {
		errs = append(errs, fmt.Errorf("Src: empty path"))
	}
	errs = append(errs, checkAbsPath("Dest", u.Dest), checkMode("Mode", u.Mode),
		checkAccount("Owner", u.Owner), checkAccount("Group", u.Group))
	return joinErrs(errs...)
}

// Check hashes the local file and, in one command, stats and hashes the remote one.
func (u Upload) Check(ctx context.Context, c transport.Conn) (*Change, error) {
	local, size, err := sha256File(u.Src)
	if err != nil {
		return nil, fmt.Errorf("upload %s: %w", u.Dest, err)
	}
	q := shell.Quote(u.Dest)
	out, err := transport.Output(ctx, c, statScript(u.Dest, false)+"; if [ -f "+q+" ]; then sha256sum -- "+q+"; fi")
	if err != nil {
		return nil, fmt.Errorf("upload %s: %w", u.Dest, err)
	}
	first, rest, _ := strings.Cut(out, "\n")
	have, err := parseStat(first + "\n")
	if err != nil {
		return nil, fmt.Errorf("upload %s: %w", u.Dest, err)
	}
	if have.Exists && !have.isRegular() {
		return nil, fmt.Errorf("upload %s: is a %s, not a regular file", u.Dest, have.Kind)
	}
	remote, _, _ := strings.Cut(rest, " ")
	w := ownership{Mode: u.Mode, Owner: u.Owner, Group: u.Group}
	if !have.Exists || remote != local {
		final := w.keep(have, 0o644)
		verb := "replace"
		if !have.Exists {
			verb = "create"
		}
		return &Change{
			Summary: fmt.Sprintf("%s %s from %s (%d bytes, sha256 %s)", verb, u.Dest, u.Src, size, local[:12]),
			Apply:   func(ctx context.Context) error { return u.stream(ctx, c, final) },
		}, nil
	}
	drift := w.drift(have)
	if len(drift) == 0 {
		return nil, nil
	}
	return &Change{
		Summary: u.Dest + ": " + strings.Join(drift, ", "),
		Apply: func(ctx context.Context) error {
			if _, err := transport.Output(ctx, c, w.fixScript(u.Dest, false)); err != nil {
				return fmt.Errorf("upload %s: %w", u.Dest, err)
			}
			return nil
		},
	}, nil
}

func (u Upload) stream(ctx context.Context, c transport.Conn, w ownership) error {
	f, err := os.Open(u.Src)
	if err != nil {
		return fmt.Errorf("upload %s: %w", u.Dest, err)
	}
	defer f.Close()
	if _, err := transport.OutputWithInput(ctx, c, installScript(u.Dest, w, "", false), f); err != nil {
		return fmt.Errorf("upload %s: %w", u.Dest, err)
	}
	return nil
}

func sha256File(p string) (sum string, size int64, err error) {
	f, err := os.Open(p)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	size, err = io.Copy(h, f)
	if err != nil {
		return "", 0, fmt.Errorf("read %s: %w", p, err)
	}
	return hex.EncodeToString(h.Sum(nil)), size, nil
}
