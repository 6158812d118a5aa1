package latency

import (
	"bytes"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestReadGeneric(t *testing.T) {
	base := time.Date(2025, 1, 2, 10, 0, 0, 0, time.UTC).UnixNano()
	type row struct {
		start int64
		d     time.Duration
		key   string
	}
	for _, tc := range []struct {
		name string
		in   string
		want []row
	}{
		{"csv ms", "start_ms,latency_ms,topic\n1735812000000,70.5,orders\n1735812000100,3,clicks\n",
			[]row{{base, 70500 * time.Microsecond, "orders"}, {base + 100e6, 3 * time.Millisecond, "clicks"}}},
		{"csv rfc3339 and go durations", "time,duration\n2025-01-02T10:00:00.25Z,65ms\n2025-01-02T10:00:01Z,1.5s\n",
			[]row{{base + 250e6, 65 * time.Millisecond, ""}, {base + 1e9, 1500 * time.Millisecond, ""}}},
		{"csv numbers by magnitude, µs durations", "# comment\ntimestamp,elapsed_us\n1735812000,1000\n1735812000000000000,5\n",
			[]row{{base, time.Millisecond, ""}, {base, 5 * time.Microsecond, ""}}},
		{"jsonl", `{"start":"2025-01-02T10:00:00Z","duration_ms":66,"key":"orders-1"}` + "\n\n" + `{"ts":1735812000.5,"latency":"2ms"}` + "\n",
			[]row{{base, 66 * time.Millisecond, "orders-1"}, {base + 500e6, 2 * time.Millisecond, ""}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []row
			err := ReadGeneric(strings.NewReader(tc.in), func(r *Request) error {
				if r.Status != Answered || r.ResponseEnd-r.RequestEnd != int64(r.Wire) || r.Service != r.Wire {
					t.Errorf("inconsistent %+v", r)
				}
				got = append(got, row{r.RequestEnd, r.Wire, r.Key})
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(row{})); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	for _, bad := range []string{"a,b\n1,2\n", "start,duration\nyesterday,1\n", "start,duration\n1,-5\n", `{"start":1}` + "\n", ""} {
		if err := ReadGeneric(strings.NewReader(bad), func(*Request) error { return nil }); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestRequestsJSONLRoundTrip(t *testing.T) {
	in := []*Request{{
		Client: netip.MustParseAddrPort("10.0.0.2:50000"), Server: netip.MustParseAddrPort("10.0.0.1:9092"),
		CorrelationID: 7, APIKey: 0, APIVersion: 9, ClientID: "p", Acks: 0, TransactionalID: "tx",
		Partitions:   []Partition{{Topic: "t", Partition: 1, Records: 3, Bytes: 100}},
		RequestStart: 1, RequestEnd: 2, Status: NoResponse,
	}, {
		Client: netip.MustParseAddrPort("[::1]:50000"), Server: netip.MustParseAddrPort("[::1]:9092"),
		CorrelationID: 8, APIKey: 3, RequestStart: 10, RequestEnd: 20, ResponseStart: 90_020, ResponseEnd: 100_020,
		Wire: 100_000, Service: 60_000, Status: Answered, Damaged: true,
	}}
	var buf bytes.Buffer
	w := NewJSONLWriter(&buf)
	for _, r := range in {
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	w.Flush()
	var out []*Request
	if err := ReadRequestsJSONL(&buf, func(r *Request) error { out = append(out, r); return nil }); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(in, out, cmpopts.EquateComparable(netip.AddrPort{})); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}

func TestGenericHeaderlessCSV(t *testing.T) {
	for _, c := range []struct {
		name, in string
		want     []time.Duration
	}{
		{"ns", "1733572800123456789,4523000\n1733572800223456789,70000000,orders-1\n", []time.Duration{4523 * time.Microsecond, 70 * time.Millisecond}},
		{"ms", "1733572800123,4.5\n1733572800223,70\n", []time.Duration{4500 * time.Microsecond, 70 * time.Millisecond}},
		{"seconds", "1733572800.123,4.5\n", []time.Duration{4500 * time.Microsecond}},
		{"go durations", "2024-12-07T11:00:00.5Z,65ms\n", []time.Duration{65 * time.Millisecond}},
	} {
		var got []time.Duration
		err := ReadGeneric(strings.NewReader(c.in), func(r *Request) error {
			got = append(got, r.Wire)
			if r.RequestEnd < 1.7e18 {
				t.Errorf("%s: start %d not read as a 2024 time", c.name, r.RequestEnd)
			}
			return nil
		})
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("%s: got %v, %v; want %v", c.name, got, err, c.want)
		}
	}
	err := ReadGeneric(strings.NewReader("when,how long\n1,2\n"), func(*Request) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "name them start and duration") {
		t.Errorf("unreadable header: %v", err)
	}
}
