package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestSniffLive runs `lockscope sniff` on lo while a kgo producer writes to
// a kfake broker that holds 3 of 60 produce requests for 100 ms.
func TestSniffLive(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipping: not root (live capture needs CAP_NET_RAW)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port), kfake.SeedTopics(2, "orders"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(fmt.Sprintf("127.0.0.1:%d", port)), kgo.DefaultProduceTopic("orders"), kgo.ClientID("sniff-cmd-test"))
	if err != nil {
		t.Fatal(err)
	}
	// The first produce to kfake can be slow on its own; the sniffer
	// starts after it and meets the connections mid-stream.
	if err := cl.ProduceSync(context.Background(), &kgo.Record{Value: []byte("warm-up")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	c.ControlKey(0, func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if n.Add(1)%20 == 10 {
			c.SleepControl(func() { time.Sleep(100 * time.Millisecond) })
		}
		return nil, nil, false
	})
	out := filepath.Join(t.TempDir(), "requests.jsonl")
	type result struct {
		stdout, stderr string
		err            error
	}
	done := make(chan result, 1)
	go func() {
		o, e, err := runLockscope(t, "sniff", "--port", strconv.Itoa(port), "--iface", "lo", "--duration", "3s", "--slo", "65ms", "-o", out)
		done <- result{o, e, err}
	}()
	time.Sleep(500 * time.Millisecond)
	for i := range 60 {
		if err := cl.ProduceSync(context.Background(), &kgo.Record{Value: []byte(strconv.Itoa(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	cl.Close()
	r := <-done
	if r.err != nil {
		t.Fatalf("sniff: %v\n%s%s", r.err, r.stdout, r.stderr)
	}
	t.Log(r.stdout)
	if got := strings.Count(r.stdout, "  slow "); got != 3 {
		t.Errorf("%d slow requests printed, want 3", got)
	}
	for _, re := range []string{
		`(?m)^\d\d:\d\d:\d\d +\d+ req/s  p50 [\d.]+ms  p99 [\d.]+ms  max [\d.]+ms  over SLO \d+  drops 0`,
		// Produce v13 names topics by id; the name is known once a
		// Metadata response was seen, which may precede the capture.
		`slow .* wire 10\d\.\d+ms .*(orders|[\w-]{22})-\d\(1 rec, \d+ B\) client sniff-cmd-test from 127\.0\.0\.1:\d+ corr \d+`,
		`60 produce requests: 60 answered`,
		`over 65ms: 3\n`,
		`kernel drops 0`,
	} {
		if !regexp.MustCompile(re).MatchString(r.stdout) {
			t.Errorf("output does not match %s", re)
		}
	}
	b, err := os.ReadFile(out)
	if err != nil || strings.Count(string(b), "\n") != 60 {
		t.Errorf("requests file: %d lines, %v; want 60", strings.Count(string(b), "\n"), err)
	}
}

func TestSniffReadRequestLog(t *testing.T) {
	log := filepath.Join(t.TempDir(), "kafka-request.log")
	var lines []string
	for i := range 10 {
		total := 1.5
		if i == 4 {
			total = 120.25
		}
		lines = append(lines, fmt.Sprintf(`[2025-01-02 10:00:0%d,000] DEBUG Completed request:{"requestHeader":{"requestApiKey":0,"requestApiVersion":9,"correlationId":%d,"clientId":"p1","requestApiKeyName":"PRODUCE"},"request":{"acks":-1,"topicData":[{"name":"orders","partitionData":[{"index":3,"recordsSizeInBytes":100}]}]},"connection":"10.0.0.1:9092-10.0.0.2:5000-0","totalTimeMs":%g,"requestQueueTimeMs":0.1,"localTimeMs":1,"remoteTimeMs":0,"throttleTimeMs":0,"responseQueueTimeMs":0.1,"sendTimeMs":0.1} (kafka.request.logger)`, i, i, total))
	}
	if err := os.WriteFile(log, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, err := runLockscope(t, "sniff", "--read", log, "--log-tz", "UTC")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	for _, want := range []string{"request log: 10 lines, 10 requests", "slow 10:00:04.000000 wire 120.250ms", "orders-3", "over 65ms: 1"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
}

func TestSniffErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"sniff", "--read", "/nonexistent/capture.pcap"}, "no such file"},
		{[]string{"sniff", "--iface", "nosuchif0", "--duration", "1s"}, "no such interface"},
		{[]string{"sniff", "--slo", "0s", "--read", "x"}, "--slo"},
		{[]string{"sniff", "--metric", "p99", "--read", "x"}, "--metric"},
	} {
		_, _, err := runLockscope(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want one mentioning %q", tc.args, err, tc.want)
		}
	}
}
