package pprofbuild

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/pprof/profile"
	"github.com/lockscope/lockscope/internal/jfr"
	"github.com/lockscope/lockscope/internal/testdata"
)

func TestThreadPool(t *testing.T) {
	for in, want := range map[string]string{
		"data-plane-kafka-request-handler-7":                                      "data-plane-kafka-request-handler",
		"data-plane-kafka-network-thread-1-ListenerName(PLAINTEXT)-PLAINTEXT-2":   "data-plane-kafka-network-thread",
		"data-plane-kafka-socket-acceptor-ListenerName(PLAINTEXT)-PLAINTEXT-9092": "data-plane-kafka-socket-acceptor-ListenerName(PLAINTEXT)-PLAINTEXT",
		"kafka-scheduler-0":        "kafka-scheduler",
		"ReplicaFetcherThread-0-1": "ReplicaFetcherThread",
		"ExpirationReaper-0-Fetch": "ExpirationReaper",
		"GC Thread#2":              "GC Thread",
		"main":                     "main",
		"C2 CompilerThread0":       "C2 CompilerThread0",
		"-1":                       "-1",
		"":                         "",
	} {
		if got := ThreadPool(in); got != want {
			t.Errorf("ThreadPool(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestAddMergesEqualSamples(t *testing.T) {
	b := New([2]string{"wall", "nanoseconds"}, [2]string{"offcpu", "nanoseconds"})
	leaf := b.Kernel("jbd2_log_wait_commit")
	root := b.Synthetic("[data-plane-kafka-request-handler]")
	l := Labels{Str: map[string]string{"thread": "h-1", "window": "slow"}, Num: map[string]int64{"tid": 7}}
	b.Add([]*profile.Location{leaf, root}, []int64{10, 0}, l)
	b.Add([]*profile.Location{leaf, root}, []int64{5, 3}, l)
	b.Add([]*profile.Location{leaf, root}, []int64{1, 1}, Labels{Str: map[string]string{"thread": "h-2"}})
	p, err := b.Profile()
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Sample) != 2 {
		t.Fatalf("%d samples, want 2 (equal ones merged)", len(p.Sample))
	}
	if got := p.Sample[0].Value; got[0] != 15 || got[1] != 3 {
		t.Errorf("merged values %v, want [15 3]", got)
	}
	if Total(p, "offcpu") != 4 || Total(p, "wall") != 16 || Total(p, "none") != 0 {
		t.Errorf("totals wall %d offcpu %d", Total(p, "wall"), Total(p, "offcpu"))
	}
	if p.Function[0].Name != "jbd2_log_wait_commit_[k]" {
		t.Errorf("kernel frame named %q", p.Function[0].Name)
	}
	var buf bytes.Buffer
	if err := p.Write(&buf); err != nil {
		t.Fatal(err)
	}
	if _, err := profile.Parse(&buf); err != nil {
		t.Fatalf("round trip: %v", err)
	}
}

// TestJavaFramesFromRecording names the frames of a real async-profiler
// recording with kernel frames (cpu mode) and checks the conventions.
func TestJavaFramesFromRecording(t *testing.T) {
	r, err := jfr.Open(testdata.JFR(t, "asprof-cpu-lock-alloc.jfr"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b := New([2]string{"samples", "count"})
	kinds := map[string]bool{}
	for {
		c, err := r.NextChunk()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		for c.Next() {
			s, ok := c.Event().ExecutionSample()
			if !ok || s.Stack == nil {
				continue
			}
			for i := range s.Stack.Frames {
				kinds[s.Stack.Frames[i].Type] = true
			}
			b.Add(b.JavaStack(nil, s.Stack), []int64{1}, Labels{})
		}
		if err := c.Err(); err != nil {
			t.Fatal(err)
		}
		b.ResetChunk()
	}
	p, err := b.Profile()
	if err != nil {
		t.Fatal(err)
	}
	if !kinds["Kernel"] || !kinds["Native"] {
		t.Fatalf("fixture lacks kernel or native frames: %v", kinds)
	}
	var kernel, java, native int
	for _, fn := range p.Function {
		if KindOf(fn) == KindNative {
			native++
			// The bare symbol, not "libc.so.6.symbol".
			if strings.HasPrefix(fn.Name, "lib") && strings.Contains(fn.Name, ".so") {
				t.Errorf("native function %q in file %q", fn.Name, fn.Filename)
			}
		}
		switch {
		case strings.HasSuffix(fn.Name, "_[k]"):
			kernel++
			if fn.Filename != "[kernel]" {
				t.Errorf("kernel function %q in file %q", fn.Name, fn.Filename)
			}
		case strings.HasPrefix(fn.Name, "lockscope.workload."):
			java++
			if strings.Contains(fn.Name, "/") {
				t.Errorf("Java function %q not in dotted form", fn.Name)
			}
		}
	}
	if kernel == 0 || java == 0 || native == 0 {
		t.Errorf("%d kernel, %d native and %d workload functions", kernel, native, java)
	}
	if Total(p, "samples") != 5319 {
		t.Errorf("%d samples, want the fixture's 5319 ExecutionSamples", Total(p, "samples"))
	}
}
