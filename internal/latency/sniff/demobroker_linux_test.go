package sniff

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/lockscope/lockscope/internal/demobroker"
	"github.com/lockscope/lockscope/internal/latency"
)

// TestDemoBrokerAgainstLoadgen runs the project's load generator against the
// demo broker (a JVM imitating Kafka's produce path, stalling its append
// lock now and then) under a live capture, and compares the client's
// per-record latencies with the sniffer's. Every record the client saw
// acknowledged must be in an answered produce request the sniffer saw,
// and no client quantile may be below the sniffer's: a record's client
// latency is its request's wire latency plus the client's own queueing and
// the network. The differences are logged.
func TestDemoBrokerAgainstLoadgen(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("not root: a live capture needs CAP_NET_RAW")
	}
	if testing.Short() {
		t.Skip("short: starts a JVM")
	}
	root, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	loadgen := filepath.Join(t.TempDir(), "loadgen")
	build := exec.Command("go", "build", "-o", loadgen, "./scripts/loadgen")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build loadgen: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b, err := demobroker.Start(ctx, demobroker.Config{LogDir: t.TempDir(), Partitions: 3, StallMs: 100, StallEvery: 400})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	_, portStr, _ := splitHostPort(b.Addr())
	port := atoiOrFail(t, portStr)
	lr := startLive(t, "lo", port)
	out, err := exec.CommandContext(ctx, loadgen, "--brokers", b.Addr(), "--rate", "800", "--duration", "6s",
		"--clients", "4", "--size", "512", "--interval", "10s", "--slo", "65ms").CombinedOutput()
	if err != nil {
		t.Fatalf("loadgen: %v\n%s", err, out)
	}
	reqs := lr.stop(t)
	m := regexp.MustCompile(`total: produced (\d+)  acked (\d+)  errors 0  p50 (\S+)  p99 (\S+)  p999 (\S+)  max (\S+)  over-slo (\d+)`).FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("no total line in loadgen's output:\n%s", out)
	}
	acked := atoiOrFail(t, m[2])
	client := map[string]time.Duration{}
	for i, name := range []string{"p50", "p99", "p999", "max"} {
		d, err := time.ParseDuration(m[3+i])
		if err != nil {
			t.Fatal(err)
		}
		client[name] = d
	}
	// The sniffer's latencies per record: each record of a request waited
	// (at least) its request's wire latency.
	var perRecord []time.Duration
	var records, overSLO, requests int
	for _, r := range reqs {
		if r.APIKey != latency.APIProduce || r.Status != latency.Answered {
			continue
		}
		requests++
		for _, p := range r.Partitions {
			for range p.Records {
				perRecord = append(perRecord, r.Wire)
			}
			records += p.Records
			if r.Wire > slo {
				overSLO += p.Records
			}
		}
	}
	slices.Sort(perRecord)
	if len(perRecord) == 0 {
		t.Fatalf("sniffer saw no produce records; loadgen:\n%s", out)
	}
	q := func(p float64) time.Duration { return perRecord[min(len(perRecord)-1, int(p*float64(len(perRecord))))] }
	sniffer := map[string]time.Duration{"p50": q(0.5), "p99": q(0.99), "p999": q(0.999), "max": perRecord[len(perRecord)-1]}
	t.Logf("loadgen: %s", m[0])
	t.Logf("sniffer: %d produce requests carrying %d records, %d records in requests over 65ms", requests, records, overSLO)
	for _, name := range []string{"p50", "p99", "p999", "max"} {
		t.Logf("%-4s client %-10v sniffer %-10v client − sniffer %v", name, client[name], sniffer[name], client[name]-sniffer[name])
		// loadgen rounds to 10 µs above 1 ms.
		if sniffer[name] > client[name]+10*time.Microsecond {
			t.Errorf("%s: sniffer %v above the client's %v: the wire cannot be slower than the client", name, sniffer[name], client[name])
		}
	}
	if records != acked {
		t.Errorf("sniffer saw %d records in answered produce requests, loadgen had %d acknowledged", records, acked)
	}
}

func splitHostPort(s string) (string, string, error) {
	i := len(s) - 1
	for i >= 0 && s[i] != ':' {
		i--
	}
	return s[:max(i, 0)], s[i+1:], nil
}

func atoiOrFail(t *testing.T, s string) int {
	t.Helper()
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			t.Fatalf("not a number: %q", s)
		}
		n = n*10 + int(c-'0')
	}
	return n
}
