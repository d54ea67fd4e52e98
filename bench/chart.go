package bench

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"
)

// Chart writes the result's rows as an SVG bar chart: for each row a bar per tool, on
// a logarithmic time axis (the tools differ by an order of magnitude or more), with
// the medians and the ratio written beside them.
func Chart(w io.Writer, r *Result) {
	const (
		labelW = 360
		plotW  = 520
		barH   = 12
		rowGap = 10
		top    = 40
	)
	lo, hi := 0.01, 1.0
	for _, row := range r.Rows {
		hi = math.Max(hi, math.Max(row.Ansible, row.Cauldron))
	}
	decades := []float64{}
	for d := lo; d <= hi*10; d *= 10 {
		decades = append(decades, d)
	}
	hi = decades[len(decades)-1]
	x := func(s float64) float64 {
		s = math.Max(s, lo)
		return labelW + plotW*math.Log10(s/lo)/math.Log10(hi/lo)
	}
	rowH := 2*barH + rowGap
	height := top + len(r.Rows)*rowH + 40
	width := labelW + plotW + 90
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="DejaVu Sans, Arial, sans-serif" font-size="11">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#fff"/>`+"\n", width, height)
	title := "cauldron (Ansible not measured)"
	if r.Ansible != "" {
		title = "cauldron vs " + r.Ansible
	}
	fmt.Fprintf(&b, `<text x="6" y="16" font-weight="bold">%s, medians (log scale), %d CPUs</text>`+"\n", html.EscapeString(title), r.CPUs)
	for _, d := range decades {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/><text x="%.1f" y="%d" text-anchor="middle" fill="#555">%gs</text>`+"\n",
			x(d), top-8, x(d), height-34, x(d), top-12, d)
	}
	for i, row := range r.Rows {
		y := top + i*rowH
		// About 6 px a character: the label stays left of the bars.
		label := clip(fmt.Sprintf("%s: %s, %d hosts, %s", row.Part, clip(row.Work, 30), row.Hosts, row.Run), labelW/6-2)
		fmt.Fprintf(&b, `<text x="6" y="%d">%s</text>`+"\n", y+barH+4, html.EscapeString(label))
		bars := []struct {
			tool  string
			v     float64
			color string
		}{{ToolAnsible, row.Ansible, "#999"}, {ToolCauldron, row.Cauldron, "#0072B2"}}
		for j, br := range bars {
			if br.v <= 0 {
				continue
			}
			by := y + j*barH
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"><title>%s %s</title></rect>`,
				labelW, by, math.Max(x(br.v)-labelW, 1), barH-2, br.color, br.tool, secs(br.v))
			text := secs(br.v)
			if br.tool == ToolCauldron && row.Ratio > 0 {
				text += fmt.Sprintf("  (%.1f× faster)", row.Ratio)
			}
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" fill="#333">%s</text>`+"\n", x(br.v)+4, by+barH-3, html.EscapeString(text))
		}
	}
	ly := height - 18
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="12" height="10" fill="#999"/><text x="%d" y="%d">Ansible</text>`, labelW, ly, labelW+16, ly+9)
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="12" height="10" fill="#0072B2"/><text x="%d" y="%d">cauldron</text>`+"\n", labelW+80, ly, labelW+96, ly+9)
	b.WriteString("</svg>\n")
	io.WriteString(w, b.String())
}
