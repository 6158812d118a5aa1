package report_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	stdhtml "html"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/lockscope/lockscope/internal/bundle"
	"github.com/lockscope/lockscope/internal/capture"
	"github.com/lockscope/lockscope/internal/demobroker"
	"github.com/lockscope/lockscope/internal/profiler"
	"github.com/lockscope/lockscope/internal/report"
)

// One real capture serves the tests of this file: the demo broker with a
// stall inside its append lock, producers, and lockscope capture (JFR, the
// off-CPU collector, the live Kafka sniffer), which merges and so writes
// report.html.
var (
	captureOnce sync.Once
	captureDir  string
	captureLog  string
	captureErr  error
	tmpRoot     string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if tmpRoot != "" {
		os.RemoveAll(tmpRoot)
	}
	os.Exit(code)
}

func realBundle(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("not root: a real capture needs BPF and a packet socket (CI runs as root)")
	}
	captureOnce.Do(func() {
		tmpRoot, captureErr = os.MkdirTemp("", "lockscope-report-test-")
		if captureErr != nil {
			return
		}
		captureDir, captureLog, captureErr = runCapture(tmpRoot)
	})
	if captureErr != nil {
		t.Fatalf("real capture: %v\n%s", captureErr, captureLog)
	}
	return captureDir
}

func runCapture(root string) (string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b, err := demobroker.Start(ctx, demobroker.Config{LogDir: filepath.Join(root, "logs"), Partitions: 3, StallMs: 150, StallEvery: 200})
	if err != nil {
		return "", "", err
	}
	defer b.Close()
	loadCtx, stopLoad := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for i := 0; i < 6; i++ {
		cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.DefaultProduceTopic("orders"), kgo.DisableIdempotentWrite(),
			kgo.ProducerLinger(0), kgo.AllowAutoTopicCreation(), kgo.ClientID(fmt.Sprintf("producer-%d", i)))
		if err != nil {
			stopLoad()
			return "", "", err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer cl.Close()
			tick := time.NewTicker(10 * time.Millisecond) // 600 records/s in all
			defer tick.Stop()
			for {
				select {
				case <-loadCtx.Done():
					return
				case <-tick.C:
					cl.Produce(loadCtx, &kgo.Record{Value: []byte("0123456789abcdef")}, nil)
				}
			}
		}()
	}
	defer func() { stopLoad(); wg.Wait() }()
	time.Sleep(2 * time.Second) // metadata, connections, JIT warm-up

	popts := profiler.DefaultOptions()
	popts.Profiler = profiler.JFR
	dir := filepath.Join(root, "bundle")
	var progress strings.Builder
	port := b.Addr()[strings.LastIndexByte(b.Addr(), ':')+1:]
	_, err = capture.Run(ctx, capture.Options{PID: b.Pid(), Duration: 6 * time.Second, SLO: 65 * time.Millisecond, Kind: "service",
		Latency: "kafka:" + port, Interface: "lo", Profiler: popts, MinBlock: time.Millisecond,
		RequireOffCPU: true, Out: dir, Version: "test", Progress: &progress})
	return dir, progress.String(), err
}

func TestFileNamesMatchCapture(t *testing.T) {
	if report.SummaryJSON != capture.SummaryJSON || report.SummaryText != capture.SummaryText || report.SlowFolded != capture.SlowFolded ||
		report.BaselineFolded != capture.BaselineFolded || report.BlameProfile != capture.BlameProfile || report.BlameFolded != capture.BlameFolded {
		t.Error("report's names of merge outputs differ from package capture's")
	}
}

// rawRequest is what the tests read from requests.jsonl themselves, apart
// from package latency, to check the numbers against.
type rawRequest struct {
	APIKey     int    `json:"api_key"`
	Status     string `json:"status"`
	ServiceUS  float64
	RespEnd    int64 `json:"response_end_ns"`
	Partitions []struct {
		Topic     string `json:"topic"`
		Partition int    `json:"partition"`
	} `json:"partitions"`
}

func readRaw(t *testing.T, path string) (reqs []rawRequest, lines [][]byte) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var r rawRequest
		var us struct {
			ServiceUS float64 `json:"service_us"`
		}
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		json.Unmarshal(sc.Bytes(), &us)
		r.ServiceUS = us.ServiceUS
		reqs = append(reqs, r)
		lines = append(lines, slices.Clone(sc.Bytes()))
	}
	return reqs, lines
}

// want computes what compare must say of requests, from their service_us:
// nearest-rank percentiles and the count strictly over the SLO.
type want struct {
	n                   int
	p50, p99, p999, max float64 // µs
	over                int
	share               float64
}

func expect(reqs []rawRequest, slo time.Duration) want {
	var us []float64
	for _, r := range reqs {
		if r.APIKey == 0 && r.Status == "answered" {
			us = append(us, r.ServiceUS)
		}
	}
	slices.Sort(us)
	rank := func(p float64) float64 { return us[int(math.Ceil(p*float64(len(us))))-1] }
	w := want{n: len(us), p50: rank(0.5), p99: rank(0.99), p999: rank(0.999), max: us[len(us)-1]}
	for _, v := range us {
		if v*1e3 > float64(slo) {
			w.over++
		}
	}
	w.share = float64(w.over) / float64(w.n)
	return w
}

func checkStats(t *testing.T, name string, got report.Stats, w want) {
	t.Helper()
	near := func(d time.Duration, us float64) bool { return math.Abs(float64(d)/1e3-us) <= 1 }
	if int(got.Requests) != w.n || !near(got.P50, w.p50) || !near(got.P99, w.p99) || !near(got.P999, w.p999) ||
		!near(got.Max, w.max) || int(got.OverSLO) != w.over || math.Abs(got.Share-w.share) > 1e-12 {
		t.Errorf("%s: got %+v\nwant %+v (µs)", name, got, w)
	}
}

func TestReportOfRealCapture(t *testing.T) {
	dir := realBundle(t)
	b, err := bundle.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	page, err := os.ReadFile(b.Path(bundle.ReportFile))
	if err != nil {
		t.Fatalf("merge wrote no report: %v", err)
	}
	t.Logf("report.html: %d bytes (requests.jsonl %d requests)", len(page), b.Meta.Latency.Requests)
	// html/template escapes some characters ("+" in JVM versions).
	html := stdhtml.UnescapeString(string(page))
	for _, want := range []string{
		"<title>lockscope report: pid " + strconv.Itoa(b.Meta.Target.PID),
		`id="latency-heatmap"`, "<svg", "SLO 65ms",
		"kafka.log.UnifiedLog.append",                                                 // the lock hot spot the stall makes
		`id="fs-files"`, `class="fs-heatmap"`, "eBPF syscall and journal tracepoints", // the filesystem lens
		"lockscope view " + dir,
		"go tool pprof -http=: -diff_base=" + filepath.Join(dir, bundle.BaselineProfile) + " " + filepath.Join(dir, bundle.SlowProfile),
		"uninterruptible", "sleeping", // off-CPU states
		"The merge's summary.txt",
		`id="blame"`, "data-plane-kafka-request-handler", // blame chains: the append lock's holder
		`id="answer" class="answer"`, "Thread.sleep (UnifiedLog.stall) while holding the lock", // the verdict, first
		`id="verdict-causes"`,
		"orders-", "producer-", // worst requests carry partition and client id
		b.Meta.Target.JVM,
	} {
		if !strings.Contains(html, want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	// Offline: nothing is loaded from anywhere.
	for _, re := range []string{`\ssrc=`, `href="(?:https?:|//|file:)`, `url\(`, `<script`, `<link`, `@import`} {
		if m := regexp.MustCompile(re).FindString(html); m != "" {
			t.Errorf("report.html loads something (%q): it must be self-contained", m)
		}
	}
	// The heat map holds every measured request: its cells sum to the
	// requests the page's own table counts, as read here from the file.
	reqs, _ := readRaw(t, b.Path(bundle.RequestsFile))
	w := expect(reqs, 65*time.Millisecond)
	m := regexp.MustCompile(`id="latency-heatmap" data-cells="(\d+)" data-total="(\d+)"`).FindStringSubmatch(html)
	if m == nil {
		t.Fatal("no latency heat map figure")
	}
	if total, _ := strconv.Atoi(m[2]); total != w.n {
		t.Errorf("heat map holds %d requests, requests.jsonl has %d measured produce requests", total, w.n)
	}
	if !strings.Contains(html, fmt.Sprintf(`<td class="n">%d</td>`, w.over)) {
		t.Errorf("report does not show %d requests over the SLO", w.over)
	}
	r, err := report.Build(b, nil, nil, report.Options{})
	if err != nil {
		t.Fatal(err)
	}
	checkStats(t, "report", *r.Latency, w)
	if r.Summary == nil || len(r.OffCPUMaps) == 0 || len(r.Profiles) < 4 {
		t.Errorf("report built from the files: summary %v, %d off-CPU maps, %d profiles", r.Summary != nil, len(r.OffCPUMaps), len(r.Profiles))
	}
	if len(r.Worst) == 0 || r.Worst[0].Partitions == "" || r.Worst[0].Client == "" {
		t.Errorf("worst requests %+v: want topic-partitions and clients", r.Worst)
	}
}

// TestCompareRealRequests: compare a real bundle against the two halves of
// its own requests.jsonl; each column's numbers must be those computed here
// from the request data.
func TestCompareRealRequests(t *testing.T) {
	dir := realBundle(t)
	reqs, lines := readRaw(t, filepath.Join(dir, bundle.RequestsFile))
	if len(reqs) < 1000 {
		t.Fatalf("only %d requests captured", len(reqs))
	}
	mid := len(reqs) / 2
	tmp := t.TempDir()
	a, bb := filepath.Join(tmp, "first.jsonl"), filepath.Join(tmp, "second.jsonl")
	os.WriteFile(a, append(bytes.Join(lines[:mid], []byte("\n")), '\n'), 0o644)
	os.WriteFile(bb, append(bytes.Join(lines[mid:], []byte("\n")), '\n'), 0o644)

	// The same requests as Kafka's request log (KIP-673 JSON lines): the
	// log time is the response's end (ms), totalTimeMs the latency (µs).
	var kl strings.Builder
	for _, r := range reqs {
		if r.APIKey != 0 || r.Status != "answered" {
			continue
		}
		ts := time.Unix(0, r.RespEnd).UTC().Format("2006-01-02 15:04:05,000")
		fmt.Fprintf(&kl, `[%s] DEBUG Completed request:{"isForwarded":false,"requestHeader":{"requestApiKey":0,"requestApiVersion":9,"correlationId":1,"clientId":"p","requestApiKeyName":"PRODUCE"},"request":{"acks":-1,"timeoutMs":3000,"topicData":[{"name":"orders","partitionData":[{"index":0,"recordsSizeInBytes":100}]}]},"response":{},"connection":"127.0.0.1:9092-127.0.0.1:50000-0","totalTimeMs":%.3f,"requestQueueTimeMs":0,"localTimeMs":0,"remoteTimeMs":0,"throttleTimeMs":0,"responseQueueTimeMs":0,"sendTimeMs":0} (kafka.request.logger)`+"\n", ts, r.ServiceUS/1e3)
	}
	klog := filepath.Join(tmp, "kafka-request.log")
	os.WriteFile(klog, []byte(kl.String()), 0o644)

	slo := 50 * time.Millisecond // not the capture's: --slo overrides the bundle's
	cmp, err := report.Compare([]string{dir, a, "requests:" + bb, klog}, report.CompareOptions{SLO: slo, Loc: time.UTC})
	if err != nil {
		t.Fatal(err)
	}
	checkStats(t, "bundle", cmp.Columns[0].Stats, expect(reqs, slo))
	checkStats(t, "first half", cmp.Columns[1].Stats, expect(reqs[:mid], slo))
	checkStats(t, "second half", cmp.Columns[2].Stats, expect(reqs[mid:], slo))
	checkStats(t, "request log", cmp.Columns[3].Stats, expect(reqs, slo))
	if cmp.Columns[3].Source != "requestlog" {
		t.Errorf("request log read as %q", cmp.Columns[3].Source)
	}
	g0 := cmp.Columns[0].Grid
	for i, c := range cmp.Columns {
		if c.Grid.Bin != g0.Bin || c.Grid.Buckets != g0.Buckets || c.Grid.Cols != g0.Cols {
			t.Errorf("column %d's grid %v×%d %+v differs from the first's: not one scale", i, c.Grid.Bin, c.Grid.Cols, c.Grid.Buckets)
		}
		if int64(c.Grid.Sum())+c.Grid.Dropped != c.Stats.Requests {
			t.Errorf("column %d: grid holds %v (+%d dropped) of %d requests", i, c.Grid.Sum(), c.Grid.Dropped, c.Stats.Requests)
		}
		if c.Heatmap == nil || c.Heatmap.Cells == 0 {
			t.Errorf("column %d has no heat map", i)
		}
	}
	if cmp.Columns[0].Source != "bundle" || cmp.Columns[1].Source != "requests" || cmp.Columns[2].Source != "requests" {
		t.Errorf("sources %s %s %s", cmp.Columns[0].Source, cmp.Columns[1].Source, cmp.Columns[2].Source)
	}
	// Causes come from the bundle's summary; the request files have none.
	var lock *report.CauseRow
	for i, r := range cmp.Causes {
		if r.List == "lock" && strings.HasPrefix(r.Name, "kafka.log.UnifiedLog.append on ") {
			lock = &cmp.Causes[i]
		}
	}
	if lock == nil || lock.Shares[0] == nil || *lock.Shares[0] <= 0 || lock.Shares[1] != nil {
		t.Errorf("UnifiedLog.append lock cause: %+v", lock)
	}
	blamed := false
	for _, r := range cmp.Causes {
		blamed = blamed || r.List == "blame" && strings.HasPrefix(r.Name, "kafka.log.UnifiedLog.append on ") && r.Shares[0] != nil
	}
	if !blamed {
		t.Error("no blame chain of the append lock among the causes")
	}

	var text, js, page bytes.Buffer
	if err := cmp.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	t.Logf("compare:\n%s", text.String())
	st := cmp.Columns[1].Stats
	for _, want := range []string{"first.jsonl", "second.jsonl", fmt.Sprintf("%.2f%%", 100*st.Share), strconv.FormatInt(st.OverSLO, 10), "UnifiedLog.append"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text lacks %q", want)
		}
	}
	if err := cmp.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back struct {
		Columns []struct {
			Stats report.Stats `json:"stats"`
			Grid  struct {
				Cells [][]float64 `json:"cells"`
			} `json:"grid"`
		} `json:"columns"`
	}
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatalf("json: %v", err)
	}
	for i, c := range back.Columns {
		sum := 0.0
		for _, col := range c.Grid.Cells {
			for _, v := range col {
				sum += v
			}
		}
		g := cmp.Columns[i].Stats
		if c.Stats.Requests != g.Requests || c.Stats.P999 != g.P999 || c.Stats.OverSLO != g.OverSLO || sum != cmp.Columns[i].Grid.Sum() {
			t.Errorf("json column %d: %+v, cells sum %v", i, c.Stats, sum)
		}
	}
	if err := cmp.WriteHTML(&page); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(page.String(), `class="compare-heatmap"`); n != 4 {
		t.Errorf("compare page has %d heat maps, want 4", n)
	}
}
