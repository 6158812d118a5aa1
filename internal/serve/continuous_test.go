package serve

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/lockscope/lockscope/internal/demobroker"
	"github.com/lockscope/lockscope/internal/pyroscope/pyroscopetest"
)

// TestContinuousPreemptedByAlert: continuous profiling runs under serve's
// gate; an alert preempts the period in flight (which is still pushed to
// Pyroscope), the triggered capture runs at once instead of waiting for
// the period's end, and continuous profiling resumes after it. Stopping
// serve leaves nothing in the JVM.
func TestContinuousPreemptedByAlert(t *testing.T) {
	needRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	b := startBroker(t, ctx, true)
	ingest := pyroscopetest.New(t)
	c := brokerConfig(t, b)
	c.Continuous = ContinuousConfig{Enabled: true, Period: 2 * time.Minute, Pyroscope: ingest.URL, Application: "kafka-test",
		Labels: map[string]string{"cluster": "test"}}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	r := start(t, c, Options{Version: "test"})
	demobroker.ProduceForTest(t, b.Addr(), "orders", 4, 300)

	waitRecording := func(what string) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for !recordingRunning(t, b.Pid()) {
			if time.Now().After(deadline) {
				t.Fatalf("no profiler running in the JVM: %s", what)
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	waitRecording("the first continuous period")
	time.Sleep(3 * time.Second)

	trig := time.Now()
	code, body := r.do(t, "POST", "/alerts", "s3cret-token", alertPayload("firing", map[string]string{"alertname": "KafkaProduceLatencyHigh"}))
	var resp TriggerResponse
	if json.Unmarshal(body, &resp); code != 202 || resp.Status != "started" {
		t.Fatalf("alert during a continuous period: %d %s", code, body)
	}
	rec := r.waitCapture(t, resp.ID, 90*time.Second)
	took := time.Since(trig)
	t.Logf("triggered capture done %v after the alert (continuous period: %v): %+v", took.Round(time.Millisecond), c.Continuous.Period, rec)
	if rec.Outcome != OutcomeOK || took > c.Continuous.Period/2 {
		t.Errorf("triggered capture %s after %v: it waited for the period instead of preempting it", rec.Outcome, took)
	}
	// The preempted period was merged and pushed, split by SLO breach.
	deadline := time.Now().Add(30 * time.Second)
	for len(ingest.Ingests()) == 0 && time.Now().Before(deadline) {
		time.Sleep(250 * time.Millisecond)
	}
	breach := map[string]bool{}
	for _, in := range ingest.Ingests() {
		if in.App != "kafka-test" || in.Labels["cluster"] != "test" || in.Labels["broker"] == "" {
			t.Errorf("pushed profile %s %v", in.App, in.Labels)
		}
		breach[in.Labels["slo_breach"]] = true
	}
	if !breach["true"] || !breach["false"] {
		t.Errorf("pushed profiles' slo_breach values %v, want true and false", breach)
	}
	fams := r.scrape(t)
	if got := counter(fams, "lockscope_captures_total", map[string]string{"trigger": TriggerContinuous, "outcome": OutcomeInterrupted}); got != 1 {
		t.Errorf("preempted continuous periods counted %v, want 1", got)
	}
	if got := counter(fams, "lockscope_pyroscope_profiles", map[string]string{"state": "queued"}) + counter(fams, "lockscope_pyroscope_profiles", map[string]string{"state": "pushed"}); got == 0 {
		t.Error("the pusher's counters are not in /metrics")
	}
	// Continuous profiling resumes after the triggered capture.
	waitRecording("continuous profiling after the triggered capture")
	if err := r.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	noRecordingLeft(t, b.Pid())
}
