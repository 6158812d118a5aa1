package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/lockscope/lockscope/internal/bundle"
	"github.com/lockscope/lockscope/internal/capture"
	"github.com/lockscope/lockscope/internal/continuous"
	"github.com/lockscope/lockscope/internal/latency"
	"github.com/lockscope/lockscope/internal/latency/sniff"
	"github.com/lockscope/lockscope/internal/verdict"
)

// Triggers: what started a capture.
const (
	TriggerAlert      = "alertmanager"
	TriggerWatch      = "slo_watch"
	TriggerContinuous = "continuous" // a continuous-profiling period (not a trigger: counted in captures only)
)

// LabelTrigger is the label serve adds to a bundle's labels naming the
// trigger (the alert's own labels are kept as they are).
const LabelTrigger = "lockscope_trigger"

// Options are what the command (or a test) gives a Server beside its
// config.
type Options struct {
	// Version is recorded in the bundles.
	Version string
	// Logf receives one line per event (trigger, capture, retention); nil is
	// quiet. Secrets are never passed to it.
	Logf func(format string, args ...any)
	// OnRequest, when set, is called with every produce request the live
	// sniffer sees (from the sniffing goroutine; the request is reused
	// after it returns): a request log.
	OnRequest func(*latency.Request)
}

// Server is `lockscope serve`: the HTTP API, the live sniffer feeding the
// metrics and the SLO watch, and the captures they trigger, one at a time.
type Server struct {
	cfg      *Config
	o        Options
	creds    *credentials
	matchers []matcher
	m        *metrics
	store    *store
	gate     *gate
	metric   latency.Metric

	ctx context.Context // the server's lifetime: captures end with it

	mu       sync.Mutex
	cur      *Record // the triggered capture in flight
	lastEnd  time.Time
	closing  bool
	captures sync.WaitGroup

	sniffErr  error // why the live sniffer is not running; guarded by mu
	sniffing  bool
	watchHits int
}

// New checks the config's files and opens the bundle directory; nothing
// runs until Run.
func New(cfg *Config, o Options) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	creds, err := cfg.Auth.load()
	if err != nil {
		return nil, err
	}
	ms, _ := parseMatchers(cfg.Alerts.Matchers)
	st, err := openStore(cfg.Bundles.Dir)
	if err != nil {
		return nil, err
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	s := &Server{cfg: cfg, o: o, creds: creds, matchers: ms, m: newMetrics(cfg.Capture.SLO), store: st,
		gate: newGate(), metric: cfg.metric(), ctx: context.Background()}
	return s, nil
}

// Run serves on ln (or on the config's listen address when ln is nil)
// until ctx ends. Then the capture in flight is stopped — capture.Run
// writes what it collected and stops the profiler — and recorded before
// Run returns.
func (s *Server) Run(ctx context.Context, ln net.Listener) error {
	defer s.store.Close()
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", s.cfg.Listen); err != nil {
			return fmt.Errorf("listening on %s: %w", s.cfg.Listen, err)
		}
	}
	// Everything Run starts ends with this context: the caller's, or a
	// failure to serve.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.ctx = ctx
	if ids, err := s.store.recover(); err != nil {
		s.o.Logf("settling captures left running: %v", err)
	} else if len(ids) > 0 {
		s.o.Logf("captures left running by a previous serve, now settled: %v", ids)
	}
	s.retain()

	var bg sync.WaitGroup
	if ports := s.cfg.SniffPorts(); len(ports) > 0 {
		bg.Add(1)
		go func() { defer bg.Done(); s.sniff(ctx, ports) }()
	}
	if path := s.cfg.RequestLog(); path != "" {
		bg.Add(1)
		go func() { defer bg.Done(); s.followRequestLog(ctx, path) }()
	}
	if s.cfg.Continuous.Enabled {
		bg.Add(1)
		go func() { defer bg.Done(); s.continuous(ctx) }()
	}

	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 5 * time.Minute, IdleTimeout: 2 * time.Minute}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	s.o.Logf("serving on http://%s (bundles in %s)", ln.Addr(), s.cfg.Bundles.Dir)

	var err error
	select {
	case <-ctx.Done():
	case err = <-served:
		err = fmt.Errorf("serving HTTP: %w", err)
	}
	s.mu.Lock()
	s.closing = true
	running := s.cur
	s.mu.Unlock()
	cancel()
	if running != nil {
		s.o.Logf("stopping: writing what capture %s collected", running.ID)
	}
	// Captures (and continuous periods) derive from ctx: they are stopping
	// now. Wait for them to be written, then stop serving.
	s.captures.Wait()
	bg.Wait()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if serr := srv.Shutdown(sctx); serr != nil && err == nil {
		err = fmt.Errorf("stopping HTTP: %w", serr)
	}
	return err
}

// Handler is the HTTP API.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	metrics := promhttp.HandlerFor(s.m.reg, promhttp.HandlerOpts{})
	if s.cfg.Auth.ProtectMetrics {
		metrics = s.auth(metrics)
	}
	mux.Handle("GET /metrics", metrics)
	mux.Handle("POST /alerts", s.auth(http.HandlerFunc(s.alerts)))
	mux.Handle("GET /captures", s.auth(http.HandlerFunc(s.list)))
	mux.Handle("GET /captures/{id}", s.auth(http.HandlerFunc(s.record)))
	mux.Handle("GET /captures/{id}/{file}", s.auth(http.HandlerFunc(s.file)))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Dot segments would make the mux redirect to a cleaned path;
		// refuse them outright instead, however they are encoded.
		if badPath(r.URL) {
			httpError(w, http.StatusBadRequest, "path has empty, . or .. segments, or an encoded separator")
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func badPath(u *url.URL) bool {
	for i, seg := range strings.Split(u.EscapedPath(), "/") {
		dec, err := url.PathUnescape(seg)
		if err != nil || dec == "." || dec == ".." || (i > 0 && dec == "") || strings.ContainsAny(dec, "/\\\x00") {
			return true
		}
	}
	return false
}

func (s *Server) auth(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.creds.allowed(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="lockscope"`)
			httpError(w, http.StatusUnauthorized, "missing or wrong credentials")
			return
		}
		h.ServeHTTP(w, r)
	})
}

func httpError(w http.ResponseWriter, code int, msg string) {
	writeJSONResponse(w, code, map[string]string{"status": "error", "error": msg})
}

func writeJSONResponse(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// TriggerResponse is the body of POST /alerts.
type TriggerResponse struct {
	// Status is started, joined (a capture was already running: this alert
	// is served by it), ignored (nothing firing matched), cooldown, quota,
	// no_target or shutting_down.
	Status string `json:"status"`
	ID     string `json:"id,omitempty"`
	Reason string `json:"reason,omitempty"`
}

func (s *Server) alerts(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, int64(s.cfg.MaxBodyBytes))
	var p Webhook
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(&p); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			s.m.triggers.WithLabelValues(TriggerAlert, "error").Inc()
			httpError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body over max_body_bytes (%d)", tooBig.Limit))
			return
		}
		s.m.triggers.WithLabelValues(TriggerAlert, "error").Inc()
		httpError(w, http.StatusBadRequest, "decoding the Alertmanager payload: "+err.Error())
		return
	}
	if p.Version != "4" {
		s.m.triggers.WithLabelValues(TriggerAlert, "error").Inc()
		httpError(w, http.StatusBadRequest, fmt.Sprintf("webhook payload version %q: want 4 (Alertmanager's webhook_configs)", p.Version))
		return
	}
	firing := p.firing(s.matchers)
	if len(firing) == 0 {
		result, reason := "no_match", "no firing alert matches alerts.matchers"
		if p.Status == "resolved" {
			result, reason = "resolved", "resolved alerts do not start captures"
		}
		s.m.triggers.WithLabelValues(TriggerAlert, result).Inc()
		writeJSONResponse(w, http.StatusOK, TriggerResponse{Status: "ignored", Reason: reason})
		return
	}
	labels := map[string]string{}
	for k, v := range firing[0].Labels {
		labels[k] = v
	}
	labels[LabelTrigger] = TriggerAlert
	if len(firing) > 1 {
		labels["lockscope_alerts"] = strconv.Itoa(len(firing))
	}
	code, resp := s.Trigger(TriggerAlert, labels)
	s.o.Logf("alert %s (%s): %s %s %s", firing[0].Labels["alertname"], firing[0].Fingerprint, resp.Status, resp.ID, resp.Reason)
	writeJSONResponse(w, code, resp)
}

// Trigger starts a capture with labels unless one is running (the trigger
// joins it), the cooldown or the quota forbids it, or the target is not
// found. It returns the HTTP status that says which.
func (s *Server) Trigger(trigger string, labels map[string]string) (int, TriggerResponse) {
	code, resp := s.trigger(trigger, labels)
	s.m.triggers.WithLabelValues(trigger, resp.Status).Inc()
	return code, resp
}

func (s *Server) trigger(trigger string, labels map[string]string) (int, TriggerResponse) {
	// The lock is held throughout, so that two triggers at once start one
	// capture: the second sees the first in s.cur.
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closing || s.ctx.Err() != nil:
		return http.StatusServiceUnavailable, TriggerResponse{Status: "shutting_down", Reason: "lockscope serve is stopping"}
	case s.cur != nil:
		return http.StatusAccepted, TriggerResponse{Status: "joined", ID: s.cur.ID, Reason: "a capture is already running"}
	}
	if left := s.cfg.Cooldown - time.Since(s.lastEnd); !s.lastEnd.IsZero() && left > 0 {
		return http.StatusTooManyRequests, TriggerResponse{Status: "cooldown",
			Reason: fmt.Sprintf("the last capture ended less than cooldown (%v) ago; next possible in %v", s.cfg.Cooldown, left.Round(time.Second))}
	}
	if reason := s.overQuota(); reason != "" {
		return http.StatusInsufficientStorage, TriggerResponse{Status: "quota", Reason: reason}
	}
	pid, err := findTarget(s.cfg.Target)
	if err != nil {
		return http.StatusServiceUnavailable, TriggerResponse{Status: "no_target", Reason: err.Error()}
	}
	now := time.Now()
	rec := &Record{ID: s.store.newID(now, trigger), Started: now, Trigger: trigger, Labels: labels, Outcome: OutcomeRunning, PID: pid}
	if err := s.store.save(rec); err != nil {
		return http.StatusInternalServerError, TriggerResponse{Status: "error", Reason: err.Error()}
	}
	s.cur = rec
	s.captures.Add(1)
	s.m.running.Set(1)
	go s.capture(rec)
	return http.StatusAccepted, TriggerResponse{Status: "started", ID: rec.ID}
}

// overQuota says why a capture may not start for lack of room, or "".
func (s *Server) overQuota() string {
	q := s.cfg.Quota
	if q.MinFreeBytes > 0 {
		free, err := s.store.free()
		if err != nil {
			return err.Error()
		}
		if free < int64(q.MinFreeBytes) {
			return fmt.Sprintf("%s has %d bytes free, under quota.min_free_bytes (%d)", s.cfg.Bundles.Dir, free, int64(q.MinFreeBytes))
		}
	}
	if q.MaxBytes > 0 {
		if used := s.store.usage(); used >= int64(q.MaxBytes) {
			return fmt.Sprintf("bundles take %d bytes, at or over quota.max_bytes (%d): lower bundles.max_bytes/max_count or remove bundles", used, int64(q.MaxBytes))
		}
	}
	return ""
}

// capture runs one triggered capture to its end and records it.
func (s *Server) capture(rec *Record) {
	defer s.captures.Done()
	start := time.Now()
	o := s.cfg.CaptureOptions()
	o.PID, o.Out, o.Labels, o.Version = rec.PID, s.store.bundleDir(rec.ID), rec.Labels, s.o.Version
	s.o.Logf("capture %s: pid %d for %v (%s)", rec.ID, o.PID, o.Duration, rec.Trigger)

	var rep *capture.Report
	release, err := s.gate.acquire(s.ctx, nil)
	if err == nil {
		rep, err = capture.Run(s.ctx, o)
		release()
	}
	rec.Ended = time.Now()
	rec.Outcome, rec.Error = OutcomeOK, ""
	meta := s.meta(rep, o.Out)
	switch {
	case meta != nil && meta.Ended == "interrupted":
		rec.Outcome = OutcomeInterrupted
	case meta != nil && meta.Ended == "target exited":
		rec.Outcome = OutcomeTargetExited
	case err != nil:
		rec.Outcome = OutcomeFailed
	}
	if err != nil {
		rec.Error = err.Error()
	}
	if meta != nil && meta.Latency != nil {
		rec.Requests, rec.OverSLO = meta.Latency.Requests, meta.Latency.OverSLO
	}
	if rep != nil {
		rec.Summary = headline(rep)
		s.m.ObserveReport(rep)
	}
	s.observeFSFile(o.Out)
	if serr := s.store.save(rec); serr != nil {
		s.o.Logf("capture %s: %v", rec.ID, serr)
	}
	s.m.captures.WithLabelValues(rec.Trigger, rec.Outcome).Inc()
	s.m.capDuration.WithLabelValues(rec.Trigger).Observe(time.Since(start).Seconds())
	s.o.Logf("capture %s: %s in %v, %d bytes, %d requests (%d over the SLO) %s %s", rec.ID, rec.Outcome,
		time.Since(start).Round(time.Millisecond), rec.Size, rec.Requests, rec.OverSLO, rec.Summary, rec.Error)

	s.mu.Lock()
	s.cur = nil
	s.lastEnd = time.Now()
	s.m.running.Set(0)
	s.mu.Unlock()
	s.retain()
}

// meta is the capture's meta.json: from the report, or from the bundle
// when the capture failed after writing it.
func (s *Server) meta(rep *capture.Report, dir string) *bundle.Meta {
	if rep != nil {
		return &rep.Meta
	}
	b, err := bundle.Open(dir)
	if err != nil {
		return nil
	}
	return &b.Meta
}

// observeFSFile feeds the bundle's filesystem lens stream, when the
// capture wrote one, to the fs metrics.
func (s *Server) observeFSFile(dir string) {
	f, err := os.Open(filepath.Join(dir, bundle.FSStreamFile))
	if err != nil {
		return
	}
	defer f.Close()
	d, err := bundle.ReadFS(f)
	if err != nil {
		s.o.Logf("reading %s: %v", f.Name(), err)
		return
	}
	s.m.ObserveFS(d)
}

// headline is a capture's answer in a line: its verdict, or (without
// off-CPU data) the first blame chain, lock or off-CPU frame.
func headline(rep *capture.Report) string {
	sum := rep.Summary
	if sum == nil {
		return ""
	}
	switch {
	case sum.Verdict != nil && sum.Verdict.Status != verdict.NoData:
		return sum.Verdict.Answer
	case len(sum.BlameChains) > 0:
		return sum.BlameChains[0].Sentence
	case len(sum.LockHotSpots) > 0:
		l := sum.LockHotSpots[0]
		return fmt.Sprintf("lock waits in the slow windows: %.0f%% at %s on %s", 100*l.Slow, l.Frame, l.Class)
	case len(sum.TopOffCPUFrames) > 0:
		f := sum.TopOffCPUFrames[0]
		return fmt.Sprintf("off-CPU in the slow windows: %.0f%% in %s (baseline %.0f%%)", 100*f.Slow, f.Frame, 100*f.Baseline)
	case sum.Windows.Count > 0:
		return fmt.Sprintf("%d SLO-breach windows, worst %v", sum.Windows.Count, sum.Windows.Worst)
	}
	return "no SLO-breach windows"
}

// retain applies the retention limits and refreshes the bundle gauges.
func (s *Server) retain() {
	removed, err := s.store.retain(s.cfg.Bundles.MaxCount, int64(s.cfg.Bundles.MaxBytes))
	if err != nil {
		s.o.Logf("retention: %v", err)
	}
	if len(removed) > 0 {
		s.m.removed.Add(float64(len(removed)))
		s.o.Logf("retention removed %v", removed)
	}
	rs, _ := s.store.list()
	s.m.bundles.Set(float64(len(rs)))
	s.m.bundleBytes.Set(float64(s.store.usage()))
}

func (s *Server) list(w http.ResponseWriter, _ *http.Request) {
	rs, err := s.store.list()
	if err != nil {
		httpError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if rs == nil {
		rs = []Record{}
	}
	writeJSONResponse(w, http.StatusOK, rs)
}

func (s *Server) record(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !validName.MatchString(id) {
		httpError(w, http.StatusBadRequest, "bad capture id")
		return
	}
	rs, _ := s.store.list()
	for _, rec := range rs {
		if rec.ID == id {
			writeJSONResponse(w, http.StatusOK, rec)
			return
		}
	}
	httpError(w, http.StatusNotFound, "no capture "+id)
}

func (s *Server) file(w http.ResponseWriter, r *http.Request) {
	f, st, err := s.store.open(r.PathValue("id"), r.PathValue("file"))
	switch {
	case errors.Is(err, errBadName):
		httpError(w, http.StatusBadRequest, err.Error())
		return
	case errors.Is(err, fs.ErrNotExist):
		httpError(w, http.StatusNotFound, "no such capture file")
		return
	}
	defer f.Close()
	http.ServeContent(w, r, st.Name(), st.ModTime(), f)
}

// Health is the body of GET /healthz.
type Health struct {
	Status   string `json:"status"`
	Sniffing bool   `json:"sniffing"`
	// SniffError says why the live sniffer is not running (metrics and the
	// SLO watch then see nothing).
	SniffError string `json:"sniff_error,omitempty"`
	Capturing  string `json:"capturing,omitempty"`
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	h := Health{Status: "ok", Sniffing: s.sniffing}
	if s.sniffErr != nil {
		h.Status, h.SniffError = "degraded", s.sniffErr.Error()
	}
	if s.cur != nil {
		h.Capturing = s.cur.ID
	}
	s.mu.Unlock()
	writeJSONResponse(w, http.StatusOK, h)
}

// requestWatch is what every produce request the live source (the
// sniffer or the followed request log) sees goes to: the metrics, the
// request hook and the SLO watch, which tick checks once a second.
type requestWatch struct {
	s      *Server
	win    *window
	topics []string
}

func (s *Server) newRequestWatch() *requestWatch {
	w := &requestWatch{s: s}
	if s.cfg.Watch.Enabled {
		w.win = newWindow(s.cfg.Watch.Window)
	}
	return w
}

func (w *requestWatch) emit(r *latency.Request) {
	s := w.s
	if r.APIKey != latency.APIProduce {
		return
	}
	slo := s.cfg.Capture.SLO
	w.topics = s.m.observeRequest(r, s.metric, slo, w.topics)
	if w.win != nil && r.Measured() {
		w.win.add(r.ResponseEnd, r.Latency(s.metric) > slo)
	}
	if s.o.OnRequest != nil {
		s.o.OnRequest(r)
	}
}

func (w *requestWatch) tick(now time.Time) {
	s := w.s
	if w.win == nil {
		return
	}
	total, over := w.win.counts(now.UnixNano())
	share := 0.0
	if total > 0 {
		share = float64(over) / float64(total)
	}
	s.m.watchShare.Set(share)
	s.m.watchReqs.Set(float64(total))
	if !s.cfg.Watch.breached(total, over) || !s.idle() {
		return
	}
	slo := s.cfg.Capture.SLO
	code, resp := s.Trigger(TriggerWatch, map[string]string{LabelTrigger: TriggerWatch,
		"slo_watch_share": strconv.FormatFloat(share, 'f', 4, 64), "slo_watch_requests": strconv.Itoa(total),
		"slo_watch_window": s.cfg.Watch.Window.String(), "slo": slo.String()})
	s.o.Logf("SLO watch: %d of %d produce requests over %v in %v: %s %s %s (%d)", over, total, slo,
		s.cfg.Watch.Window, resp.Status, resp.ID, resp.Reason, code)
}

// watching records whether the live source runs, and why not.
func (s *Server) watching(on bool, err error) {
	s.mu.Lock()
	s.sniffErr, s.sniffing = err, on
	s.mu.Unlock()
	if err != nil {
		s.o.Logf("live requests: %v", err)
	}
}

// sniff runs the live sniffer on the broker ports until ctx ends.
func (s *Server) sniff(ctx context.Context, ports []uint16) {
	w := s.newRequestWatch()
	sn, err := sniff.New(sniff.Options{Ports: ports}, w.emit)
	if err != nil {
		s.watching(false, err)
		return
	}
	live, err := sniff.OpenLive(sniff.LiveOptions{Interface: s.cfg.Capture.Interface, Ports: ports})
	if err != nil {
		s.watching(false, fmt.Errorf("sniffing the Kafka port (metrics and the SLO watch need root or CAP_NET_RAW): %w", err))
		return
	}
	defer live.Close()
	s.m.sniffer(sn)
	s.watching(true, nil)
	if err := live.Run(ctx, sn, time.Second, w.tick); err != nil {
		s.watching(false, err)
		return
	}
	sn.Flush(time.Now().UnixNano())
	s.watching(false, nil)
}

// followRequestLog follows the broker's request log until ctx ends: its
// requests carry their phases, which the metrics count per phase.
func (s *Server) followRequestLog(ctx context.Context, path string) {
	w := s.newRequestWatch()
	var mu sync.Mutex // emit runs on the follower's goroutine, tick on this one
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	s.watching(true, nil)
	go func() {
		_, err := latency.FollowRequestLog(ctx, path, time.Local, func(r *latency.Request) {
			mu.Lock()
			w.emit(r)
			mu.Unlock()
		})
		done <- err
	}()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case err := <-done:
			s.watching(false, err)
			return
		case now := <-t.C:
			mu.Lock()
			w.tick(now)
			mu.Unlock()
		}
	}
}

// idle reports whether a watch trigger could start a capture now: none
// running and the cooldown over. The watch checks it first so that a
// breach lasting minutes does not count a refusal every second.
func (s *Server) idle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur == nil && !s.closing && (s.lastEnd.IsZero() || time.Since(s.lastEnd) >= s.cfg.Cooldown)
}

// continuous runs continuous profiling until ctx ends, finding the broker
// afresh whenever it is not running (brokers restart). Its periods take
// the capture gate preemptibly: a triggered capture cancels the period in
// flight (which is still merged and pushed) and continuous profiling
// resumes after it.
func (s *Server) continuous(ctx context.Context) {
	cc := s.cfg.Continuous
	pause := func() {
		select {
		case <-ctx.Done():
		case <-time.After(cc.Period):
		}
	}
	for ctx.Err() == nil {
		pid, err := findTarget(s.cfg.Target)
		if err != nil {
			s.o.Logf("continuous: %v (next try in %v)", err, cc.Period)
			pause()
			continue
		}
		o, err := s.cfg.continuousOptions(pid)
		if err != nil {
			s.o.Logf("continuous: %v", err)
			pause()
			continue
		}
		o.Capture.Version = s.o.Version
		o.AcquirePreemptible = s.gate.acquire
		o.Logf = func(f string, a ...any) { s.o.Logf("continuous: "+f, a...) }
		o.OnReport = func(rep *capture.Report) {
			outcome := OutcomeOK
			switch rep.Meta.Ended {
			case "interrupted":
				outcome = OutcomeInterrupted
			case "target exited":
				outcome = OutcomeTargetExited
			}
			if rep.Summary == nil {
				outcome = OutcomeFailed
			}
			s.m.captures.WithLabelValues(TriggerContinuous, outcome).Inc()
			s.m.ObserveReport(rep)
			s.observeFSFile(rep.Dir)
		}
		o.OnStats = s.m.pyroscope
		err = continuous.Run(ctx, o)
		if ctx.Err() != nil {
			return
		}
		s.o.Logf("continuous: %v (next try in %v)", err, cc.Period)
		pause()
	}
}
