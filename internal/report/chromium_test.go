package report_test

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lockscope/lockscope/internal/bundle"
)

// Debian's chromium (scripts/setup.sh installs it) is the browser the
// report must open in: headless, as root (hence --no-sandbox), with nothing
// reaching the network and a fresh profile each run. --enable-logging with
// --v=1 puts the page's console messages and every file it loads on stderr.
func chromium(t *testing.T, args ...string) (stdout []byte, stderr string) {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium not found: run scripts/setup.sh (it installs Debian's chromium): %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
		"--disable-component-update", "--disable-sync", "--user-data-dir=" + t.TempDir(),
		"--enable-logging=stderr", "--v=1", "--hide-scrollbars"}
	cmd := exec.CommandContext(ctx, bin, append(base, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.Dir = t.TempDir()
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %v: %v\n%.2000s", args, err, errb.String())
	}
	return out.Bytes(), errb.String()
}

var (
	consoleRe = regexp.MustCompile(`:CONSOLE[^\]]*\] (.*)`)
	loadRe    = regexp.MustCompile(`FileURLLoader::Start: (\S+)`)
)

// pageProblems lists the console messages of a page (it has no script, so
// any is an error) and every file it loaded besides itself.
func pageProblems(stderr, url string) []string {
	var out []string
	for _, m := range consoleRe.FindAllStringSubmatch(stderr, -1) {
		out = append(out, "console: "+m[1])
	}
	for _, m := range loadRe.FindAllStringSubmatch(stderr, -1) {
		if m[1] != url {
			out = append(out, "loaded "+m[1])
		}
	}
	return out
}

// TestChromiumDetectsProblems: the checks below can fail. A page with a
// script error and a missing image is caught by them.
func TestChromiumDetectsProblems(t *testing.T) {
	page := filepath.Join(t.TempDir(), "bad.html")
	os.WriteFile(page, []byte(`<!DOCTYPE html><html><body><img src="missing.png"><script>nosuch();</script></body></html>`), 0o644)
	url := "file://" + page
	_, stderr := chromium(t, "--dump-dom", url)
	probs := strings.Join(pageProblems(stderr, url), "\n")
	if !strings.Contains(probs, "nosuch is not defined") || !strings.Contains(probs, "missing.png") {
		t.Errorf("problems of a broken page: %q; want the script error and the missing image", probs)
	}
}

// TestReportInChromium loads a real capture's report.html from the file in
// headless Chromium: no console message, nothing else loaded, the DOM has
// the heat map's cells, and a screenshot shows them: pixels of the cells'
// own colours (read from the SVG) fill the plot area, and vanish when the
// heat map is taken out of the page.
func TestReportInChromium(t *testing.T) {
	dir := realBundle(t)
	path := filepath.Join(dir, bundle.ReportFile)
	url := "file://" + path
	dom, stderr := chromium(t, "--dump-dom", url)
	if probs := pageProblems(stderr, url); len(probs) > 0 {
		t.Errorf("report.html in chromium:\n%s", strings.Join(probs, "\n"))
	}
	if !strings.Contains(stderr, "FileURLLoader::Start: "+url) {
		t.Errorf("chromium's log does not show the report being loaded: the log checks see nothing\n%.1000s", stderr)
	}
	fig := regexp.MustCompile(`(?s)<figure id="latency-heatmap"[^>]*>(.*?)</figure>`).FindSubmatch(dom)
	if fig == nil {
		t.Fatalf("rendered DOM has no latency heat map figure:\n%.2000s", dom)
	}
	cells := cellColors(string(fig[1]))
	if len(cells) < 3 {
		t.Fatalf("the heat map's SVG in the DOM has %d cell colours", len(cells))
	}

	page, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	drawn := heatPixels(t, url, cells)
	// Without the figure the same page must show (almost) none of them:
	// what is counted is the heat map, not the page around it.
	bare := regexp.MustCompile(`(?s)<figure id="latency-heatmap".*?</figure>`).ReplaceAll(page, nil)
	barePath := filepath.Join(t.TempDir(), "bare.html")
	os.WriteFile(barePath, bare, 0o644)
	without := heatPixels(t, "file://"+barePath, cells)
	t.Logf("heat map: %d cell colours; %d pixels of them in the plot area, %d without the figure", len(cells), drawn, without)
	m := regexp.MustCompile(`data-cells="(\d+)"`).FindSubmatch(page)
	n, _ := strconv.Atoi(string(m[1]))
	// A cell is about 9×9 px at this size; ask for a third of that.
	if drawn < n*25 || without > drawn/50 {
		t.Errorf("%d non-empty cells drew %d pixels (%d without the heat map): the heat map is not drawn", n, drawn, without)
	}
}

var fillRe = regexp.MustCompile(`fill:#([0-9A-Fa-f]{6})`)

// cellColors returns the fill colours of the SVG's paths but white (the
// background) and the window marks' red.
func cellColors(svg string) map[[3]uint8]bool {
	out := map[[3]uint8]bool{}
	for _, m := range fillRe.FindAllStringSubmatch(svg, -1) {
		v, _ := strconv.ParseUint(m[1], 16, 32)
		c := [3]uint8{uint8(v >> 16), uint8(v >> 8), uint8(v)}
		if c == [3]uint8{255, 255, 255} || c == [3]uint8{0xe0, 0x30, 0x30} || c == [3]uint8{0, 0, 0} {
			continue
		}
		out[c] = true
	}
	return out
}

// heatPixels screenshots a page and counts the pixels of the left 70% (the
// plot area; the colour bar is at the figure's right) whose colour is one
// of cells' (within 3 per channel: colour management).
func heatPixels(t *testing.T, url string, cells map[[3]uint8]bool) int {
	t.Helper()
	shot := filepath.Join(t.TempDir(), "shot.png")
	chromium(t, "--window-size=1300,1600", "--screenshot="+shot, url)
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	var list [][3]int
	for c := range cells {
		list = append(list, [3]int{int(c[0]), int(c[1]), int(c[2])})
	}
	b := img.Bounds()
	n := 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Min.X+b.Dx()*7/10; x++ {
			if matches(img, x, y, list) {
				n++
			}
		}
	}
	return n
}

func matches(img image.Image, x, y int, list [][3]int) bool {
	r, g, b, _ := img.At(x, y).RGBA()
	p := [3]int{int(r >> 8), int(g >> 8), int(b >> 8)}
	for _, c := range list {
		if abs(p[0]-c[0]) <= 3 && abs(p[1]-c[1]) <= 3 && abs(p[2]-c[2]) <= 3 {
			return true
		}
	}
	return false
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}
