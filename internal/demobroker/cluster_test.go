package demobroker

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lockscope/lockscope/internal/latency"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// testCluster starts three brokers for a test (closed when it ends) and
// returns them, their addresses and a client of them all.
func testCluster(t *testing.T, ctx context.Context, cfg Config, each func(i int, c *Config)) ([]*Broker, []string, *kgo.Client) {
	t.Helper()
	bs, err := StartCluster(ctx, 3, cfg, each)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, b := range bs {
			b.Close()
		}
	})
	var seeds []string
	for _, b := range bs {
		seeds = append(seeds, b.Addr())
	}
	admin, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(admin.Close)
	return bs, seeds, admin
}

// metadataOf is a Metadata request for one topic, creating it.
func metadataOf(topic string) *kmsg.MetadataRequest {
	req := kmsg.NewPtrMetadataRequest()
	req.AllowAutoTopicCreation = true
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	return req
}

// leaderOf returns, by the cluster's metadata, a partition of topic whose
// leader is broker id, and its replicas.
func leaderOf(t *testing.T, cl *kgo.Client, topic string, id int32) (int32, []int32) {
	t.Helper()
	resp, err := metadataOf(topic).RequestWith(context.Background(), cl)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Brokers) != 3 {
		t.Fatalf("metadata lists %d brokers, want 3", len(resp.Brokers))
	}
	for _, p := range resp.Topics[0].Partitions {
		if len(p.Replicas) != 3 || len(p.ISR) != 3 {
			t.Errorf("partition %d: replicas %v, ISR %v; want 3 of each", p.Partition, p.Replicas, p.ISR)
		}
		if p.Leader == id {
			return p.Partition, p.Replicas
		}
	}
	t.Fatalf("no partition of %s led by broker %d", topic, id)
	return 0, nil
}

// createdLedBy0 creates topic orders and returns, once the followers know
// it, the partition broker 0 leads and its replicas. The first metadata
// request creates the topic; the followers learn it from their leaders'
// metadata within a second.
func createdLedBy0(t *testing.T, admin *kgo.Client) (int32, []int32) {
	t.Helper()
	leaderOf(t, admin, "orders", 0)
	time.Sleep(1500 * time.Millisecond)
	return leaderOf(t, admin, "orders", 0)
}

// produce sends n records to one partition with acks, one at a time, and
// returns the slowest. Its client id is acks-1 or acks-all.
func produce(t *testing.T, seeds []string, topic string, partition int32, acks kgo.Acks, n int) time.Duration {
	t.Helper()
	name := "acks-all"
	if acks == kgo.LeaderAck() {
		name = "acks-1"
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.RequiredAcks(acks), kgo.DisableIdempotentWrite(),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0), kgo.ClientID(name))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var worst time.Duration
	for i := range n {
		t0 := time.Now()
		r := &kgo.Record{Topic: topic, Partition: partition, Value: []byte(fmt.Sprintf("record %d", i))}
		if err := cl.ProduceSync(context.Background(), r).FirstErr(); err != nil {
			t.Fatalf("acks %v: %v", acks, err)
		}
		worst = max(worst, time.Since(t0))
	}
	return worst
}

// TestReplicatedCluster: three demo brokers replicate every partition;
// franz-go's acks=all produce returns once the followers have the records,
// and a follower whose appends stall 200 ms holds acks=all requests (not
// acks=1 ones) up by that much. The leader's request log shows the wait
// as the remote phase of the acks=all requests, and none in acks=1's.
func TestReplicatedCluster(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	root := t.TempDir()
	bs, seeds, admin := testCluster(t, ctx, Config{LogDir: root, Partitions: 3, IOThreads: 2, NetworkThreads: 1},
		func(i int, c *Config) {
			if i == 0 {
				c.RequestLog = filepath.Join(root, "request-0.log")
			}
			if i == 2 {
				c.StallMs, c.StallEvery = 200, 1 // broker 2's every append sleeps
			}
		})
	p, replicas := createdLedBy0(t, admin)
	t.Logf("partition %d: replicas %v", p, replicas)

	leaderOnly := produce(t, seeds, "orders", p, kgo.LeaderAck(), 10)
	all := produce(t, seeds, "orders", p, kgo.AllISRAcks(), 10)
	t.Logf("slowest of 10: acks=1 %v, acks=all %v", leaderOnly, all)
	if all < 200*time.Millisecond {
		t.Errorf("acks=all took at most %v with a follower stalling 200 ms per append: it did not wait for the follower", all)
	}
	if leaderOnly >= 200*time.Millisecond {
		t.Errorf("acks=1 took %v: the leader waited for its followers", leaderOnly)
	}
	// The broker logs a request once its response is sent, which may be
	// after the client has it: wait for the 20 lines.
	var remote map[string][]time.Duration
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		remote = map[string][]time.Duration{}
		f, err := os.Open(filepath.Join(root, "request-0.log"))
		if err != nil {
			t.Fatal(err)
		}
		_, err = latency.ReadRequestLog(f, time.Local, func(r *latency.Request) error {
			if r.APIKey == latency.APIProduce && r.Breakdown != nil {
				remote[r.ClientID] = append(remote[r.ClientID], r.Breakdown.Remote)
			}
			return nil
		})
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if len(remote["acks-1"])+len(remote["acks-all"]) >= 20 || time.Now().After(deadline) {
			break
		}
	}
	t.Logf("remote phase in the leader's request log: %v", remote)
	if len(remote["acks-1"]) != 10 || len(remote["acks-all"]) != 10 {
		t.Errorf("request log has %d acks=1 and %d acks=all produce requests, want 10 each", len(remote["acks-1"]), len(remote["acks-all"]))
	}
	for _, d := range remote["acks-1"] {
		if d != 0 {
			t.Errorf("an acks=1 request has %v of remote time", d)
		}
	}
	for _, d := range remote["acks-all"] {
		if d < 150*time.Millisecond {
			t.Errorf("an acks=all request has %v of remote time, with a follower stalling 200 ms per append", d)
		}
	}
	// librdkafka (kcat) produces with acks=all too, routed by the same
	// metadata.
	kcat := exec.CommandContext(ctx, "kcat", "-P", "-b", strings.Join(seeds, ","), "-t", "orders", "-p", fmt.Sprint(p),
		"-X", "request.required.acks=-1")
	kcat.Stdin = strings.NewReader("one\ntwo\nthree\n")
	if out, err := kcat.CombinedOutput(); err != nil {
		t.Errorf("kcat acks=all: %v: %s", err, out)
	}
	// Every replica ends with the same log.
	var sizes []int64
	deadline := time.Now().Add(10 * time.Second)
	for {
		sizes = sizes[:0]
		for i := range bs {
			st, err := os.Stat(filepath.Join(root, fmt.Sprintf("broker-%d", i), fmt.Sprintf("orders-%d", p), "00000000000000000000.log"))
			if err != nil {
				t.Fatal(err)
			}
			sizes = append(sizes, st.Size())
		}
		if sizes[0] > 0 && sizes[0] == sizes[1] && sizes[1] == sizes[2] || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if sizes[0] == 0 || sizes[0] != sizes[1] || sizes[1] != sizes[2] {
		t.Errorf("replica log sizes %v, want three equal non-empty logs", sizes)
	}
}

// TestClusterISRShrinks: a follower that stops keeping up (every append
// sleeps 5 s) leaves the ISR after replica.lag.time.max.ms (1 s here), and
// acks=all requests then complete without it.
func TestClusterISRShrinks(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, seeds, admin := testCluster(t, ctx, Config{LogDir: t.TempDir(), Partitions: 3, IOThreads: 2, NetworkThreads: 1, ReplicaLagTimeMax: time.Second},
		func(i int, c *Config) {
			if i == 2 {
				c.StallMs, c.StallEvery = 5000, 1
			}
		})
	p, _ := createdLedBy0(t, admin)
	first := produce(t, seeds, "orders", p, kgo.AllISRAcks(), 1) // broker 2 is stuck in its append now
	time.Sleep(1500 * time.Millisecond)
	later := produce(t, seeds, "orders", p, kgo.AllISRAcks(), 5)
	t.Logf("acks=all: first %v (waits for the ISR to shrink), then at most %v", first, later)
	// The follower counted as caught up at its last fetch, which the
	// leader parks up to 500 ms while there is nothing new: the ISR
	// shrinks 0.5 to 1 s after the request.
	if first < 400*time.Millisecond {
		t.Errorf("the first acks=all request took %v: it did not wait for the stuck follower to leave the ISR", first)
	}
	if later >= 900*time.Millisecond {
		t.Errorf("acks=all requests after the ISR shrank took up to %v", later)
	}
	// Asked of the leader, which keeps the ISR (followers learn it from
	// the leader's metadata, and broker 2's fetcher is stuck).
	raw, err := admin.Broker(0).Request(ctx, metadataOf("orders"))
	if err != nil {
		t.Fatal(err)
	}
	resp := raw.(*kmsg.MetadataResponse)
	for _, pp := range resp.Topics[0].Partitions {
		if pp.Partition == p && len(pp.ISR) != 2 {
			t.Errorf("partition %d ISR %v, want the two brokers that keep up", p, pp.ISR)
		}
	}
}
