package runner

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cauldron-go/cauldron/steps"
)

// progress writes the live lines. Each step's line and its indented detail go out in
// one Write under the mutex, so lines from parallel hosts never interleave.
type progress struct {
	mu        sync.Mutex
	w         io.Writer
	mask      masker
	color     bool
	hostWidth int
	// live redraws the running transfers on one last line (a terminal); without it,
	// each report of a transfer is a line of its own.
	live bool
	// transfers are the running transfers' texts by host, and shown whether the
	// live line is on the screen now.
	transfers map[string]string
	shown     bool
}

const indent = "    "

func (p *progress) write(s string) {
	s = p.mask.String(s)
	p.mu.Lock()
	defer p.mu.Unlock()
	// Progress is a courtesy to whoever watches; a broken terminal must not fail the
	// run, whose outcome is in the Report either way.
	if p.shown {
		_, _ = io.WriteString(p.w, "\r\x1b[K")
		p.shown = false
	}
	_, _ = io.WriteString(p.w, s)
	p.drawLive()
}

// transfer shows how far a host's transfer has got: on the live line, or as a line.
func (p *progress) transfer(host string, t steps.Progress) {
	text := p.mask.String(fmt.Sprintf("%s  %s", t.What, transferred(t)))
	if !p.live {
		p.write(fmt.Sprintf("%-*s  %-*s  %s\n", p.hostWidth, host, statusWidth, "in progress", text))
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.transfers == nil {
		p.transfers = map[string]string{}
	}
	p.transfers[host] = text
	if p.shown {
		_, _ = io.WriteString(p.w, "\r\x1b[K")
	}
	p.drawLive()
}

// endTransfer takes a host's transfer off the live line, before its step's line.
func (p *progress) endTransfer(host string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.transfers, host)
}

// drawLive writes the live line of the running transfers, without a line break, so
// that the next write replaces it. p.mu is held.
func (p *progress) drawLive() {
	if len(p.transfers) == 0 {
		return
	}
	hosts := slices.Sorted(maps.Keys(p.transfers))
	parts := make([]string, len(hosts))
	for i, h := range hosts {
		parts[i] = h + ": " + p.transfers[h]
	}
	line := strings.Join(parts, "  |  ")
	if r := []rune(line); len(r) > liveWidth {
		line = string(r[:liveWidth-1]) + "…"
	}
	_, _ = io.WriteString(p.w, line)
	p.shown = true
}

// liveWidth keeps the live line on one line of a usual terminal.
const liveWidth = 150

// transferred says "45.1 MiB of 134.4 MiB (33%), 40.2 MiB/s".
func transferred(t steps.Progress) string {
	s := bytesIEC(t.Done)
	if t.Total > 0 {
		s += fmt.Sprintf(" of %s (%d%%)", bytesIEC(t.Total), t.Done*100/t.Total)
	}
	return s + ", " + bytesIEC(int64(t.Rate())) + "/s"
}

func bytesIEC(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, exp := float64(n)/unit, 0
	for v >= unit && exp < 4 {
		v /= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", v, "KMGTP"[exp])
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
	p.endTransfer(host)
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
