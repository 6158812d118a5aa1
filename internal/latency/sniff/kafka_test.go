package sniff

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gopacket/gopacket/pcapgo"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/lockscope/lockscope/internal/latency"
)

const slo = 65 * time.Millisecond

// freePort returns a loopback TCP port nobody listens on.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// dumpcap captures loopback traffic of a port to a pcapng file with
// Wireshark's own capture program, so that neither the capture nor the
// oracle is ours. stop ends it and returns the file.
func dumpcap(t *testing.T, port int) (stop func() string) {
	t.Helper()
	return dumpcapOn(t, port, "lo", "")
}

// dumpcapOn captures on an interface with a link type ("" for its default).
func dumpcapOn(t *testing.T, port int, iface, linkType string) (stop func() string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("not root: capturing on lo needs CAP_NET_RAW")
	}
	path := filepath.Join(t.TempDir(), "capture.pcapng")
	args := []string{"-q", "-i", iface, "-f", fmt.Sprintf("tcp port %d", port), "-w", path}
	if linkType != "" {
		args = append(args, "-y", linkType)
	}
	cmd := exec.Command("dumpcap", args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start dumpcap (scripts/setup.sh installs tshark): %v", err)
	}
	ready := make(chan string, 1)
	var output strings.Builder
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			output.WriteString(sc.Text() + "\n")
			if strings.HasPrefix(sc.Text(), "File:") {
				ready <- sc.Text()
			}
		}
		close(ready)
	}()
	select {
	case _, ok := <-ready:
		if !ok {
			cmd.Wait()
			t.Fatalf("dumpcap exited: %s", output.String())
		}
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatal("dumpcap did not start capturing within 20s")
	}
	// dumpcap names its file before its capture is attached: give it time.
	time.Sleep(500 * time.Millisecond)
	var once sync.Once
	stop = func() string {
		once.Do(func() {
			// libpcap's TPACKET_V3 ring hands over a block only when it is
			// full or its 1 s timeout passes, and a SIGTERM does not flush
			// the open block: wait it out.
			time.Sleep(1500 * time.Millisecond)
			cmd.Process.Signal(syscall.SIGTERM)
			cmd.Wait()
			t.Logf("dumpcap: %s", strings.TrimSpace(output.String()))
		})
		return path
	}
	t.Cleanup(func() { stop() })
	return stop
}

// cluster starts a one-broker kfake cluster on a fresh port, capped at
// Kafka 2.3's versions (Produce v7) so that tshark 4.0 dissects Produce.
func cluster(t *testing.T, opts ...kfake.Opt) (*kfake.Cluster, int) {
	t.Helper()
	port := freePort(t)
	c, err := kfake.NewCluster(append([]kfake.Opt{
		kfake.NumBrokers(1), kfake.Ports(port), kfake.SeedTopics(4, "orders"),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, port
}

func client(t *testing.T, port int, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(fmt.Sprintf("127.0.0.1:%d", port)),
		kgo.MaxVersions(kversion.V2_3_0()),
		kgo.DefaultProduceTopic("orders"),
		kgo.ClientID("lockscope-test"),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// sniffFile reads a capture with the sniffer and returns its requests,
// sorted by when they ended.
func sniffFile(t *testing.T, path string, port int) ([]*latency.Request, *Sniffer) {
	t.Helper()
	var reqs []*latency.Request
	s, err := New(Options{Ports: []uint16{uint16(port)}}, func(r *latency.Request) { reqs = append(reqs, r) })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ReadFile(path, s); err != nil {
		t.Fatal(err)
	}
	sort.Slice(reqs, func(i, j int) bool { return reqs[i].RequestEnd < reqs[j].RequestEnd })
	return reqs, s
}

func produces(reqs []*latency.Request) []*latency.Request {
	var out []*latency.Request
	for _, r := range reqs {
		if r.APIKey == latency.APIProduce {
			out = append(out, r)
		}
	}
	return out
}

// TestDelayedProduceRequests delays exactly 10 of 200 produce requests in
// the broker and checks that the sniffer reports exactly those 10 over the
// SLO, and that tshark's Kafka dissector measures every pair the same.
func TestDelayedProduceRequests(t *testing.T) {
	c, port := cluster(t)
	stop := dumpcap(t, port)

	delayed := map[int]bool{}
	for _, i := range []int{3, 17, 40, 41, 77, 100, 128, 150, 181, 199} {
		delayed[i] = true
	}
	var n atomic.Int64
	c.ControlKey(0, func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		i := int(n.Add(1)) - 1
		if delayed[i] {
			c.SleepControl(func() { time.Sleep(slo + 15*time.Millisecond) })
		}
		return nil, nil, false
	})
	cl := client(t, port, kgo.RequiredAcks(kgo.AllISRAcks()))
	ctx := context.Background()
	clientSide := make([]time.Duration, 200)
	for i := range 200 {
		start := time.Now()
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(strconv.Itoa(i)), Partition: int32(i % 4)}).FirstErr(); err != nil {
			t.Fatalf("produce %d: %v", i, err)
		}
		clientSide[i] = time.Since(start)
	}
	cl.Close()
	path := stop()

	reqs, s := sniffFile(t, path, port)
	prod := produces(reqs)
	if len(prod) != 200 {
		t.Fatalf("sniffed %d produce requests, want 200 (stats %+v)", len(prod), statsString(s))
	}
	var slow []int
	for i, r := range prod {
		if r.Status != latency.Answered {
			t.Errorf("produce %d: status %v", i, r.Status)
		}
		if r.Wire > slo {
			slow = append(slow, i)
		}
		if r.ClientID != "lockscope-test" || r.APIVersion != 7 || r.Acks != -1 ||
			len(r.Partitions) != 1 || r.Partitions[0].Topic != "orders" || r.Partitions[0].Records != 1 {
			t.Errorf("produce %d: %+v", i, r)
		}
		// The client's latency includes the network both ways and its own
		// scheduling: never less than the broker's.
		if clientSide[i] < r.Wire {
			t.Errorf("produce %d: client saw %v, less than the wire latency %v", i, clientSide[i], r.Wire)
		}
	}
	var want []int
	for i := range 200 {
		if delayed[i] {
			want = append(want, i)
		}
	}
	if fmt.Sprint(slow) != fmt.Sprint(want) {
		t.Errorf("requests over %v: %v, want %v", slo, slow, want)
	}
	compareWithTshark(t, path, port, reqs, 1.0)
}

func statsString(s *Sniffer) string {
	return fmt.Sprintf("packets %d ignored %d holes %d resyncs %d unmatched %d",
		s.Stats.Packets.Load(), s.Stats.Ignored.Load(), s.Stats.Holes.Load(),
		s.Kafka().Resyncs.Load(), s.Kafka().UnmatchedResponses.Load())
}

// TestPipelinedProduce sends produce requests back to back on one
// connection while the broker holds the first: every follower waits behind
// it, so its wire latency exceeds the SLO, but its service time does not.
func TestPipelinedProduce(t *testing.T) {
	c, port := cluster(t)
	stop := dumpcap(t, port)
	var n atomic.Int64
	c.ControlKey(0, func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if n.Add(1) == 1 {
			c.SleepControl(func() { time.Sleep(150 * time.Millisecond) })
		}
		return nil, nil, false
	})
	cl := client(t, port, kgo.DisableIdempotentWrite(), kgo.RequiredAcks(kgo.LeaderAck()),
		kgo.MaxProduceRequestsInflightPerBroker(5), kgo.ProducerLinger(0))
	// Make sure the producer connection is up before timing anything.
	ctx := context.Background()
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("warm-up")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	n.Store(0)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		cl.Produce(ctx, &kgo.Record{Value: []byte(strconv.Itoa(i)), Partition: int32(i)}, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Error(err)
			}
			wg.Done()
		})
		time.Sleep(10 * time.Millisecond)
	}
	wg.Wait()
	cl.Close()
	path := stop()

	reqs, _ := sniffFile(t, path, port)
	prod := produces(reqs)[1:] // after the warm-up
	if len(prod) != 4 {
		t.Fatalf("sniffed %d produce requests after the warm-up, want 4", len(prod))
	}
	for i, r := range prod {
		t.Logf("produce %d: wire %v service %v", i, r.Wire, r.Service)
		if r.Wire <= slo {
			t.Errorf("produce %d: wire latency %v, want over %v (queued behind the first)", i, r.Wire, slo)
		}
		if slow := r.Service > slo; slow != (i == 0) {
			t.Errorf("produce %d: service time %v over SLO = %v, want %v", i, r.Service, slow, i == 0)
		}
	}
	compareWithTshark(t, path, port, reqs, 1.0)
}

// TestAcksZeroUnmeasurable checks that acks=0 produce requests, which
// Kafka never answers, are reported as such and not as pending.
func TestAcksZeroUnmeasurable(t *testing.T) {
	_, port := cluster(t)
	stop := dumpcap(t, port)
	cl := client(t, port, kgo.DisableIdempotentWrite(), kgo.RequiredAcks(kgo.NoAck()))
	ctx := context.Background()
	for i := range 20 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(strconv.Itoa(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	// A metadata request after them must still be matched.
	if _, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	reqs, _ := sniffFile(t, stop(), port)
	prod := produces(reqs)
	if len(prod) == 0 {
		t.Fatal("no produce request sniffed")
	}
	for _, r := range prod {
		if r.Status != latency.NoResponse || r.Acks != 0 {
			t.Errorf("produce %d: status %v acks %d, want no_response 0", r.CorrelationID, r.Status, r.Acks)
		}
	}
	for _, r := range reqs {
		if r.APIKey != latency.APIProduce && r.Status != latency.Answered {
			t.Errorf("%d/%d: status %v, want answered", r.APIKey, r.CorrelationID, r.Status)
		}
	}
}

// TestTsharkOracleWithLoss sends produce traffic on several connections at
// once, checks every pair against tshark, then drops every 200th packet
// from the capture and checks that at least 99% of the pairs tshark still
// matches are found with the same latency: a lost segment costs the
// requests in it, not the connection.
func TestTsharkOracleWithLoss(t *testing.T) {
	_, port := cluster(t)
	stop := dumpcap(t, port)
	var wg sync.WaitGroup
	for c := range 4 {
		cl := client(t, port, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ClientID(fmt.Sprintf("loader-%d", c)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			for i := range 250 {
				// Every tenth round sends two records at once, so that
				// some requests carry more than one partition.
				rs := []*kgo.Record{{Value: []byte(strconv.Itoa(i)), Partition: int32(i % 4)}}
				if i%10 == 0 {
					rs = append(rs, &kgo.Record{Value: []byte("x"), Partition: int32((i + 1) % 4)})
				}
				if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
					t.Error(err)
					return
				}
			}
			cl.Close()
		}()
	}
	wg.Wait()
	path := stop()
	reqs, _ := sniffFile(t, path, port)
	compareWithTshark(t, path, port, reqs, 1.0)

	lossy := filepath.Join(t.TempDir(), "lossy.pcap")
	kept, dropped := dropEvery(t, path, lossy, 200)
	t.Logf("lossy capture: kept %d packets, dropped %d", kept, dropped)
	lreqs, s := sniffFile(t, lossy, port)
	t.Logf("sniffer on the lossy capture: %s", statsString(s))
	compareWithTshark(t, lossy, port, lreqs, 0.99)
	// Against every pair of the complete capture: each dropped data packet
	// takes its own request or response with it (10 of 1000 pairs here),
	// and nothing more may be lost.
	matched, total := compareWithTshark(t, path, port, lreqs, 0.98)
	t.Logf("lossy sniff vs the complete capture: %d of %d pairs (%.1f%%)", matched, total, 100*float64(matched)/float64(total))
}

// dropEvery copies a capture to a pcap file without every nth packet.
func dropEvery(t *testing.T, in, out string, n int) (kept, dropped int) {
	t.Helper()
	f, err := os.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewNgReader(f, pcapgo.DefaultNgReaderOptions)
	if err != nil {
		t.Fatal(err)
	}
	o, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	w := pcapgo.NewWriterNanos(o)
	if err := w.WriteFileHeader(65536, r.LinkType()); err != nil {
		t.Fatal(err)
	}
	for i := 1; ; i++ {
		data, ci, err := r.ReadPacketData()
		if err != nil {
			break
		}
		if i%n == 0 {
			dropped++
			continue
		}
		if err := w.WritePacket(ci, data); err != nil {
			t.Fatal(err)
		}
		kept++
	}
	return kept, dropped
}

// TestCookedCaptures reads captures of the "any" interface in both Linux
// cooked encapsulations (SLL and SLL2), as tcpdump -i any writes them, and
// checks them against tshark.
func TestCookedCaptures(t *testing.T) {
	_, port := cluster(t)
	stops := map[string]func() string{
		"LINUX_SLL":  dumpcapOn(t, port, "any", "LINUX_SLL"),
		"LINUX_SLL2": dumpcapOn(t, port, "any", "LINUX_SLL2"),
	}
	cl := client(t, port)
	for i := range 50 {
		if err := cl.ProduceSync(context.Background(), &kgo.Record{Value: []byte(strconv.Itoa(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	cl.Close()
	for name, stop := range stops {
		t.Run(name, func(t *testing.T) {
			path := stop()
			reqs, s := sniffFile(t, path, port)
			if n := len(produces(reqs)); n != 50 {
				t.Errorf("%d produce requests, want 50 (%s)", n, statsString(s))
			}
			if d := s.Stats.Duplicates.Load(); d != 0 {
				t.Errorf("%d duplicate segments", d)
			}
			compareWithTshark(t, path, port, reqs, 1.0)
		})
	}
}
