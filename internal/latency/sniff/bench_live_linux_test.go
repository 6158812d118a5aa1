package sniff

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/lockscope/lockscope/internal/latency"
)

var (
	liveRate     = flag.Int("sniff.rate", 50000, "produce requests per second offered in BenchmarkLiveCapture")
	liveDuration = flag.Duration("sniff.duration", 5*time.Second, "how long BenchmarkLiveCapture offers load")
	liveConns    = flag.Int("sniff.conns", 128, "client connections in BenchmarkLiveCapture")
)

// echoBroker answers every request frame at once with a minimal response
// carrying its correlation id: the load is the capture's, not a broker's.
func echoBroker(b *testing.B) (port int, stop func()) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				r := bufio.NewReaderSize(c, 1<<16)
				resp := make([]byte, 8+40)
				binary.BigEndian.PutUint32(resp, uint32(len(resp)-4))
				frame := make([]byte, 1<<16)
				for {
					if _, err := io.ReadFull(r, frame[:4]); err != nil {
						return
					}
					n := int(binary.BigEndian.Uint32(frame))
					if n > len(frame) {
						frame = make([]byte, n)
					}
					if _, err := io.ReadFull(r, frame[:n]); err != nil {
						return
					}
					copy(resp[4:8], frame[4:8])
					if _, err := c.Write(resp); err != nil {
						return
					}
				}
			}()
		}
	}()
	return l.Addr().(*net.TCPAddr).Port, func() { l.Close(); wg.Wait() }
}

// BenchmarkLiveCapture offers -sniff.rate produce requests per second over
// -sniff.conns loopback connections (one write, so one segment, each) for
// -sniff.duration (at most 5 in flight per connection, like Kafka clients)
// while a live capture on lo follows them, and reports the
// rate reached, the requests the sniffer matched, kernel drops and lost
// segments. The load generator, the echo broker and the capture share the
// machine's CPUs.
func BenchmarkLiveCapture(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("not root: a live capture needs CAP_NET_RAW")
	}
	for b.Loop() {
		port, stop := echoBroker(b)
		var matched, unmatched atomic.Int64
		var statuses [4]atomic.Int64
		s, err := New(Options{Ports: []uint16{uint16(port)}}, func(r *latency.Request) {
			statuses[r.Status].Add(1)
			if r.Status == latency.Answered {
				matched.Add(1)
			} else {
				unmatched.Add(1)
			}
		})
		if err != nil {
			b.Fatal(err)
		}
		c, err := OpenLive(LiveOptions{Interface: "lo", Ports: []uint16{uint16(port)}, BufferBytes: 256 << 20})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- c.Run(ctx, s, 0, nil) }()

		req := kmsg.NewPtrProduceRequest()
		req.Version = 7
		req.Acks = 1
		topic := kmsg.NewProduceRequestTopic()
		topic.Topic = "orders"
		part := kmsg.NewProduceRequestTopicPartition()
		part.Records = make([]byte, 61+300)
		binary.BigEndian.PutUint32(part.Records[8:], 49+300)
		part.Records[16] = 2
		binary.BigEndian.PutUint32(part.Records[57:], 3)
		topic.Partitions = append(topic.Partitions, part)
		req.Topics = append(req.Topics, topic)
		frame := kmsg.NewRequestFormatter(kmsg.FormatterClientID("bench")).AppendRequest(nil, req, 0)

		var sent, received atomic.Int64
		perConn := float64(*liveRate) / float64(*liveConns)
		start := time.Now()
		deadline := start.Add(*liveDuration)
		var wg sync.WaitGroup
		for range *liveConns {
			conn, err := net.Dial("tcp", "127.0.0.1:"+itoa(port))
			if err != nil {
				b.Fatal(err)
			}
			// At most 5 requests in flight per connection, as Kafka
			// clients' max.in.flight.requests.per.connection default.
			inflight := make(chan struct{}, 5)
			wg.Add(2)
			go func() {
				defer wg.Done()
				r := bufio.NewReader(conn)
				hdr := make([]byte, 48)
				for {
					if _, err := io.ReadFull(r, hdr); err != nil {
						return
					}
					<-inflight
					received.Add(1)
				}
			}()
			go func() {
				defer wg.Done()
				defer conn.(*net.TCPConn).CloseWrite()
				f := append([]byte(nil), frame...)
				var corr int32
				for now := time.Now(); now.Before(deadline); now = time.Now() {
					// Pace: as many requests as the elapsed time allows.
					due := int32(now.Sub(start).Seconds() * perConn)
					for ; corr < due; corr++ {
						inflight <- struct{}{}
						binary.BigEndian.PutUint32(f[8:], uint32(corr))
						if _, err := conn.Write(f); err != nil {
							if !errors.Is(err, net.ErrClosed) {
								b.Error(err)
							}
							return
						}
						sent.Add(1)
					}
					time.Sleep(200 * time.Microsecond)
				}
			}()
		}
		wg.Wait()
		elapsed := time.Since(start)
		// Let the ring drain: wait until no packet came for 300 ms; the
		// wait beyond that is the backlog the capture had at the end.
		drainStart := time.Now()
		for last := s.Stats.Packets.Load(); ; {
			time.Sleep(300 * time.Millisecond)
			n := s.Stats.Packets.Load()
			if n == last {
				break
			}
			last = n
		}
		backlog := time.Since(drainStart) - 300*time.Millisecond
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		s.Flush(time.Now().UnixNano())
		c.Close()
		stop()
		b.ReportMetric(float64(sent.Load())/elapsed.Seconds(), "offered-req/s")
		b.ReportMetric(float64(matched.Load())/elapsed.Seconds(), "matched-req/s")
		b.ReportMetric(float64(s.Stats.KernelDrops.Load()), "kernel-drops")
		b.ReportMetric(float64(s.Stats.Holes.Load()), "lost-segments")
		b.ReportMetric(backlog.Seconds(), "backlog-s")
		b.Logf("sent %d, answered %d, sniffer matched %d (unanswered %d, lost responses %d), packets %d, kernel drops %d, holes %d, out of order %d, duplicates %d, resyncs %d, unmatched responses %d, evicted %d",
			sent.Load(), received.Load(), matched.Load(), statuses[latency.Unanswered].Load(), statuses[latency.LostResponse].Load(),
			s.Stats.Packets.Load(), s.Stats.KernelDrops.Load(), s.Stats.Holes.Load(), s.Stats.OutOfOrder.Load(), s.Stats.Duplicates.Load(),
			s.Kafka().Resyncs.Load(), s.Kafka().UnmatchedResponses.Load(), s.Kafka().Evicted.Load())
	}
}

func itoa(i int) string {
	var b [20]byte
	n := len(b)
	for {
		n--
		b[n] = byte('0' + i%10)
		i /= 10
		if i == 0 {
			return string(b[n:])
		}
	}
}
