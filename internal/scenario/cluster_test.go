package scenario

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lockscope/lockscope/internal/capture"
	"github.com/lockscope/lockscope/internal/cluster"
	"github.com/lockscope/lockscope/internal/demobroker"
	"github.com/lockscope/lockscope/internal/loopfs"
	"github.com/lockscope/lockscope/internal/merge"
	"github.com/lockscope/lockscope/internal/profiler"
	"github.com/lockscope/lockscope/internal/report"
	"github.com/lockscope/lockscope/internal/verdict"
)

// Cluster scenarios: a replicated demo cluster of three brokers on this
// host, producers sending acks=all (franz-go's default) to every
// partition, one cause injected into one broker, and a cluster capture of
// all three with the request log of broker 0 as the latency source. The
// answer must name the phase the slow requests spent their time in and,
// when it is replication, the follower that held them up and why.

// clusterRun is one cluster scenario.
type clusterRun struct {
	// each adjusts broker i's configuration (its fault switches).
	each func(i int, c *demobroker.Config)
	// fault runs beside the capture, if set, and is stopped after it.
	fault func(ctx context.Context, t *testing.T) (stop func())
	// sniff makes the latency source the Kafka sniffer on broker 0's port
	// instead of its request log: no phases, the followers' fetches.
	sniff bool
}

// clusterOutcome is what a cluster capture wrote.
type clusterOutcome struct {
	res    *cluster.Result
	leader *merge.Summary
	dir    string
}

// run starts the cluster and the producers, captures the three brokers
// for 8 s and reads the result.
func (r clusterRun) run(t *testing.T) clusterOutcome {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("not root: the capture needs BPF (CI runs as root)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	bs, requestLog := demobroker.StartTestCluster(t, ctx, r.each)
	// The others are found through metadata.
	defer demobroker.ProduceForTest(t, bs[0].Addr(), "orders", 6, 150)()
	time.Sleep(3 * time.Second) // topic creation, followers learning it, JIT warm-up
	if r.fault != nil {
		defer r.fault(ctx, t)()
	}
	popts := profiler.DefaultOptions()
	popts.Profiler = profiler.JFR
	dir := filepath.Join(t.TempDir(), "cluster")
	var progress strings.Builder
	var pids []int
	for _, b := range bs {
		pids = append(pids, b.Pid())
	}
	co := capture.Options{Duration: 8 * time.Second, SLO: 65 * time.Millisecond, Kind: "service", Latency: "requestlog:" + requestLog,
		Profiler: popts, MinBlock: time.Millisecond, RequireOffCPU: true, Version: "test", Progress: &progress}
	if r.sniff {
		co.Latency, co.Interface = "kafka:"+bs[0].Port(), "lo"
	}
	res, err := cluster.Run(ctx, cluster.Options{PIDs: pids, Out: dir, Capture: co})
	if err != nil {
		t.Fatalf("cluster capture: %v\n%s", err, progress.String())
	}
	text, err := os.ReadFile(filepath.Join(dir, cluster.SummaryText))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("cluster.txt:\n%s", text)
	if keep := os.Getenv("LOCKSCOPE_SCENARIO_KEEP"); keep != "" {
		os.RemoveAll(keep)
		if err := os.CopyFS(keep, os.DirFS(dir)); err != nil {
			t.Log(err)
		}
	}
	out := clusterOutcome{res: res, dir: dir}
	for _, m := range res.Members {
		if !m.Served {
			logFindings(t, m.Name, filepath.Join(dir, m.Dir))
		}
		if m.Served {
			if m.Broker != "0" {
				t.Fatalf("the broker with the request log open is %s, want broker 0", m.Name)
			}
			out.leader = readSummary(t, filepath.Join(dir, m.Dir))
		}
	}
	if out.leader == nil {
		t.Fatalf("no broker found to hold the request log %s: %+v", requestLog, res.Members)
	}
	if p := out.leader.Phases; !r.sniff && (p == nil || p.Slow.Requests == 0) {
		t.Fatalf("no phases of slow produce requests in the leader's summary: %+v", p)
	}
	return out
}

// logFindings logs the findings of a bundle's verdict, with their rates.
func logFindings(t *testing.T, name, dir string) {
	raw, err := os.ReadFile(filepath.Join(dir, capture.SummaryJSON))
	if err != nil {
		t.Logf("%s: %v", name, err)
		return
	}
	var s merge.Summary
	if err := json.Unmarshal(raw, &s); err != nil || s.Verdict == nil {
		t.Logf("%s: no verdict (%v)", name, err)
		return
	}
	for _, f := range s.Verdict.Findings {
		t.Logf("%s: %s %s share %.2f, %.3f vs %.3f thread-s/s, p %.3f, stands out %v", name, f.Kind, f.Thread, f.Share, f.SlowRate, f.BaseRate, f.P, f.StandsOut)
	}
}

// follower checks that the answer names replication, blames broker 2 and
// says what held it, in which want all appear.
func (o clusterOutcome) follower(t *testing.T, want ...string) {
	t.Helper()
	v := o.leader.Verdict
	if o.leader.Phases.Dominant != "remote" || v.Phase == nil {
		t.Fatalf("slow requests' dominant phase %q (verdict phase %+v), want remote (the followers): %s", o.leader.Phases.Dominant, v.Phase, v.Answer)
	}
	c := o.res.Culprit
	if c == nil || !strings.HasPrefix(c.Broker, "broker 2 ") {
		t.Fatalf("culprit %+v, want broker 2", c)
	}
	for _, w := range want {
		if !strings.Contains(c.Cause, w) {
			t.Errorf("culprit's cause %q lacks %q", c.Cause, w)
		}
	}
	if !strings.Contains(o.res.Answer, "the follower that held them up: broker 2") || o.res.Answer != v.Answer {
		t.Errorf("cluster answer %q, leader's %q: want both to name broker 2", o.res.Answer, v.Answer)
	}
	page, err := os.ReadFile(filepath.Join(o.dir, "broker-0", "report.html"))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{`id="phase-bars"`, `id="phase-table"`, "<title>remote: ", "broker 2"} {
		if !strings.Contains(string(page), w) {
			t.Errorf("the leader's report.html lacks %q", w)
		}
	}
	// lockscope compare lists the phases beside the verdict (a capture
	// after a fix would show remote shrinking).
	cmp, err := report.Compare([]string{filepath.Join(o.dir, "broker-0")}, report.CompareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	if err := cmp.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "Phases of the slow produce requests") || !strings.Contains(text.String(), "remote") {
		t.Errorf("compare lacks the phases:\n%s", text.String())
	}
}

// TestScenarioClusterSlowFollower: broker 2's appends, as a follower too,
// stall 200 ms every 20; the leader's acks=all requests wait in the
// purgatory, which no thread of the leader is busy with.
func TestScenarioClusterSlowFollower(t *testing.T) {
	o := clusterRun{each: func(i int, c *demobroker.Config) {
		if i == 2 {
			c.StallMs, c.StallEvery = 200, 20
		}
	}}.run(t)
	o.follower(t, "ReplicaFetcherThread", "Thread.sleep")
}

// TestScenarioClusterSlowFollowerWire: the stalling follower again, with
// the Kafka sniffer on the leader's port as the latency source (no request
// log, as on most production brokers): the followers' fetches on the wire
// show which one the slow acks=all requests waited for, and its capture
// why.
func TestScenarioClusterSlowFollowerWire(t *testing.T) {
	o := clusterRun{sniff: true, each: func(i int, c *demobroker.Config) {
		if i == 2 {
			c.StallMs, c.StallEvery = 200, 20
		}
	}}.run(t)
	r := o.leader.Replication
	if r == nil || r.Dominant != "broker 2" {
		t.Fatalf("replication from the wire %+v, want broker 2 the follower slow requests waited for", r)
	}
	v := o.leader.Verdict
	if v.Phase == nil || v.Phase.Source != "wire" || !strings.HasPrefix(v.Phase.Broker, "broker 2") {
		t.Fatalf("verdict's phase %+v, want remote from the wire, broker 2: %s", v.Phase, v.Answer)
	}
	if c := o.res.Culprit; c == nil || !strings.HasPrefix(c.Broker, "broker 2 ") || !strings.Contains(c.Cause, "Thread.sleep") {
		t.Errorf("culprit %+v, want broker 2's fetcher asleep", c)
	}
	if !strings.Contains(o.res.Answer, "broker 2 was the last to fetch past the records") || !strings.Contains(o.res.Answer, "; there, ReplicaFetcherThread") {
		t.Errorf("cluster answer %q", o.res.Answer)
	}
	page, err := os.ReadFile(filepath.Join(o.dir, "broker-0", "report.html"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(page), `id="replication-table"`) || !strings.Contains(string(page), "<td>broker 2</td>") {
		t.Error("the leader's report.html lacks the replication table naming broker 2")
	}
}

// TestScenarioClusterFollowerDisk: broker 2 keeps its logs on an ext4
// whose journal a neighbour loads in windows, and fsyncs every append
// (flush.messages=1): its fetcher waits for journal commits, and the
// leader's acks=all requests for it. Allegro's cause, one broker away.
func TestScenarioClusterFollowerDisk(t *testing.T) {
	disk := loopfs.Mount(t, loopfs.Options{SizeMiB: 512, DirectIO: true})
	o := clusterRun{
		each: func(i int, c *demobroker.Config) {
			if i == 2 {
				c.LogDir, c.FlushMessages = filepath.Join(disk, "kafka-logs"), 1
			}
		},
		fault: func(ctx context.Context, t *testing.T) func() {
			return cycling(func(int) Fault { return JournalPressureBulk(disk, 2, 64) })(ctx, t, 0)
		},
	}.run(t)
	o.follower(t, "ReplicaFetcherThread", "filesystem")
}

// TestScenarioClusterLeaderLocal: the leader's own append lock is held
// 200 ms every 50 appends (about once a second). Its produce requests wait for the lock (local
// time); its followers' fetches queue behind the same lock, so acks=all
// requests also wait longer for them (remote time). The followers are
// not to blame: their replica fetchers were only waiting for the leader's
// responses. The leader's own verdict names the lock.
func TestScenarioClusterLeaderLocal(t *testing.T) {
	o := clusterRun{each: func(i int, c *demobroker.Config) {
		if i == 0 {
			c.StallMs, c.StallEvery = 200, 50
		}
	}}.run(t)
	v := o.leader.Verdict
	if o.res.Culprit != nil {
		t.Errorf("follower %s blamed for a leader-local stall: %s", o.res.Culprit.Broker, v.Answer)
	}
	if v.Phase != nil && !strings.Contains(v.Answer, "nothing held up the followers' replica fetchers") {
		t.Errorf("replication named without clearing the followers: %s", v.Answer)
	}
	p := o.leader.Phases
	if local := 1; p.Slow.Mean[local] < 3*p.Within.Mean[local] {
		t.Errorf("slow requests' local time %v, others' %v: the lock stall should show there", p.Slow.Mean[local], p.Within.Mean[local])
	}
	var f *verdict.Finding
	for i := range v.Findings {
		if v.Findings[i].StandsOut && v.Findings[i].Kind == verdict.Lock {
			f = &v.Findings[i]
			break
		}
	}
	if f == nil || !strings.Contains(f.App, "UnifiedLog.stall") {
		t.Errorf("the leader's verdict does not name its append lock's holder sleeping in UnifiedLog.stall: %s", v.Answer)
	}
}
