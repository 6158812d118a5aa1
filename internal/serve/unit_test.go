package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/lockscope/lockscope/internal/bundle"
)

// exampleConfig reads the shipped example config with the given literal
// replacements (paths and ports), each of which must match exactly once:
// the tests use the file as it is shipped, so a change to it that a test
// depends on fails here rather than being silently ignored.
func exampleConfig(t *testing.T, name string, repl ...string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "scripts", "monitoring", name))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for i := 0; i+1 < len(repl); i += 2 {
		if n := strings.Count(s, repl[i]); n != 1 {
			t.Fatalf("%s: %q occurs %d times, want once (the example changed?)", name, repl[i], n)
		}
		s = strings.Replace(s, repl[i], repl[i+1], 1)
	}
	return []byte(s)
}

func writeFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// testConfig is a config for tests that need no broker: a token file, a
// bundle dir in t's temp dir, no sniffing.
func testConfig(t testing.TB) *Config {
	t.Helper()
	dir := t.TempDir()
	c := Defaults()
	c.Listen = "127.0.0.1:0"
	c.Auth.BearerTokenFile = writeFile(t, dir, "token", "s3cret-token\n")
	c.Bundles.Dir = filepath.Join(dir, "bundles")
	c.Capture.Latency = "none"
	c.Target = Target{PIDFile: filepath.Join(dir, "no-such.pid")}
	c.Quota.MinFreeBytes = 0
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	return &c
}

// running is a Server running on a free loopback port.
type running struct {
	s     *Server
	url   string
	token string // for the helpers that read /captures
	stop  func() error
}

func start(t *testing.T, c *Config, o Options) *running {
	t.Helper()
	if o.Logf == nil {
		o.Logf = t.Logf
	}
	s, err := New(c, o)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, ln) }()
	var once sync.Once
	var err2 error
	r := &running{s: s, url: "http://" + ln.Addr().String(), token: "s3cret-token", stop: func() error {
		once.Do(func() { cancel(); err2 = <-done })
		return err2
	}}
	t.Cleanup(func() { r.stop() })
	return r
}

func (r *running) do(t *testing.T, method, path, token string, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, r.url+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// scrape parses /metrics with Prometheus' own text parser.
func (r *running) scrape(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	code, b := r.do(t, "GET", "/metrics", "", nil)
	if code != 200 {
		t.Fatalf("/metrics: %d %s", code, b)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	return fams
}

// counter returns the value of a counter with the given labels, 0 if absent.
func counter(fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	f := fams[name]
	if f == nil {
		return 0
	}
	for _, m := range f.Metric {
		if hasLabels(m, labels) {
			if m.Counter != nil {
				return m.Counter.GetValue()
			}
			if m.Gauge != nil {
				return m.Gauge.GetValue()
			}
		}
	}
	return 0
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	got := map[string]string{}
	for _, l := range m.Label {
		got[l.GetName()] = l.GetValue()
	}
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

func alertPayload(status string, labels ...map[string]string) []byte {
	w := Webhook{Version: "4", Status: status, Receiver: "lockscope", GroupKey: "{}:{alertname=\"KafkaProduceLatencyHigh\"}"}
	for _, l := range labels {
		w.Alerts = append(w.Alerts, Alert{Status: status, Labels: l, StartsAt: time.Now(), Fingerprint: fmt.Sprint(len(w.Alerts))})
	}
	b, _ := json.Marshal(w)
	return b
}

func TestExampleConfigParses(t *testing.T) {
	dir := t.TempDir()
	token := writeFile(t, dir, "token", "x\n")
	c, err := Parse(exampleConfig(t, "lockscope-serve.yaml", "/etc/lockscope/alertmanager-token", token))
	if err != nil {
		t.Fatalf("the shipped example config: %v", err)
	}
	want := Defaults()
	want.Auth.BearerTokenFile = token
	want.Alerts.Matchers = []string{"alertname=KafkaProduceLatencyHigh", "broker=broker-1"}
	if diff := cmp.Diff(&want, c); diff != "" {
		t.Errorf("example config differs from the defaults it claims to show (-want +got):\n%s", diff)
	}
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	token := writeFile(t, dir, "token", "x")
	empty := writeFile(t, dir, "empty", "\n")
	for _, tc := range []struct{ yaml, want string }{
		{"", "auth: set bearer_token_file"},
		{"auth: {bearer_token_file: " + token + "}\nlistne: x\n", "field listne not found"},
		{"auth: {bearer_token_file: " + dir + "/nope}\n", "no such file"},
		{"auth: {bearer_token_file: " + empty + "}\n", "is empty"},
		{"auth: {bearer_token_file: " + token + "}\ncapture: {slo: 0s}\n", "--slo 0s: must be positive"},
		{"auth: {bearer_token_file: " + token + "}\ncapture: {latency: kafka:x}\n", "is not a TCP port"},
		{"auth: {bearer_token_file: " + token + "}\nalerts: {matchers: [alertname]}\n", "want label=value"},
		{"auth: {bearer_token_file: " + token + "}\nalerts: {matchers: ['a=~(']}\n", "missing closing )"},
		{"auth: {bearer_token_file: " + token + "}\nwatch: {enabled: true, threshold: 2}\n", "watch.threshold 2"},
		{"auth: {bearer_token_file: " + token + "}\nbundles: {max_bytes: lots}\n", `size "lots"`},
		{"auth: {bearer_token_file: " + token + "}\ncontinuous: {enabled: true}\n", "continuous.pyroscope"},
	} {
		_, err := Parse([]byte(tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) = %v, want an error containing %q", tc.yaml, err, tc.want)
		}
	}
}

func TestByteSize(t *testing.T) {
	for in, want := range map[string]ByteSize{"1048576": 1 << 20, "512MiB": 512 << 20, "5GB": 5e9, "100k": 100 << 10, "1.5GiB": 3 << 29} {
		got, err := ParseByteSize(in)
		if err != nil || got != want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "x", "1XB", "1e30GiB"} {
		if _, err := ParseByteSize(in); err == nil {
			t.Errorf("ParseByteSize(%q): want an error", in)
		}
	}
}

func TestMatchers(t *testing.T) {
	ms, err := parseMatchers([]string{"alertname=KafkaProduceLatencyHigh", `instance=~"broker-1(:.*)?"`, "severity!=info", "topic!~__.*"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		labels map[string]string
		want   bool
	}{
		{map[string]string{"alertname": "KafkaProduceLatencyHigh", "instance": "broker-1:9464", "topic": "orders"}, true},
		{map[string]string{"alertname": "KafkaProduceLatencyHigh", "instance": "broker-1"}, true},
		{map[string]string{"alertname": "KafkaProduceLatencyHigh", "instance": "broker-10:9464"}, false}, // anchored
		{map[string]string{"alertname": "KafkaProduceLatencyHigh", "instance": "broker-1", "severity": "info"}, false},
		{map[string]string{"alertname": "KafkaProduceLatencyHigh", "instance": "broker-1", "topic": "__consumer_offsets"}, false},
		{map[string]string{"alertname": "Other", "instance": "broker-1"}, false},
	} {
		if got := matchAll(ms, tc.labels); got != tc.want {
			t.Errorf("matchAll(%v) = %v, want %v", tc.labels, got, tc.want)
		}
	}
}

func TestWindow(t *testing.T) {
	w := newWindow(3 * time.Second)
	sec := int64(time.Second)
	base := 1_700_000_000 * sec
	for i := 0; i < 10; i++ {
		w.add(base+int64(i)*sec/10, i < 2) // second 0: 10 requests, 2 slow
	}
	w.add(base+2*sec, true) // second 2
	if tot, over := w.counts(base + 2*sec); tot != 11 || over != 3 {
		t.Errorf("counts at +2s = %d, %d; want 11, 3", tot, over)
	}
	if tot, over := w.counts(base + 3*sec); tot != 1 || over != 1 {
		t.Errorf("counts at +3s = %d, %d; want second 0 out of the window: 1, 1", tot, over)
	}
	w.add(base-5*sec, true) // a straggler older than the ring: ignored
	w.add(base+5*sec, false)
	if tot, over := w.counts(base + 5*sec); tot != 1 || over != 0 {
		t.Errorf("counts at +5s = %d, %d; want 1, 0", tot, over)
	}
	c := WatchConfig{Threshold: 0.05, MinRequests: 10}
	if c.breached(9, 9) || !c.breached(20, 1) || c.breached(21, 1) {
		t.Error("breached: min_requests or threshold not applied")
	}
}

func TestGatePreemptsContinuous(t *testing.T) {
	g := newGate()
	ctx := context.Background()
	preempted := make(chan struct{})
	relCont, err := g.acquire(ctx, func() { close(preempted) })
	if err != nil {
		t.Fatal(err)
	}
	// A triggered capture preempts the continuous holder and gets the gate
	// once it releases.
	got := make(chan func(), 1)
	go func() {
		rel, err := g.acquire(ctx, nil)
		if err != nil {
			t.Error(err)
		}
		got <- rel
	}()
	select {
	case <-preempted:
	case <-time.After(5 * time.Second):
		t.Fatal("continuous holder not preempted")
	}
	select {
	case <-got:
		t.Fatal("triggered capture got the gate before the preempted holder released it")
	case <-time.After(50 * time.Millisecond):
	}
	relCont()
	relTrig := <-got
	// Continuous waits while the triggered capture holds the gate.
	contCtx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := g.acquire(contCtx, func() {}); err == nil {
		t.Fatal("continuous acquired the gate while a triggered capture held it")
	}
	relTrig()
	relTrig() // idempotent
	rel, err := g.acquire(ctx, func() {})
	if err != nil {
		t.Fatalf("continuous after the triggered capture: %v", err)
	}
	rel()
	if g.busy() {
		t.Error("gate busy after every release")
	}
}

func TestAuthAndPayloads(t *testing.T) {
	c := testConfig(t)
	c.MaxBodyBytes = 4096
	basic := writeFile(t, t.TempDir(), "basic", "ops:pa55word\n")
	c.Auth.BasicAuthFile = basic
	var logs strings.Builder
	var mu sync.Mutex
	r := start(t, c, Options{Logf: func(f string, a ...any) {
		mu.Lock()
		fmt.Fprintf(&logs, f+"\n", a...)
		mu.Unlock()
	}})
	firing := alertPayload("firing", map[string]string{"alertname": "KafkaProduceLatencyHigh"})
	for _, tok := range []string{"", "wrong", "s3cret-toke", "s3cret-tokenX", "S3CRET-TOKEN"} {
		if code, b := r.do(t, "POST", "/alerts", tok, firing); code != 401 {
			t.Errorf("token %q: %d %s, want 401", tok, code, b)
		}
	}
	if code, _ := r.do(t, "GET", "/captures", "wrong", nil); code != 401 {
		t.Errorf("/captures with a wrong token: %d, want 401", code)
	}
	// Basic auth works too; a wrong password does not.
	req, _ := http.NewRequest("GET", r.url+"/captures", nil)
	req.SetBasicAuth("ops", "pa55word")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Errorf("basic auth: %v %v", resp, err)
	}
	req.SetBasicAuth("ops", "pa55wore")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 401 {
		t.Errorf("basic auth, wrong password: %v %v", resp, err)
	}

	tok := "s3cret-token"
	for _, tc := range []struct {
		name string
		body []byte
		code int
		want string
	}{
		{"resolved", alertPayload("resolved", map[string]string{"alertname": "KafkaProduceLatencyHigh"}), 200, "ignored"},
		{"not json", []byte("{"), 400, "decoding"},
		{"version 3", []byte(`{"version":"3","alerts":[]}`), 400, "want 4"},
		{"too big", append([]byte(`{"version":"4","x":"`), bytes.Repeat([]byte("a"), 8192)...), 413, "max_body_bytes"},
		// A firing alert: the pid file is missing, so no capture: 503 saying why.
		{"no target", firing, 503, "no_target"},
	} {
		code, b := r.do(t, "POST", "/alerts", tok, tc.body)
		if code != tc.code || !strings.Contains(string(b), tc.want) {
			t.Errorf("%s: %d %s, want %d with %q", tc.name, code, b, tc.code, tc.want)
		}
	}
	code, b := r.do(t, "GET", "/captures", tok, nil)
	if code != 200 || strings.TrimSpace(string(b)) != "[]" {
		t.Errorf("/captures after refused triggers: %d %s, want []", code, b)
	}
	fams := r.scrape(t)
	for result, want := range map[string]float64{"resolved": 1, "error": 3, "no_target": 1, "started": 0} {
		if got := counter(fams, "lockscope_triggers_total", map[string]string{"trigger": "alertmanager", "result": result}); got != want {
			t.Errorf("lockscope_triggers_total{result=%q} = %v, want %v", result, got, want)
		}
	}
	if code, b := r.do(t, "GET", "/healthz", "", nil); code != 200 || !strings.Contains(string(b), `"ok"`) {
		t.Errorf("/healthz: %d %s", code, b)
	}
	r.stop()
	if strings.Contains(logs.String(), "s3cret") || strings.Contains(logs.String(), "pa55") {
		t.Errorf("a secret reached the log:\n%s", logs.String())
	}
}

func TestRetentionAndFiles(t *testing.T) {
	c := testConfig(t)
	c.Bundles.MaxCount = 3
	c.Bundles.MaxBytes = 2500
	dir := c.Bundles.Dir
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	// Five finished captures of 1000 bytes each, oldest first, and one a
	// killed serve left running (settled at start, then removed as the
	// oldest).
	base := time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
	var ids []string
	for i := 0; i < 6; i++ {
		id := base.Add(time.Duration(i)*time.Minute).Format("20060102T150405Z") + "-alertmanager"
		ids = append(ids, id)
		if err := os.MkdirAll(filepath.Join(dir, id), 0o750); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, id), "summary.txt", strings.Repeat("x", 1000))
		rec := Record{ID: id, Started: base, Trigger: TriggerAlert, Outcome: OutcomeOK, Size: 1000}
		if i == 0 {
			rec.Outcome = OutcomeRunning // left by a killed serve
		}
		if err := writeJSON(filepath.Join(dir, id+".json"), &rec); err != nil {
			t.Fatal(err)
		}
	}
	secret := writeFile(t, filepath.Dir(dir), "secret.txt", "not for you")
	if err := os.Symlink(secret, filepath.Join(dir, ids[5], "escape")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("summary.txt", filepath.Join(dir, ids[5], "inside")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Dir(dir), filepath.Join(dir, "up")); err != nil {
		t.Fatal(err)
	}

	// A running capture is never removed by retention.
	st, err := openStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	if removed, err := st.retain(1, 0); err != nil || len(removed) != 4 || slices.Contains(removed, ids[0]) {
		t.Fatalf("retain(1, 0) removed %v (%v): want the 4 oldest finished ones, not the running one", removed, err)
	}
	st.Close()
	for i := 1; i < 5; i++ { // put them back
		os.MkdirAll(filepath.Join(dir, ids[i]), 0o750)
		writeFile(t, filepath.Join(dir, ids[i]), "summary.txt", strings.Repeat("x", 1000))
		writeJSON(filepath.Join(dir, ids[i]+".json"), &Record{ID: ids[i], Started: base, Trigger: TriggerAlert, Outcome: OutcomeOK, Size: 1000})
	}

	r := start(t, c, Options{})
	// Run settles the running one (failed: its bundle has no meta.json),
	// then applies retention: the newest two are kept (bytes: 2 × 1000 ≤
	// 2500 < 3 × 1000; count would allow 3).
	code, b := r.do(t, "GET", "/captures", "s3cret-token", nil)
	var list []Record
	if code != 200 || json.Unmarshal(b, &list) != nil {
		t.Fatalf("/captures: %d %s", code, b)
	}
	var got []string
	for _, rec := range list {
		got = append(got, rec.ID)
	}
	if diff := cmp.Diff([]string{ids[5], ids[4]}, got); diff != "" {
		t.Errorf("kept after retention (-want +got):\n%s", diff)
	}
	for _, id := range ids[0:4] {
		if _, err := os.Stat(filepath.Join(dir, id)); !os.IsNotExist(err) {
			t.Errorf("bundle %s not removed: %v", id, err)
		}
	}
	if got := counter(r.scrape(t), "lockscope_bundles_removed_total", nil); got != 4 {
		t.Errorf("lockscope_bundles_removed_total = %v, want 4", got)
	}

	tok := "s3cret-token"
	if code, b := r.do(t, "GET", "/captures/"+ids[5]+"/summary.txt", tok, nil); code != 200 || len(b) != 1000 {
		t.Errorf("a bundle file: %d, %d bytes", code, len(b))
	}
	if code, _ := r.do(t, "GET", "/captures/"+ids[5]+"/inside", tok, nil); code != 200 {
		t.Errorf("a symlink inside the bundle: %d, want 200", code)
	}
	if code, b := r.do(t, "GET", "/captures/"+ids[5], tok, nil); code != 200 || !strings.Contains(string(b), `"outcome": "ok"`) {
		t.Errorf("a capture's record: %d %s", code, b)
	}
	for _, p := range []string{
		"/captures/" + ids[5] + "/../../secret.txt",
		"/captures/" + ids[5] + "/%2e%2e/%2e%2e/secret.txt",
		"/captures/%2e%2e/secret.txt",
		"/captures/" + ids[5] + "/..%2f..%2fsecret.txt",
		"/captures/" + ids[5] + "/%2fetc%2fpasswd",
		"/captures/" + ids[5] + "//etc/passwd",
		"/captures/" + ids[5] + "/.hidden",
		"/captures/..",
		"/captures/" + ids[5] + "/escape",
		"/captures/up/secret.txt",
		"/captures/" + ids[1] + "/summary.txt", // removed
		"/captures/" + ids[5] + "/no-such-file",
		"/captures/" + ids[5] + "/summary.txt%00",
	} {
		code, b := r.do(t, "GET", p, tok, nil)
		if code != 400 && code != 404 {
			t.Errorf("GET %s: %d, want 400 or 404", p, code)
		}
		if strings.Contains(string(b), "not for you") {
			t.Errorf("GET %s served the file outside the bundles", p)
		}
	}
}

func TestObserveFS(t *testing.T) {
	m := newMetrics(65 * time.Millisecond)
	f := &bundle.FSFileInfo{Path: "/kafka/orders-0/0.log", Topic: "orders", Partition: 0, Kind: "log"}
	// 3 writes in [1µs,2µs), 1 in [1ms,2ms) (buckets 10 and 20), twice.
	h := bundle.FSHistogram{Op: "write", File: f, Count: 4, SumNs: 3*1500 + 1_500_000, Buckets: make([]uint64, 21)}
	h.Buckets[10], h.Buckets[20] = 3, 1
	d := &bundle.FSData{Histograms: []bundle.FSHistogram{h, h},
		Journal: []bundle.JournalEvent{{Kind: bundle.JournalJBD2Commit, Dev: "7:0", Start: 0, End: 30e6}, {Kind: bundle.JournalExt4SyncFile, Dev: "7:0", End: 1}}}
	m.ObserveFS(d)
	fams, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var fsH, jH *dto.Histogram
	for _, f := range fams {
		switch f.GetName() {
		case "lockscope_fs_op_duration_seconds":
			if hasLabels(f.Metric[0], map[string]string{"topic_partition": "orders-0", "op": "write"}) {
				fsH = f.Metric[0].Histogram
			}
		case "lockscope_journal_commit_duration_seconds":
			jH = f.Metric[0].Histogram
		}
	}
	if fsH == nil || fsH.GetSampleCount() != 8 {
		t.Fatalf("fs histogram %v, want 8 writes of orders-0", fsH)
	}
	for _, b := range fsH.Bucket {
		want := uint64(0)
		switch ub := b.GetUpperBound(); {
		case ub >= 2048e-9 && ub < 2e-3:
			want = 6
		case ub >= 2e-3:
			want = 8
		}
		if b.GetUpperBound() > 1024e-9 && b.GetUpperBound() < 2048e-9 {
			continue
		}
		if b.GetCumulativeCount() != want {
			t.Errorf("fs bucket le=%g: %d, want %d", b.GetUpperBound(), b.GetCumulativeCount(), want)
		}
	}
	if jH == nil || jH.GetSampleCount() != 1 || jH.GetSampleSum() != 0.03 {
		t.Errorf("journal histogram %v, want one 30ms commit (the sync event is not a commit)", jH)
	}
}

func TestQuotaRefuses(t *testing.T) {
	firing := alertPayload("firing", map[string]string{"alertname": "KafkaProduceLatencyHigh"})
	// No filesystem has an exabyte free.
	c := testConfig(t)
	c.Quota.MinFreeBytes = 1 << 60
	r := start(t, c, Options{})
	if code, b := r.do(t, "POST", "/alerts", "s3cret-token", firing); code != 507 || !strings.Contains(string(b), "min_free_bytes") {
		t.Errorf("min_free_bytes: %d %s, want 507 naming it", code, b)
	}
	// Bundles already over quota.max_bytes (retention off).
	c = testConfig(t)
	c.Quota.MaxBytes = 100
	c.Bundles.MaxCount, c.Bundles.MaxBytes = 0, 0
	id := "20261125T080000Z-alertmanager"
	os.MkdirAll(filepath.Join(c.Bundles.Dir, id), 0o750)
	writeFile(t, filepath.Join(c.Bundles.Dir, id), "recording.jfr", strings.Repeat("x", 200))
	if err := writeJSON(filepath.Join(c.Bundles.Dir, id+".json"), &Record{ID: id, Trigger: TriggerAlert, Outcome: OutcomeOK, Size: 200}); err != nil {
		t.Fatal(err)
	}
	r2 := start(t, c, Options{})
	if code, b := r2.do(t, "POST", "/alerts", "s3cret-token", firing); code != 507 || !strings.Contains(string(b), "quota.max_bytes") {
		t.Errorf("quota.max_bytes: %d %s, want 507 naming it", code, b)
	}
	for _, rr := range []*running{r, r2} {
		if got := counter(rr.scrape(t), "lockscope_triggers_total", map[string]string{"trigger": TriggerAlert, "result": "quota"}); got != 1 {
			t.Errorf("lockscope_triggers_total{result=quota} = %v, want 1", got)
		}
	}
}

// TestRunEndsWhenServingFails: a listener that fails ends Run with the
// error instead of leaving it waiting for a context nobody cancels.
func TestRunEndsWhenServingFails(t *testing.T) {
	c := testConfig(t)
	s, err := New(c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(context.Background(), ln) }()
	time.Sleep(100 * time.Millisecond)
	ln.Close()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "serving HTTP") {
			t.Errorf("Run after its listener closed: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its listener failed")
	}
	// A listen address already taken is an error naming it.
	c.Listen = ln.Addr().String()
	busy, err := net.Listen("tcp", c.Listen)
	if err != nil {
		t.Fatalf("holding the port for the test: %v", err)
	}
	defer busy.Close()
	s, _ = New(c, Options{})
	if err := s.Run(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "listening on "+c.Listen) {
		t.Errorf("Run on a taken address: %v", err)
	}
}
