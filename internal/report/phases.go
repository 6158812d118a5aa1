package report

import (
	"fmt"
	"html/template"
	"strings"

	"github.com/lockscope/lockscope/internal/merge"
)

// phaseColors are the phases' colours in the stacked bars, in
// merge.PhaseNames order.
var phaseColors = []string{"#8e44ad", "#2980b9", "#c0392b", "#7f8c8d", "#f39c12", "#27ae60"}

// PhaseBars draws the mean phases of slow and other produce requests as two
// stacked horizontal bars on one scale (inline SVG), with a legend.
func PhaseBars(s *merge.PhaseSummary) template.HTML {
	if s == nil {
		return ""
	}
	const width, barH, left = 700.0, 26.0, 150.0
	scale := max(s.Slow.Total, s.Within.Total)
	if scale <= 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg id="phase-bars" viewBox="0 0 %.0f %.0f" role="img" aria-label="mean phases of slow and other produce requests">`, width+left+90, 3*barH+40)
	row := func(y float64, label string, g merge.PhaseGroup) {
		fmt.Fprintf(&b, `<text x="0" y="%.0f" font-size="13" dominant-baseline="middle">%s (%d)</text>`, y+barH/2, label, g.Requests)
		x := left
		for i, v := range g.Mean {
			w := float64(v) / float64(scale) * width
			if w <= 0 {
				continue
			}
			fmt.Fprintf(&b, `<rect x="%.2f" y="%.0f" width="%.2f" height="%.0f" style="fill:%s"><title>%s: %s</title></rect>`,
				x, y, w, barH, phaseColors[i%len(phaseColors)], merge.PhaseNames[i], fmtDur(v))
			x += w
		}
		fmt.Fprintf(&b, `<text x="%.2f" y="%.0f" font-size="12" dominant-baseline="middle">%s</text>`, x+4, y+barH/2, fmtDur(g.Total))
	}
	row(4, "over the SLO", s.Slow)
	row(barH+14, "within it", s.Within)
	x := 0.0
	for i, n := range merge.PhaseNames {
		fmt.Fprintf(&b, `<rect x="%.0f" y="%.0f" width="12" height="12" style="fill:%s"/><text x="%.0f" y="%.0f" font-size="12">%s</text>`,
			x, 2*barH+26, phaseColors[i%len(phaseColors)], x+16, 2*barH+36, n)
		x += 16 + 8*float64(len(n)) + 18
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}
