// Package report turns a merged bundle into what a person reads: latency
// and off-CPU heat maps (drawn with gonum.org/v1/plot, as SVG or PNG), a
// self-contained report.html, and the side-by-side comparison of
// lockscope compare.
//
// Everything here is pure: it reads a bundle's files (or request logs) and
// writes bytes; no kernel, no JVM, no clock. The heat maps' data (Grid) is
// kept apart from their drawing (HeatMap), so the numbers can be tested and
// shown in JSON as well.
//
// report.html promises to open offline, from the file, exactly as written:
// its CSS and SVG are inline and it has no script. A Report and a
// Comparison own their data; the SVG they hold is rendered once and never
// changes.
//
// The filesystem lens (issue 11's tracer) is not part of bundles yet: the
// page has its section, which says "filesystem ops: not collected"; the
// tracer's results go there (a Report field filled from the bundle's file,
// and the template's #filesystem section) when bundles carry them.
package report
