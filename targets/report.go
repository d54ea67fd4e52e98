package targets

import (
	"cmp"
	"context"
	"fmt"
	"os"

	"github.com/magefile/mage/mg"

	"github.com/cauldron-go/cauldron/timeline"
)

// Report is the report: namespace.
type Report mg.Namespace

// Timeline draws a run's JSON report (deploy:cluster -report=FILE) as an SVG timeline: a row per host, a bar per step, coloured by status, handlers hatched, waits dashed.
//
// Flags: -report=FILE (default deploy.json), -out=FILE (default the report's name with .svg).
func (Report) Timeline(ctx context.Context, report *string, out *string) error {
	in := cmp.Or(deref(report), "deploy.json")
	dest := cmp.Or(deref(out), trimExt(in)+".svg")
	return writeTimeline(in, dest)
}

func writeTimeline(in, dest string) error {
	f, err := os.Open(in)
	if err != nil {
		return fmt.Errorf("report:timeline: %w", err)
	}
	defer f.Close()
	rep, err := timeline.Read(in, f)
	if err != nil {
		return err
	}
	w, err := os.Create(dest)
	if err != nil {
		return fmt.Errorf("report:timeline: %w", err)
	}
	if err := timeline.Render(w, rep); err != nil {
		w.Close()
		return fmt.Errorf("report:timeline: write %s: %w", dest, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("report:timeline: write %s: %w", dest, err)
	}
	fmt.Printf("timeline of %s written to %s\n", in, dest)
	return nil
}

// trimExt drops the file name's extension: deploy.json -> deploy.
func trimExt(p string) string {
	for i := len(p) - 1; i >= 0 && p[i] != '/'; i-- {
		if p[i] == '.' {
			return p[:i]
		}
	}
	return p
}
