package sniff

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/lockscope/lockscope/internal/latency"
)

// liveRun captures on an interface while traffic runs, returning the
// requests, the sniffer and the pcap it wrote.
type liveRun struct {
	mu     sync.Mutex
	reqs   []*latency.Request
	s      *Sniffer
	pcap   string
	cancel context.CancelFunc
	done   chan error
}

func startLive(t *testing.T, iface string, port int) *liveRun {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("not root: a live capture needs CAP_NET_RAW")
	}
	lr := &liveRun{pcap: filepath.Join(t.TempDir(), iface+".pcap"), done: make(chan error, 1)}
	var err error
	lr.s, err = New(Options{Ports: []uint16{uint16(port)}}, func(r *latency.Request) {
		lr.mu.Lock()
		lr.reqs = append(lr.reqs, r)
		lr.mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(lr.pcap)
	if err != nil {
		t.Fatal(err)
	}
	c, err := OpenLive(LiveOptions{Interface: iface, Ports: []uint16{uint16(port)}, Write: f})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	lr.cancel = cancel
	go func() {
		err := c.Run(ctx, lr.s, 0, nil)
		lr.s.Flush(time.Now().UnixNano())
		c.Close()
		f.Close()
		lr.done <- err
	}()
	t.Cleanup(cancel)
	return lr
}

func (lr *liveRun) stop(t *testing.T) []*latency.Request {
	t.Helper()
	// Blocks retire after 10 ms; give the last packets time to arrive.
	time.Sleep(100 * time.Millisecond)
	lr.cancel()
	if err := <-lr.done; err != nil {
		t.Fatal(err)
	}
	lr.mu.Lock()
	defer lr.mu.Unlock()
	return lr.reqs
}

// TestLiveLoopback captures on lo and on "any" at once while 10 of 200
// produce requests are delayed: both must see each packet once (loopback
// shows every packet twice to a packet socket), report exactly the 10
// delayed requests over the SLO, and agree with tshark reading what the
// capture wrote.
func TestLiveLoopback(t *testing.T) {
	c, port := cluster(t)
	runs := map[string]*liveRun{"lo": startLive(t, "lo", port), "any": startLive(t, "any", port)}
	delayed := map[int]bool{}
	for i := 5; i < 200; i += 20 {
		delayed[i] = true
	}
	var n atomic.Int64
	c.ControlKey(0, func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if delayed[int(n.Add(1))-1] {
			c.SleepControl(func() { time.Sleep(slo + 15*time.Millisecond) })
		}
		return nil, nil, false
	})
	cl := client(t, port)
	for i := range 200 {
		if err := cl.ProduceSync(context.Background(), &kgo.Record{Value: []byte(strconv.Itoa(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	cl.Close()
	for name, lr := range runs {
		t.Run(name, func(t *testing.T) {
			reqs := lr.stop(t)
			if d := lr.s.Stats.Duplicates.Load(); d != 0 {
				t.Errorf("%d duplicate segments: the loopback's outgoing copies were not filtered", d)
			}
			if d := lr.s.Stats.KernelDrops.Load(); d != 0 {
				t.Errorf("kernel dropped %d packets", d)
			}
			var slow []string
			var prod int
			for _, r := range reqs {
				if r.APIKey != latency.APIProduce {
					continue
				}
				prod++
				if r.Wire > slo {
					slow = append(slow, strconv.Itoa(int(r.CorrelationID)))
				}
			}
			if prod != 200 || len(slow) != len(delayed) {
				t.Errorf("%d produce requests, %d over the SLO (%s); want 200 and %d", prod, len(slow), strings.Join(slow, ","), len(delayed))
			}
			compareWithTshark(t, lr.pcap, port, reqs, 1.0)
			t.Log(fmt.Sprintf("packets %d bytes %d", lr.s.Stats.Packets.Load(), lr.s.Stats.Bytes.Load()))
		})
	}
}

// TestProduceV13TopicNames: a current client produces with Produce v13,
// which names topics by id; the sniffer names them from the Metadata
// responses it saw.
func TestProduceV13TopicNames(t *testing.T) {
	_, port := cluster(t)
	lr := startLive(t, "lo", port)
	cl, err := kgo.NewClient(kgo.SeedBrokers(fmt.Sprintf("127.0.0.1:%d", port)), kgo.DefaultProduceTopic("orders"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := cl.ProduceSync(context.Background(), &kgo.Record{Value: []byte(strconv.Itoa(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	cl.Close()
	var n int
	for _, r := range lr.stop(t) {
		if r.APIKey != latency.APIProduce {
			continue
		}
		n++
		if r.APIVersion < 13 || len(r.Partitions) != 1 || r.Partitions[0].Topic != "orders" {
			t.Errorf("produce v%d partitions %+v, want v13+ to orders", r.APIVersion, r.Partitions)
		}
	}
	if n != 5 {
		t.Errorf("%d produce requests, want 5", n)
	}
}

// TestLiveIPv6 runs the broker on ::1: the port filter's IPv6 branch and
// the IPv6 decoding meet real packets.
func TestLiveIPv6(t *testing.T) {
	port := freePort(t)
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port), kfake.SeedTopics(1, "orders"),
		kfake.ListenFn(func(network, address string) (net.Listener, error) {
			_, p, _ := net.SplitHostPort(address)
			return net.Listen("tcp6", net.JoinHostPort("::1", p))
		}))
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	defer c.Close()
	lr := startLive(t, "any", port)
	cl, err := kgo.NewClient(kgo.SeedBrokers(fmt.Sprintf("[::1]:%d", port)), kgo.DefaultProduceTopic("orders"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if err := cl.ProduceSync(context.Background(), &kgo.Record{Value: []byte(strconv.Itoa(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	cl.Close()
	var n int
	for _, r := range lr.stop(t) {
		if r.APIKey == latency.APIProduce && r.Status == latency.Answered && r.Client.Addr().Is6() && r.Server.Port() == uint16(port) {
			n++
		}
	}
	if n != 20 || lr.s.Stats.Duplicates.Load() != 0 {
		t.Errorf("%d answered IPv6 produce requests, %d duplicates; want 20 and 0", n, lr.s.Stats.Duplicates.Load())
	}
}

// TestOpenLiveWithoutCapNetRaw re-runs this test binary as nobody and
// checks that opening a capture fails with an error that names the missing
// capability and the ways out.
func TestOpenLiveWithoutCapNetRaw(t *testing.T) {
	if os.Getenv("LOCKSCOPE_SNIFF_CHILD") != "" {
		_, err := OpenLive(LiveOptions{Interface: "lo", Ports: []uint16{9092}})
		fmt.Println("error:", err)
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("not root: cannot switch to another user")
	}
	// nobody must be able to reach the binary: copy it to a world-readable
	// directory.
	dir, err := os.MkdirTemp("", "lockscope-nocap")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "sniff.test")
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^TestOpenLiveWithoutCapNetRaw$")
	cmd.Env = append(os.Environ(), "LOCKSCOPE_SNIFF_CHILD=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	for _, want := range []string{"operation not permitted", "CAP_NET_RAW", "setcap cap_net_raw+ep", "--read"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("error lacks %q:\n%s", want, out)
		}
	}
}

// TestLiveMidStream: a producer's connection is established and used
// before the capture starts, as long-lived producer connections always
// are; then it sends one produce request (or a few) and the capture ends
// with the connection still open. Each request is found, although no
// frame after it confirms its header.
func TestLiveMidStream(t *testing.T) {
	for _, n := range []int{1, 3} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			_, port := cluster(t)
			cl := client(t, port)
			defer cl.Close()
			ctx := context.Background()
			if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("before the capture")}).FirstErr(); err != nil {
				t.Fatal(err)
			}
			lr := startLive(t, "lo", port)
			time.Sleep(200 * time.Millisecond) // the capture is attached
			for i := range n {
				if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(strconv.Itoa(i))}).FirstErr(); err != nil {
					t.Fatal(err)
				}
			}
			reqs := produces(lr.stop(t))
			if len(reqs) != n {
				t.Fatalf("%d produce requests, want %d (%s)", len(reqs), n, statsString(lr.s))
			}
			for _, r := range reqs {
				if r.Status != latency.Answered || r.Wire <= 0 || len(r.Partitions) != 1 || r.Partitions[0].Records != 1 {
					t.Errorf("request %+v: want answered, with a wire time and one record", r)
				}
			}
		})
	}
}
