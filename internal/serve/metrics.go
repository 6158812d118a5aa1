package serve

import (
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/lockscope/lockscope/internal/bundle"
	"github.com/lockscope/lockscope/internal/capture"
	"github.com/lockscope/lockscope/internal/latency"
	"github.com/lockscope/lockscope/internal/latency/sniff"
	"github.com/lockscope/lockscope/internal/pyroscope"
)

// maxTopics bounds the topic label's values: past it, requests count under
// topic="_other" so that a cluster with thousands of topics cannot blow up
// Prometheus' series.
const maxTopics = 500

// latencyBuckets are the produce latency histogram's classic buckets, in
// seconds: dense around usual produce SLOs (tens to hundreds of ms) and up
// to the seconds of the tails lockscope is for. The configured SLO is
// added as a bucket of its own, so that "requests over the SLO" is exact
// in PromQL too (_count − _bucket{le="SLO"}).
var latencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .075, .1, .15, .25, .5, 1, 2.5, 5, 10}

// metrics are serve's Prometheus metrics, in their own registry (no global
// state: tests run several servers in one process).
type metrics struct {
	reg *prometheus.Registry

	latency   *prometheus.HistogramVec
	phases    *prometheus.HistogramVec
	overSLO   *prometheus.CounterVec
	unmeasred *prometheus.CounterVec

	triggers    *prometheus.CounterVec
	captures    *prometheus.CounterVec
	capDuration *prometheus.HistogramVec
	running     prometheus.Gauge
	offEvents   prometheus.Counter
	offDrops    prometheus.Counter
	bundles     prometheus.Gauge
	bundleBytes prometheus.Gauge
	removed     prometheus.Counter
	watchShare  prometheus.Gauge
	watchReqs   prometheus.Gauge
	journal     *prometheus.HistogramVec
	fs          *fsHistograms
	pyro        *prometheus.GaugeVec

	topicsMu sync.Mutex
	topics   map[string]bool
}

func newMetrics(slo time.Duration) *metrics {
	buckets := slices.Clone(latencyBuckets)
	if s := slo.Seconds(); !slices.Contains(buckets, s) {
		buckets = append(buckets, s)
		sort.Float64s(buckets)
	}
	m := &metrics{reg: prometheus.NewRegistry(), topics: map[string]bool{}, fs: newFSHistograms()}
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "lockscope_produce_latency_seconds",
		Help:    "Latency of produce requests seen by lockscope's Kafka sniffer (the configured capture.kind: service or wire), per topic.",
		Buckets: buckets,
		// Also a native histogram (about 10% wide buckets) for a Prometheus
		// that asks for it (--enable-feature=native-histograms); the text
		// format carries the classic buckets only.
		NativeHistogramBucketFactor:     1.1,
		NativeHistogramMaxBucketNumber:  160,
		NativeHistogramMinResetDuration: time.Hour,
	}, []string{"topic"})
	m.overSLO = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "lockscope_produce_requests_over_slo_total",
		Help: "Produce requests slower than the configured SLO, per topic.",
	}, []string{"topic"})
	m.unmeasred = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "lockscope_produce_requests_unmeasured_total",
		Help: "Produce requests without a latency: acks=0 (no_response), unanswered, lost_response.",
	}, []string{"status"})
	m.triggers = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "lockscope_triggers_total",
		Help: "Capture triggers by source (alertmanager, slo_watch) and result (started, joined, cooldown, quota, no_target, no_match, resolved, error).",
	}, []string{"trigger", "result"})
	m.captures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "lockscope_captures_total",
		Help: "Finished captures by trigger and outcome (ok, interrupted, target_exited, failed).",
	}, []string{"trigger", "outcome"})
	m.capDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "lockscope_capture_duration_seconds",
		Help:    "Wall time of a capture from trigger to written bundle (merge included).",
		Buckets: []float64{1, 5, 10, 30, 60, 120, 300, 600},
	}, []string{"trigger"})
	m.running = prometheus.NewGauge(prometheus.GaugeOpts{Name: "lockscope_capture_running", Help: "1 while a capture runs."})
	m.offEvents = prometheus.NewCounter(prometheus.CounterOpts{Name: "lockscope_offcpu_events_total",
		Help: "Off-CPU intervals the eBPF collector recorded during captures."})
	m.offDrops = prometheus.NewCounter(prometheus.CounterOpts{Name: "lockscope_offcpu_drops_total",
		Help: "Off-CPU intervals lost during captures (ring buffer full)."})
	m.bundles = prometheus.NewGauge(prometheus.GaugeOpts{Name: "lockscope_bundles", Help: "Captures kept in bundles.dir."})
	m.bundleBytes = prometheus.NewGauge(prometheus.GaugeOpts{Name: "lockscope_bundles_bytes", Help: "Bytes the kept bundles take."})
	m.removed = prometheus.NewCounter(prometheus.CounterOpts{Name: "lockscope_bundles_removed_total", Help: "Bundles removed by retention."})
	m.watchShare = prometheus.NewGauge(prometheus.GaugeOpts{Name: "lockscope_slo_watch_share",
		Help: "Share of produce requests over the SLO in the SLO watch's sliding window."})
	m.watchReqs = prometheus.NewGauge(prometheus.GaugeOpts{Name: "lockscope_slo_watch_requests",
		Help: "Produce requests in the SLO watch's sliding window."})
	m.journal = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "lockscope_journal_commit_duration_seconds",
		Help:    "Filesystem journal activity seen by the filesystem lens during captures (jbd2 commits, XFS log forces), per device.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
	}, []string{"kind", "dev"})
	m.pyro = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "lockscope_pyroscope_profiles",
		Help: "Continuous mode's Pyroscope pusher: profiles pushed, retried, failed, rejected, dropped (totals) and queued (now)."},
		[]string{"state"})
	m.reg.MustRegister(m.pyro)
	m.phases = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "lockscope_produce_phase_seconds",
		Help: "Time produce requests spent in each phase in the broker, by its request log (capture.latency requestlog:FILE): " +
			"request_queue, local (the append), remote (parked for the followers: acks=all), throttle, response_queue, send; " +
			"over_slo tells the requests over the SLO from the others.",
		Buckets: latencyBuckets,
	}, []string{"phase", "over_slo"})
	m.reg.MustRegister(m.phases, m.latency, m.overSLO, m.unmeasred, m.triggers, m.captures, m.capDuration, m.running,
		m.offEvents, m.offDrops, m.bundles, m.bundleBytes, m.removed, m.watchShare, m.watchReqs, m.journal, m.fs,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// topicLabel bounds the topic label's cardinality.
func (m *metrics) topicLabel(t string) string {
	if t == "" {
		return "_unknown"
	}
	m.topicsMu.Lock()
	defer m.topicsMu.Unlock()
	if m.topics[t] {
		return t
	}
	if len(m.topics) >= maxTopics {
		return "_other"
	}
	m.topics[t] = true
	return t
}

// requestTopics returns the distinct topics of a produce request, in
// order: a request writing to several topics counts once in each.
func requestTopics(r *latency.Request, buf []string) []string {
	buf = buf[:0]
	for _, p := range r.Partitions {
		if !slices.Contains(buf, p.Topic) {
			buf = append(buf, p.Topic)
		}
	}
	if len(buf) == 0 {
		buf = append(buf, "")
	}
	return buf
}

// phaseLabels are latency.PhaseNames as label values.
var phaseLabels = func() []string {
	var out []string
	for _, n := range latency.PhaseNames {
		out = append(out, strings.ReplaceAll(n, " ", "_"))
	}
	return out
}()

// observeRequest counts one produce request the live source saw.
func (m *metrics) observeRequest(r *latency.Request, metric latency.Metric, slo time.Duration, buf []string) []string {
	if !r.Measured() {
		m.unmeasred.WithLabelValues(r.Status.String()).Inc()
		return buf
	}
	d := r.Latency(metric)
	if b := r.Breakdown; b != nil {
		over := strconv.FormatBool(d > slo)
		for i, v := range b.Phases() {
			m.phases.WithLabelValues(phaseLabels[i], over).Observe(v.Seconds())
		}
	}
	buf = requestTopics(r, buf)
	for _, t := range buf {
		t = m.topicLabel(t)
		m.latency.WithLabelValues(t).Observe(d.Seconds())
		if d > slo {
			m.overSLO.WithLabelValues(t).Inc()
		}
	}
	return buf
}

// pyroscope records the pusher's counters (continuous.Options.OnStats).
func (m *metrics) pyroscope(s pyroscope.Stats) {
	for state, v := range map[string]int64{"pushed": s.Pushed, "retried": s.Retries, "failed": s.Failed,
		"rejected": s.Rejected, "dropped": s.Dropped, "queued": int64(s.Queued)} {
		m.pyro.WithLabelValues(state).Set(float64(v))
	}
}

// sniffer exposes the live sniffer's counters. s must stay valid while
// the registry is scraped.
func (m *metrics) sniffer(s *sniff.Sniffer) {
	for _, c := range []struct {
		name, help string
		v          func() uint64
	}{
		{"lockscope_sniffer_packets_total", "Packets the Kafka sniffer read.", s.Stats.Packets.Load},
		{"lockscope_sniffer_kernel_drops_total", "Packets the kernel dropped before the sniffer read them.", s.Stats.KernelDrops.Load},
		{"lockscope_sniffer_holes_total", "Gaps in reassembled TCP streams.", s.Stats.Holes.Load},
		{"lockscope_sniffer_malformed_total", "Packets or frames the sniffer could not decode.", s.Stats.Malformed.Load},
	} {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: c.name, Help: c.help},
			func() float64 { return float64(c.v()) }))
	}
}

// ObserveReport counts what a finished capture recorded: off-CPU events and
// drops from the bundle's meta, and the filesystem lens's data where the
// bundle has it. It is called once per capture.
func (m *metrics) ObserveReport(rep *capture.Report) {
	if rep == nil {
		return
	}
	if o := rep.Meta.OffCPU; o != nil {
		m.offEvents.Add(float64(o.Counters["events"]))
		m.offDrops.Add(float64(o.Counters["drops"]))
	}
}

// ObserveFS adds a capture's filesystem lens data (the bundle's fs.jsonl,
// bundle.ReadFS) to the fs op latency and journal commit metrics. When
// capture.Report carries the lens's summary itself, call this from
// ObserveReport instead of reading the file.
func (m *metrics) ObserveFS(d *bundle.FSData) {
	if d == nil {
		return
	}
	for i := range d.Histograms {
		m.fs.add(&d.Histograms[i])
	}
	for _, j := range d.Journal {
		switch j.Kind {
		case bundle.JournalJBD2Commit, bundle.JournalXFSLogForce:
			m.journal.WithLabelValues(j.Kind, j.Dev).Observe(j.Duration().Seconds())
		}
	}
}

// fsHistograms accumulates the lens's log2 histograms across captures and
// exposes them as Prometheus histograms with the same (power of two
// nanoseconds) bucket bounds, so no count is moved between buckets.
type fsHistograms struct {
	desc *prometheus.Desc
	mu   sync.Mutex
	h    map[[2]string]*fsHist
}

type fsHist struct {
	count   uint64
	sum     float64
	buckets []uint64 // buckets[i]: [2^i, 2^(i+1)) ns
}

func newFSHistograms() *fsHistograms {
	return &fsHistograms{h: map[[2]string]*fsHist{}, desc: prometheus.NewDesc("lockscope_fs_op_duration_seconds",
		"Filesystem operations of the broker per topic-partition and op, from the filesystem lens during captures (le bounds are powers of two nanoseconds).",
		[]string{"topic_partition", "op"}, nil)}
}

func (f *fsHistograms) add(h *bundle.FSHistogram) {
	tp := h.File.TopicPartition()
	if tp == "" {
		tp = "_other"
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	k := [2]string{tp, h.Op}
	a := f.h[k]
	if a == nil {
		a = &fsHist{}
		f.h[k] = a
	}
	a.count += h.Count
	a.sum += float64(h.SumNs) / 1e9
	for len(a.buckets) < len(h.Buckets) {
		a.buckets = append(a.buckets, 0)
	}
	for i, n := range h.Buckets {
		a.buckets[i] += n
	}
}

func (f *fsHistograms) Describe(ch chan<- *prometheus.Desc) { ch <- f.desc }

func (f *fsHistograms) Collect(ch chan<- prometheus.Metric) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for k, a := range f.h {
		cum := map[float64]uint64{}
		var n uint64
		for i, c := range a.buckets {
			n += c
			cum[math.Ldexp(1, i+1)/1e9] = n
		}
		ch <- prometheus.MustNewConstHistogram(f.desc, a.count, a.sum, cum, k[0], k[1])
	}
}
