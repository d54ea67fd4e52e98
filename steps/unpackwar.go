package steps

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/cauldron-go/cauldron/shell"
	"github.com/cauldron-go/cauldron/transport"
)

// UnpackWAR unpacks an uploaded WAR into an app folder, as Tomcat's unpackWARs would,
// and unpacks it again whenever the WAR changes: a marker in the folder records the
// sha256 of the WAR it came from. The host needs unzip (install it with Packages).
// The new folder is built beside the old one and swapped in whole, so no file of the
// old version lingers and nothing sees half an app. Files the recipe writes into the
// folder afterwards (application.properties) are written again by their own steps.
//
// Never give it the folder a running Tomcat serves: the swap changes its files under
// it (Jasper recompiles the new JSPs against the old classes, resources vanish, and
// users get 500s until the restart). recipes.TomcatNode unpacks each WAR into a folder
// of its own, Dest = configs.App.ReleaseDir(), that server.xml names only from the
// restart on, and SwitchRelease removes the old ones after it.
type UnpackWAR struct {
	// LocalWAR is the WAR on the control machine, for its sum; WAR is its upload.
	LocalWAR, WAR string
	Dest          string
	Owner, Group  string
}

// warMarker is the file in an unpacked app that names the WAR's sum.
const warMarker = ".cauldron-war.sha256"

func (u UnpackWAR) String() string { return "unpack " + u.WAR + " into " + u.Dest }

// Validate rejects relative paths and an empty local WAR.
func (u UnpackWAR) Validate() error {
	if u.LocalWAR == "" || !path.IsAbs(u.WAR) || !path.IsAbs(u.Dest) {
		return errors.New("UnpackWAR needs LocalWAR, and absolute WAR and Dest paths")
	}
	return nil
}

// PathsRead is the marker, with its content.
func (u UnpackWAR) PathsRead() []PathRead {
	return []PathRead{{Path: path.Join(u.Dest, warMarker), Content: true}}
}

// Check compares the marker with the local WAR's sum.
func (u UnpackWAR) Check(ctx context.Context, c transport.Conn) (*Change, error) {
	want, err := FileSHA256(u.LocalWAR)
	if err != nil {
		return nil, fmt.Errorf("unpack %s: %w", u.WAR, err)
	}
	st, err := readPath(ctx, c, path.Join(u.Dest, warMarker), true)
	if err != nil {
		return nil, fmt.Errorf("unpack %s: %w", u.WAR, err)
	}
	have := ""
	if st.isRegular() {
		have = strings.TrimSpace(string(st.Content))
	}
	if have == want {
		return nil, nil
	}
	summary := "unpack " + u.WAR + " into " + u.Dest
	if have != "" {
		summary = "replace " + u.Dest + " with the new " + path.Base(u.WAR)
	}
	d := shell.Quote(u.Dest)
	script := "command -v unzip >/dev/null || { echo 'unzip is not installed' >&2; exit 1; }; set -e; " +
		"t=$(mktemp -d " + shell.Quote(transport.TempBeside(u.Dest)) + `); trap 'rm -rf "$t" "$t.old"' EXIT; ` +
		"unzip -q " + shell.Quote(u.WAR) + ` -d "$t"; echo ` + want + ` > "$t"/` + warMarker + `; chmod 0755 "$t"; `
	if u.Owner != "" {
		script += "chown -R -- " + shell.Quote(u.Owner+":"+u.Group) + ` "$t"; `
	}
	// The old app goes aside, the new one in; when the second rename fails the old one
	// comes back before the trap removes what is left, so a failed swap loses nothing.
	script += "if [ -e " + d + ` ]; then mv -T -- ` + d + ` "$t.old"; fi; ` +
		`if ! mv -T -- "$t" ` + d + `; then if [ -e "$t.old" ]; then mv -T -- "$t.old" ` + d + `; fi; ` +
		"echo " + shell.Quote("the new app could not be put in place; "+u.Dest+" is as it was") + " >&2; exit 1; fi"
	return &Change{Summary: summary, Apply: func(ctx context.Context) error {
		if _, err := transport.Output(ctx, c, script); err != nil {
			return fmt.Errorf("unpack %s: %w", u.WAR, err)
		}
		return nil
	}}, nil
}
