package cluster

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lockscope/lockscope/internal/capture"
	"github.com/lockscope/lockscope/internal/profiler"
	"github.com/lockscope/lockscope/internal/verdict"
)

// TestServedBy: the broker whose requests a latency source holds is the
// process with the request log open, or the one listening on the sniffed
// port; a source that names no process, or names two, names none.
func TestServedBy(t *testing.T) {
	self := os.Getpid()
	other := os.Getppid()
	log := filepath.Join(t.TempDir(), "kafka-request.log")
	f, err := os.Create(log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	for _, c := range []struct {
		source string
		want   int
	}{
		{"requestlog:" + log, self},
		{"requestlog:" + filepath.Join(filepath.Dir(log), ".", "kafka-request.log"), self},
		{"requestlog:" + log + ".1", 0},
		{"kafka:" + port, self},
		{"kafka:" + port + ",9092", 0},
		{"csv:" + log, 0},
	} {
		if got := servedBy(c.source, []int{other, self}); got != c.want {
			t.Errorf("%s: served by %d, want %d", c.source, got, c.want)
		}
	}
	if got := servedBy("requestlog:"+log, []int{self, self}); got != 0 {
		t.Errorf("the same pid twice: served by %d, want none (ambiguous)", got)
	}
}

// TestCulpritOf: a follower is blamed only when the first cause of its
// replica fetchers' waiting stands out, in that cause's words.
func TestCulpritOf(t *testing.T) {
	f := verdict.Finding{Share: 0.94, StandsOut: true, Excess: 500e6,
		Sentence: "94% of the slow windows' excess waiting: ReplicaFetcherThread threads slept in Thread.sleep (UnifiedLog.stall)"}
	v := &verdict.Verdict{SlowTime: 1e9, Findings: []verdict.Finding{f}}
	c, score := culpritOf("broker 2 (pid 9)", v)
	if c == nil || c.Broker != "broker 2 (pid 9)" || score != 0.5 ||
		c.Cause != "ReplicaFetcherThread threads slept in Thread.sleep (UnifiedLog.stall) (94% of its excess waiting in those windows)" {
		t.Errorf("culprit %+v, score %v", c, score)
	}
	v.Findings[0].Excess = 50e6
	if c, _ := culpritOf("broker 2", v); c != nil {
		t.Errorf("blamed for fetchers held up 5%% of the windows: %+v", c)
	}
	v.Findings[0].Excess, v.Findings[0].StandsOut = 500e6, false
	if c, _ := culpritOf("broker 2", v); c != nil {
		t.Errorf("blamed with nothing standing out: %+v", c)
	}
}

// TestRead: a cluster file is read back, and one whose bundle dirs leave
// the cluster directory is refused.
func TestRead(t *testing.T) {
	dir := t.TempDir()
	res := &Result{Format: Format, Latency: "requestlog:x", Members: []Member{{PID: 1, Broker: "0", Name: "broker 0 (pid 1)", Dir: "broker-0", Served: true}},
		Culprit: &capture.Culprit{Broker: "broker 2", Cause: "x"}}
	if err := write(dir, res); err != nil {
		t.Fatal(err)
	}
	got, err := Read(dir)
	if err != nil || len(got.Members) != 1 || !got.Members[0].Served || got.Culprit.Broker != "broker 2" {
		t.Fatalf("read back %+v, %v", got, err)
	}
	if !IsCluster(dir) || IsCluster(t.TempDir()) {
		t.Error("IsCluster")
	}
	res.Members[0].Dir = "../elsewhere"
	if err := write(dir, res); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(dir); err == nil || !strings.Contains(err.Error(), "inside the cluster directory") {
		t.Errorf("a bundle dir outside: %v", err)
	}
	if _, err := Read(t.TempDir()); err == nil || !strings.Contains(err.Error(), "not a cluster capture") {
		t.Errorf("no cluster file: %v", err)
	}
}

// TestOptionsValidate: a cluster capture needs two distinct pids and a
// directory, and what every capture needs.
func TestOptionsValidate(t *testing.T) {
	ok := capture.Options{Duration: 1e9, SLO: 65e6, Kind: "service", Latency: "none"}
	for _, c := range []struct {
		o    Options
		want string
	}{
		{Options{Capture: ok, PIDs: []int{1}, Out: "x"}, "two pids or more"},
		{Options{Capture: ok, PIDs: []int{1, 1}, Out: "x"}, "once"},
		{Options{Capture: ok, PIDs: []int{1, 2}}, "-o"},
		{Options{Capture: capture.Options{Duration: 1e9, Kind: "service", Latency: "none"}, PIDs: []int{1, 2}, Out: "x"}, "--slo"},
	} {
		if err := c.o.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want an error about %q", c.o.PIDs, err, c.want)
		}
	}
}

// TestPrefixWriter: each broker's progress lines are prefixed with its
// name, whole lines only, however the writes are cut.
func TestPrefixWriter(t *testing.T) {
	var b strings.Builder
	var mu sync.Mutex
	w := &prefixWriter{w: &b, mu: &mu, prefix: "broker 1: "}
	for _, s := range []string{"profiling pid", " 42\nwarn", "ing: x\n"} {
		w.Write([]byte(s))
	}
	if got, want := b.String(), "broker 1: profiling pid 42\nbroker 1: warning: x\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestRunNotJVMs: a cluster capture of processes that are not JVMs fails
// for each, saying so, and still writes the cluster file and summary.
func TestRunNotJVMs(t *testing.T) {
	var pids []int
	for range 2 {
		cmd := exec.Command("sleep", "60")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		pids = append(pids, cmd.Process.Pid)
	}
	dir := filepath.Join(t.TempDir(), "cluster")
	res, err := Run(context.Background(), Options{PIDs: pids, Out: dir,
		Capture: capture.Options{Duration: time.Second, SLO: 65 * time.Millisecond, Kind: "service", Latency: "none", MinBlock: time.Millisecond, Profiler: profiler.DefaultOptions()}})
	if err == nil || strings.Count(err.Error(), "not a HotSpot JVM") != 2 {
		t.Fatalf("error %v, want both pids named as not JVMs", err)
	}
	if res == nil || len(res.Members) != 2 || res.Members[0].Error == "" {
		t.Fatalf("result %+v", res)
	}
	text, err := os.ReadFile(filepath.Join(dir, SummaryText))
	if err != nil || strings.Count(string(text), "failed: ") != 2 || strings.Contains(string(text), "follower") {
		t.Errorf("cluster.txt: %v\n%s", err, text)
	}
}
