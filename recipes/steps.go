package recipes

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/cauldron-go/cauldron/shell"

	"github.com/cauldron-go/cauldron/steps"
	"github.com/cauldron-go/cauldron/transport"
)

// invalidStep stands where a step could not be built from its config, so that the
// recipe's Validate reports the mistake, naming the step, before anything connects.
type invalidStep struct {
	name string
	err  error
}

func (s invalidStep) String() string  { return s.name }
func (s invalidStep) Validate() error { return s.err }
func (s invalidStep) Check(context.Context, transport.Conn) (*steps.Change, error) {
	return nil, s.err
}

func ptr[T any](v T) *T { return &v }

// RestartAndWait restarts a unit and waits, on the host, until every URL answers with
// a success: a rolling restart must not move on to the next node while this one is
// still starting, or the sessions it should hand over are lost.
type RestartAndWait struct {
	Unit    string
	URLs    []string
	Timeout time.Duration
}

func (r RestartAndWait) String() string { return "restart " + r.Unit + " and wait until it serves" }

// Validate rejects a step without a unit or URLs.
func (r RestartAndWait) Validate() error {
	if r.Unit == "" || len(r.URLs) == 0 {
		return errors.New("RestartAndWait needs a Unit and at least one URL")
	}
	return nil
}

// Check always finds a change: a restart is an action, run when notified.
func (r RestartAndWait) Check(_ context.Context, c transport.Conn) (*steps.Change, error) {
	timeout := r.Timeout
	if timeout == 0 {
		timeout = 3 * time.Minute
	}
	probe := make([]string, len(r.URLs))
	for i, u := range r.URLs {
		probe[i] = shell.Join("curl", "-fsS", "-o", "/dev/null", "-m", "2", u)
	}
	// A deadline on the host's clock, in seconds: counting loops would let each slow
	// probe (up to curl's 2 s) stretch the timeout threefold.
	script := fmt.Sprintf("%s || exit; end=$(( $(date +%%s) + %d )); while :; do if %s; then exit 0; fi; "+
		"[ \"$(date +%%s)\" -lt \"$end\" ] || break; sleep 1; done; echo %s >&2; exit 1",
		shell.Join("systemctl", "restart", r.Unit), int(timeout.Seconds()), strings.Join(probe, " && "),
		shell.Quote(fmt.Sprintf("%s did not serve %s within %s", r.Unit, strings.Join(r.URLs, " and "), timeout)))
	return &steps.Change{
		Summary: "restart " + r.Unit + ", then wait for " + strings.Join(r.URLs, " and "),
		Apply: func(ctx context.Context) error {
			_, err := transport.Output(ctx, c, script)
			return err
		},
	}, nil
}

// UnpackWAR unpacks an uploaded WAR into an app folder and unpacks it again whenever
// the WAR changes: a marker in the folder records the sha256 of the WAR it came from.
// The new folder is built beside the old one and swapped in whole, so no file of the
// old version lingers and Tomcat never sees half an app. Files the recipe writes into
// the folder afterwards (application.properties) are written again by their own steps.
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

// Check compares the marker with the local WAR's sum.
func (u UnpackWAR) Check(ctx context.Context, c transport.Conn) (*steps.Change, error) {
	want, err := steps.FileSHA256(u.LocalWAR)
	if err != nil {
		return nil, fmt.Errorf("unpack %s: %w", u.WAR, err)
	}
	marker := path.Join(u.Dest, warMarker)
	have, err := transport.Output(ctx, c, "cat -- "+shell.Quote(marker)+" 2>/dev/null || true")
	if err != nil {
		return nil, fmt.Errorf("unpack %s: %w", u.WAR, err)
	}
	have = strings.TrimSpace(have)
	if have == want {
		return nil, nil
	}
	summary := "unpack " + u.WAR + " into " + u.Dest
	if have != "" {
		summary = "replace " + u.Dest + " with the new " + path.Base(u.WAR)
	}
	dir, base := path.Split(u.Dest)
	d := shell.Quote(u.Dest)
	script := "command -v unzip >/dev/null || { echo 'unzip is not installed' >&2; exit 1; }; set -e; " +
		"t=$(mktemp -d " + shell.Quote(dir+"."+base+".cauldron-XXXXXX") + `); trap 'rm -rf "$t" "$t.old"' EXIT; ` +
		"unzip -q " + shell.Quote(u.WAR) + ` -d "$t"; echo ` + want + ` > "$t"/` + warMarker + `; chmod 0755 "$t"; `
	if u.Owner != "" {
		script += "chown -R -- " + shell.Quote(u.Owner+":"+u.Group) + ` "$t"; `
	}
	script += "if [ -e " + d + ` ]; then mv -T -- ` + d + ` "$t.old"; fi; mv -T -- "$t" ` + d
	return &steps.Change{Summary: summary, Apply: func(ctx context.Context) error {
		if _, err := transport.Output(ctx, c, script); err != nil {
			return fmt.Errorf("unpack %s: %w", u.WAR, err)
		}
		return nil
	}}, nil
}
