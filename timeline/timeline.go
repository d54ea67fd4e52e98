// Package timeline draws a run's JSON report (runner.Report, as written by
// `deploy:cluster -report=FILE`) as an SVG picture: one row per host, one bar per step
// and per handler along the run's time, coloured by status. Handlers are hatched, and
// the time a host waited between two of its bars (for a play of other hosts, for the
// rolling-restart turn of its handlers) is a dashed line, so where a run spends its
// time is seen at a glance.
package timeline

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"math"
	"sort"
	"strings"
)

// Report is the part of a runner report the picture is drawn from. It reads the JSON
// that runner.Report.WriteJSON writes.
type Report struct {
	Mode       string `json:"mode"`
	DurationMS int64  `json:"duration_ms"`
	Hosts      []Host `json:"hosts"`
}

// Host is one row.
type Host struct {
	Host        string    `json:"host"`
	Failed      bool      `json:"failed"`
	Unreachable bool      `json:"unreachable"`
	Steps       []Step    `json:"steps"`
	Handlers    []Handler `json:"handlers"`
}

// Step is one bar.
type Step struct {
	Play      string `json:"play"`
	Step      string `json:"step"`
	Status    string `json:"status"`
	Summary   string `json:"summary"`
	Error     string `json:"error"`
	Reason    string `json:"reason"`
	StartMS   *int64 `json:"start_ms"`
	ElapsedMS int64  `json:"elapsed_ms"`
}

// Handler is one hatched bar.
type Handler struct {
	Play      string `json:"play"`
	Handler   string `json:"handler"`
	Status    string `json:"status"`
	Error     string `json:"error"`
	StartMS   *int64 `json:"start_ms"`
	ElapsedMS int64  `json:"elapsed_ms"`
}

// Read decodes a JSON report. name is the file's name, for the errors: a syntax error
// or a value of the wrong type says the line and the key.
func Read(name string, r io.Reader) (*Report, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var rep Report
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&rep); err != nil {
		var syntax *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &syntax):
			return nil, fmt.Errorf("%s:%d: not a JSON report: %v", name, lineAt(data, syntax.Offset), syntax)
		case errors.As(err, &typ):
			return nil, fmt.Errorf("%s:%d: key %q: a JSON %s where the report has a %s", name, lineAt(data, typ.Offset), typ.Field, typ.Value, typ.Type)
		}
		return nil, fmt.Errorf("%s: not a JSON report: %w", name, err)
	}
	for i, h := range rep.Hosts {
		for j, s := range h.Steps {
			if s.StartMS == nil {
				return nil, fmt.Errorf("%s: hosts[%d] (%s) steps[%d]: key \"start_ms\" is missing: the report is from a cauldron that did not record start times", name, i, h.Host, j)
			}
		}
		for j, s := range h.Handlers {
			if s.StartMS == nil {
				return nil, fmt.Errorf("%s: hosts[%d] (%s) handlers[%d]: key \"start_ms\" is missing: the report is from a cauldron that did not record start times", name, i, h.Host, j)
			}
		}
	}
	return &rep, nil
}

// lineAt is the 1-based line of the byte offset off.
func lineAt(data []byte, off int64) int {
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	return bytes.Count(data[:off], []byte("\n")) + 1
}

// Colours by status, readable on white and by the colour-blind (the Okabe-Ito palette).
var statusColor = map[string]string{
	"ok":           "#009E73",
	"changed":      "#E69F00",
	"would change": "#F0E442",
	"would run":    "#F0E442",
	"failed":       "#D55E00",
	"skipped":      "#BBBBBB",
	"pending":      "#CC79A7",
}

// legendOrder is the order of the legend's statuses.
var legendOrder = []string{"ok", "changed", "would change", "failed", "skipped", "pending"}

const (
	labelWidth = 140 // the host names' column
	plotWidth  = 900 // the time axis
	laneHeight = 14  // one lane of bars
	rowGap     = 8   // between two hosts
	axisHeight = 34  // the title and the time axis above the rows
	legendH    = 40  // the legend below them
	minBarPx   = 1.5 // a 0 ms step is still seen
	waitMinPx  = 3.0 // a gap narrower than this is not drawn as a wait
	font       = "font-family=\"DejaVu Sans, Arial, sans-serif\""
)

// bar is a step or handler placed on the time axis.
type bar struct {
	start, end int64 // ms
	handler    bool
	status     string
	title      string
	lane       int
}

// row is one host's bars in lanes: bars that overlap in time (checks run ahead of
// their steps) go to a lane below.
type row struct {
	host  string
	bars  []bar
	lanes int
	y     float64
}

// Render writes the SVG picture of rep to w.
func Render(w io.Writer, rep *Report) error {
	total := rep.DurationMS
	rows := make([]row, len(rep.Hosts))
	for i, h := range rep.Hosts {
		r := row{host: h.Host}
		if h.Unreachable {
			r.host += " (unreachable)"
		}
		for _, s := range h.Steps {
			what := s.Summary
			if s.Error != "" {
				what = s.Error
			} else if s.Reason != "" {
				what = s.Reason
			}
			r.bars = append(r.bars, bar{start: *s.StartMS, end: *s.StartMS + s.ElapsedMS, status: s.Status,
				title: describe(h.Host, s.Play, s.Step, s.Status, s.ElapsedMS, what)})
		}
		for _, s := range h.Handlers {
			r.bars = append(r.bars, bar{start: *s.StartMS, end: *s.StartMS + s.ElapsedMS, status: s.Status, handler: true,
				title: describe(h.Host, s.Play, "handler "+s.Handler, s.Status, s.ElapsedMS, s.Error)})
		}
		sort.SliceStable(r.bars, func(a, b int) bool { return r.bars[a].start < r.bars[b].start })
		var laneEnds []int64
		for j := range r.bars {
			b := &r.bars[j]
			total = max(total, b.end)
			b.lane = -1
			for l, end := range laneEnds {
				if end <= b.start {
					b.lane = l
					break
				}
			}
			if b.lane < 0 {
				b.lane = len(laneEnds)
				laneEnds = append(laneEnds, 0)
			}
			laneEnds[b.lane] = max(b.end, b.start+1)
		}
		r.lanes = max(1, len(laneEnds))
		rows[i] = r
	}
	if total <= 0 {
		total = 1
	}
	scale := float64(plotWidth) / float64(total)
	x := func(ms int64) float64 { return labelWidth + float64(ms)*scale }

	y := float64(axisHeight)
	for i := range rows {
		rows[i].y = y
		y += float64(rows[i].lanes*laneHeight + rowGap)
	}
	height := y + legendH
	width := labelWidth + plotWidth + 20

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%s" viewBox="0 0 %d %s" %s font-size="11">`+"\n",
		width, num(height), width, num(height), font)
	b.WriteString(`<defs><pattern id="hatch" width="4" height="4" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">` +
		`<rect width="2" height="4" fill="#000" fill-opacity="0.35"/></pattern></defs>` + "\n")
	fmt.Fprintf(&b, `<rect width="%d" height="%s" fill="#fff"/>`+"\n", width, num(height))
	fmt.Fprintf(&b, `<text x="4" y="13" font-weight="bold">%s run, %d hosts, %s</text>`+"\n",
		esc(or(rep.Mode, "cauldron")), len(rows), ms(rep.DurationMS))

	// The time axis: about ten ticks at a round step.
	step := tickStep(total)
	for t := int64(0); t <= total; t += step {
		fmt.Fprintf(&b, `<line x1="%s" y1="%d" x2="%s" y2="%s" stroke="#ddd"/>`+"\n", num(x(t)), axisHeight-8, num(x(t)), num(height-legendH+2))
		fmt.Fprintf(&b, `<text x="%s" y="%d" text-anchor="middle" fill="#555">%s</text>`+"\n", num(x(t)), axisHeight-11, ms(t))
	}

	for _, r := range rows {
		fmt.Fprintf(&b, `<g class="host"><title>%s</title>`+"\n", esc(r.host))
		fmt.Fprintf(&b, `<text x="4" y="%s">%s</text>`+"\n", num(r.y+laneHeight-3), esc(clip(r.host, 22)))
		fmt.Fprintf(&b, `<line x1="%d" y1="%s" x2="%d" y2="%s" stroke="#eee"/>`+"\n",
			labelWidth, num(r.y+float64(r.lanes*laneHeight)+rowGap/2), labelWidth+plotWidth, num(r.y+float64(r.lanes*laneHeight)+rowGap/2))
		// Waits: the host had finished everything it had started and the next bar had
		// not begun.
		var reached int64 = -1
		for _, br := range r.bars {
			if reached >= 0 && float64(br.start-reached)*scale >= waitMinPx {
				mid := r.y + laneHeight/2
				fmt.Fprintf(&b, `<line class="wait" x1="%s" y1="%s" x2="%s" y2="%s" stroke="#777" stroke-dasharray="3 2"><title>%s waits %s</title></line>`+"\n",
					num(x(reached)), num(mid), num(x(br.start)), num(mid), esc(r.host), ms(br.start-reached))
			}
			reached = max(reached, br.end)
		}
		for _, br := range r.bars {
			bx, bw := x(br.start), math.Max(float64(br.end-br.start)*scale, minBarPx)
			by := r.y + float64(br.lane*laneHeight) + 1
			color := statusColor[br.status]
			if color == "" {
				color = "#999"
			}
			class := "step"
			if br.handler {
				class = "handler"
			}
			fmt.Fprintf(&b, `<g class="%s"><title>%s</title><rect x="%s" y="%s" width="%s" height="%d" fill="%s" stroke="#333" stroke-width="0.4"/>`,
				class, esc(br.title), num(bx), num(by), num(bw), laneHeight-2, color)
			if br.handler {
				fmt.Fprintf(&b, `<rect x="%s" y="%s" width="%s" height="%d" fill="url(#hatch)"/>`, num(bx), num(by), num(bw), laneHeight-2)
			}
			b.WriteString("</g>\n")
		}
		b.WriteString("</g>\n")
	}

	// The legend.
	ly := height - legendH + 16
	lx := float64(labelWidth)
	for _, s := range legendOrder {
		fmt.Fprintf(&b, `<rect x="%s" y="%s" width="12" height="10" fill="%s" stroke="#333" stroke-width="0.4"/><text x="%s" y="%s">%s</text>`+"\n",
			num(lx), num(ly), statusColor[s], num(lx+16), num(ly+9), esc(s))
		lx += 22 + 7*float64(len(s))
	}
	fmt.Fprintf(&b, `<rect x="%s" y="%s" width="12" height="10" fill="#ccc" stroke="#333" stroke-width="0.4"/><rect x="%s" y="%s" width="12" height="10" fill="url(#hatch)"/><text x="%s" y="%s">handler</text>`+"\n",
		num(lx), num(ly), num(lx), num(ly), num(lx+16), num(ly+9))
	lx += 22 + 7*7
	fmt.Fprintf(&b, `<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#777" stroke-dasharray="3 2"/><text x="%s" y="%s">wait</text>`+"\n",
		num(lx), num(ly+5), num(lx+14), num(ly+5), num(lx+18), num(ly+9))
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func describe(host, play, step, status string, elapsed int64, what string) string {
	s := fmt.Sprintf("%s · %s · %s: %s (%s)", host, play, step, status, ms(elapsed))
	if what != "" {
		s += "\n" + clip(what, 300)
	}
	return s
}

// tickStep is a round step (1, 2 or 5 times a power of ten ms) giving about ten ticks.
func tickStep(total int64) int64 {
	raw := float64(total) / 10
	p := math.Pow(10, math.Floor(math.Log10(math.Max(raw, 1))))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			return max(1, int64(m*p))
		}
	}
	return max(1, int64(10*p))
}

func ms(v int64) string {
	switch {
	case v >= 10_000:
		return fmt.Sprintf("%.0fs", float64(v)/1000)
	case v >= 1000:
		return fmt.Sprintf("%.1fs", float64(v)/1000)
	}
	return fmt.Sprintf("%dms", v)
}

// num prints a coordinate with at most one decimal, so the file is small and stable.
func num(f float64) string {
	s := fmt.Sprintf("%.1f", f)
	return strings.TrimSuffix(s, ".0")
}

func esc(s string) string { return html.EscapeString(s) }

func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
