package serve

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/lockscope/lockscope/internal/attach"
	"github.com/lockscope/lockscope/internal/bundle"
	"github.com/lockscope/lockscope/internal/demobroker"
	"github.com/lockscope/lockscope/internal/latency"
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("not root: serve sniffs a packet socket and captures with BPF (CI runs as root)")
	}
}

// Stall settings that make the demo broker miss a 65ms SLO at the tests'
// load: the holder of a partition's append lock sleeps stallMs every
// stallEvery appends.
const stallMs, stallEvery = 200, 20

func startBroker(t *testing.T, ctx context.Context, stall bool) *demobroker.Broker {
	t.Helper()
	cfg := demobroker.Config{LogDir: filepath.Join(t.TempDir(), "kafka-logs"), Partitions: 3}
	if stall {
		cfg.StallMs, cfg.StallEvery = stallMs, stallEvery
	}
	b, err := demobroker.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// brokerConfig captures b for 3 seconds with the JDK Flight Recorder
// (async-profiler is not installable here) and sniffs its port on lo.
func brokerConfig(t *testing.T, b *demobroker.Broker) *Config {
	c := testConfig(t)
	c.Target = Target{PIDFile: writeFile(t, t.TempDir(), "kafka.pid", strconv.Itoa(b.Pid())+"\n")}
	c.Capture.Latency = "kafka:" + b.Port()
	c.Capture.Interface = "lo"
	c.Capture.Duration = 3 * time.Second
	c.Capture.Profiler = "jfr"
	c.Capture.RequireOffCPU = true
	c.Capture.Grace = 20 * time.Second
	c.Cooldown = time.Hour
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	return c
}

// waitWatchCapture waits up to fire for the SLO watch to start a capture,
// then up to finish for it to end, and returns its record.
func (r *running) waitWatchCapture(t *testing.T, fire, finish time.Duration) Record {
	t.Helper()
	deadline := time.Now().Add(fire)
	for {
		if time.Now().After(deadline) {
			t.Fatalf("the SLO watch did not fire in %v; /metrics share %v", fire, counter(r.scrape(t), "lockscope_slo_watch_share", nil))
		}
		time.Sleep(500 * time.Millisecond)
		var list []Record
		_, b := r.do(t, "GET", "/captures", r.token, nil)
		if json.Unmarshal(b, &list) == nil && len(list) > 0 {
			return r.waitCapture(t, list[0].ID, finish)
		}
	}
}

// waitCapture polls /captures/{id} until the capture has finished.
func (r *running) waitCapture(t *testing.T, id string, timeout time.Duration) Record {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		code, b := r.do(t, "GET", "/captures/"+id, r.token, nil)
		var rec Record
		if code == 200 && json.Unmarshal(b, &rec) == nil && rec.Outcome != OutcomeRunning {
			return rec
		}
		if time.Now().After(deadline) {
			t.Fatalf("capture %s not finished after %v: %d %s", id, timeout, code, b)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// noRecordingLeft checks that no lockscope profiler recording is left in
// the JVM.
func noRecordingLeft(t *testing.T, pid int) {
	t.Helper()
	vm, err := attach.Open(pid, attach.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	out, err := vm.Jcmd(context.Background(), "JFR.check")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, "lockscope") {
		t.Errorf("a lockscope recording is still in the JVM:\n%s", out)
	}
}

func recordingRunning(t *testing.T, pid int) bool {
	vm, err := attach.Open(pid, attach.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	out, err := vm.Jcmd(context.Background(), "JFR.check")
	return err == nil && strings.Contains(out, "lockscope")
}

// seen is what the sniffer handed serve, for comparing with /metrics.
type seen struct {
	topics   []string
	latency  time.Duration
	measured bool
}

// TestAlertsCaptureStalledBroker: real alerts against a stalled demo
// broker under load: credentials, resolved alerts, two alerts at once
// making one capture, the alert's labels in the bundle, cooldown, nothing
// left in the JVM, and /metrics agreeing with the sniffer's request log.
func TestAlertsCaptureStalledBroker(t *testing.T) {
	needRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	b := startBroker(t, ctx, true)
	c := brokerConfig(t, b)

	var mu sync.Mutex
	var log []seen
	r := start(t, c, Options{Version: "test", OnRequest: func(q *latency.Request) {
		s := seen{latency: q.Latency(latency.Service), measured: q.Measured()}
		for _, p := range q.Partitions {
			if !slices.Contains(s.topics, p.Topic) {
				s.topics = append(s.topics, p.Topic)
			}
		}
		mu.Lock()
		log = append(log, s)
		mu.Unlock()
	}})
	stopOrders := demobroker.ProduceForTest(t, b.Addr(), "orders", 4, 300)
	stopAudit := demobroker.ProduceForTest(t, b.Addr(), "audit", 1, 50)
	time.Sleep(2 * time.Second) // metadata, connections, JIT

	firing := func(topic string) []byte {
		return alertPayload("firing", map[string]string{"alertname": "KafkaProduceLatencyHigh", "broker": "broker-1",
			"topic": topic, "severity": "warning", "instance": "127.0.0.1:9464"})
	}
	if code, _ := r.do(t, "POST", "/alerts", "not-the-token", firing("orders")); code != 401 {
		t.Errorf("wrong token: %d, want 401", code)
	}
	if code, _ := r.do(t, "POST", "/alerts", "", firing("orders")); code != 401 {
		t.Errorf("no token: %d, want 401", code)
	}
	if code, b := r.do(t, "POST", "/alerts", "s3cret-token", alertPayload("resolved", map[string]string{"alertname": "KafkaProduceLatencyHigh"})); code != 200 || !strings.Contains(string(b), "ignored") {
		t.Errorf("resolved alert: %d %s", code, b)
	}
	if _, b := r.do(t, "GET", "/captures", "s3cret-token", nil); strings.TrimSpace(string(b)) != "[]" {
		t.Fatalf("captures after refused and resolved alerts: %s", b)
	}

	// Two alerts at once: one capture; the other joins it.
	var resps [2]TriggerResponse
	var codes [2]int
	var wg sync.WaitGroup
	for i, topic := range []string{"orders", "audit"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, b := r.do(t, "POST", "/alerts", "s3cret-token", firing(topic))
			codes[i] = code
			json.Unmarshal(b, &resps[i])
		}()
	}
	wg.Wait()
	statuses := []string{resps[0].Status, resps[1].Status}
	slices.Sort(statuses)
	if codes != [2]int{202, 202} || !slices.Equal(statuses, []string{"joined", "started"}) || resps[0].ID != resps[1].ID || resps[0].ID == "" {
		t.Fatalf("two alerts at once: %v %+v; want 202 started and 202 joined with one id", codes, resps)
	}
	started := resps[0]
	startedTopic := "orders"
	if resps[1].Status == "started" {
		started, startedTopic = resps[1], "audit"
	}
	rec := r.waitCapture(t, started.ID, 90*time.Second)
	t.Logf("capture: %+v", rec)
	if rec.Outcome != OutcomeOK || rec.Requests == 0 || rec.OverSLO == 0 || rec.Summary == "" || rec.Size == 0 {
		t.Errorf("capture record %+v: want ok with requests, some over the SLO, a summary and a size", rec)
	}
	bd, err := bundle.Open(filepath.Join(c.Bundles.Dir, rec.ID))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"alertname": "KafkaProduceLatencyHigh", "broker": "broker-1", "topic": startedTopic,
		"severity": "warning", LabelTrigger: TriggerAlert} {
		if bd.Meta.Labels[k] != v {
			t.Errorf("bundle label %s = %q, want %q (labels %v)", k, bd.Meta.Labels[k], v, bd.Meta.Labels)
		}
	}
	if code, body := r.do(t, "GET", "/captures/"+rec.ID+"/summary.txt", "s3cret-token", nil); code != 200 || len(body) == 0 {
		t.Errorf("summary.txt of the capture: %d", code)
	}
	var list []Record
	_, lb := r.do(t, "GET", "/captures", "s3cret-token", nil)
	if json.Unmarshal(lb, &list); len(list) != 1 {
		t.Errorf("captures: %s; want exactly one", lb)
	}
	noRecordingLeft(t, b.Pid())

	// The cooldown refuses the next alert, saying so.
	if code, b := r.do(t, "POST", "/alerts", "s3cret-token", firing("orders")); code != 429 || !strings.Contains(string(b), "cooldown") {
		t.Errorf("alert within the cooldown: %d %s, want 429", code, b)
	}

	// /metrics against the request log: stop the load, let the last
	// responses arrive, then compare while nothing moves.
	stopOrders()
	stopAudit()
	var n int
	for i := 0; i < 20; i++ {
		time.Sleep(500 * time.Millisecond)
		mu.Lock()
		m := len(log)
		mu.Unlock()
		if m == n {
			break
		}
		n = m
	}
	fams := r.scrape(t)
	mu.Lock()
	reqs := slices.Clone(log)
	mu.Unlock()
	if len(reqs) < 500 {
		t.Fatalf("the sniffer saw %d produce requests, want hundreds", len(reqs))
	}
	checkHistograms(t, fams, reqs, c.Capture.SLO)
	checkNative(t, r)

	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"lockscope_triggers_total", map[string]string{"trigger": TriggerAlert, "result": "started"}, 1},
		{"lockscope_triggers_total", map[string]string{"trigger": TriggerAlert, "result": "joined"}, 1},
		{"lockscope_triggers_total", map[string]string{"trigger": TriggerAlert, "result": "cooldown"}, 1},
		{"lockscope_triggers_total", map[string]string{"trigger": TriggerAlert, "result": "resolved"}, 1},
		{"lockscope_captures_total", map[string]string{"trigger": TriggerAlert, "outcome": OutcomeOK}, 1},
		{"lockscope_capture_running", nil, 0},
		{"lockscope_bundles", nil, 1},
	} {
		if got := counter(fams, tc.name, tc.labels); got != tc.want {
			t.Errorf("%s%v = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
	if counter(fams, "lockscope_offcpu_events_total", nil) == 0 || counter(fams, "lockscope_sniffer_packets_total", nil) == 0 {
		t.Error("off-CPU events or sniffer packets not counted")
	}
	if h := fams["lockscope_capture_duration_seconds"]; h == nil || h.Metric[0].Histogram.GetSampleCount() != 1 {
		t.Errorf("capture duration histogram: %v", h)
	}
	// Where the capture ran the filesystem lens, its histograms are in
	// /metrics, per topic-partition.
	if bd.Has(bundle.FSStreamFile) {
		var tps []string
		if f := fams["lockscope_fs_op_duration_seconds"]; f != nil {
			for _, m := range f.Metric {
				for _, l := range m.Label {
					if l.GetName() == "topic_partition" && !slices.Contains(tps, l.GetValue()) {
						tps = append(tps, l.GetValue())
					}
				}
			}
		}
		if !slices.ContainsFunc(tps, func(tp string) bool { return strings.HasPrefix(tp, "orders-") }) {
			t.Errorf("the bundle has %s but /metrics has fs op latency for %v, want orders partitions", bundle.FSStreamFile, tps)
		}
		t.Logf("fs op latency in /metrics for %v", tps)
	} else {
		t.Logf("the capture wrote no %s (filesystem lens not in this capture): fs metrics not checked", bundle.FSStreamFile)
	}
}

// checkHistograms compares the produce latency histograms of /metrics with
// what the sniffer handed serve: per topic, the count, every bucket and the
// sum; and the over-SLO counters.
func checkHistograms(t *testing.T, fams map[string]*dto.MetricFamily, reqs []seen, slo time.Duration) {
	t.Helper()
	type agg struct {
		count, over int
		sum         float64
		lat         []float64
	}
	want := map[string]*agg{}
	for _, q := range reqs {
		if !q.measured {
			continue
		}
		for _, topic := range q.topics {
			a := want[topic]
			if a == nil {
				a = &agg{}
				want[topic] = a
			}
			a.count++
			a.sum += q.latency.Seconds()
			a.lat = append(a.lat, q.latency.Seconds())
			if q.latency > slo {
				a.over++
			}
		}
	}
	f := fams["lockscope_produce_latency_seconds"]
	if f == nil {
		t.Fatal("no lockscope_produce_latency_seconds in /metrics")
	}
	got := map[string]bool{}
	for _, m := range f.Metric {
		topic := ""
		for _, l := range m.Label {
			if l.GetName() == "topic" {
				topic = l.GetValue()
			}
		}
		got[topic] = true
		a := want[topic]
		h := m.Histogram
		if a == nil {
			t.Errorf("topic %q in /metrics but not in the request log", topic)
			continue
		}
		if int(h.GetSampleCount()) != a.count || math.Abs(h.GetSampleSum()-a.sum) > 1e-6*a.sum+1e-9 {
			t.Errorf("topic %s: count %d sum %g in /metrics, %d and %g in the request log", topic, h.GetSampleCount(), h.GetSampleSum(), a.count, a.sum)
		}
		sloBucket := false
		for _, bk := range h.Bucket {
			n := 0
			for _, v := range a.lat {
				if v <= bk.GetUpperBound() {
					n++
				}
			}
			if int(bk.GetCumulativeCount()) != n {
				t.Errorf("topic %s bucket le=%g: %d in /metrics, %d in the request log", topic, bk.GetUpperBound(), bk.GetCumulativeCount(), n)
			}
			if bk.GetUpperBound() == slo.Seconds() {
				sloBucket = true
				if a.count-n != a.over {
					t.Errorf("topic %s: count − bucket{le=SLO} = %d, over the SLO in the log %d", topic, a.count-n, a.over)
				}
			}
		}
		if !sloBucket {
			t.Errorf("topic %s: no bucket at the SLO %v", topic, slo)
		}
		if over := counter(fams, "lockscope_produce_requests_over_slo_total", map[string]string{"topic": topic}); int(over) != a.over {
			t.Errorf("topic %s: %v over the SLO in /metrics, %d in the request log", topic, over, a.over)
		}
		t.Logf("topic %s: %d requests, %d over the SLO, agree with the request log", topic, a.count, a.over)
	}
	for topic := range want {
		if !got[topic] {
			t.Errorf("topic %q in the request log but not in /metrics", topic)
		}
	}
	if !got["orders"] || !got["audit"] {
		t.Errorf("topics in /metrics %v, want orders and audit", got)
	}
}

// TestSLOWatch: the watch stays quiet on a healthy broker under load and
// fires on a stalled one.
func TestSLOWatch(t *testing.T) {
	needRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	watch := func(c *Config) {
		c.Watch = WatchConfig{Enabled: true, Window: 5 * time.Second, Threshold: 0.03, MinRequests: 100}
	}

	healthy := startBroker(t, ctx, false)
	c := brokerConfig(t, healthy)
	watch(c)
	r := start(t, c, Options{})
	stop := demobroker.ProduceForTest(t, healthy.Addr(), "orders", 4, 300)
	var maxShare, maxReqs float64
	for i := 0; i < 10; i++ {
		time.Sleep(time.Second)
		fams := r.scrape(t)
		maxShare = max(maxShare, counter(fams, "lockscope_slo_watch_share", nil))
		maxReqs = max(maxReqs, counter(fams, "lockscope_slo_watch_requests", nil))
	}
	stop()
	if maxReqs < 100 {
		t.Errorf("the watch saw at most %v requests in its window, want over min_requests (100): it did not watch", maxReqs)
	}
	if _, b := r.do(t, "GET", "/captures", "s3cret-token", nil); strings.TrimSpace(string(b)) != "[]" {
		t.Errorf("the watch captured a healthy broker (max share over the SLO %.3f): %s", maxShare, b)
	}
	t.Logf("healthy broker: max share over the SLO %.3f of up to %v requests in the window", maxShare, maxReqs)
	r.stop()
	healthy.Close()

	stalled := startBroker(t, ctx, true)
	c = brokerConfig(t, stalled)
	watch(c)
	r = start(t, c, Options{})
	demobroker.ProduceForTest(t, stalled.Addr(), "orders", 4, 300)
	rec := r.waitWatchCapture(t, 60*time.Second, 90*time.Second)
	t.Logf("watch capture: %+v", rec)
	if rec.Trigger != TriggerWatch || rec.Outcome != OutcomeOK || rec.Labels[LabelTrigger] != TriggerWatch {
		t.Errorf("watch capture %+v", rec)
	}
	share, _ := strconv.ParseFloat(rec.Labels["slo_watch_share"], 64)
	if share < 0.03 {
		t.Errorf("the watch fired at share %v, under its threshold", share)
	}
	fams := r.scrape(t)
	if got := counter(fams, "lockscope_captures_total", map[string]string{"trigger": TriggerWatch, "outcome": OutcomeOK}); got != 1 {
		t.Errorf("lockscope_captures_total{slo_watch,ok} = %v", got)
	}
	noRecordingLeft(t, stalled.Pid())
}

// TestStopWritesCaptureInFlight: ending Run (what SIGTERM does) cuts the
// running capture short, writes and records it, and stops the recording in
// the JVM.
func TestStopWritesCaptureInFlight(t *testing.T) {
	needRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b := startBroker(t, ctx, true)
	c := brokerConfig(t, b)
	c.Capture.Duration = 5 * time.Minute
	// Find the broker by its command line this time.
	c.Target = Target{Match: "=~" + regexp.QuoteMeta("kafka.Kafka ") + ".*" + regexp.QuoteMeta("--log-dir="+b.LogDir())}
	if pids, err := matchProcesses("/proc", "kafka.Kafka", os.Getpid()); err != nil || !slices.Contains(pids, b.Pid()) {
		t.Errorf("match kafka.Kafka: %v %v, want the broker %d among them", pids, err, b.Pid())
	}
	r := start(t, c, Options{})
	demobroker.ProduceForTest(t, b.Addr(), "orders", 2, 200)
	code, body := r.do(t, "POST", "/alerts", "s3cret-token", alertPayload("firing", map[string]string{"alertname": "KafkaProduceLatencyHigh"}))
	var resp TriggerResponse
	if json.Unmarshal(body, &resp); code != 202 || resp.Status != "started" {
		t.Fatalf("alert: %d %s", code, body)
	}
	deadline := time.Now().Add(60 * time.Second)
	for !recordingRunning(t, b.Pid()) {
		if time.Now().After(deadline) {
			t.Fatal("the profiler never started in the JVM")
		}
		time.Sleep(250 * time.Millisecond)
	}
	time.Sleep(2 * time.Second)
	stopped := time.Now()
	if err := r.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	t.Logf("Run returned %v after the stop", time.Since(stopped).Round(time.Millisecond))
	noRecordingLeft(t, b.Pid())
	raw, err := os.ReadFile(filepath.Join(c.Bundles.Dir, resp.ID+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var rec Record
	if err := json.Unmarshal(raw, &rec); err != nil || rec.Outcome != OutcomeInterrupted || rec.PID != b.Pid() {
		t.Errorf("record after stop: %s (%v); want outcome interrupted for pid %d", raw, err, b.Pid())
	}
	bd, err := bundle.Open(filepath.Join(c.Bundles.Dir, resp.ID))
	if err != nil {
		t.Fatal(err)
	}
	if bd.Meta.Ended != "interrupted" || bd.Meta.Profiler == nil || !bd.Has(bundle.RecordingFile) || !bd.Has(bundle.SlowProfile) {
		t.Errorf("bundle after stop: ended %q, profiler %+v, files %v", bd.Meta.Ended, bd.Meta.Profiler, bd.Meta.Files)
	}
}

// checkNative scrapes /metrics as Prometheus does with native histograms
// on (protobuf) and checks the native histogram counts what the classic
// one counts.
func checkNative(t *testing.T, r *running) {
	t.Helper()
	req, _ := http.NewRequest("GET", r.url+"/metrics", nil)
	req.Header.Set("Accept", `application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited`)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	dec := expfmt.NewDecoder(resp.Body, expfmt.ResponseFormat(resp.Header))
	for {
		var f dto.MetricFamily
		if err := dec.Decode(&f); err != nil {
			if err != io.EOF {
				t.Fatalf("decoding protobuf /metrics: %v", err)
			}
			t.Fatal("no lockscope_produce_latency_seconds in protobuf /metrics")
		}
		if f.GetName() != "lockscope_produce_latency_seconds" {
			continue
		}
		for _, m := range f.Metric {
			h := m.Histogram
			var n uint64
			var c int64
			for _, d := range h.PositiveDelta {
				c += d
				n += uint64(c)
			}
			n += h.GetZeroCount()
			if h.Schema == nil || n != h.GetSampleCount() {
				t.Errorf("native histogram %v: schema %v, buckets count %d of %d samples", m.Label, h.Schema, n, h.GetSampleCount())
			}
		}
		return
	}
}
