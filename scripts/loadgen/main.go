// Command loadgen produces to a Kafka broker (the demo broker, or a real one)
// at a steady rate with franz-go and prints produce latency percentiles every
// few seconds, as a producer-side view to check lockscope's against.
//
//	go run ./scripts/loadgen --brokers 127.0.0.1:9092 --rate 2000 --duration 30s
//
// Latency is per record: from the Produce call to its acknowledgement, with
// linger 0 so that batching adds as little as the client allows.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

type options struct {
	brokers  string
	topic    string
	rate     int
	size     int
	acks     string
	duration time.Duration
	interval time.Duration
	slo      time.Duration
	clients  int
}

func (o *options) Validate() error {
	switch {
	case o.brokers == "":
		return errors.New("--brokers is required")
	case o.topic == "":
		return errors.New("--topic is required")
	case o.rate <= 0:
		return fmt.Errorf("--rate must be positive, got %d", o.rate)
	case o.size < 0:
		return fmt.Errorf("--size must not be negative, got %d", o.size)
	case o.interval <= 0:
		return fmt.Errorf("--interval must be positive, got %v", o.interval)
	case o.duration < 0:
		return fmt.Errorf("--duration must not be negative, got %v", o.duration)
	case o.clients <= 0:
		return fmt.Errorf("--clients must be positive, got %d", o.clients)
	}
	if _, err := o.requiredAcks(); err != nil {
		return err
	}
	return nil
}

func (o *options) requiredAcks() (kgo.Acks, error) {
	switch o.acks {
	case "all", "-1":
		return kgo.AllISRAcks(), nil
	case "1", "leader":
		return kgo.LeaderAck(), nil
	case "0", "none":
		return kgo.NoAck(), nil
	}
	return kgo.Acks{}, fmt.Errorf("--acks must be all, 1 or 0, got %q", o.acks)
}

// window collects latencies of acknowledged records.
type window struct {
	mu      sync.Mutex
	lat     []time.Duration
	errs    int
	lastErr error
}

func (w *window) add(d time.Duration, err error) {
	w.mu.Lock()
	if err != nil {
		w.errs++
		w.lastErr = err
	} else {
		w.lat = append(w.lat, d)
	}
	w.mu.Unlock()
}

func (w *window) take() ([]time.Duration, int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	lat, errs, last := w.lat, w.errs, w.lastErr
	w.lat, w.errs, w.lastErr = nil, 0, nil
	return lat, errs, last
}

// stats formats percentiles of lat (sorted in place).
func stats(lat []time.Duration, slo time.Duration) string {
	if len(lat) == 0 {
		return "p50 -  p99 -  p999 -  max -  over-slo 0"
	}
	slices.Sort(lat)
	q := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	over := len(lat) - sortSearch(lat, slo)
	return fmt.Sprintf("p50 %v  p99 %v  p999 %v  max %v  over-slo %d",
		round(q(0.50)), round(q(0.99)), round(q(0.999)), round(lat[len(lat)-1]), over)
}

// sortSearch returns the number of latencies <= slo in sorted lat.
func sortSearch(lat []time.Duration, slo time.Duration) int {
	i, _ := slices.BinarySearchFunc(lat, slo, func(a, b time.Duration) int {
		if a <= b {
			return -1
		}
		return 1
	})
	return i
}

func round(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}

func run(ctx context.Context, o options, out io.Writer) error {
	if err := o.Validate(); err != nil {
		return err
	}
	acks, _ := o.requiredAcks()
	// Several clients, as many producers share a broker: each has its own
	// connection, so their requests reach the handlers concurrently.
	clients := make([]*kgo.Client, o.clients)
	for i := range clients {
		cl, err := kgo.NewClient(
			kgo.SeedBrokers(strings.Split(o.brokers, ",")...),
			kgo.DefaultProduceTopic(o.topic),
			kgo.RequiredAcks(acks),
			kgo.DisableIdempotentWrite(),
			kgo.ProducerLinger(0),
			kgo.AllowAutoTopicCreation(),
		)
		if err != nil {
			return fmt.Errorf("creating kafka client: %w", err)
		}
		defer cl.Close()
		clients[i] = cl
	}

	if o.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.duration)
		defer cancel()
	}
	value := make([]byte, o.size)
	for i := range value {
		value[i] = byte('a' + i%26)
	}
	var cur, total window
	var wg sync.WaitGroup
	start := time.Now()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	report := time.NewTicker(o.interval)
	defer report.Stop()
	var produced int64
	fmt.Fprintf(out, "loadgen: %d records/s of %d bytes to %s on %s from %d clients, acks=%s, slo %v\n", o.rate, o.size, o.topic, o.brokers, o.clients, o.acks, o.slo)
	printWindow := func() {
		lat, errs, last := cur.take()
		total.mu.Lock()
		total.lat = append(total.lat, lat...)
		total.errs += errs
		total.mu.Unlock()
		line := fmt.Sprintf("%6.1fs  acked %6d  errors %d  %s", time.Since(start).Seconds(), len(lat), errs, stats(slices.Clone(lat), o.slo))
		if last != nil {
			line += "  last error: " + last.Error()
		}
		fmt.Fprintln(out, line)
	}
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-report.C:
			printWindow()
		case now := <-tick.C:
			due := int64(now.Sub(start).Seconds() * float64(o.rate))
			for ; produced < due; produced++ {
				t0 := time.Now()
				wg.Add(1)
				// The client owns the record until its promise runs.
				clients[produced%int64(len(clients))].Produce(context.Background(), &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
					cur.add(time.Since(t0), err)
					wg.Done()
				})
			}
		}
	}
	flushCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, cl := range clients {
		if err := cl.Flush(flushCtx); err != nil {
			return fmt.Errorf("flushing outstanding records: %w", err)
		}
	}
	wg.Wait()
	printWindow()
	lat, errs, _ := total.take()
	fmt.Fprintf(out, "total: produced %d  acked %d  errors %d  %s\n", produced, len(lat), errs, stats(lat, o.slo))
	if errs > 0 {
		return fmt.Errorf("%d records failed", errs)
	}
	return nil
}

func main() {
	var o options
	flag.StringVar(&o.brokers, "brokers", "127.0.0.1:9092", "comma-separated seed brokers")
	flag.StringVar(&o.topic, "topic", "lockscope-demo", "topic to produce to (auto-created)")
	flag.IntVar(&o.rate, "rate", 2000, "records per second")
	flag.IntVar(&o.size, "size", 512, "record value size in bytes")
	flag.StringVar(&o.acks, "acks", "all", "required acks: all, 1 or 0")
	flag.DurationVar(&o.duration, "duration", 30*time.Second, "how long to produce (0: until interrupted)")
	flag.DurationVar(&o.interval, "interval", 5*time.Second, "reporting interval")
	flag.DurationVar(&o.slo, "slo", 65*time.Millisecond, "latency SLO counted in over-slo")
	flag.IntVar(&o.clients, "clients", 4, "producer clients (connections), records spread round-robin")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, o, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}
