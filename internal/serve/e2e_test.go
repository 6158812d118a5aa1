package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lockscope/lockscope/internal/bundle"
	"github.com/lockscope/lockscope/internal/demobroker"
)

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// startProcess runs a monitoring binary for the test; its output goes to
// a file shown when the test fails.
func startProcess(t *testing.T, name string, args ...string) {
	t.Helper()
	bin, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found: scripts/setup.sh installs Debian's prometheus and prometheus-alertmanager", name)
	}
	logPath := filepath.Join(t.TempDir(), name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("%s log:\n%s", name, lastLines(string(b), 30))
		}
	})
}

// ruleExpr is the alert's expression from a rules file.
func ruleExpr(t *testing.T, rules string) string {
	t.Helper()
	_, after, ok := strings.Cut(rules, "expr: |")
	if !ok {
		t.Fatal("rules.yml: no `expr: |`")
	}
	var lines []string
	for _, l := range strings.Split(after, "\n")[1:] {
		if !strings.HasPrefix(l, "          ") {
			break
		}
		lines = append(lines, strings.TrimSpace(l))
	}
	return strings.Join(lines, " ")
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// webhookCall is one POST Alertmanager made, as the recording proxy in
// front of serve saw it.
type webhookCall struct {
	at      time.Time
	payload Webhook
	auth    bool
	code    int
	body    string
}

// recordingProxy forwards Alertmanager's webhook calls to serve unchanged
// and notes when each arrived: the alert path's latency is measured here.
type recordingProxy struct {
	target string
	mu     sync.Mutex
	calls  []webhookCall
	signal chan struct{}
}

func (p *recordingProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	at := time.Now()
	body, _ := io.ReadAll(r.Body)
	c := webhookCall{at: at, auth: strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ")}
	json.Unmarshal(body, &c.payload)
	req, _ := http.NewRequest(r.Method, p.target+r.URL.Path, bytes.NewReader(body))
	req.Header = r.Header.Clone()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(resp.Body)
	c.code, c.body = resp.StatusCode, string(rb)
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	w.Write(rb)
	p.mu.Lock()
	p.calls = append(p.calls, c)
	p.mu.Unlock()
	select {
	case p.signal <- struct{}{}:
	default:
	}
}

// wait returns the first call with an alert of the given status.
func (p *recordingProxy) wait(t *testing.T, status string, timeout time.Duration) (webhookCall, Alert) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		p.mu.Lock()
		for _, c := range p.calls {
			for _, a := range c.payload.Alerts {
				if a.Status == status {
					p.mu.Unlock()
					return c, a
				}
			}
		}
		p.mu.Unlock()
		select {
		case <-p.signal:
		case <-time.After(200 * time.Millisecond):
		case <-deadline:
			t.Fatalf("no %s alert reached the webhook within %v", status, timeout)
		}
	}
}

// promQuery runs an instant query against Prometheus' HTTP API.
func promQuery(base, q string) (float64, bool) { return promQueryAt(base, q, time.Time{}) }

// promQueryAt runs an instant query at time at (now when zero).
func promQueryAt(base, q string, at time.Time) (float64, bool) {
	u := base + "/api/v1/query?query=" + url.QueryEscape(q)
	if !at.IsZero() {
		u += fmt.Sprintf("&time=%.3f", float64(at.UnixMilli())/1e3)
	}
	resp, err := http.Get(u)
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	var r struct {
		Data struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if json.NewDecoder(resp.Body).Decode(&r) != nil || len(r.Data.Result) == 0 {
		return 0, false
	}
	s, _ := r.Data.Result[0].Value[1].(string)
	v, err := strconv.ParseFloat(s, 64)
	return v, err == nil
}

// crossing returns when the alert expression, evaluated every 50ms on
// the scraped data between from and until, first held (holds) or first
// stopped holding (!holds): when the metric crossed the threshold, as
// opposed to when the rule's next evaluation noticed it.
func crossing(t *testing.T, base, expr string, from, until time.Time, holds bool) time.Time {
	t.Helper()
	const step = 50 * time.Millisecond
	from = from.Truncate(step) // Prometheus evaluates at start + k·step
	// The rule may have seen the crossing between the last step before
	// until and until itself (a scrape landing there, the rule evaluating
	// at once): look one step past until, so the crossing is found even
	// when it falls between two steps.
	until = until.Add(step)
	q := fmt.Sprintf("%s/api/v1/query_range?query=%s&start=%.3f&end=%.3f&step=0.05", base, url.QueryEscape(expr),
		float64(from.UnixMilli())/1e3, float64(until.UnixMilli())/1e3)
	resp, err := http.Get(q)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct {
		Data struct {
			Result []struct {
				Values [][2]any `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	held := map[int64]bool{}
	for _, s := range r.Data.Result {
		for _, v := range s.Values {
			f, _ := v[0].(float64)
			held[int64(f*1000+0.5)] = true
		}
	}
	for ts := from.Truncate(step).Add(step); !ts.After(until); ts = ts.Add(step) {
		if held[ts.UnixMilli()] == holds {
			return ts
		}
	}
	t.Fatalf("the alert expression never %s between %v and %v", map[bool]string{true: "held", false: "stopped holding"}[holds], from, until)
	return time.Time{}
}

// TestAlertPathEndToEnd: the real alert path with the shipped configs.
// The demo broker is made slow, Prometheus scrapes serve's /metrics and
// evaluates the shipped rule, Alertmanager posts the shipped webhook with
// the bearer token, serve captures, and the bundle carries the alert's
// labels. Resolving the alert starts nothing.
//
// The shipped files are used as they are except for these literal
// substitutions, each checked to match once: addresses and ports (free
// loopback ports, and a recording proxy in front of serve), file paths
// (token, bundles, pid file), the capture's duration (60s → 3s), the
// scrape/evaluation interval (15s → 1s), Alertmanager's group_interval
// (10s → 1s) and the rule's rate window (1m → 10s), so that the alert
// resolves within the test's time.
func TestAlertPathEndToEnd(t *testing.T) {
	needRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	token := writeFile(t, dir, "token", "e2e-token-0123456789\n")
	b := startBroker(t, ctx, true)
	pidFile := writeFile(t, dir, "kafka.pid", strconv.Itoa(b.Pid()))
	servePort, proxyPort, amPort, promPort := freePort(t), freePort(t), freePort(t), freePort(t)

	cfg, err := Parse(exampleConfig(t, "lockscope-serve.yaml",
		"listen: 127.0.0.1:9464", "listen: 127.0.0.1:"+servePort,
		"/etc/lockscope/alertmanager-token", token,
		"# pid_file: /run/kafka/kafka.pid", "pid_file: "+pidFile,
		"latency: kafka:9092", "latency: kafka:"+b.Port(),
		"duration: 60s", "duration: 3s",
		"dir: /var/lib/lockscope/bundles", "dir: "+filepath.Join(dir, "bundles")))
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg, Options{Version: "test", Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	sctx, stopServe := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- s.Run(sctx, nil) }()
	defer func() { stopServe(); <-served }()
	r := &running{s: s, url: "http://127.0.0.1:" + servePort, token: "e2e-token-0123456789"}

	proxy := &recordingProxy{target: r.url, signal: make(chan struct{}, 1)}
	pln, err := net.Listen("tcp", "127.0.0.1:"+proxyPort)
	if err != nil {
		t.Fatal(err)
	}
	psrv := &http.Server{Handler: proxy}
	go psrv.Serve(pln)
	defer psrv.Close()

	writeFile(t, dir, "alertmanager.yml", string(exampleConfig(t, "alertmanager.yml",
		"url: http://127.0.0.1:9464/alerts", "url: http://127.0.0.1:"+proxyPort+"/alerts",
		"credentials_file: /etc/lockscope/alertmanager-token", "credentials_file: "+token,
		"group_interval: 10s", "group_interval: 1s")))
	writeFile(t, dir, "prometheus.yml", string(exampleConfig(t, "prometheus.yml",
		"scrape_interval: 15s", "scrape_interval: 1s",
		"evaluation_interval: 15s", "evaluation_interval: 1s",
		`"127.0.0.1:9093"`, `"127.0.0.1:`+amPort+`"`,
		`"127.0.0.1:9464"`, `"127.0.0.1:`+servePort+`"`)))
	writeFile(t, dir, "rules.yml", string(exampleConfig(t, "rules.yml", "[1m]", "[10s]")))

	// Without --cluster.listen-address= Alertmanager holds notifications
	// until its gossip settles (about 10 s).
	startProcess(t, "prometheus-alertmanager", "--config.file="+filepath.Join(dir, "alertmanager.yml"),
		"--storage.path="+filepath.Join(dir, "am"), "--web.listen-address=127.0.0.1:"+amPort, "--cluster.listen-address=")
	startProcess(t, "prometheus", "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "prom"), "--web.listen-address=127.0.0.1:"+promPort)
	prom := "http://127.0.0.1:" + promPort

	stopLoad := demobroker.ProduceForTest(t, b.Addr(), "orders", 4, 300)
	// Prometheus scrapes a new target only some seconds after it is ready.
	t0 := time.Now()
	for {
		if v, ok := promQuery(prom, `up{job="lockscope"}`); ok && v == 1 {
			break
		}
		if time.Since(t0) > 60*time.Second {
			t.Fatal("Prometheus never scraped serve (up == 1)")
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("Prometheus scrapes serve after %v", time.Since(t0).Round(time.Millisecond))

	call, alert := proxy.wait(t, "firing", 90*time.Second)
	firing := call.at.Sub(alert.StartsAt)
	t.Logf("firing alert %v reached the webhook %v after the rule crossed the threshold (startsAt %s); serve answered %d %s",
		alert.Labels, firing.Round(time.Millisecond), alert.StartsAt.Format(time.RFC3339Nano), call.code, strings.TrimSpace(call.body))
	if !call.auth || call.code != 202 {
		t.Fatalf("webhook call: bearer token %v, serve answered %d %s", call.auth, call.code, call.body)
	}
	var resp TriggerResponse
	if err := json.Unmarshal([]byte(call.body), &resp); err != nil || resp.Status != "started" {
		t.Fatalf("serve's answer to the firing alert: %s", call.body)
	}
	rec := r.waitCapture(t, resp.ID, 90*time.Second)
	if rec.Outcome != OutcomeOK {
		t.Errorf("capture %+v", rec)
	}
	bd, err := bundle.Open(filepath.Join(dir, "bundles", rec.ID))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"alertname": "KafkaProduceLatencyHigh", "broker": "broker-1", "topic": "orders",
		"severity": "warning", "job": "lockscope", "instance": "127.0.0.1:" + servePort, LabelTrigger: TriggerAlert} {
		if bd.Meta.Labels[k] != v {
			t.Errorf("bundle label %s = %q, want %q (labels %v)", k, bd.Meta.Labels[k], v, bd.Meta.Labels)
		}
	}
	t.Logf("capture %s: %s", rec.ID, rec.Summary)

	// When did the metric cross the threshold, as the scrapes saw it?
	rules, _ := os.ReadFile(filepath.Join(dir, "rules.yml"))
	expr := ruleExpr(t, string(rules))
	crossed := crossing(t, prom, expr, t0, call.at, true)
	firingFromMetric := call.at.Sub(crossed)
	t.Logf("the metric crossed the threshold at %s: the webhook came %v later", crossed.Format(time.RFC3339Nano), firingFromMetric.Round(time.Millisecond))

	// No more slow requests: the p99 goes (NaN once the window is empty)
	// and the alert resolves; serve ignores it.
	stopLoad()
	stopped := time.Now()
	call, alert = proxy.wait(t, "resolved", 90*time.Second)
	resolved := call.at.Sub(alert.EndsAt)
	t.Logf("resolved alert reached the webhook %v after the rule stopped holding (endsAt %s); serve answered %d %s",
		resolved.Round(time.Millisecond), alert.EndsAt.Format(time.RFC3339Nano), call.code, strings.TrimSpace(call.body))
	uncrossed := crossing(t, prom, expr, stopped, call.at, false)
	resolvedFromMetric := call.at.Sub(uncrossed)
	t.Logf("the metric went under the threshold at %s: the resolved webhook came %v later", uncrossed.Format(time.RFC3339Nano), resolvedFromMetric.Round(time.Millisecond))
	if call.code != 200 || !strings.Contains(call.body, "ignored") {
		t.Errorf("serve's answer to the resolved alert: %d %s", call.code, call.body)
	}
	var list []Record
	_, lb := r.do(t, "GET", "/captures", "e2e-token-0123456789", nil)
	if json.Unmarshal(lb, &list); len(list) != 1 {
		t.Errorf("captures after the resolved alert: %s; want the one", lb)
	}
	t.Logf("alert path: firing reached the webhook %v after the metric crossed the threshold (%v after the rule's evaluation), resolved %v (%v)",
		firingFromMetric.Round(time.Millisecond), firing.Round(time.Millisecond), resolvedFromMetric.Round(time.Millisecond), resolved.Round(time.Millisecond))
}

// TestShippedConfigsCheck: Prometheus' and Alertmanager's own checkers
// accept the shipped files exactly as they are.
func TestShippedConfigsCheck(t *testing.T) {
	dir := filepath.Join("..", "..", "scripts", "monitoring")
	for _, c := range [][]string{
		{"promtool", "check", "config", filepath.Join(dir, "prometheus.yml")},
		{"promtool", "check", "rules", filepath.Join(dir, "rules.yml")},
		{"amtool", "check-config", filepath.Join(dir, "alertmanager.yml")},
	} {
		if _, err := exec.LookPath(c[0]); err != nil {
			t.Fatalf("%s not found: scripts/setup.sh installs Debian's prometheus and prometheus-alertmanager", c[0])
		}
		out, err := exec.Command(c[0], c[1:]...).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "SUCCESS") {
			t.Errorf("%s: %v\n%s", strings.Join(c, " "), err, out)
		}
	}
}
