package pprofui

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"
)

// writeProfile writes a one-sample-type profile with stacks leaf-first;
// edit, if given, changes it before it is written.
func writeProfile(t *testing.T, path string, samples map[string]int64, edit ...func(*profile.Profile)) {
	t.Helper()
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "wall", Unit: "nanoseconds"}},
		PeriodType: &profile.ValueType{Type: "wall", Unit: "nanoseconds"},
	}
	funcs := map[string]*profile.Function{}
	locs := map[string]*profile.Location{}
	for stack, v := range samples {
		var ls []*profile.Location
		for _, name := range strings.Split(stack, ";") {
			if locs[name] == nil {
				fn := &profile.Function{ID: uint64(len(funcs) + 1), Name: name}
				funcs[name] = fn
				p.Function = append(p.Function, fn)
				loc := &profile.Location{ID: uint64(len(locs) + 1), Line: []profile.Line{{Function: fn}}}
				locs[name] = loc
				p.Location = append(p.Location, loc)
			}
			ls = append(ls, locs[name])
		}
		p.Sample = append(p.Sample, &profile.Sample{Location: ls, Value: []int64{v}})
	}
	for _, e := range edit {
		e(p)
	}
	if err := p.CheckValid(); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := p.Write(f); err != nil {
		t.Fatal(err)
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	return string(b)
}

// serve starts Serve and returns the UI's URL, and a stop function that
// checks Serve's return.
func serve(t *testing.T, o Options) (string, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	o.Addr = "127.0.0.1:0"
	o.Ready = func(u string) { ready <- u }
	go func() { done <- Serve(ctx, o) }()
	var url string
	select {
	case url = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("Serve: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("pprof UI not ready after 30s")
	}
	return url, func() {
		t.Helper()
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve after cancel: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Serve did not return after cancel")
		}
	}
}

func TestServeWithDiffBase(t *testing.T) {
	dir := t.TempDir()
	slow, base := filepath.Join(dir, "slow.pb.gz"), filepath.Join(dir, "baseline.pb.gz")
	writeProfile(t, slow, map[string]int64{"jbd2_log_wait_commit;UnifiedLog.append;main": 900, "poll;main": 100})
	writeProfile(t, base, map[string]int64{"jbd2_log_wait_commit;UnifiedLog.append;main": 100, "poll;main": 900})

	url, stop := serve(t, Options{Profile: slow, Base: base,
		Extra: map[string]http.Handler{"/report": http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			io.WriteString(w, "report page")
		})}})
	top := get(t, url+"/top")
	// The diff: append's frame grew by 800, poll's shrank by 800.
	if !strings.Contains(top, "UnifiedLog.append") || !strings.Contains(top, "-800") {
		t.Errorf("top view lacks the diff:\n%.2000s", top)
	}
	if fg := get(t, url+"/flamegraph"); !strings.Contains(fg, "jbd2_log_wait_commit") {
		t.Errorf("flame graph lacks the kernel frame")
	}
	if r := get(t, url+"/report"); r != "report page" {
		t.Errorf("extra handler: %q", r)
	}
	stop()
}

// TestDiffPerSecond: a bundle's slow profile covers 3 s of windows and its
// baseline 19 s. UnifiedLog.append blocked 50% of the slow windows' time
// and 10% of the baseline's: it grew, although its absolute time in the
// baseline (1.9 s) is more than in the windows (1.5 s).
func TestDiffPerSecond(t *testing.T) {
	dir := t.TempDir()
	slow, base := filepath.Join(dir, "slow.pb.gz"), filepath.Join(dir, "baseline.pb.gz")
	const s = int64(time.Second)
	covers := func(d int64) func(*profile.Profile) {
		return func(p *profile.Profile) {
			p.DurationNanos = d
			p.Mapping = []*profile.Mapping{{ID: 1, File: "kafka.Kafka (pid 42)", HasFunctions: true}}
		}
	}
	writeProfile(t, slow, map[string]int64{"UnifiedLog.append;main": 15 * s / 10, "poll;main": 15 * s / 10}, covers(3*s))
	writeProfile(t, base, map[string]int64{"UnifiedLog.append;main": 19 * s / 10, "poll;main": 171 * s / 10}, covers(19*s))

	var log strings.Builder
	url, stop := serve(t, Options{Profile: slow, Base: base, Log: &log})
	defer stop()
	top := get(t, url+"/top")
	// Per second: append 1.5 s − 1.9 s × 3/19 = +1.2 s; poll −1.2 s.
	for _, want := range []string{"1.20s", "-1.20s"} {
		if !strings.Contains(top, want) {
			t.Errorf("top view lacks %s (per-second diff):\n%.3000s", want, top)
		}
	}
	if strings.Contains(top, "-0.40s") || strings.Contains(top, "-400ms") {
		t.Errorf("top view shows the absolute diff (append −0.4 s)")
	}
	if !strings.Contains(top, "<title>kafka.Kafka (pid 42) wall</title>") {
		t.Errorf("title does not name the target: %.400s", top)
	}
	if !strings.Contains(log.String(), "diff per second: 3s of slow.pb.gz against 19s of baseline.pb.gz") {
		t.Errorf("no note on the scaling: %q", log.String())
	}

	// --absolute keeps pprof's plain subtraction.
	url2, stop2 := serve(t, Options{Profile: slow, Base: base, Absolute: true})
	defer stop2()
	if top := get(t, url2+"/top"); !strings.Contains(top, "-0.40s") && !strings.Contains(top, "-400ms") {
		t.Errorf("absolute diff lacks append's −0.4 s:\n%.3000s", top)
	}
}

func TestServeErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.pb.gz")
	os.WriteFile(bad, []byte("not a profile"), 0o644)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := Serve(ctx, Options{Addr: "127.0.0.1:0", Profile: bad}); err == nil {
		t.Error("corrupt profile: want an error")
	}
	if err := Serve(ctx, Options{Addr: "127.0.0.1:0", Profile: filepath.Join(dir, "missing")}); err == nil {
		t.Error("missing profile: want an error")
	}
	if err := Serve(ctx, Options{Addr: "nonsense", Profile: bad}); err == nil {
		t.Error("bad address: want an error")
	}
}
