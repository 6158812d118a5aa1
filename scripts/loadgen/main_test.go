package main

import (
	"bytes"
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lockscope/lockscope/internal/demobroker"
)

func TestLoadgenAgainstDemoBroker(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b, err := demobroker.Start(ctx, demobroker.Config{LogDir: t.TempDir(), Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	var out bytes.Buffer
	o := options{brokers: b.Addr(), topic: "lg", rate: 500, size: 100, acks: "all",
		duration: 2500 * time.Millisecond, interval: time.Second, slo: 65 * time.Millisecond, clients: 3}
	if err := run(ctx, o, &out); err != nil {
		t.Fatalf("loadgen: %v\n%s", err, out.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	windows := regexp.MustCompile(`^\s+\d+\.\ds  acked\s+\d+  errors 0  p50 \S+  p99 \S+  p999 \S+  max \S+  over-slo \d+$`)
	n := 0
	for _, l := range lines {
		if windows.MatchString(l) {
			n++
		}
	}
	if n < 2 {
		t.Errorf("want at least 2 interval lines, got %d:\n%s", n, out.String())
	}
	m := regexp.MustCompile(`^total: produced (\d+)  acked (\d+)  errors 0  p50 `).FindStringSubmatch(lines[len(lines)-1])
	if m == nil {
		t.Fatalf("no total line:\n%s", out.String())
	}
	produced, _ := strconv.Atoi(m[1])
	acked, _ := strconv.Atoi(m[2])
	if produced < 1000 || acked != produced {
		t.Errorf("produced %d, acked %d: want ~1250 produced, all acked", produced, acked)
	}
}

func TestOptionsValidate(t *testing.T) {
	good := options{brokers: "x:1", topic: "t", rate: 1, acks: "all", interval: time.Second, clients: 1}
	if err := good.Validate(); err != nil {
		t.Fatalf("valid options: %v", err)
	}
	for _, bad := range []func(*options){
		func(o *options) { o.brokers = "" },
		func(o *options) { o.rate = 0 },
		func(o *options) { o.acks = "2" },
		func(o *options) { o.interval = 0 },
		func(o *options) { o.size = -1 },
		func(o *options) { o.clients = 0 },
	} {
		o := good
		bad(&o)
		if o.Validate() == nil {
			t.Errorf("Validate(%+v): want an error", o)
		}
	}
}

func TestStats(t *testing.T) {
	var lat []time.Duration
	for i := 1; i <= 1000; i++ {
		lat = append(lat, time.Duration(i)*time.Millisecond)
	}
	got := stats(lat, 65*time.Millisecond)
	want := "p50 501ms  p99 991ms  p999 1s  max 1s  over-slo 935"
	if got != want {
		t.Errorf("stats = %q, want %q", got, want)
	}
}
