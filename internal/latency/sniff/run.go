package sniff

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/lockscope/lockscope/internal/latency"
)

// RunOptions are the flags of `lockscope sniff`.
type RunOptions struct {
	Ports     []int
	Interface string
	// Read is a pcap/pcapng file, a Kafka request log or a generic latency
	// CSV/JSONL (told apart by content); empty captures live.
	Read     string
	SLO      time.Duration
	Metric   string // wire or service
	Duration time.Duration
	Output   string // requests JSONL, "-" for stdout
	Windows  string // slow windows JSONL
	Pad      time.Duration
	Write    string // live: also write the packets to this pcap
	AllAPIs  bool   // report every api, not only Produce
	// Timeline prints, for --read, a line per interval of the input's own
	// time, as a live capture does per second.
	Timeline bool
	Interval time.Duration
	// MaxSlowLines bounds the slow requests printed per interval.
	MaxSlowLines int
	// Location is the time zone of a request log (default local).
	Location *time.Location
}

// Validate checks the options without touching the network or files, and
// fills in the defaults of the optional ones (interval, slow lines, zone).
func (o *RunOptions) Validate() error {
	if len(o.Ports) == 0 {
		return errors.New("--port: give the broker's port (e.g. 9092)")
	}
	for _, p := range o.Ports {
		if p <= 0 || p > 65535 {
			return fmt.Errorf("--port %d: not a TCP port", p)
		}
	}
	if o.SLO <= 0 {
		return fmt.Errorf("--slo %v: must be positive (e.g. 65ms)", o.SLO)
	}
	if _, err := latency.ParseMetric(o.Metric); err != nil {
		return fmt.Errorf("--metric: %w", err)
	}
	if o.Duration < 0 || o.Pad < 0 {
		return errors.New("--duration and --pad must not be negative")
	}
	if o.Read != "" && o.Write != "" {
		return errors.New("--write records a live capture; it cannot be used with --read")
	}
	if o.Read != "" && o.Interface != "" && o.Interface != "any" {
		return errors.New("--iface is for live capture; it cannot be used with --read")
	}
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	if o.MaxSlowLines <= 0 {
		o.MaxSlowLines = 20
	}
	if o.Location == nil {
		o.Location = time.Local
	}
	return nil
}

func (o *RunOptions) ports() []uint16 {
	ps := make([]uint16, len(o.Ports))
	for i, p := range o.Ports {
		ps[i] = uint16(p)
	}
	return ps
}

// hist is a log-linear latency histogram: 32 sub-buckets per power of two,
// so any quantile is within 3% and memory is fixed however long it runs.
type hist struct {
	counts [64 * 32]uint64
	n      uint64
	max    time.Duration
}

func (h *hist) add(d time.Duration) {
	v := uint64(max(d, 0))
	h.counts[bucket(v)]++
	h.n++
	h.max = max(h.max, d)
}

func bucket(v uint64) int {
	if v < 32 {
		return int(v)
	}
	// Keep 5 significant bits: v>>e is in [16, 32).
	e := bits.Len64(v) - 5
	return e*32 + int(v>>e)
}

// upper returns the largest value a bucket holds.
func upper(b int) uint64 {
	if b < 32 {
		return uint64(b)
	}
	e, m := b/32, uint64(b%32)
	return (m+1)<<e - 1
}

// quantile returns the q-quantile as its bucket's upper edge, so it never
// understates, capped by the maximum seen.
func (h *hist) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n-1)) + 1
	var c uint64
	for b, n := range h.counts {
		c += n
		if c >= rank {
			return min(time.Duration(upper(b)), h.max)
		}
	}
	return h.max
}

func (h *hist) reset() { *h = hist{} }

// Summary is what a run counted.
type Summary struct {
	Requests, Answered, NoResponse, Unanswered, Lost int
	OverSLO, OverSLOService                          int
	Windows                                          *latency.WindowSet
}

type runState struct {
	o       *RunOptions
	metric  latency.Metric
	out     io.Writer
	jsonl   *latency.JSONLWriter
	builder *latency.Builder
	total   hist
	totalS  hist
	tick    hist
	tickN   int
	tickOv  int
	slowN   int
	sum     Summary
	err     error
	// offline timeline: the start of the current interval (input time)
	tickAt int64
	// slow requests by topic-partition and by client, for the summary
	slowBy map[string]map[string]int
}

// maxSlowKeys bounds each slow-request table of the summary.
const maxSlowKeys = 10000

func (r *runState) countSlow(table, key string) {
	if r.slowBy == nil {
		r.slowBy = map[string]map[string]int{}
	}
	m := r.slowBy[table]
	if m == nil {
		m = map[string]int{}
		r.slowBy[table] = m
	}
	if _, ok := m[key]; !ok && len(m) >= maxSlowKeys {
		key = "(others)"
	}
	m[key]++
}

// top returns a table's n largest entries, formatted.
func top(m map[string]int, n int) string {
	type kv struct {
		k string
		v int
	}
	var all []kv
	for k, v := range m {
		all = append(all, kv{k, v})
	}
	slices.SortFunc(all, func(a, b kv) int {
		if a.v != b.v {
			return b.v - a.v
		}
		return strings.Compare(a.k, b.k)
	})
	var parts []string
	for i, e := range all {
		if i == n {
			parts = append(parts, fmt.Sprintf("(%d more)", len(all)-n))
			break
		}
		parts = append(parts, fmt.Sprintf("%s %d", e.k, e.v))
	}
	return strings.Join(parts, ", ")
}

// line prints one interval's line.
func (r *runState) line(at time.Time, rate float64, extra string) {
	fmt.Fprintf(r.out, "%s  %6.0f req/s  p50 %s  p99 %s  max %s  over SLO %d%s\n",
		at.Format("15:04:05"), rate, ms(r.tick.quantile(0.5)), ms(r.tick.quantile(0.99)), ms(r.tick.max), r.tickOv, extra)
	if r.slowN > r.o.MaxSlowLines {
		fmt.Fprintf(r.out, "  ... and %d more slow requests\n", r.slowN-r.o.MaxSlowLines)
	}
	r.tick.reset()
	r.tickN, r.tickOv, r.slowN = 0, 0, 0
}

// offlineTick closes the timeline's interval when a request ends past it.
// Requests end roughly in order (per connection strictly), so a request
// from a closed interval counts in the current one.
func (r *runState) offlineTick(end int64) {
	iv := int64(r.o.Interval)
	if r.tickAt == 0 {
		r.tickAt = end - end%iv
	}
	if end < r.tickAt+iv {
		return
	}
	if r.tickN > 0 || r.tickOv > 0 {
		r.line(latency.TimeOf(r.tickAt), float64(r.tickN)/r.o.Interval.Seconds(), "")
	}
	r.tickAt = end - end%iv
}

func (r *runState) request(q *latency.Request) {
	if !r.o.AllAPIs && q.APIKey != latency.APIProduce {
		return
	}
	r.sum.Requests++
	switch q.Status {
	case latency.Answered:
		r.sum.Answered++
	case latency.NoResponse:
		r.sum.NoResponse++
	case latency.Unanswered:
		r.sum.Unanswered++
	case latency.LostResponse:
		r.sum.Lost++
	}
	if r.jsonl != nil && r.err == nil {
		r.err = r.jsonl.Write(q)
	}
	if !q.Measured() {
		return
	}
	if r.o.Read != "" && r.o.Timeline {
		r.offlineTick(q.ResponseEnd)
	}
	r.total.add(q.Wire)
	r.totalS.add(q.Service)
	r.tick.add(q.Latency(r.metric))
	r.tickN++
	if q.Service > r.o.SLO {
		r.sum.OverSLOService++
	}
	if r.builder.Add(q) {
		if q.Wire > r.o.SLO {
			r.sum.OverSLO++
		}
		r.tickOv++
		r.slowN++
		for _, p := range q.Partitions {
			r.countSlow("partition", p.String())
		}
		client := q.ClientID
		if client == "" && q.Client.IsValid() {
			client = q.Client.Addr().String()
		}
		if client != "" {
			r.countSlow("client", client)
		}
		if r.slowN <= r.o.MaxSlowLines {
			fmt.Fprintf(r.out, "  slow %s\n", describe(q))
		}
	} else if q.Wire > r.o.SLO {
		r.sum.OverSLO++
	}
}

// describe formats a request for a slow-request line.
func describe(q *latency.Request) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s wire %s service %s", latency.TimeOf(q.ResponseEnd).Format("15:04:05.000000"), ms(q.Wire), ms(q.Service))
	if q.APIKey != latency.APIProduce {
		fmt.Fprintf(&b, " api %d", q.APIKey)
	}
	for i, p := range q.Partitions {
		if i == 3 {
			fmt.Fprintf(&b, " +%d more", len(q.Partitions)-3)
			break
		}
		fmt.Fprintf(&b, " %s", p)
		if p.Records >= 0 {
			fmt.Fprintf(&b, "(%d rec, %d B)", p.Records, p.Bytes)
		}
	}
	if q.Key != "" {
		fmt.Fprintf(&b, " key %s", q.Key)
	}
	if q.ClientID != "" {
		fmt.Fprintf(&b, " client %s", q.ClientID)
	}
	if q.Client.IsValid() {
		fmt.Fprintf(&b, " from %s corr %d", q.Client, q.CorrelationID)
	}
	if q.Damaged {
		b.WriteString(" (damaged)")
	}
	return b.String()
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3fms", float64(d)/1e6) }

// Run runs `lockscope sniff`: it reads a file or captures live, prints a
// line per interval (live) and the slow requests, writes the requests and
// windows if asked, and prints a summary.
func Run(ctx context.Context, o RunOptions, stdout, stderr io.Writer) (*Summary, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	metric, _ := latency.ParseMetric(o.Metric)
	r := &runState{o: &o, metric: metric, out: stdout, builder: latency.NewBuilder(o.SLO, metric, o.Pad)}
	if o.Output != "" {
		w, closeOut, err := create(o.Output, stdout)
		if err != nil {
			return nil, err
		}
		defer closeOut()
		r.jsonl = latency.NewJSONLWriter(w)
		if o.Output == "-" {
			r.out = stderr
		}
	}
	var s *Sniffer
	var err error
	if o.Read != "" {
		s, err = r.readFile()
	} else {
		s, err = r.live(ctx)
	}
	if r.jsonl != nil {
		if ferr := r.jsonl.Flush(); ferr != nil && err == nil {
			err = fmt.Errorf("write requests: %w", ferr)
		}
	}
	if err == nil {
		err = r.err
	}
	r.sum.Windows = r.builder.Build()
	if err == nil && o.Windows != "" {
		err = writeWindows(o.Windows, r.sum.Windows)
	}
	if o.Read != "" {
		if o.Timeline && r.tickN > 0 {
			r.line(latency.TimeOf(r.tickAt), float64(r.tickN)/o.Interval.Seconds(), "")
		} else if r.slowN > o.MaxSlowLines {
			fmt.Fprintf(r.out, "  ... and %d more slow requests\n", r.slowN-o.MaxSlowLines)
		}
	}
	if err == nil || r.sum.Requests > 0 || (s != nil && s.Stats.Packets.Load() > 0) {
		r.summary(s)
	}
	return &r.sum, err
}

func create(path string, stdout io.Writer) (io.Writer, func() error, error) {
	if path == "-" {
		return stdout, func() error { return nil }, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, nil, fmt.Errorf("create output: %w", err)
	}
	return f, f.Close, nil
}

func writeWindows(path string, ws *latency.WindowSet) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create windows file: %w", err)
	}
	if err := ws.WriteJSONL(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// readFile reads a capture, a request log or a generic latency file.
func (r *runState) readFile() (*Sniffer, error) {
	f, err := os.Open(r.o.Read)
	if err != nil {
		return nil, fmt.Errorf("open input: %w", err)
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<20)
	head, _ := br.Peek(64 << 10)
	switch {
	case len(head) >= 4 && (isPcapMagic(head[:4]) || bytes.Equal(head[:4], []byte{0x0a, 0x0d, 0x0d, 0x0a})):
		s, err := New(Options{Ports: r.o.ports()}, r.request)
		if err != nil {
			return nil, err
		}
		if _, err := Read(br, s); err != nil {
			return s, fmt.Errorf("read capture %s: %w", r.o.Read, err)
		}
		return s, nil
	case bytes.Contains(head, []byte("Completed request:")):
		st, err := latency.ReadRequestLog(br, r.o.Location, func(q *latency.Request) error { r.request(q); return nil })
		fmt.Fprintf(r.out, "request log: %d lines, %d requests", st.Lines, st.Requests)
		if st.Malformed > 0 {
			fmt.Fprintf(r.out, ", %d malformed (first at line %d: %v)", st.Malformed, st.FirstMalformed, st.FirstMalformedErr)
		}
		fmt.Fprintln(r.out)
		return nil, err
	default:
		if err := latency.ReadGeneric(br, func(q *latency.Request) error { r.request(q); return nil }); err != nil {
			return nil, fmt.Errorf("%s is not a pcap/pcapng capture, a Kafka request log or a latency CSV/JSONL: %w", r.o.Read, err)
		}
		return nil, nil
	}
}

func (r *runState) live(ctx context.Context) (*Sniffer, error) {
	s, err := New(Options{Ports: r.o.ports()}, r.request)
	if err != nil {
		return nil, err
	}
	lo := LiveOptions{Interface: r.o.Interface, Ports: r.o.ports()}
	if r.o.Write != "" {
		f, err := os.Create(r.o.Write)
		if err != nil {
			return nil, fmt.Errorf("create capture file: %w", err)
		}
		defer f.Close()
		bw := bufio.NewWriterSize(f, 1<<20)
		defer bw.Flush()
		lo.Write = bw
	}
	c, err := OpenLive(lo)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if r.o.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.o.Duration)
		defer cancel()
	}
	iface := r.o.Interface
	if iface == "" {
		iface = "any"
	}
	fmt.Fprintf(r.out, "sniffing Kafka on %s port %v, SLO %v (%s latency); Ctrl-C ends\n", iface, r.o.Ports, r.o.SLO, r.metric)
	var lastDrops, lastTLS uint64
	err = c.Run(ctx, s, r.o.Interval, func(now time.Time) {
		if n := s.Kafka().TLSConns.Load(); n > lastTLS {
			fmt.Fprintf(r.out, "%s  %d new TLS connections: not readable from packets (see the summary)\n", now.Format("15:04:05"), n-lastTLS)
			lastTLS = n
		}
		drops := s.Stats.KernelDrops.Load()
		r.line(now, float64(r.tickN)/r.o.Interval.Seconds(), fmt.Sprintf("  drops %d  holes %d", drops-lastDrops, s.Stats.Holes.Load()))
		lastDrops = drops
	})
	s.Flush(time.Now().UnixNano())
	return s, err
}

func (r *runState) summary(s *Sniffer) {
	w := r.out
	sum := &r.sum
	what := "produce requests"
	if r.o.AllAPIs {
		what = "requests"
	}
	fmt.Fprintf(w, "\n%d %s: %d answered, %d acks=0 (unmeasurable), %d unanswered, %d responses lost\n",
		sum.Requests, what, sum.Answered, sum.NoResponse, sum.Unanswered, sum.Lost)
	if sum.Answered > 0 {
		fmt.Fprintf(w, "wire latency    p50 %s  p99 %s  p99.9 %s  max %s; over %v: %d\n",
			ms(r.total.quantile(0.5)), ms(r.total.quantile(0.99)), ms(r.total.quantile(0.999)), ms(r.total.max), r.o.SLO, sum.OverSLO)
		fmt.Fprintf(w, "service time    p50 %s  p99 %s  p99.9 %s  max %s; over %v: %d\n",
			ms(r.totalS.quantile(0.5)), ms(r.totalS.quantile(0.99)), ms(r.totalS.quantile(0.999)), ms(r.totalS.max), r.o.SLO, sum.OverSLOService)
	}
	if ws := sum.Windows; len(ws.Windows) > 0 {
		fmt.Fprintf(w, "slow windows (%s latency over %v): %d, %v in total\n", ws.Metric, ws.SLO, len(ws.Windows), ws.Total().Round(time.Microsecond))
	}
	if m := r.slowBy["partition"]; len(m) > 0 {
		fmt.Fprintf(w, "slow requests by partition: %s\n", top(m, 10))
	}
	if m := r.slowBy["client"]; len(m) > 0 {
		fmt.Fprintf(w, "slow requests by client: %s\n", top(m, 10))
	}
	if s == nil {
		return
	}
	k := s.Kafka()
	if n := s.Stats.EvictedConnections.Load(); n > 0 {
		fmt.Fprintf(w, "%d connections closed early to stay under the connection limit\n", n)
	}
	fmt.Fprintf(w, "packets %d, connections %d, kernel drops %d, lost segments %d, resyncs %d, unmatched responses %d, malformed frames %d\n",
		s.Stats.Packets.Load(), s.Stats.Connections.Load(), s.Stats.KernelDrops.Load(), s.Stats.Holes.Load(),
		k.Resyncs.Load(), k.UnmatchedResponses.Load(), k.Malformed.Load())
	if n := k.TLSConns.Load(); n > 0 {
		fmt.Fprintf(w, "%d connections use TLS (an SSL or SASL_SSL listener): their requests cannot be read from packets; "+
			"use Kafka's request log (kafka.request.logger at DEBUG, then --read the log) or a client-side latency CSV\n", n)
	}
}
