package transport

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"

	"github.com/cauldron-go/cauldron/shell"
)

// tempPrefix is the start of every temporary name beside p: in p's directory, so the
// rename is atomic (one file system), and hidden, so include globs (conf.d/*.conf) and
// directory listings skip a file that is not finished.
func tempPrefix(p string) string {
	dir, base := path.Split(path.Clean(p))
	return dir + "." + base + ".cauldron-"
}

// TempBeside is the mktemp template for a temporary file or directory beside p.
func TempBeside(p string) string { return tempPrefix(p) + "XXXXXX" }

// TempName is a fresh temporary name beside p, by the rule of TempBeside, for a
// transport that creates the file itself (exclusively) instead of through mktemp.
func TempName(p string) string {
	const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, 6)
	rand.Read(b) // never fails (crypto/rand)
	for i := range b {
		b[i] = letters[int(b[i])%len(letters)]
	}
	return tempPrefix(p) + string(b)
}

// checkFailed is the exit status of a put script whose Check rejected the content, to
// tell it from a failure to write.
const checkFailed = 65

// PutByShell is the atomic write of the transports that can only run commands (docker
// exec, the local shell, sudo): one command, the content on its standard input, unless
// f has a CheckFunc, which runs between writing the temporary file and the rename.
func PutByShell(ctx context.Context, c Conn, f File) error {
	r, _ := f.Reader()
	return putByShell(ctx, c, f, "t=$(mktemp "+shell.Quote(TempBeside(f.Path))+")", `cat >"$t"`, r)
}

// PutStaged is PutByShell for content that is already on the host, in the file staged
// (an upload to a private directory, installed as root): staged is consumed.
func PutStaged(ctx context.Context, c Conn, f File, staged string) error {
	s := shell.Quote(staged)
	return putByShell(ctx, c, f, "t=$(mktemp "+shell.Quote(TempBeside(f.Path))+")", `cat <`+s+` >"$t"; rm -f -- `+s, nil)
}

// FinishPut completes a temporary file tmp beside f.Path that already holds f's
// content (written over SFTP): its mode, owners and time, f's validators, the rename.
func FinishPut(ctx context.Context, c Conn, f File, tmp string) error {
	return putByShell(ctx, c, f, "t="+shell.Quote(tmp), "", nil)
}

// putByShell runs the put script: make (start) and fill (fill) the temporary file "$t",
// then set its mode, owners and time, run the check, and rename it over f.Path. On any
// failure the temporary file is removed.
func putByShell(ctx context.Context, c Conn, f File, start, fill string, stdin io.Reader) error {
	if f.Path == "" {
		return errors.New("put: no path given")
	}
	mode := f.Mode.Perm()
	if mode == 0 {
		mode = 0o644
	}
	// mktemp makes the file 0600, so a secret is never readable by others on the way.
	s := "set -e; " + start + "; "
	if f.CheckFunc == nil {
		s += `trap 'rm -f -- "$t"' EXIT; `
	} else {
		s += `trap 'rm -f -- "$t"' INT TERM HUP; `
	}
	if fill != "" {
		s += fill + "; "
	}
	s += fmt.Sprintf(`chmod %04o "$t"; `, uint32(mode))
	if o := ChownArg(f.Owner, f.Group); o != "" {
		s += `chown -- ` + shell.Quote(o) + ` "$t"; `
	}
	if !f.ModTime.IsZero() {
		s += fmt.Sprintf(`touch -m -d @%d.%09d -- "$t"; `, f.ModTime.Unix(), f.ModTime.Nanosecond())
	}
	if f.Check != "" {
		check := strings.ReplaceAll(f.Check, "%s", `"$t"`)
		s += fmt.Sprintf(`if ! out=$( { %s; } 2>&1 ); then printf '%%s\n' "$out" >&2; exit %d; fi; `, check, checkFailed)
	}
	if f.CheckFunc != nil {
		out, err := OutputWithInput(ctx, c, s+`printf '%s\n' "$t"`, stdin)
		if err != nil {
			return fmt.Errorf("put %s: %w", f.Path, err)
		}
		tmp := strings.TrimSpace(out)
		if verr := f.CheckFunc(ctx, tmp); verr != nil {
			rejected := &RejectedError{Path: f.Path, Err: verr}
			if _, err := Output(ctx, c, shell.Join("rm", "-f", "--", tmp)); err != nil {
				return fmt.Errorf("%w (and its temporary file %s could not be removed: %v)", rejected, tmp, err)
			}
			return rejected
		}
		if _, err := Output(ctx, c, shell.Join("mv", "-f", "--", tmp, f.Path)); err != nil {
			return fmt.Errorf("put %s: rename into place: %w", f.Path, err)
		}
		return nil
	}
	s += `mv -f -- "$t" ` + shell.Quote(f.Path) + `; trap - EXIT`
	_, err := OutputWithInput(ctx, c, s, stdin)
	var ee *ExitError
	if errors.As(err, &ee) && ee.Status == checkFailed && f.Check != "" {
		return &RejectedError{Path: f.Path, Check: f.Check, Output: ee.Stderr}
	}
	if err != nil {
		return fmt.Errorf("put %s: %w", f.Path, err)
	}
	return nil
}

// ChownArg is the argument of chown for owner and group, or "" when neither is given.
func ChownArg(owner, group string) string {
	switch {
	case owner != "" && group != "":
		return owner + ":" + group
	case owner != "":
		return owner
	case group != "":
		return ":" + group
	}
	return ""
}

// readMissing is the exit status ReadScript uses for a file that does not exist.
const readMissing = 66

// ReadScript is the command line that prints a file, exiting 66 when it is absent.
func ReadScript(p string) string {
	q := shell.Quote(p)
	return fmt.Sprintf("[ -e %s ] || exit %d; cat %s", q, readMissing, q)
}

// ReadByShell reads a file through a connection that can only run commands.
func ReadByShell(ctx context.Context, c Conn, p string) ([]byte, error) {
	out, err := Output(ctx, c, ReadScript(p))
	if ExitStatus(err) == readMissing {
		return nil, fmt.Errorf("read %s: %w", p, fs.ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	return []byte(out), nil
}
