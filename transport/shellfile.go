package transport

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"path"

	"github.com/cauldron-go/cauldron/shell"
)

// PutScript is the command line that installs its standard input as f in one round
// trip: a temporary file beside the target, its mode and owner set, then a rename. A
// transport whose only ability is running commands (docker exec, sudo) puts files with it.
func PutScript(f File) string {
	mode := f.Mode.Perm()
	if mode == 0 {
		mode = 0o644
	}
	dir, base := path.Split(path.Clean(f.Path))
	if dir == "" {
		dir = "."
	}
	owner := ""
	switch {
	case f.Owner != "" && f.Group != "":
		owner = f.Owner + ":" + f.Group
	case f.Owner != "":
		owner = f.Owner
	case f.Group != "":
		owner = ":" + f.Group
	}
	script := "set -e; t=$(mktemp " + shell.Quote(dir+"."+base+".cauldron-XXXXXX") + "); " +
		`trap 'rm -f "$t"' EXIT; cat >"$t"; ` +
		fmt.Sprintf(`chmod %o "$t"; `, uint32(mode))
	if owner != "" {
		script += `chown ` + shell.Quote(owner) + ` "$t"; `
	}
	script += `mv -f "$t" ` + shell.Quote(f.Path) + `; trap - EXIT`
	return script
}

// PutByShell puts f through a connection that can only run commands.
func PutByShell(ctx context.Context, c Conn, f File) error {
	_, err := OutputWithInput(ctx, c, PutScript(f), bytes.NewReader(f.Content))
	if err != nil {
		return fmt.Errorf("put %s: %w", f.Path, err)
	}
	return nil
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
