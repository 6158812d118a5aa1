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
// The filesystem section shows the merge's FS summary (files per
// topic-partition, journal commits, how over-SLO requests overlapped them)
// and draws fs.jsonl's operations and commits as heat maps; a bundle
// without the lens's stream says "filesystem ops: not collected".
package report
