package scenario

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lockscope/lockscope/internal/capture"
	"github.com/lockscope/lockscope/internal/demobroker"
	"github.com/lockscope/lockscope/internal/profiler"
)

// TestScenarioClusterSlowFollower: a replicated demo cluster of three
// brokers in which broker 2's appends (as a follower too) stall 200 ms every
// 20; producers use acks=all. A capture of the leader, broker 0, with its
// request log as the latency source finds the slow requests' time in the
// remote phase (the purgatory, waiting for the followers), which no thread
// of the leader is busy with.
func TestScenarioClusterSlowFollower(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("not root: the capture needs BPF (CI runs as root)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	root := t.TempDir()
	bs, err := demobroker.StartCluster(ctx, 3, demobroker.Config{LogDir: root, Partitions: 3}, func(i int, c *demobroker.Config) {
		c.RequestLog = filepath.Join(root, fmt.Sprintf("request-%d.log", i))
		if i == 2 {
			c.StallMs, c.StallEvery = 200, 20
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, b := range bs {
			b.Close()
		}
	}()
	// franz-go produces with acks=all by default.
	defer demobroker.ProduceForTest(t, bs[0].Addr(), "orders", 8, 300)() // the others are found through metadata
	time.Sleep(3 * time.Second)                                          // topic creation, followers learning it, JIT warm-up
	popts := profiler.DefaultOptions()
	popts.Profiler = profiler.JFR
	dir := filepath.Join(t.TempDir(), "bundle")
	var progress strings.Builder
	if _, err := capture.Run(ctx, capture.Options{PID: bs[0].Pid(), Duration: 8 * time.Second, SLO: 65 * time.Millisecond, Kind: "service",
		Latency: "requestlog:" + filepath.Join(root, "request-0.log"), Profiler: popts, MinBlock: time.Millisecond,
		RequireOffCPU: true, Out: dir, Version: "test", Progress: &progress}); err != nil {
		t.Fatalf("capture: %v\n%s", err, progress.String())
	}
	s := readSummary(t, dir)
	if s.Phases == nil || s.Phases.Slow.Requests == 0 {
		t.Fatalf("no phases of slow produce requests in the summary: %+v", s.Phases)
	}
	if s.Phases.Dominant != "remote" {
		t.Errorf("slow requests' dominant phase %q, want remote (the followers): %s", s.Phases.Dominant, s.Phases.Sentence)
	}
	page, err := os.ReadFile(filepath.Join(dir, "report.html"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`id="phase-bars"`, `id="phase-table"`, "<title>remote: "} {
		if !strings.Contains(string(page), want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	if keep := os.Getenv("LOCKSCOPE_SCENARIO_KEEP"); keep != "" {
		os.RemoveAll(keep)
		if err := os.CopyFS(keep, os.DirFS(dir)); err != nil {
			t.Log(err)
		}
	}
}
