package capture

import (
	"bufio"
	"cmp"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/lockscope/lockscope/internal/bundle"
	"github.com/lockscope/lockscope/internal/loopfs"
	"github.com/lockscope/lockscope/internal/merge"
	"github.com/lockscope/lockscope/internal/profiler"
)

// contention runs testdata/Contention.java in a mode and captures it
// (JDK Flight Recorder, off-CPU collector, no latency source) for 6 s.
func contention(t *testing.T, mode string, args ...string) (*Report, *profile.Profile) {
	t.Helper()
	needRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	java, err := exec.LookPath("java")
	if err != nil {
		t.Fatal("java not found: run scripts/setup.sh")
	}
	cmd := exec.CommandContext(ctx, java, append([]string{"testdata/Contention.java", mode, "30"}, args...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	if sc := bufio.NewScanner(out); !sc.Scan() || !strings.HasPrefix(sc.Text(), "running") {
		t.Fatalf("Contention.java %s did not start", mode)
	}
	time.Sleep(time.Second)
	popts := profiler.DefaultOptions()
	popts.Profiler = profiler.JFR
	dir := filepath.Join(t.TempDir(), "bundle")
	rep, err := Run(ctx, Options{PID: cmd.Process.Pid, Duration: 6 * time.Second, SLO: 65 * time.Millisecond, Kind: "service",
		Latency: "none", Profiler: popts, MinBlock: 100 * time.Microsecond, RequireOffCPU: true, Out: dir})
	if err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	rep.Summary.WriteText(&text)
	t.Logf("%s", text.String())
	f, err := os.Open(filepath.Join(dir, bundle.AllProfile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p, err := profile.Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	return rep, p
}

// blameShare returns the share of the waiters' blame time whose holder
// path (the frames before the waiter's own lock frame) has every one of
// the given frames.
func blameShare(p *profile.Profile, frames ...string) float64 {
	i := -1
	for j, st := range p.SampleType {
		if st.Type == merge.TypeBlame {
			i = j
		}
	}
	var in, all int64
	for _, s := range p.Sample {
		if s.Value[i] == 0 || !strings.HasPrefix(s.Label["thread"][0], "waiter") {
			continue
		}
		all += s.Value[i]
		// The holder's part ends at the waiter's lock frame, the last "[lock".
		last := 0
		for j, l := range s.Location {
			if strings.HasPrefix(l.Line[0].Function.Name, "[lock") {
				last = j
			}
		}
		names := map[string]bool{}
		for _, l := range s.Location[:last] {
			names[l.Line[0].Function.Name] = true
		}
		ok := true
		for _, f := range frames {
			found := names[f]
			for n := range names {
				found = found || strings.HasPrefix(f, "~") && strings.Contains(n, f[1:])
			}
			ok = ok && found
		}
		if ok {
			in += s.Value[i]
		}
	}
	if all == 0 {
		return 0
	}
	return float64(in) / float64(all)
}

// blameRanking groups the waiters' blame time by the holder and the
// holder's innermost frame (the kernel function it waited in, or its leaf
// Java frame), largest first.
func blameRanking(p *profile.Profile) []blameEntry {
	i := -1
	for j, st := range p.SampleType {
		if st.Type == merge.TypeBlame {
			i = j
		}
	}
	by := map[[2]string]int64{}
	for _, s := range p.Sample {
		if s.Value[i] == 0 || !strings.HasPrefix(s.Label["thread"][0], "waiter") || len(s.Location) == 0 {
			continue
		}
		var k [2]string
		k[1] = s.Location[0].Line[0].Function.Name
		for _, l := range s.Location {
			if n := l.Line[0].Function.Name; strings.HasPrefix(n, "[held by ") {
				k[0] = strings.TrimSuffix(strings.TrimPrefix(n, "[held by "), "]")
				break
			}
		}
		by[k] += s.Value[i]
	}
	var out []blameEntry
	for k, v := range by {
		out = append(out, blameEntry{k[0], k[1], time.Duration(v)})
	}
	slices.SortFunc(out, func(a, b blameEntry) int { return cmp.Compare(b.time, a.time) })
	return out
}

type blameEntry struct {
	holder, leaf string
	time         time.Duration
}

// minHolderShare is the least share of the waiters' blocked time the
// holder's sleep must be charged with. By construction it is nearly all of
// it (0.9 and more on a quiet machine), but the waiters also hold the lock
// briefly and are preempted holding it on a loaded one, which takes some
// of the time (0.84 in a CI run beside other packages): what the blame
// guarantees is that the holder's sleep is most of it.
const minHolderShare = 0.6

func TestBlameMonitorHolderSleeps(t *testing.T) {
	rep, p := contention(t, "monitor")
	if got := blameShare(p, "[held by holder]", "java.lang.Thread.sleep"); got < minHolderShare {
		t.Errorf("%.2f of the waiters' blocked time charged to the holder's sleep, want >= %v (blame stats %+v)", got, minHolderShare, rep.Summary.Stats.Blame)
	}
}

func TestBlameReentrantLockHolderSleeps(t *testing.T) {
	rep, p := contention(t, "reentrant")
	if got := blameShare(p, "[held by holder]", "java.lang.Thread.sleep"); got < minHolderShare {
		t.Errorf("%.2f of the waiters' blocked time charged to the holder's sleep, want >= %v (blame stats %+v)", got, minHolderShare, rep.Summary.Stats.Blame)
	}
}

func TestBlameChainOfTwo(t *testing.T) {
	rep, p := contention(t, "chain")
	// waiter -> middle (holds A, waits for B) -> sleeper (holds B, sleeps).
	if got := blameShare(p, "[held by middle]", "[held by sleeper]", "java.lang.Thread.sleep"); got < 0.6 {
		t.Errorf("%.2f of the waiters' blocked time resolved through the middle thread to the sleeper's sleep, want >= 0.6 (chained %d)",
			got, rep.Summary.Stats.Blame.Chained)
	}
}

func TestBlameNotifyIsNotLockHolding(t *testing.T) {
	rep, p := contention(t, "notify")
	bl := rep.Summary.Stats.Blame
	if bl.ConditionWakeups < 50 {
		t.Errorf("%d condition wakeups counted, want the notifyAll wakeups (about 4 every 20 ms)", bl.ConditionWakeups)
	}
	// The notifier sleeps outside the monitor: never the cause of a wait.
	if got := blameShare(p, "[held by notifier]", "java.lang.Thread.sleep"); got > 0.05 {
		t.Errorf("%.2f of the waiters' time blamed on the notifier's sleep outside the monitor", got)
	}
}

// TestBlameHolderFsyncsUnderJournalPressure: the holder fsyncs inside the
// monitor on a loop-mounted ext4 while other threads load its journal; the
// waiters' time ends in the holder's jbd2 waits.
func TestBlameHolderFsyncsUnderJournalPressure(t *testing.T) {
	mnt := loopfs.Mount(t, loopfs.Options{SizeMiB: 256, DirectIO: true})
	rep, p := contention(t, "fsync", mnt)
	// What the feature guarantees is the ranking: of everything the
	// waiters are blamed on, the holder's journal-commit wait comes first.
	// Its share depends on how the machine schedules the holder and the
	// waiters (which also hold the monitor briefly, and are preempted
	// holding it on a loaded machine), so it is only logged.
	rank := blameRanking(p)
	for _, e := range rank[:min(5, len(rank))] {
		t.Logf("blamed on %s in %s: %v", e.holder, e.leaf, e.time)
	}
	if len(rank) == 0 {
		t.Fatalf("no blame time for the waiters (blame stats %+v)", rep.Summary.Stats.Blame)
	}
	if top := rank[0]; top.holder != "holder" || top.leaf != "jbd2_log_wait_commit_[k]" {
		t.Errorf("waiters' time blamed first on %s in %s (%v), want the holder in jbd2_log_wait_commit",
			top.holder, top.leaf, top.time)
	}
	t.Logf("%.2f of the waiters' blocked time charged to the holder's jbd2 waits", blameShare(p, "[held by holder]", "~jbd2"))
}
