package sniff

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lockscope/lockscope/internal/latency"
	"github.com/lockscope/lockscope/internal/latency/sniff/synth"
)

// TestSyntheticCapture reads a generated capture whose every latency is
// known (MSS-sized segments, ACKs, several connections) and checks each
// request exactly, then checks the same file against tshark.
func TestSyntheticCapture(t *testing.T) {
	var buf bytes.Buffer
	type key struct {
		c    netip.AddrPort
		corr int32
	}
	want := map[key]synth.Expect{}
	cfg := synth.Config{Connections: 5, Requests: 600, SlowEvery: 50, MaxRecords: 40, RecordSize: 300}
	if _, err := synth.Write(&buf, cfg, func(e synth.Expect) { want[key{e.Client, e.Corr}] = e }); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "synth.pcap")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	reqs, s := sniffFile(t, path, 9092)
	if len(reqs) != len(want) {
		t.Fatalf("%d requests, want %d (%s)", len(reqs), len(want), statsString(s))
	}
	slow := 0
	for _, r := range reqs {
		e, ok := want[key{r.Client, r.CorrelationID}]
		switch {
		case !ok:
			t.Fatalf("unexpected request %s %d", r.Client, r.CorrelationID)
		case r.Status != latency.Answered || r.Wire != e.Wire || r.Service != e.Wire:
			t.Errorf("%s %d: %v wire %v service %v, want answered %v", r.Client, r.CorrelationID, r.Status, r.Wire, r.Service, e.Wire)
		case len(r.Partitions) != 1 || r.Partitions[0].Records != e.Records || r.Partitions[0].Topic != "orders":
			t.Errorf("%s %d: partitions %+v, want %d records of orders", r.Client, r.CorrelationID, r.Partitions, e.Records)
		}
		if r.Wire > slo {
			slow++
		}
	}
	if slow != 600/50 {
		t.Errorf("%d slow requests, want %d", slow, 600/50)
	}
	if n := s.Kafka().Resyncs.Load() + s.Stats.Holes.Load(); n != 0 {
		t.Errorf("%d resyncs or holes in a clean capture", n)
	}
	compareWithTshark(t, path, 9092, reqs, 1.0)
}

// TestSniffCommandOnCapture runs Run as `lockscope sniff --read` does and
// checks its outputs: the requests file, the windows file and the summary.
func TestSniffCommandOnCapture(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "in.pcap")
	f, _ := os.Create(path)
	if _, err := synth.Write(f, synth.Config{Connections: 3, Requests: 300, SlowEvery: 30}, nil); err != nil {
		t.Fatal(err)
	}
	f.Close()
	var out bytes.Buffer
	o := RunOptions{Ports: []int{9092}, Read: path, SLO: slo, Metric: "wire", Output: filepath.Join(dir, "r.jsonl"), Windows: filepath.Join(dir, "w.jsonl")}
	sum, err := Run(t.Context(), o, &out, &out)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Requests != 300 || sum.Answered != 300 || sum.OverSLO != 10 || len(sum.Windows.Windows) != 10 {
		t.Errorf("summary %+v with %d windows; want 300 answered, 10 over the SLO in 10 windows", sum, len(sum.Windows.Windows))
	}
	rf, _ := os.Open(o.Output)
	defer rf.Close()
	var n int
	if err := latency.ReadRequestsJSONL(rf, func(*latency.Request) error { n++; return nil }); err != nil || n != 300 {
		t.Errorf("requests file: %d requests, %v", n, err)
	}
	wf, _ := os.Open(o.Windows)
	defer wf.Close()
	ws, err := latency.ReadWindowSet(wf)
	if err != nil || len(ws.Windows) != 10 || ws.SLO != slo {
		t.Errorf("windows file: %+v, %v", ws, err)
	}
	for _, want := range []string{"300 produce requests: 300 answered", "over 65ms: 10", "slow windows (wire latency over 65ms): 10", "client synth-producer",
		"slow requests by partition: orders-", "slow requests by client: synth-producer 10"} {
		if !bytes.Contains(out.Bytes(), []byte(want)) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

// TestSniffTimeline: --read --timeline prints a line per interval of the
// capture's own time, and the requests in the lines add up.
func TestSniffTimeline(t *testing.T) {
	path := filepath.Join(t.TempDir(), "in.pcap")
	f, _ := os.Create(path)
	if _, err := synth.Write(f, synth.Config{Connections: 3, Requests: 300, SlowEvery: 30}, nil); err != nil {
		t.Fatal(err)
	}
	f.Close()
	var out bytes.Buffer
	o := RunOptions{Ports: []int{9092}, Read: path, SLO: slo, Metric: "wire", Timeline: true, Interval: 100 * time.Millisecond, MaxSlowLines: 1}
	if _, err := Run(t.Context(), o, &out, &out); err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?m)^10:00:\d\d +(\d+) req/s  p50 [\d.]+ms  p99 [\d.]+ms  max [\d.]+ms  over SLO (\d+)$`)
	var reqs, over float64
	lines := re.FindAllStringSubmatch(out.String(), -1)
	for _, m := range lines {
		n, _ := strconv.ParseFloat(m[1], 64)
		s, _ := strconv.ParseFloat(m[2], 64)
		reqs += n / 10 // req/s over 100 ms
		over += s
	}
	if len(lines) < 5 || int(reqs+0.5) != 300 || over != 10 {
		t.Errorf("%d lines adding up to %.0f requests, %.0f over the SLO; want ≥ 5, 300, 10:\n%s", len(lines), reqs, over, out.String())
	}
	out.Reset()
	o.Timeline = false
	if _, err := Run(t.Context(), o, &out, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "... and 9 more slow requests") {
		t.Errorf("no line for the slow requests beyond --max-slow:\n%s", out.String())
	}
}
