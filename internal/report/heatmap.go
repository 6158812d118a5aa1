package report

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/palette/moreland"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// gonum.org/v1/plot draws the heat maps: a maintained plotting library with
// heat maps, colour maps and SVG and PNG canvases, so the report keeps no
// graphics code of its own beyond choosing what goes where.

// HeatMap is a Grid with what to draw over it.
type HeatMap struct {
	Title string
	Grid  *Grid
	// XLabel names the time axis (default: since the capture started).
	XLabel string
	// YLabel names the duration on the y axis (default "latency"); ZLabel
	// says what colour shows ("requests a cell").
	YLabel, ZLabel string
	// ZMin and ZMax bound the colour scale, which is logarithmic: cells
	// under ZMin (but above zero) take its colour, empty cells none.
	// ZMax 0 means the grid's largest cell; compare sets one for all maps.
	ZMin, ZMax float64
	// SLO, when set, is drawn as a line across the map.
	SLO time.Duration
	// Windows are marked in a strip above the map.
	Windows []Span
	// XMax ends the time axis (0: the grid's end), so maps of captures of
	// different lengths can share a scale.
	XMax time.Duration
	// Width and Height of the figure (defaults 26cm by 10cm).
	Width, Height vg.Length
}

// Span is a stretch of time since the capture's start.
type Span struct {
	Start time.Duration `json:"start_ns"`
	End   time.Duration `json:"end_ns"`
}

// The colour scale: light yellow for few, through red, to dark purple for
// many; a white background shows an empty cell. Sampled from Moreland's
// extended black-body map, which is perceptually ordered.
var heatColors = func() []color.Color {
	cm := moreland.ExtendedBlackBody()
	cm.SetMin(0)
	cm.SetMax(1)
	const n = 64
	out := make([]color.Color, n)
	for i := range out {
		// 0.92 (pale) down to 0.25 (dark): the ends of the map are too close
		// to white and black to read.
		v := cm.Min() + (cm.Max()-cm.Min())*(0.92-0.67*float64(i)/(n-1))
		c, err := cm.At(v)
		if err != nil {
			c = color.Black
		}
		out[i] = c
	}
	return out
}()

type heatPalette []color.Color

func (p heatPalette) Colors() []color.Color { return p }

var (
	sloColor    = color.RGBA{R: 0x1f, G: 0x5f, B: 0xd0, A: 0xff}
	windowColor = color.RGBA{R: 0xe0, G: 0x30, B: 0x30, A: 0xff}
	textFont    = font.Font{Typeface: "Liberation", Variant: "Sans"}
)

// gridXYZ shows a Grid to plotter.HeatMap: x in seconds, y in log10
// seconds, z in log10 of the value (NaN for an empty cell, left undrawn).
type gridXYZ struct{ g *Grid }

func (x gridXYZ) Dims() (c, r int) { return x.g.Cols, x.g.Buckets.Rows }
func (x gridXYZ) X(c int) float64  { return (float64(c) + 0.5) * x.g.Bin.Seconds() }
func (x gridXYZ) Y(r int) float64 {
	b := x.g.Buckets
	return logY(b.Lo) + (float64(r)+0.5)/float64(b.PerDecade)
}
func (x gridXYZ) Z(c, r int) float64 {
	v := x.g.At(c, r)
	if v <= 0 {
		return math.NaN()
	}
	return math.Log10(v)
}

// SVG renders the heat map as an SVG document.
func (h *HeatMap) SVG() ([]byte, error) {
	w, ht := h.size()
	c := vgsvg.New(w, ht)
	if err := h.draw(draw.New(c)); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if _, err := c.WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("writing heat map svg: %w", err)
	}
	// The colour bar is a 1-pixel-wide image stretched into its box; SVG
	// keeps an image's aspect ratio unless told not to, which would draw
	// it as a hairline.
	return bytes.ReplaceAll(buf.Bytes(), []byte("<image "), []byte(`<image preserveAspectRatio="none" `)), nil
}

// PNG renders the heat map as a PNG image at 96 dpi.
func (h *HeatMap) PNG() ([]byte, error) {
	w, ht := h.size()
	c := vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(w, ht), vgimg.UseDPI(96))}
	if err := h.draw(draw.New(c)); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if _, err := c.WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("writing heat map png: %w", err)
	}
	return buf.Bytes(), nil
}

func (h *HeatMap) size() (vg.Length, vg.Length) {
	w, ht := h.Width, h.Height
	if w == 0 {
		w = 26 * vg.Centimeter
	}
	if ht == 0 {
		ht = 10 * vg.Centimeter
	}
	return w, ht
}

// zRange returns the colour scale's bounds in log10.
func (h *HeatMap) zRange() (lo, hi float64) {
	zmax := h.ZMax
	if zmax <= 0 {
		zmax = h.Grid.Max()
	}
	zmin := h.ZMin
	if zmin <= 0 {
		zmin = 1
	}
	lo, hi = math.Log10(zmin), math.Log10(max(zmax, zmin))
	if hi-lo < 1e-9 {
		// One value everywhere: a scale of one decade keeps the palette
		// well defined (gonum panics on an empty range).
		hi = lo + 1
	}
	return lo, hi
}

func (h *HeatMap) draw(dc draw.Canvas) error {
	g := h.Grid
	if g == nil || g.Cols == 0 || g.Buckets.Rows == 0 {
		return fmt.Errorf("drawing heat map %q: empty grid", h.Title)
	}
	zlo, zhi := h.zRange()
	pal := heatPalette(heatColors)

	p := plot.New()
	styleFonts(p)
	p.Title.Text = h.Title
	p.X.Label.Text = h.XLabel
	if p.X.Label.Text == "" {
		p.X.Label.Text = "seconds since the capture started"
	}
	p.Y.Label.Text = h.YLabel
	if p.Y.Label.Text == "" {
		p.Y.Label.Text = "latency"
	}
	p.X.Padding, p.Y.Padding = 0, 0

	hm := plotter.NewHeatMap(gridXYZ{g}, pal)
	hm.Min, hm.Max = zlo, zhi
	hm.Underflow = pal[0]
	hm.Overflow = pal[len(pal)-1]
	p.Add(hm)

	xmax := float64(g.Cols) * g.Bin.Seconds()
	if h.XMax > 0 {
		xmax = max(xmax, h.XMax.Seconds())
	}
	ylo := logY(g.Buckets.Lo)
	yhi := logY(g.Buckets.Edge(g.Buckets.Rows))
	strip := (yhi - ylo) * 0.05 // the windows' strip above the map
	p.X.Min, p.X.Max = 0, xmax
	p.Y.Min, p.Y.Max = ylo, yhi+strip
	p.Y.Tick.Marker = durationTicks{top: yhi}

	for _, w := range h.Windows {
		x0, x1 := w.Start.Seconds(), w.End.Seconds()
		x0, x1 = max(x0, 0), min(x1, xmax)
		if x1 <= x0 {
			continue
		}
		// A window shorter than a pixel would vanish: widen it to 0.2% of
		// the axis so that every window shows.
		if minW := xmax * 0.002; x1-x0 < minW {
			x1 = x0 + minW
		}
		poly, err := plotter.NewPolygon(plotter.XYs{{X: x0, Y: yhi + strip*0.15}, {X: x1, Y: yhi + strip*0.15}, {X: x1, Y: yhi + strip*0.85}, {X: x0, Y: yhi + strip*0.85}})
		if err != nil {
			return fmt.Errorf("drawing window marks: %w", err)
		}
		poly.Color = windowColor
		poly.LineStyle.Width = 0
		p.Add(poly)
	}
	if h.SLO > 0 {
		y := logY(h.SLO)
		if y >= ylo && y <= yhi {
			line, err := plotter.NewLine(plotter.XYs{{X: 0, Y: y}, {X: xmax, Y: y}})
			if err != nil {
				return fmt.Errorf("drawing the SLO line: %w", err)
			}
			line.Color = sloColor
			line.Width = vg.Points(1.2)
			line.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
			p.Add(line)
			lab, err := plotter.NewLabels(plotter.XYLabels{XYs: plotter.XYs{{X: xmax * 0.005, Y: y}}, Labels: []string{"SLO " + fmtDur(h.SLO)}})
			if err != nil {
				return fmt.Errorf("drawing the SLO label: %w", err)
			}
			for i := range lab.TextStyle {
				lab.TextStyle[i].Color = sloColor
				lab.TextStyle[i].Font = font.From(textFont, 9)
				lab.TextStyle[i].YAlign = draw.YBottom
			}
			p.Add(lab)
		}
	}

	// The colour bar: a one-column heat map of the scale itself, labelled
	// in the cells' unit.
	bar := plot.New()
	styleFonts(bar)
	bar.Title.Text = " "
	bar.X.Tick.Marker = plot.ConstantTicks(nil)
	bar.Y.Label.Text = h.ZLabel
	bar.X.Padding, bar.Y.Padding = 0, 0
	steps := scaleGrid{lo: zlo, hi: zhi, n: len(pal)}
	bh := plotter.NewHeatMap(steps, pal)
	bh.Min, bh.Max = zlo, zhi
	// One image rather than 64 abutting paths, which antialiasing would
	// seam with white lines.
	bh.Rasterized = true
	bar.Add(bh)
	bar.X.Min, bar.X.Max = 0, 1
	bar.Y.Min, bar.Y.Max = zlo, zhi
	bar.Y.Tick.Marker = countTicks{}

	barW := 2.6 * vg.Centimeter
	// The bar has a blank title so its plot area starts where the map's does.
	bar.Draw(draw.Crop(dc, dc.Size().X-barW, 0, 0, 0))
	p.Draw(draw.Crop(dc, 0, -barW-2*vg.Millimeter, 0, 0))
	return nil
}

func styleFonts(p *plot.Plot) {
	p.Title.TextStyle.Font = font.From(textFont, 12)
	p.X.Label.TextStyle.Font = font.From(textFont, 10)
	p.Y.Label.TextStyle.Font = font.From(textFont, 10)
	p.X.Tick.Label.Font = font.From(textFont, 9)
	p.Y.Tick.Label.Font = font.From(textFont, 9)
}

// scaleGrid is the colour bar's one column.
type scaleGrid struct {
	lo, hi float64
	n      int
}

func (s scaleGrid) Dims() (c, r int) { return 1, s.n }
func (s scaleGrid) X(int) float64    { return 0.5 }
func (s scaleGrid) Y(r int) float64  { return s.lo + (s.hi-s.lo)*(float64(r)+0.5)/float64(s.n) }
func (s scaleGrid) Z(_, r int) float64 {
	return s.Y(r)
}

// durationTicks labels log10-seconds at decades (1ms, 10ms, 100ms, 1s) with
// unlabelled minor ticks at 2 and 5; nothing above top (the windows' strip).
type durationTicks struct{ top float64 }

func (t durationTicks) Ticks(lo, hi float64) []plot.Tick {
	var out []plot.Tick
	for d := math.Floor(lo); d <= math.Ceil(hi); d++ {
		for _, m := range []float64{1, 2, 5} {
			y := d + math.Log10(m)
			if y < lo-1e-9 || y > t.top+1e-9 {
				continue
			}
			tk := plot.Tick{Value: y}
			if m == 1 {
				tk.Label = fmtDur(time.Duration(math.Round(math.Pow(10, y) * 1e9)))
			}
			out = append(out, tk)
		}
	}
	return out
}

// countTicks labels a log10 colour scale with the values themselves.
type countTicks struct{}

func (countTicks) Ticks(lo, hi float64) []plot.Tick {
	var out []plot.Tick
	for d := math.Floor(lo); d <= math.Ceil(hi); d++ {
		for _, m := range []float64{1, 2, 5} {
			y := d + math.Log10(m)
			if y < lo-1e-9 || y > hi+1e-9 {
				continue
			}
			tk := plot.Tick{Value: y}
			if m == 1 || hi-lo < 2.5 {
				tk.Label = fmtNum(math.Pow(10, y))
			}
			out = append(out, tk)
		}
	}
	if len(out) < 2 {
		out = append(out, plot.Tick{Value: lo, Label: fmtNum(math.Pow(10, lo))}, plot.Tick{Value: hi, Label: fmtNum(math.Pow(10, hi))})
	}
	return out
}

func fmtNum(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.3gM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.3gk", v/1e3)
	case v >= 1:
		return fmt.Sprintf("%.3g", v)
	}
	return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.3f", v), "0"), ".")
}

// fmtDur prints a duration short and round: 65ms, 1.5s, 250µs.
func fmtDur(d time.Duration) string {
	switch {
	case d == 0:
		return "0"
	case d >= time.Second:
		return trimFloat(d.Seconds()) + "s"
	case d >= time.Millisecond:
		return trimFloat(float64(d)/1e6) + "ms"
	case d >= time.Microsecond:
		return trimFloat(float64(d)/1e3) + "µs"
	}
	return fmt.Sprintf("%dns", int64(d))
}

func trimFloat(v float64) string {
	s := fmt.Sprintf("%.3g", v)
	if strings.ContainsAny(s, "e") {
		s = fmt.Sprintf("%.0f", v)
	}
	return s
}
