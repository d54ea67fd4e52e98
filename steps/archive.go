package steps

import (
	"context"
	"errors"
	"fmt"

	"github.com/cauldron-go/cauldron/shell"
	"github.com/cauldron-go/cauldron/transport"
)

// Untar unpacks a tar archive already on the host (compression is detected by tar) into
// Dest. Its guard is Creates: when that path exists the step is converged (Creates
// defaults to Dest). The archive is unpacked into a temporary directory beside Dest and
// renamed into place, so a half-done extract never looks done: Dest itself when it does
// not exist yet, otherwise each top-level entry into Dest. Dest's parent must exist
// (make it with Dir). StripComponents drops that many leading folders of each entry, as
// tar --strip-components does: 1 unpacks jdk-17.0.2/bin/java as Dest/bin/java.
//
//	steps.Untar{Archive: "/home/gaia3d/setup/jdk-17.0.2.tar.gz", Dest: "/home/gaia3d/tools/jdk-17.0.2",
//		StripComponents: 1, Creates: "/home/gaia3d/tools/jdk-17.0.2/bin/java", Owner: "gaia3d", Group: "gaia3d"}
type Untar struct {
	Archive         string
	Dest            string
	Creates         string
	Owner           string
	Group           string
	StripComponents int
}

func (u Untar) String() string { return "untar " + u.Archive + " into " + u.Dest }

// Validate rejects relative paths, bad owners and a negative StripComponents.
func (u Untar) Validate() error {
	err := validateArchive(u.Archive, u.Dest, u.Creates, u.Owner, u.Group)
	if u.StripComponents < 0 {
		err = errors.Join(err, fmt.Errorf("StripComponents: %d is negative", u.StripComponents))
	}
	return err
}

// Check tests the guard path.
func (u Untar) Check(ctx context.Context, c transport.Conn) (*Change, error) {
	argv := []string{"tar", "-x", "-f", u.Archive, "-C"}
	extract := shell.Join(argv...) + ` "$t"`
	if u.StripComponents > 0 {
		extract += fmt.Sprintf(" --strip-components=%d", u.StripComponents)
	}
	return checkExtract(ctx, c, u.String(), u.Dest, u.Creates, ownership{Owner: u.Owner, Group: u.Group}, "", extract)
}

// Unzip unpacks a zip archive already on the host, like Untar. The host needs `unzip`
// (install it first with Packages); without it Apply fails saying so.
type Unzip struct {
	Archive string
	Dest    string
	Creates string
	Owner   string
	Group   string
}

func (u Unzip) String() string { return "unzip " + u.Archive + " into " + u.Dest }

// Validate rejects relative paths and bad owners.
func (u Unzip) Validate() error {
	return validateArchive(u.Archive, u.Dest, u.Creates, u.Owner, u.Group)
}

// Check tests the guard path.
func (u Unzip) Check(ctx context.Context, c transport.Conn) (*Change, error) {
	need := `command -v unzip >/dev/null 2>&1 || { echo "unzip is not installed on the host: install it first (steps.Packages)" >&2; exit 127; }; `
	extract := shell.Join("unzip", "-q", "-o", u.Archive, "-d") + ` "$t"`
	return checkExtract(ctx, c, u.String(), u.Dest, u.Creates, ownership{Owner: u.Owner, Group: u.Group}, need, extract)
}

func validateArchive(archive, dest, creates, owner, group string) error {
	errs := []error{checkAbsPath("Archive", archive), checkAbsPath("Dest", dest),
		checkAccount("Owner", owner), checkAccount("Group", group)}
	if creates != "" {
		errs = append(errs, checkAbsPath("Creates", creates))
	}
	return errors.Join(errs...)
}

// checkExtract is the check shared by Untar and Unzip: converged when the guard exists,
// else a change that runs extract (a shell line unpacking into "$t") in a temporary
// directory beside dest and renames the result into place.
func checkExtract(ctx context.Context, c transport.Conn, name, dest, creates string, w ownership, need, extract string) (*Change, error) {
	if creates == "" {
		creates = dest
	}
	out, err := transport.Output(ctx, c, "if "+existsTest(creates)+"; then echo yes; else echo no; fi")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if out == "yes\n" {
		return nil, nil
	}
	d := shell.Quote(dest)
	script := need + "set -e; t=$(mktemp -d " + shell.Quote(transport.TempBeside(dest)) + `); trap 'rm -rf "$t"' EXIT; ` +
		extract + "; "
	if o := w.chown(); o != "" {
		script += `chown -R -- ` + shell.Quote(o) + ` "$t"; `
	}
	// mktemp -d makes a 0700 directory; a directory that becomes Dest gets 0755.
	script += "if [ -e " + d + " ]; then for e in \"$t\"/* \"$t\"/.[!.]* \"$t\"/..?*; do " +
		`{ [ -e "$e" ] || [ -L "$e" ]; } || continue; mv -T -- "$e" ` + d + `/"${e##*/}"; done; ` +
		`else chmod 0755 "$t"; mv -T -- "$t" ` + d + "; fi; trap - EXIT; rm -rf \"$t\""
	return &Change{
		Summary: fmt.Sprintf("%s (%s is missing)", name, creates),
		Apply: func(ctx context.Context) error {
			if _, err := transport.Output(ctx, c, script); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			return nil
		},
	}, nil
}
