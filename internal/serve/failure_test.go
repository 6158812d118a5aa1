package serve

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestFindTargetErrors(t *testing.T) {
	dir := t.TempDir()
	garbage := writeFile(t, dir, "garbage.pid", "kafka\n")
	// A pid that cannot be running: above the kernel's pid_max.
	stale := writeFile(t, dir, "stale.pid", "99999999\n")
	for _, tc := range []struct {
		target Target
		want   string
	}{
		{Target{PIDFile: filepath.Join(dir, "none.pid")}, "reading target.pid_file"},
		{Target{PIDFile: garbage}, `holds "kafka", not a pid`},
		{Target{PIDFile: stale}, "is not running (stale pid file?)"},
		{Target{Match: "no.such.MainClass"}, `no process matches target.match "no.such.MainClass"`},
	} {
		_, err := findTarget(tc.target)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("findTarget(%+v) = %v, want %q", tc.target, err, tc.want)
		}
	}
	// Two matches: ambiguous, not a guess.
	var pids []int
	for i := 0; i < 2; i++ {
		cmd := exec.Command("sleep", "61.5")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { cmd.Process.Kill(); cmd.Wait() }()
		pids = append(pids, cmd.Process.Pid)
	}
	_, err := findTarget(Target{Match: "61.5"})
	if err == nil || !strings.Contains(err.Error(), "2 processes match") {
		t.Errorf("two matching processes: %v", err)
	}
	pid, err := findTarget(Target{Match: "=~^sleep 61\\.5$"})
	if err == nil || pid != 0 {
		t.Errorf("regex matching both: %d %v", pid, err)
	}
}

// TestCaptureOfNotAJVM: the pid file names a process that is not a JVM
// (a wrong pid file): the capture fails, is recorded as failed with the
// reason, counted, and serve goes on.
func TestCaptureOfNotAJVM(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	c := testConfig(t)
	c.Target = Target{PIDFile: writeFile(t, t.TempDir(), "kafka.pid", strconv.Itoa(cmd.Process.Pid))}
	c.Capture.Duration = 2 * time.Second
	r := start(t, c, Options{})
	code, b := r.do(t, "POST", "/alerts", "s3cret-token", alertPayload("firing", map[string]string{"alertname": "KafkaProduceLatencyHigh"}))
	if code != 202 || !strings.Contains(string(b), "started") {
		t.Fatalf("alert: %d %s", code, b)
	}
	var id string
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), `"id": "`); ok {
			id = strings.TrimSuffix(v, `"`)
		}
	}
	rec := r.waitCapture(t, id, 30*time.Second)
	if rec.Outcome != OutcomeFailed || !strings.Contains(rec.Error, "JVM") {
		t.Errorf("capture of sleep: %+v; want failed saying it is not a JVM", rec)
	}
	t.Logf("capture of a non-JVM: %s", rec.Error)
	if got := counter(r.scrape(t), "lockscope_captures_total", map[string]string{"trigger": TriggerAlert, "outcome": OutcomeFailed}); got != 1 {
		t.Errorf("failed captures counted %v, want 1", got)
	}
	if code, b := r.do(t, "GET", "/healthz", "", nil); code != 200 || strings.Contains(string(b), "capturing") {
		t.Errorf("/healthz after the failed capture: %d %s", code, b)
	}
}

// FuzzAlerts: whatever the body, /alerts answers with one of its statuses
// and never panics. The target is missing, so nothing is captured.
func FuzzAlerts(f *testing.F) {
	f.Add([]byte(`{"version":"4","status":"firing","alerts":[{"status":"firing","labels":{"alertname":"KafkaProduceLatencyHigh"}}]}`))
	f.Add([]byte(`{"version":"4","status":"resolved","alerts":[{"status":"resolved","labels":null}]}`))
	f.Add([]byte(`{"version":4}`))
	f.Add([]byte(`[]`))
	c := testConfig(f)
	c.Alerts.Matchers = []string{"alertname=~Kafka.*", "severity!=info"}
	s, err := New(c, Options{})
	if err != nil {
		f.Fatal(err)
	}
	h := s.Handler()
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest("POST", "/alerts", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer s3cret-token")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		switch w.Code {
		case http.StatusOK, http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusServiceUnavailable:
		default:
			t.Errorf("status %d for %q: %s", w.Code, body, w.Body)
		}
		if es, _ := os.ReadDir(c.Bundles.Dir); len(es) > 0 {
			t.Errorf("a capture was recorded for %q", body)
		}
	})
}
