package demobroker

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kversion"
)

// startBroker runs a demo broker for one test and stops it at cleanup.
func startBroker(t *testing.T, cfg Config) *Broker {
	t.Helper()
	if cfg.LogDir == "" {
		cfg.LogDir = t.TempDir()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b, err := Start(ctx, cfg)
	if err != nil {
		t.Fatalf("start demo broker: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("close demo broker: %v", err)
		}
		if t.Failed() {
			t.Logf("broker stderr:\n%s", b.Stderr())
		}
	})
	return b
}

func newClient(t *testing.T, b *Broker, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	base := []kgo.Opt{
		kgo.SeedBrokers(b.Addr()),
		kgo.DisableIdempotentWrite(),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.AllowAutoTopicCreation(),
	}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		t.Fatalf("new kgo client: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// partitionValues reads the values stored in each partition directory of topic.
func partitionValues(t *testing.T, logDir, topic string, partitions int) map[int32][]string {
	t.Helper()
	out := map[int32][]string{}
	for p := 0; p < partitions; p++ {
		recs, err := ReadPartition(filepath.Join(logDir, fmt.Sprintf("%s-%d", topic, p)))
		if err != nil {
			t.Fatalf("read partition %d: %v", p, err)
		}
		for i, r := range recs {
			if r.Offset != int64(i) {
				t.Fatalf("partition %d: record %d has offset %d", p, i, r.Offset)
			}
			out[int32(p)] = append(out[int32(p)], string(r.Value))
		}
	}
	return out
}

func TestKgoProducesAcksAll(t *testing.T) {
	b := startBroker(t, Config{Partitions: 3})
	cl := newClient(t, b, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DefaultProduceTopic("orders"))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	const n = 1000
	want := map[int32][]string{}
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Key: []byte(fmt.Sprintf("k%d", i%7)), Value: []byte(fmt.Sprintf("order-%04d", i))}
	}
	// Async produce with many in flight, as a real producer does; per-partition order is kept.
	results := make(chan error, n)
	for _, r := range recs {
		cl.Produce(ctx, r, func(r *kgo.Record, err error) { results <- err })
	}
	for i := 0; i < n; i++ {
		if err := <-results; err != nil {
			t.Fatalf("record not acknowledged: %v", err)
		}
	}
	for _, r := range recs {
		want[r.Partition] = append(want[r.Partition], string(r.Value))
	}
	for p := range want {
		sort.Strings(want[p])
	}
	got := partitionValues(t, b.LogDir(), "orders", 3)
	for p := range got {
		sort.Strings(got[p])
	}
	total := 0
	for p := int32(0); p < 3; p++ {
		if strings.Join(got[p], ",") != strings.Join(want[p], ",") {
			t.Errorf("partition %d: segment holds %d records, %d were acknowledged for it", p, len(got[p]), len(want[p]))
		}
		total += len(got[p])
	}
	if total != n {
		t.Errorf("segments hold %d records, want %d", total, n)
	}
	// Offsets handed back to the client match the log's.
	for _, r := range recs[:10] {
		idx := -1
		vals := partitionOffsets(t, b.LogDir(), "orders", r.Partition)
		for i, v := range vals {
			if v == string(r.Value) {
				idx = i
			}
		}
		if int64(idx) != r.Offset {
			t.Errorf("record %q: client offset %d, log offset %d", r.Value, r.Offset, idx)
		}
	}
}

func partitionOffsets(t *testing.T, logDir, topic string, p int32) []string {
	recs, err := ReadPartition(filepath.Join(logDir, fmt.Sprintf("%s-%d", topic, p)))
	if err != nil {
		t.Fatal(err)
	}
	vals := make([]string, len(recs))
	for i, r := range recs {
		vals[i] = string(r.Value)
	}
	return vals
}

func TestKcatProduces(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Fatal("kcat not found: run scripts/setup.sh (installs Debian's kcat)")
	}
	b := startBroker(t, Config{Partitions: 2})
	var in bytes.Buffer
	for i := 0; i < 100; i++ {
		fmt.Fprintf(&in, "kcat-%03d\n", i)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// -X debug=msg makes librdkafka log each delivery report ("delivered").
	cmd := exec.CommandContext(ctx, kcat, "-P", "-b", b.Addr(), "-t", "kcat-topic", "-X", "debug=msg", "-X", "acks=all")
	cmd.Stdin = &in
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kcat: %v\n%s", err, out)
	}
	delivered := 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if strings.Contains(line, "Delivery failed") || strings.Contains(line, "encountered error") {
			t.Errorf("kcat: %s", line)
		}
		var n int
		if i := strings.Index(line, "MessageSet with "); i >= 0 && strings.HasSuffix(line, "delivered") {
			fmt.Sscanf(line[i:], "MessageSet with %d message(s)", &n)
			delivered += n
		}
	}
	if delivered != 100 {
		t.Errorf("kcat delivery reports: %d delivered, want 100\n%s", delivered, out)
	}
	// librdkafka writes record batches v2 only to a broker that serves Fetch v4+.
	if !bytes.Contains(out, []byte("MsgVersion 2")) {
		t.Errorf("kcat did not produce record batches v2:\n%s", out)
	}
	// And reads them back (ListOffsets for the end, Fetch).
	cons, err := exec.CommandContext(ctx, kcat, "-C", "-b", b.Addr(), "-t", "kcat-topic", "-e", "-q").Output()
	if err != nil {
		t.Fatalf("kcat -C: %v", err)
	}
	if n := bytes.Count(cons, []byte("\n")); n != 100 {
		t.Errorf("kcat consumed %d messages, want 100", n)
	}
	got := partitionValues(t, b.LogDir(), "kcat-topic", 2)
	var all []string
	for _, v := range got {
		all = append(all, v...)
	}
	sort.Strings(all)
	if len(all) != 100 || all[0] != "kcat-000" || all[99] != "kcat-099" {
		t.Errorf("segments hold %d kcat records (first %q)", len(all), first(all))
	}
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

// frame builds a request: size, api key, version, correlation id, client id, body.
func frame(apiKey, version int16, corr int32, flexibleHeader bool, body []byte) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.BigEndian, apiKey)
	binary.Write(&b, binary.BigEndian, version)
	binary.Write(&b, binary.BigEndian, corr)
	binary.Write(&b, binary.BigEndian, int16(4))
	b.WriteString("test")
	if flexibleHeader {
		b.WriteByte(0) // no tagged fields
	}
	b.Write(body)
	out := binary.BigEndian.AppendUint32(nil, uint32(b.Len()))
	return append(out, b.Bytes()...)
}

func dial(t *testing.T, b *Broker) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", b.Addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return c
}

func readResponse(t *testing.T, c net.Conn) []byte {
	t.Helper()
	var size [4]byte
	if _, err := io.ReadFull(c, size[:]); err != nil {
		t.Fatalf("read response size: %v", err)
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(c, body); err != nil {
		t.Fatalf("read response: %v", err)
	}
	return body
}

// expectClosed checks that the broker closed the connection (EOF or reset, not a timeout).
func expectClosed(t *testing.T, c net.Conn, what string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := c.Read(make([]byte, 1))
	if err == nil {
		t.Errorf("%s: broker answered, want the connection closed", what)
		return
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Errorf("%s: connection still open after 10s, want it closed", what)
	}
}

func TestApiVersionsHeaderAndErrors(t *testing.T) {
	b := startBroker(t, Config{})

	t.Run("v3 response has a v0 header", func(t *testing.T) {
		c := dial(t, b)
		// v3 body: client software name and version (compact strings), tagged fields.
		c.Write(frame(18, 3, 7, true, []byte{5, 't', 'e', 's', 't', 2, '1', 0}))
		r := readResponse(t, c)
		if corr := int32(binary.BigEndian.Uint32(r)); corr != 7 {
			t.Fatalf("correlation id %d, want 7", corr)
		}
		// Header v0: the error code follows the correlation id directly (no tagged-field byte).
		if ec := int16(binary.BigEndian.Uint16(r[4:])); ec != 0 {
			t.Fatalf("error code %d, want 0 (header v0 read as v1?)", ec)
		}
		if n := r[6]; n != 6 { // compact array of 5 api keys
			t.Fatalf("api key count byte %d, want 6", n)
		}
	})

	t.Run("too new a version gets UNSUPPORTED_VERSION in v0", func(t *testing.T) {
		c := dial(t, b)
		c.Write(frame(18, 9, 8, true, []byte{0, 0, 0}))
		r := readResponse(t, c)
		if ec := int16(binary.BigEndian.Uint16(r[4:])); ec != 35 {
			t.Fatalf("error code %d, want 35", ec)
		}
		if n := binary.BigEndian.Uint32(r[6:]); n != 5 {
			t.Fatalf("v0 api key array length %d, want 5", n)
		}
	})

	t.Run("unknown api key closes the connection", func(t *testing.T) {
		c := dial(t, b)
		c.Write(frame(9, 4, 9, false, make([]byte, 20))) // OffsetFetch: not served
		expectClosed(t, c, "offset fetch request")
	})
}

func TestAcksZeroAndMalformedFrames(t *testing.T) {
	b := startBroker(t, Config{Partitions: 1})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// acks=0: no response is sent, the records still land, the connection keeps working.
	cl := newClient(t, b, kgo.RequiredAcks(kgo.NoAck()), kgo.DefaultProduceTopic("fire"))
	for i := 0; i < 50; i++ {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(fmt.Sprintf("f%02d", i))}).FirstErr(); err != nil {
			t.Fatalf("acks=0 produce: %v", err)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		recs, err := ReadPartition(filepath.Join(b.LogDir(), "fire-0"))
		if err == nil && len(recs) == 50 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("acks=0: %d records in the log after 20s (err %v), want 50", len(recs), err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	malformed := []struct {
		name  string
		bytes []byte
	}{
		{"negative size", []byte{0xff, 0xff, 0xff, 0xf0, 1, 2, 3}},
		{"size over the limit", []byte{0x7f, 0xff, 0xff, 0xff, 0, 0}},
		{"size too small for a header", []byte{0, 0, 0, 3, 1, 2, 3}},
		{"client id longer than the frame", append([]byte{0, 0, 0, 10, 0, 18, 0, 0, 0, 0, 0, 1}, 0x7f, 0xff)},
		{"produce body truncated", frame(0, 7, 1, false, []byte{0xff, 0xff, 0, 1, 0, 0})},
		{"produce array count lies", frame(0, 7, 1, false, []byte{0xff, 0xff, 0, 1, 0, 0, 0x75, 0x30, 0x7f, 0xff, 0xff, 0xff})},
		{"produce version too old", frame(0, 1, 1, false, []byte{0, 1, 0, 0, 0x75, 0x30, 0, 0, 0, 0})},
	}
	for _, m := range malformed {
		c := dial(t, b)
		c.Write(m.bytes)
		expectClosed(t, c, m.name)
	}

	// A corrupt batch (bad CRC) is answered with CORRUPT_MESSAGE; the connection stays.
	c := dial(t, b)
	batch := make([]byte, 61)
	binary.BigEndian.PutUint32(batch[8:], 61-12)
	batch[16] = 2
	var body bytes.Buffer
	body.Write([]byte{0xff, 0xff, 0, 1, 0, 0, 0x75, 0x30}) // null txn id, acks=1, timeout
	binary.Write(&body, binary.BigEndian, int32(1))
	binary.Write(&body, binary.BigEndian, int16(4))
	body.WriteString("fire")
	binary.Write(&body, binary.BigEndian, int32(1))
	binary.Write(&body, binary.BigEndian, int32(0))
	binary.Write(&body, binary.BigEndian, int32(len(batch)))
	body.Write(batch)
	c.Write(frame(0, 7, 42, false, body.Bytes()))
	r := readResponse(t, c)
	// corr(4) topics(4) name(2+4) partitions(4) index(4) error(2)
	if corr := binary.BigEndian.Uint32(r); corr != 42 {
		t.Fatalf("corrupt batch: correlation id %d", corr)
	}
	if ec := int16(binary.BigEndian.Uint16(r[4+4+6+4+4:])); ec != 2 {
		t.Errorf("corrupt batch: error code %d, want 2 (CORRUPT_MESSAGE)", ec)
	}

	// The broker still serves the next client.
	cl2 := newClient(t, b, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DefaultProduceTopic("after"))
	if err := cl2.ProduceSync(ctx, &kgo.Record{Value: []byte("still-up")}).FirstErr(); err != nil {
		t.Fatalf("produce after malformed frames: %v", err)
	}
	select {
	case <-b.Exited():
		t.Fatal("broker exited")
	default:
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		cfg  Config
		ok   bool
		args string
	}{
		{Config{LogDir: "/x"}, true, "--port=0 --log-dir=/x"},
		{Config{LogDir: "/x", Port: 9092, FlushMessages: 200, StallMs: 300, StallEvery: 50, FlushInterval: -1},
			true, "--port=9092 --log-dir=/x --flush-messages=200 --flush-interval-ms=0 --stall-ms=300 --stall-every=50"},
		{Config{}, false, ""},
		{Config{LogDir: "/x", Port: 70000}, false, ""},
		{Config{LogDir: "/x", IOThreads: -1}, false, ""},
	}
	for _, tt := range tests {
		err := tt.cfg.Validate()
		if (err == nil) != tt.ok {
			t.Errorf("Validate(%+v) = %v, want ok=%v", tt.cfg, err, tt.ok)
		}
		if tt.ok {
			if got := strings.Join(tt.cfg.Args(), " "); got != tt.args {
				t.Errorf("Args(%+v) = %q, want %q", tt.cfg, got, tt.args)
			}
		}
	}
}

func TestStartReportsBadOption(t *testing.T) {
	_, err := Start(context.Background(), Config{LogDir: t.TempDir(), JVMArgs: nil, Partitions: 1, StallEvery: 1, StallMs: 1,
		IOThreads: 1, NetworkThreads: 1, SegmentBytes: -5})
	if err == nil || !strings.Contains(err.Error(), "segment-bytes") {
		t.Fatalf("start with negative segment bytes: got %v, want an error naming --segment-bytes", err)
	}
}

func TestMain(m *testing.M) {
	// Compile once up front so that the first test's timing is not the compiler's.
	if src, err := SourceDir(); err == nil {
		if _, err := Build(context.Background(), src); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	os.Exit(m.Run())
}

func TestProtocolVersions(t *testing.T) {
	b := startBroker(t, Config{Partitions: 1})
	for _, v := range []struct {
		name     string
		versions *kversion.Versions
	}{
		{"kafka 0.11 (produce v3, metadata v4)", kversion.V0_11_0()},
		{"kafka 2.3 (produce v7, metadata v8)", kversion.V2_3_0()},
		{"kafka 2.8 (produce v9 flexible, metadata v11)", kversion.V2_8_0()},
		{"latest (metadata v12)", nil},
	} {
		t.Run(v.name, func(t *testing.T) {
			topic := fmt.Sprintf("v-%d", len(v.name))
			opts := []kgo.Opt{kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks())}
			if v.versions != nil {
				opts = append(opts, kgo.MaxVersions(v.versions))
			}
			cl := newClient(t, b, opts...)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			for i := 0; i < 5; i++ {
				r := &kgo.Record{Value: []byte(fmt.Sprint(i))}
				if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
					t.Fatalf("produce: %v", err)
				}
				if r.Offset != int64(i) {
					t.Errorf("record %d got offset %d", i, r.Offset)
				}
			}
		})
	}
}

func TestConsumeAcrossSegments(t *testing.T) {
	b := startBroker(t, Config{Partitions: 2, SegmentBytes: 1024})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// The consumer starts first, so its fetches wait in the purgatory until data arrives.
	cons := newClient(t, b, kgo.ConsumeTopics("feed"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200*time.Millisecond))
	prod := newClient(t, b, kgo.DefaultProduceTopic("feed"))
	if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte("first")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	const n = 200
	// One record per request, so that batches are small and segments roll often.
	for i := 1; i < n; i++ {
		if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte(fmt.Sprintf("feed-%03d", i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	next := map[int32]int64{}
	got := 0
	for got < n {
		fs := cons.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d records: %v", got, n, err)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s-%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset != next[r.Partition] {
				t.Fatalf("partition %d: offset %d, want %d", r.Partition, r.Offset, next[r.Partition])
			}
			next[r.Partition]++
			got++
		})
	}
	segs, _ := filepath.Glob(filepath.Join(b.LogDir(), "feed-*", "*.log"))
	if len(segs) < 4 {
		t.Errorf("only %d segments: the read did not cross segments", len(segs))
	}
}

func TestSegmentRoll(t *testing.T) {
	b := startBroker(t, Config{Partitions: 1, SegmentBytes: 4096})
	cl := newClient(t, b, kgo.DefaultProduceTopic("roll"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := 0; i < 40; i++ {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: bytes.Repeat([]byte{'x'}, 500)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	segs, _ := filepath.Glob(filepath.Join(b.LogDir(), "roll-0", "*.log"))
	if len(segs) < 4 {
		t.Errorf("%d segments after 20 KB with 4 KB segments, want at least 4", len(segs))
	}
	recs, err := ReadPartition(filepath.Join(b.LogDir(), "roll-0"))
	if err != nil || len(recs) != 40 {
		t.Fatalf("read back %d records (%v), want 40", len(recs), err)
	}
	// Each segment is named by its first offset.
	for _, s := range segs[1:] {
		var base int64
		fmt.Sscanf(filepath.Base(s), "%d.log", &base)
		if base <= 0 || base >= 40 {
			t.Errorf("segment %s: base offset %d", filepath.Base(s), base)
		}
	}
}

func TestStallFault(t *testing.T) {
	// Every 4th append sleeps 200 ms inside the append lock: a slow window with a known cause.
	b := startBroker(t, Config{Partitions: 1, StallMs: 200, StallEvery: 4})
	cl := newClient(t, b, kgo.DefaultProduceTopic("stall"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	slow := 0
	for i := 0; i < 12; i++ {
		t0 := time.Now()
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("s")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if time.Since(t0) >= 200*time.Millisecond {
			slow++
		}
	}
	// Sequential appends 4, 8 and 12 stall; a sleep never ends early, so at least 3 are slow.
	if slow < 3 {
		t.Errorf("%d of 12 produce requests took >= 200ms, want at least 3", slow)
	}
}
