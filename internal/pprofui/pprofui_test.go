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

// writeProfile writes a one-sample-type profile with stacks leaf-first.
func writeProfile(t *testing.T, path string, samples map[string]int64) {
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

func TestServeWithDiffBase(t *testing.T) {
	dir := t.TempDir()
	slow, base := filepath.Join(dir, "slow.pb.gz"), filepath.Join(dir, "baseline.pb.gz")
	writeProfile(t, slow, map[string]int64{"jbd2_log_wait_commit;UnifiedLog.append;main": 900, "poll;main": 100})
	writeProfile(t, base, map[string]int64{"jbd2_log_wait_commit;UnifiedLog.append;main": 100, "poll;main": 900})

	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, Options{Addr: "127.0.0.1:0", Profile: slow, Base: base, Ready: func(u string) { ready <- u },
			Extra: map[string]http.Handler{"/report": http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				io.WriteString(w, "report page")
			})}})
	}()
	var url string
	select {
	case url = <-ready:
	case err := <-done:
		t.Fatalf("Serve: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("pprof UI not ready after 30s")
	}
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
