package latency

import (
	"bytes"
	"encoding/csv"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/lockscope/lockscope/internal/clock"
	"github.com/lockscope/lockscope/internal/testdata"
)

func answered(end, wire, service int64) *Request {
	return &Request{RequestEnd: end - wire, ResponseEnd: end, Wire: time.Duration(wire), Service: time.Duration(service), Status: Answered}
}

func TestBuilderMergesAndPads(t *testing.T) {
	b := NewBuilder(100, Wire, 5)
	reqs := []*Request{
		answered(1000, 150, 150), // [850, 1000)
		answered(300, 50, 50),    // fast
		answered(1100, 200, 20),  // [900, 1100): overlaps the first
		answered(2000, 101, 101), // [1899, 2000)
		{Status: NoResponse, RequestEnd: 5000},
		answered(1300, 101, 101), // [1199, 1300): 99 after 1100, padded apart by 10 → separate
	}
	for _, r := range reqs {
		b.Add(r)
	}
	got := b.Build()
	want := []Window{
		{Start: 845, End: 1105, Requests: 2, Worst: 200},
		{Start: 1194, End: 1305, Requests: 1, Worst: 101},
		{Start: 1894, End: 2005, Requests: 1, Worst: 101},
	}
	if diff := cmp.Diff(want, got.Windows); diff != "" {
		t.Errorf("windows (-want +got):\n%s", diff)
	}
	for _, tc := range []struct {
		t    int64
		want bool
	}{{844, false}, {845, true}, {1104, true}, {1105, false}, {1194, true}, {2004, true}, {2005, false}} {
		if got.Contains(tc.t) != tc.want {
			t.Errorf("Contains(%d) = %v, want %v", tc.t, !tc.want, tc.want)
		}
	}
	if d := got.Overlap(1000, 1200); d != 105+6 {
		t.Errorf("Overlap(1000, 1200) = %d, want 111", d)
	}
	// Service time: the request pipelined behind the slow one is not slow.
	bs := NewBuilder(100, Service, 0)
	for _, r := range reqs {
		bs.Add(r)
	}
	if n := len(bs.Build().Windows); n != 3 {
		t.Errorf("service-time windows: %d, want 3", n)
	}
}

func TestWindowSetRoundTrip(t *testing.T) {
	b := NewBuilder(65*time.Millisecond, Service, time.Millisecond)
	b.Add(answered(1e9, 7e7, 7e7))
	b.Add(answered(3e9, 9e7, 8e7))
	ws := b.Build()
	for name, write := range map[string]func(*bytes.Buffer) error{
		"jsonl": func(w *bytes.Buffer) error { return ws.WriteJSONL(w) },
		"csv":   func(w *bytes.Buffer) error { return ws.WriteCSV(w) },
	} {
		var buf bytes.Buffer
		if err := write(&buf); err != nil {
			t.Fatal(err)
		}
		got, err := ReadWindowSet(&buf)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if diff := cmp.Diff(ws, got); diff != "" {
			t.Errorf("%s round trip (-want +got):\n%s", name, diff)
		}
	}
	if _, err := ReadWindowSet(bytes.NewBufferString("start,end\n1,2\n")); err == nil {
		t.Error("a foreign CSV was read as a window set")
	}
}

func TestToMonotonic(t *testing.T) {
	m := clock.Mapping{Start: clock.Pair{Monotonic: 1000, Realtime: 1_000_000}, End: clock.Pair{Monotonic: 2000, Realtime: 1_001_000}}
	ws := &WindowSet{Clock: Realtime, Windows: []Window{{Start: 999_000, End: 1_000_500}, {Start: 1_002_000, End: 1_002_010}}}
	got := ws.ToMonotonic(m)
	want := []Window{{Start: 0, End: 1500}, {Start: 3000, End: 3010}}
	if diff := cmp.Diff(want, got.Windows); diff != "" || got.Clock != Monotonic {
		t.Errorf("clock %s, windows (-want +got):\n%s", got.Clock, diff)
	}
}

// TestWindowListFixtures reads the fixture workload's latency CSVs (made by
// a Java program nobody here wrote for this test) and checks the slow
// windows against a plain count of rows over the SLO.
func TestWindowListFixtures(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(testdata.Dir(t), "jfr", "workload", "latency", "*.csv"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no latency CSVs: %v", err)
	}
	const slo = 5 * time.Millisecond
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			ws, err := ReadWindowList(f, slo, "max", 0)
			if err != nil {
				t.Fatal(err)
			}
			// The reference: runs of consecutive 100 ms rows with max_us > 5000.
			raw, _ := os.ReadFile(path)
			rows, err := csv.NewReader(bytes.NewReader(raw)).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			var runs, slowRows, requests int
			var lastEnd int64 = -1
			for _, r := range rows[1:] {
				maxUS, _ := strconv.Atoi(r[5])
				if maxUS <= 5000 {
					continue
				}
				start, _ := strconv.ParseInt(r[0], 10, 64)
				n, _ := strconv.Atoi(r[2])
				slowRows++
				requests += n
				if start != lastEnd {
					runs++
				}
				lastEnd = start + 100
			}
			if len(ws.Windows) != runs {
				t.Errorf("%d windows, want %d runs of slow rows", len(ws.Windows), runs)
			}
			var gotReq int
			for _, w := range ws.Windows {
				gotReq += w.Requests
				if w.Worst <= slo || (w.End-w.Start)%int64(100*time.Millisecond) != 0 {
					t.Errorf("window %+v: not slow or not whole rows", w)
				}
			}
			if gotReq != requests || ws.Total() != time.Duration(slowRows)*100*time.Millisecond {
				t.Errorf("requests %d total %v, want %d and %d rows of 100 ms", gotReq, ws.Total(), requests, slowRows)
			}
		})
	}
}

func TestReadWindowListPlain(t *testing.T) {
	in := "start,end\n2025-01-02T10:00:00Z,2025-01-02T10:00:01Z\n2025-01-02T10:00:00.5Z,2025-01-02T10:00:02Z\n"
	ws, err := ReadWindowList(bytes.NewBufferString(in), 0, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(ws.Windows) != 1 || ws.Total() != 2*time.Second {
		t.Errorf("got %+v, want one 2 s window", ws.Windows)
	}
	if _, err := ReadWindowList(bytes.NewBufferString("a,b\n1,2\n"), 0, "", 0); err == nil {
		t.Error("a list without start and end columns was accepted")
	}
}

// TestBuilderCompacts: a million slow requests in a thousand bursts keep
// the builder at most a compaction's worth of spans, with the same result.
func TestBuilderCompacts(t *testing.T) {
	b := NewBuilder(10, Wire, 0)
	for burst := range 1000 {
		for i := range 1000 {
			end := int64(burst)*1e6 + int64(i)*10 + 100
			b.Add(answered(end, 50, 50))
		}
	}
	if len(b.spans) > 2*compactAt {
		t.Errorf("builder holds %d spans", len(b.spans))
	}
	ws := b.Build()
	if len(ws.Windows) != 1000 || ws.Windows[0].Requests != 1000 || ws.Windows[999].Requests != 1000 {
		t.Errorf("%d windows (first %+v)", len(ws.Windows), ws.Windows[0])
	}
}
