package report

import (
	"embed"
	"fmt"
	"github.com/lockscope/lockscope/internal/merge"
	"html/template"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/lockscope/lockscope/internal/bundle"
)

// The page is one file with its CSS and SVG inline and no script at all,
// so it opens offline, from a mail attachment or a ticket, exactly as it was
// written.

//go:embed templates/*.html
var templateFS embed.FS

var funcs = template.FuncMap{
	"dur": func(d time.Duration) string { return fmtDur(d) },
	"ms": func(d time.Duration) string {
		return fmt.Sprintf("%.1f", float64(d)/1e6)
	},
	"secs": func(d time.Duration) string { return fmt.Sprintf("%.3f", d.Seconds()) },
	"pct":  func(f float64) string { return fmt.Sprintf("%.1f%%", 100*f) },
	"pct2": func(f float64) string { return fmt.Sprintf("%.2f%%", 100*f) },
	"ratio": func(n, of int) string {
		if of == 0 {
			return "–"
		}
		return fmt.Sprintf("%.0f%%", 100*float64(n)/float64(of))
	},
	"wall": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.000 UTC") },
	"kb": func(n int64) string {
		switch {
		case n >= 1<<20:
			return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
		case n >= 1<<10:
			return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
		}
		return fmt.Sprintf("%d B", n)
	},
	"join":       strings.Join,
	"add":        func(a, b int) int { return a + b },
	"phaseBars":  PhaseBars,
	"phaseNames": func() []string { return merge.PhaseNames },
	"kframe":     func(s string) string { return strings.TrimSuffix(s, "_[k]") },
	"sorted":     sortedKV,
	"sub":        func(a, b time.Duration) time.Duration { return a - b },
	"share":      fmtShare,
	"listName":   func(l string) string { return listNames[l] },
	"short":      merge.ShortPath,
}

type kv struct {
	K string
	V any
}

// sortedKV lists a map's entries by key, so the page is the same each time.
func sortedKV(m any) []kv {
	var out []kv
	switch m := m.(type) {
	case map[string]string:
		for k, v := range m {
			out = append(out, kv{k, v})
		}
	case map[string]uint64:
		for k, v := range m {
			out = append(out, kv{k, v})
		}
	case map[string]int64:
		for k, v := range m {
			out = append(out, kv{k, v})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].K < out[j].K })
	return out
}

var pages = template.Must(template.New("").Funcs(funcs).ParseFS(templateFS, "templates/*.html"))

// reportView adds what the template derives from a Report.
type reportView struct {
	*Report
	Title   string
	Started time.Time
	Files   []bundle.File
}

// WriteHTML writes report.html.
func (r *Report) WriteHTML(w io.Writer) error {
	v := reportView{Report: r, Files: r.Meta.Files}
	v.Started = r.Meta.Clock.Time(r.Meta.Start)
	if r.Meta.Clock.Start.Realtime == 0 {
		v.Started = r.Meta.Created
	}
	v.Title = fmt.Sprintf("lockscope report: pid %d on %s", r.Meta.Target.PID, r.Meta.Host)
	if err := pages.ExecuteTemplate(w, "report.html", v); err != nil {
		return fmt.Errorf("writing report: %w", err)
	}
	return nil
}
