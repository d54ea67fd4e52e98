package steps

import (
	"context"
	"fmt"
	"io/fs"
	"strconv"
	"strings"

	"github.com/cauldron-go/cauldron/shell"
	"github.com/cauldron-go/cauldron/transport"
)

// pathState is what one round trip tells about a path: whether it exists, its kind,
// mode and owners, and for a regular file its content when asked for.
type pathState struct {
	Exists  bool
	Kind    string // stat's %F: "regular file", "directory", ...
	Mode    fs.FileMode
	Owner   string
	Group   string
	Content []byte
	// Size, MTime (as stat's %.9Y), Link and DanglingLink are known only from a
	// prefetch (PrefetchPaths). The rest is of the path a link leads to; a dangling
	// symbolic link is not there (Exists is false).
	Size         int64
	MTime        string
	Link         bool
	DanglingLink bool
}

func (s pathState) isRegular() bool { return strings.HasPrefix(s.Kind, "regular") }

// statScript prints "absent", or "mode:owner:group:kind" and, with cat, the content.
// Symbolic links are followed, as every later chmod and write would follow them.
func statScript(p string, cat bool) string {
	q := shell.Quote(p)
	s := "if [ -e " + q + " ]; then stat -L -c '%a:%U:%G:%F' -- " + q + " || exit 1"
	if cat {
		s += "; if [ -f " + q + " ]; then cat -- " + q + "; fi"
	}
	return s + "; else echo absent; fi"
}

func parseStat(out string) (pathState, error) {
	first, rest, _ := strings.Cut(out, "\n")
	if first == "absent" {
		return pathState{}, nil
	}
	f := strings.SplitN(first, ":", 4)
	if len(f) != 4 {
		return pathState{}, fmt.Errorf("unexpected stat output %q", first)
	}
	m, err := strconv.ParseUint(f[0], 8, 32)
	if err != nil {
		return pathState{}, fmt.Errorf("unexpected mode %q from stat: %w", f[0], err)
	}
	return pathState{Exists: true, Mode: fs.FileMode(m), Owner: f[1], Group: f[2], Kind: f[3], Content: []byte(rest)}, nil
}

// PathState is what a check of a user's own step reads of a path (ReadPath): whether
// it is there, its kind, mode and owners, and, when read with its content, a regular
// file's bytes. Symbolic links are followed; a dangling one is not there.
type PathState struct {
	Exists bool
	// Kind is stat's %F of what p is, or leads to when a link: "regular file",
	// "directory", ...
	Kind string
	Mode fs.FileMode
	// Owner and Group are names (numbers where the host has no name for them).
	Owner, Group string
	// Content is a regular file's content, read only when asked for.
	Content []byte
}

// Regular is true for a regular file.
func (s PathState) Regular() bool { return strings.HasPrefix(s.Kind, "regular") }

// ReadPath is p's state on the host c reaches, with a regular file's content when
// withContent: what a step's Check reads of a path. When the step declared the path
// (PathReader, with Content for its content), the runner's gather of the host's checks
// has read it already and no command runs for it; otherwise it reads the path in one
// command of its own. A user's step gets the one round trip per converged host that
// cauldron's own steps get by declaring what it reads and reading it through here.
func ReadPath(ctx context.Context, c transport.Conn, p string, withContent bool) (PathState, error) {
	st, err := readPath(ctx, c, p, withContent)
	if err != nil {
		return PathState{}, err
	}
	out := PathState{Exists: st.Exists, Kind: st.Kind, Mode: st.Mode, Owner: st.Owner, Group: st.Group}
	if withContent && st.isRegular() {
		out.Content = st.Content
	}
	return out, nil
}

// readPath reads a path's state in one round trip, or none when a prefetch of ctx
// holds it (PrefetchPaths).
func readPath(ctx context.Context, c transport.Conn, p string, withContent bool) (pathState, error) {
	if st, ok := prefetched(ctx, c, p, withContent); ok {
		return st, nil
	}
	out, err := transport.Output(ctx, c, statScript(p, withContent))
	if err != nil {
		return pathState{}, fmt.Errorf("read %s: %w", p, err)
	}
	st, err := parseStat(out)
	if err != nil {
		return pathState{}, fmt.Errorf("read %s: %w", p, err)
	}
	return st, nil
}

// ownership is the mode and owners a step wants; zero values mean "leave as it is"
// for an existing path, and the default (defaultMode, the connecting user) for a new one.
type ownership struct {
	Mode  fs.FileMode
	Owner string
	Group string
}

// drift lists what differs between have and want, as "mode 644 -> 600" phrases.
func (w ownership) drift(have pathState) []string {
	var d []string
	if w.Mode != 0 && have.Mode != w.Mode {
		d = append(d, fmt.Sprintf("mode %04o -> %04o", uint32(have.Mode), uint32(w.Mode)))
	}
	if w.Owner != "" && have.Owner != w.Owner {
		d = append(d, fmt.Sprintf("owner %s -> %s", have.Owner, w.Owner))
	}
	if w.Group != "" && have.Group != w.Group {
		d = append(d, fmt.Sprintf("group %s -> %s", have.Group, w.Group))
	}
	return d
}

// chown is the argument of chown for w, or "" when w names no owner.
func (w ownership) chown() string { return transport.ChownArg(w.Owner, w.Group) }

// fixScript is the command line that sets w's mode and owners on p ("" when none).
func (w ownership) fixScript(p string, recurse bool) string {
	var cmds []string
	if w.Mode != 0 {
		cmds = append(cmds, shell.Join("chmod", fmt.Sprintf("%04o", uint32(w.Mode)), "--", p))
	}
	if o := w.chown(); o != "" {
		argv := []string{"chown"}
		if recurse {
			argv = append(argv, "-R")
		}
		cmds = append(cmds, shell.Join(append(argv, "--", o, p)...))
	}
	return strings.Join(cmds, " && ")
}

// keep fills w's zero values from an existing path, so that rewriting a file does not
// reset what the step does not manage.
func (w ownership) keep(have pathState, defaultMode fs.FileMode) ownership {
	if w.Mode == 0 {
		w.Mode = defaultMode
		if have.Exists {
			w.Mode = have.Mode
		}
	}
	if have.Exists {
		if w.Owner == "" {
			w.Owner = have.Owner
		}
		if w.Group == "" {
			w.Group = have.Group
		}
	}
	return w
}

// existsTest is the shell test that p is there, a dangling symbolic link included: a
// path that is a link to nowhere still stands in the way of a rename onto it.
func existsTest(p string) string {
	q := shell.Quote(p)
	return "{ [ -e " + q + " ] || [ -L " + q + " ]; }"
}

// validatorFailed is the exit status a step's own validation script uses when the
// validator rejects the content, to tell it from a failure to run (transport.Put has
// its own, inside the transport).
const validatorFailed = 65
