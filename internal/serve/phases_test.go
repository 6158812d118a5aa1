package serve

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/lockscope/lockscope/internal/demobroker"
)

// TestRequestLogPhases: serve follows the leader's request log of a
// replicated demo cluster whose broker 2 stalls: /metrics has the produce
// requests' phases, the slow ones' time is remote (waiting for the
// followers), and the SLO watch, fed by the request log, captures the
// leader with the same log as its latency source.
func TestRequestLogPhases(t *testing.T) {
	needRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	bs, requestLog := demobroker.StartTestCluster(t, ctx, func(i int, c *demobroker.Config) {
		if i == 2 {
			c.StallMs, c.StallEvery = 200, 20
		}
	})
	c := testConfig(t)
	c.Target = Target{PIDFile: writeFile(t, t.TempDir(), "kafka.pid", strconv.Itoa(bs[0].Pid())+"\n")}
	c.Capture.Latency = "requestlog:" + requestLog
	c.Capture.Duration = 3 * time.Second
	c.Capture.Profiler = "jfr"
	c.Capture.RequireOffCPU = true
	c.Capture.Grace = 20 * time.Second
	c.Cooldown = time.Hour
	c.Watch = WatchConfig{Enabled: true, Window: 5 * time.Second, Threshold: 0.03, MinRequests: 50}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	r := start(t, c, Options{})
	demobroker.ProduceForTest(t, bs[0].Addr(), "orders", 4, 150)

	rec := r.waitWatchCapture(t, 60*time.Second, 90*time.Second)
	if rec.Trigger != TriggerWatch || rec.Outcome != OutcomeOK {
		t.Errorf("watch capture %+v", rec)
	}

	fams := r.scrape(t)
	f := fams["lockscope_produce_phase_seconds"]
	if f == nil {
		t.Fatal("no lockscope_produce_phase_seconds in /metrics")
	}
	mean := map[string]time.Duration{}
	for _, m := range f.Metric {
		h := m.GetHistogram()
		if h.GetSampleCount() == 0 {
			continue
		}
		key := label(m, "phase") + "/" + label(m, "over_slo")
		mean[key] = time.Duration(h.GetSampleSum() / float64(h.GetSampleCount()) * 1e9)
	}
	t.Logf("mean phase times (phase/over_slo): %v", mean)
	if mean["remote/true"] < 100*time.Millisecond || mean["remote/true"] < 2*mean["local/true"] {
		t.Errorf("slow requests' mean remote %v, local %v: want remote, the stalling follower, to dominate", mean["remote/true"], mean["local/true"])
	}
	if _, ok := mean["request_queue/false"]; !ok {
		t.Errorf("no request_queue phase of requests within the SLO: %v", mean)
	}
	if n := counter(fams, "lockscope_produce_requests_over_slo_total", nil); n == 0 {
		t.Error("no produce request over the SLO counted from the request log")
	}
	noRecordingLeft(t, bs[0].Pid())
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.Label {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return fmt.Sprint("no ", name)
}
