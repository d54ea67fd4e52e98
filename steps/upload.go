package steps

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/cauldron-go/cauldron/shell"
	"github.com/cauldron-go/cauldron/transport"
)

// Upload copies a big local file (a setup tarball) to the host, streaming it only when
// it differs. Like rsync, it first compares size and modification time, which the
// upload gives the remote copy, so a converged check is one stat on each side; when
// they differ (or Checksum is set) it compares sha256 sums before deciding. Zero Mode
// and empty owners behave as in File.
type Upload struct {
	Src   string // on the control machine
	Dest  string // on the host
	Mode  fs.FileMode
	Owner string
	Group string
	// Checksum compares sha256 sums even when size and modification time agree.
	Checksum bool
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
	return errors.Join(errs...)
}

// PathsRead is the destination.
func (u Upload) PathsRead() []PathRead { return []PathRead{{Path: u.Dest}} }

// prefetched is the destination's state and whether guardPath is there, from a
// prefetch of ctx (PrefetchPaths); ok is false when it does not hold them both.
func (u Upload) prefetched(ctx context.Context, c transport.Conn, guardPath string) (have pathState, guarded, ok bool) {
	have, ok = prefetched(ctx, c, u.Dest, false)
	if !ok || have.Link || have.DanglingLink {
		return pathState{}, false, false
	}
	if guardPath != "" {
		g, ok := prefetched(ctx, c, guardPath, false)
		if !ok {
			return pathState{}, false, false
		}
		guarded = g.Exists || g.DanglingLink
	}
	return have, guarded, true
}

// Check stats both files in one command on the host; only when size and modification
// time leave a doubt does it hash them.
func (u Upload) Check(ctx context.Context, c transport.Conn) (*Change, error) {
	p, _, err := u.plan(ctx, c, "")
	return p.change, err
}

// uploadPlan is what an Upload's check found: the change (nil when the host is
// converged) and, when that change sends the content, what the content must become.
type uploadPlan struct {
	change *Change
	// content is set when the change streams the file; otherwise it only fixes the
	// mode, owners or time of a file whose content is already right.
	content bool
	// final is the mode and owners the sent file gets, and local the source's stat.
	final ownership
	local os.FileInfo
}

// plan is Check's work. guardPath, when not empty, is a path whose presence (a
// dangling symbolic link included) is tested in the same round trip (a step that
// builds on the upload asks its own question with it); guarded tells whether it is
// there.
func (u Upload) plan(ctx context.Context, c transport.Conn, guardPath string) (p uploadPlan, guarded bool, err error) {
	info, err := os.Stat(u.Src)
	if err != nil {
		return p, false, fmt.Errorf("upload %s: %w", u.Dest, err)
	}
	p.local = info
	var have pathState
	var size int64
	var mtime string
	if st, guard, ok := u.prefetched(ctx, c, guardPath); ok {
		// The size and time are those stat -L gives: only taken for a path that is no
		// symbolic link, for which the script below asks stat without -L.
		have, guarded, size, mtime = st, guard, st.Size, st.MTime
	} else {
		q := shell.Quote(u.Dest)
		script := statScript(u.Dest, false) + "; if [ -f " + q + " ]; then stat -c '%s %.9Y' -- " + q + "; fi"
		if guardPath != "" {
			script = "if " + existsTest(guardPath) + "; then echo yes; else echo no; fi; " + script
		}
		out, err := transport.Output(ctx, c, script)
		if err != nil {
			return p, false, fmt.Errorf("upload %s: %w", u.Dest, err)
		}
		if guardPath != "" {
			var answer string
			answer, out, _ = strings.Cut(out, "\n")
			guarded = answer == "yes"
		}
		first, rest, _ := strings.Cut(out, "\n")
		if have, err = parseStat(first + "\n"); err != nil {
			return p, guarded, fmt.Errorf("upload %s: %w", u.Dest, err)
		}
		fmt.Sscanf(rest, "%d %s", &size, &mtime)
	}
	if have.Exists && !have.isRegular() {
		return p, guarded, fmt.Errorf("upload %s: is a %s, not a regular file", u.Dest, have.Kind)
	}
	// Nanoseconds, not seconds: a file changed in the second its source was written
	// must not look unchanged.
	want := mtimeString(info.ModTime())
	same := have.Exists && size == info.Size() && mtime == want && !u.Checksum
	if have.Exists && size == info.Size() && !same {
		local, err := FileSHA256(u.Src)
		if err != nil {
			return p, guarded, fmt.Errorf("upload %s: %w", u.Dest, err)
		}
		remote, err := transport.Output(ctx, c, "sha256sum -- "+shell.Quote(u.Dest))
		if err != nil {
			return p, guarded, fmt.Errorf("upload %s: %w", u.Dest, err)
		}
		remote, _, _ = strings.Cut(remote, " ")
		same = remote == local
	}
	w := ownership{Mode: u.Mode, Owner: u.Owner, Group: u.Group}
	retime := same && mtime != want
	if !same {
		p.final = w.keep(have, 0o644)
		verb := "replace"
		if !have.Exists {
			verb = "create"
		}
		p.content = true
		p.change = &Change{
			Summary: fmt.Sprintf("%s %s from %s (%d bytes)", verb, u.Dest, u.Src, info.Size()),
			Apply:   func(ctx context.Context) error { return u.stream(ctx, c, p.final, info.ModTime()) },
		}
		return p, guarded, nil
	}
	drift := w.drift(have)
	fix := w.fixScript(u.Dest, false)
	if retime {
		// The content is the same: give it the local time, so the next check is quick.
		drift = append(drift, "modification time to the source's (content already the same)")
		if fix != "" {
			fix += " && "
		}
		fix += touchScript(u.Dest, want)
	}
	if len(drift) == 0 {
		return p, guarded, nil
	}
	p.change = &Change{
		Summary: u.Dest + ": " + strings.Join(drift, ", "),
		Apply: func(ctx context.Context) error {
			if _, err := transport.Output(ctx, c, fix); err != nil {
				return fmt.Errorf("upload %s: %w", u.Dest, err)
			}
			return nil
		},
	}
	return p, guarded, nil
}

// mtimeString is a modification time as `stat -c %.9Y` prints it.
func mtimeString(t time.Time) string {
	return fmt.Sprintf("%d.%09d", t.Unix(), t.Nanosecond())
}

func touchScript(p, mtime string) string {
	return shell.Join("touch", "-m", "-d", "@"+mtime, "--", p)
}

// stream installs the file with the local file's modification time, which the next
// check compares.
func (u Upload) stream(ctx context.Context, c transport.Conn, w ownership, mtime time.Time) error {
	f, err := os.Open(u.Src)
	if err != nil {
		return fmt.Errorf("upload %s: %w", u.Dest, err)
	}
	defer f.Close()
	var size int64
	if info, err := f.Stat(); err == nil {
		size = info.Size()
	}
	// A long upload says how far it has got (see WithProgress).
	body, stop := ProgressReader(ctx, f, u.String(), size)
	put := transport.File{Path: u.Dest, Body: body, Mode: w.Mode, Owner: w.Owner, Group: w.Group, ModTime: mtime}
	err = c.Put(ctx, put)
	stop()
	if err != nil {
		return fmt.Errorf("upload %s: %w", u.Dest, err)
	}
	return nil
}

// FileSHA256 is the hex sha256 sum of a local file, as sha256sum prints it, read as a
// stream so that a big file need not fit in memory.
func FileSHA256(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %s: %w", p, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
