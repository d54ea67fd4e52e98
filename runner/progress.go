package runner

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// progress writes the live lines. Each step's line and its indented detail go out in
// one Write under the mutex, so lines from parallel hosts never interleave.
type progress struct {
	mu        sync.Mutex
	w         io.Writer
	mask      masker
	color     bool
	hostWidth int
}

const indent = "    "

func (p *progress) write(s string) {
	s = p.mask.String(s)
	p.mu.Lock()
	defer p.mu.Unlock()
	// Progress is a courtesy to whoever watches; a broken terminal must not fail the
	// run, whose outcome is in the Report either way.
	_, _ = io.WriteString(p.w, s)
}

var statusColor = map[Status]string{
	StatusOK:          "32",
	StatusChanged:     "33",
	StatusWouldChange: "33",
	StatusFailed:      "31",
	StatusSkipped:     "36",
	StatusWouldRun:    "35",
	StatusPending:     "35",
}

// statusWidth is the width of the longest status, "would change".
const statusWidth = len(StatusWouldChange)

func (p *progress) head(host string, s Status) string {
	st := fmt.Sprintf("%-*s", statusWidth, s)
	if p.color {
		st = "\x1b[" + statusColor[s] + "m" + st + "\x1b[0m"
	}
	return fmt.Sprintf("%-*s  %s  ", p.hostWidth, host, st)
}

func (p *progress) stepLine(host string, r StepResult, showDiff bool) {
	var b strings.Builder
	b.WriteString(p.head(host, r.Status))
	b.WriteString(r.Step)
	if r.AfterChange {
		b.WriteString(" [after an earlier change]")
	}
	switch r.Status {
	case StatusSkipped:
		fmt.Fprintf(&b, "  (%s)\n", r.Reason)
	default:
		fmt.Fprintf(&b, "  (%s)\n", elapsed(r.ElapsedMS))
	}
	detail(&b, "", r.Summary)
	detail(&b, "error: ", r.Error)
	if showDiff {
		detail(&b, "", r.Diff)
	}
	p.write(b.String())
}

func (p *progress) handlerLine(host string, r HandlerResult) {
	var b strings.Builder
	b.WriteString(p.head(host, r.Status))
	b.WriteString("handler " + r.Handler)
	if r.AfterFailure {
		b.WriteString(" [after a failed step]")
	}
	if r.FromEarlierRun {
		b.WriteString(" [pending from an earlier run]")
	}
	switch r.Status {
	case StatusPending:
		fmt.Fprintf(&b, "  (%s)\n", r.Reason)
	case StatusWouldRun:
		b.WriteString("\n")
	default:
		fmt.Fprintf(&b, "  (%s)\n", elapsed(r.ElapsedMS))
	}
	detail(&b, "", r.Summary)
	detail(&b, "error: ", r.Error)
	p.write(b.String())
}

func (p *progress) unreachable(host string, errText string, ms int64) {
	var b strings.Builder
	b.WriteString(p.head(host, StatusFailed))
	fmt.Fprintf(&b, "connect  (%s)\n", elapsed(ms))
	detail(&b, "error: ", errText)
	p.write(b.String())
}

// detail writes text indented under a step line, one line of output per line of text.
func detail(b *strings.Builder, prefix, text string) {
	text = strings.TrimRight(text, "\n")
	if text == "" {
		return
	}
	for i, line := range strings.Split(text, "\n") {
		b.WriteString(indent)
		if i == 0 {
			b.WriteString(prefix)
		} else if prefix != "" {
			b.WriteString(strings.Repeat(" ", len(prefix)))
		}
		b.WriteString(line)
		b.WriteString("\n")
	}
}

func (p *progress) recap(r *Report) {
	var b strings.Builder
	b.WriteString("\nRECAP\n")
	for _, h := range r.Hosts {
		c := h.Counts
		fmt.Fprintf(&b, "%-*s  ok=%d changed=%d failed=%d skipped=%d", p.hostWidth, h.Host, c.OK, c.Changed, c.Failed, c.Skipped)
		if c.Unreachable > 0 {
			// Not failed=1: no step failed. But the host did, and the run exits 1.
			fmt.Fprintf(&b, " unreachable=%d", c.Unreachable)
		}
		if t := h.Traffic; t != nil {
			fmt.Fprintf(&b, " commands=%d round_trips=%d", t.Commands, t.RoundTrips)
		}
		b.WriteString("\n")
	}
	switch {
	case r.Cancelled:
		b.WriteString("cancelled\n")
	case r.Stopped != "":
		fmt.Fprintf(&b, "stopped: %s\n", r.Stopped)
	}
	fmt.Fprintf(&b, "%s done in %s\n", r.Mode, roundDuration(r.Duration))
	p.write(b.String())
}

func elapsed(ms int64) string {
	if ms < 1000 {
		return fmt.Sprintf("%dms", ms)
	}
	return fmt.Sprintf("%.1fs", float64(ms)/1000)
}

func roundDuration(d time.Duration) time.Duration {
	if d < time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(100 * time.Millisecond)
}
