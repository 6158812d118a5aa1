package demobroker

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Port is the port of the broker's address, as a latency source names it
// ("kafka:" + b.Port()).
func (b *Broker) Port() string { return b.addr[strings.LastIndexByte(b.addr, ':')+1:] }

// Produce runs clients franz-go producers sending about rate 16-byte
// records a second in all to topic on the broker at addr (linger 0, no
// idempotence: one request per record, as a latency test wants), until stop
// is called or ctx ends. stop waits for them to close. Each client sends to
// the topic's partitions in turn: franz-go's default partitioner sticks to
// one partition for 64 KiB of records (minutes at this rate), so a few
// clients could all miss a partition and the broker that leads it, which
// then sees no produce request at all (a CI run did: a capture of the
// leader of orders-0 found none).
func Produce(ctx context.Context, addr, topic string, clients, rate int) (stop func(), err error) {
	if clients <= 0 || rate <= 0 {
		return nil, fmt.Errorf("producing: %d clients at %d records/s: both must be positive", clients, rate)
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); wg.Wait() }) }
	for range clients {
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic), kgo.DisableIdempotentWrite(),
			kgo.ProducerLinger(0), kgo.AllowAutoTopicCreation(), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
		if err != nil {
			stop()
			return nil, fmt.Errorf("producing to %s: %w", addr, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer cl.Close()
			tick := time.NewTicker(time.Second * time.Duration(clients) / time.Duration(rate))
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
					cl.Produce(ctx, &kgo.Record{Value: []byte("0123456789abcdef")}, nil)
				}
			}
		}()
	}
	return stop, nil
}

// ProduceForTest is Produce for tests: a failure to start fails tb, and
// the producers stop when the test ends, or earlier through stop.
func ProduceForTest(tb testing.TB, addr, topic string, clients, rate int) (stop func()) {
	tb.Helper()
	stop, err := Produce(context.Background(), addr, topic, clients, rate)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(stop)
	return stop
}
