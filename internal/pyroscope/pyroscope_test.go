package pyroscope

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/pprof/profile"

	"github.com/lockscope/lockscope/internal/bundle"
	"github.com/lockscope/lockscope/internal/jfr"
	"github.com/lockscope/lockscope/internal/latency"
	"github.com/lockscope/lockscope/internal/merge"
	"github.com/lockscope/lockscope/internal/offcpu"
	"github.com/lockscope/lockscope/internal/pyroscope/pyroscopetest"
	"github.com/lockscope/lockscope/internal/testdata"
)

func TestSanitizeLabelName(t *testing.T) {
	for in, want := range map[string]string{
		"broker":          "broker",
		"kafka-cluster":   "kafka_cluster",
		"k8s.io/pod":      "k8s_io_pod",
		"9zone":           "_9zone",
		" dc ":            "dc",
		"Mixed_Case_OK_1": "Mixed_Case_OK_1",
		"":                "",
	} {
		if got := SanitizeLabelName(in); got != want {
			t.Errorf("SanitizeLabelName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestIngestName(t *testing.T) {
	got := IngestName("kafka-broker", map[string]string{
		"slo_breach": "true", "host": "b1", "kafka-cluster": "main,eu", "empty": " ", "zone": "{a}",
	})
	want := "kafka-broker{host=b1,kafka_cluster=main_eu,slo_breach=true,zone=_a_}"
	if got != want {
		t.Errorf("IngestName = %q, want %q", got, want)
	}
	app, labels, err := pyroscopetest.ParseName(got)
	if err != nil || app != "kafka-broker" || labels["kafka_cluster"] != "main_eu" || len(labels) != 4 {
		t.Errorf("ParseName(%q) = %q %v %v", got, app, labels, err)
	}
}

func TestOptionsValidate(t *testing.T) {
	ok := Options{URL: "http://127.0.0.1:4040"}
	for _, tc := range []struct {
		name string
		mod  func(*Options)
		want string // substring of the error; "" for none
	}{
		{"ok", func(*Options) {}, ""},
		{"labels sanitized", func(o *Options) { o.Labels = map[string]string{"kafka-cluster": "x", "dc": "y"} }, ""},
		{"no url", func(o *Options) { o.URL = "" }, "--pyroscope: give"},
		{"bad scheme", func(o *Options) { o.URL = "ftp://x" }, "want http://"},
		{"no host", func(o *Options) { o.URL = "http://" }, "want http://"},
		{"bad app", func(o *Options) { o.AppName = "kafka broker" }, `' ' is not allowed`},
		{"reserved label", func(o *Options) { o.Labels = map[string]string{"__name__": "x"} }, "Pyroscope's own"},
		{"slo_breach label", func(o *Options) { o.Labels = map[string]string{"slo_breach": "x"} }, "set by lockscope"},
		{"colliding labels", func(o *Options) { o.Labels = map[string]string{"a-b": "x", "a.b": "y"} }, "both become a_b"},
		{"bearer and basic", func(o *Options) { o.BearerToken, o.BasicAuthUser, o.BasicAuthPassword = "t", "u", "p" }, "not both"},
		{"basic without password", func(o *Options) { o.BasicAuthUser = "u" }, "both a user and a password"},
		{"negative timeout", func(o *Options) { o.Timeout = -1 }, "negative timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := ok
			tc.mod(&o)
			err := o.Validate()
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("Validate() = %v, want %q", err, tc.want)
			}
		})
	}
}

// mergedFixture merges a shared async-profiler recording (wall and lock
// of a Kafka-like workload) with one off-CPU interval, with a slow window
// over the middle of the recording: real merged profiles with every
// sample type but cpu.
func mergedFixture(t testing.TB) *merge.Result {
	t.Helper()
	path := testdata.JFR(t, "asprof-wall-lock-monotonic.jfr")
	r, err := jfr.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	c, err := r.NextChunk()
	if err != nil {
		t.Fatal(err)
	}
	start, dur := c.Header.StartTicks, c.Header.DurationNanos
	r.Close()
	var off bytes.Buffer
	ow := bundle.NewOffCPUWriter(&off)
	ow.Write(&bundle.Interval{TID: 1, Thread: "kafka-scheduler-0", Start: uint64(start + dur/3), End: uint64(start + dur/3 + 2e6),
		State: offcpu.Uninterruptible, Kernel: []bundle.Frame{{Name: "jbd2_log_wait_commit", Kind: bundle.KindKernel}}})
	if err := ow.Flush(); err != nil {
		t.Fatal(err)
	}
	ws := &latency.WindowSet{Clock: latency.Monotonic, Windows: []latency.Window{{Start: start + dur/4, End: start + dur/2}}}
	res, err := merge.Merge(merge.Input{Recording: path, OffCPU: &off}, merge.Options{Windows: ws})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func total(p *profile.Profile, typ string) int64 {
	i := slices.IndexFunc(p.SampleType, func(v *profile.ValueType) bool { return v.Type == typ })
	var n int64
	for _, s := range p.Sample {
		n += s.Value[i]
	}
	return n
}

func TestSplit(t *testing.T) {
	res := mergedFixture(t)
	from := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	until := from.Add(time.Minute)
	profs, err := Split(res.Slow, from, until, map[string]string{LabelSLOBreach: "true"})
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, pr := range profs {
		types = append(types, pr.Type)
		p, err := profile.ParseData(pr.Data)
		if err != nil {
			t.Fatalf("%s: %v", pr.Type, err)
		}
		if len(p.SampleType) != 1 || p.SampleType[0].Type != pr.Type || p.SampleType[0].Unit != "nanoseconds" {
			t.Errorf("%s: sample types %v", pr.Type, p.SampleType)
		}
		if got, want := pyroscopetest.ProfileTypeID(p), ProfileTypeID(pr.Type); got != want {
			t.Errorf("%s: Pyroscope would name it %s, the docs say %s", pr.Type, got, want)
		}
		if p.TimeNanos != from.UnixNano() || p.DurationNanos != int64(time.Minute) {
			t.Errorf("%s: time %d+%d", pr.Type, p.TimeNanos, p.DurationNanos)
		}
		if pr.Labels[LabelSLOBreach] != "true" {
			t.Errorf("%s: labels %v", pr.Type, pr.Labels)
		}
		// The values are the merged profile's, all of them.
		src := map[string]string{TypeWall: merge.TypeWall, TypeLock: merge.TypeLock, TypeSwitchedOut: merge.TypeOffCPU, TypeBlame: merge.TypeBlame}[pr.Type]
		if got, want := total(p, pr.Type), total(res.Slow, src); got != want || got == 0 {
			t.Errorf("%s: total %d, merged %s total %d", pr.Type, got, src, want)
		}
		for _, s := range p.Sample {
			for k := range s.Label {
				if k != "thread_pool" && k != "state" {
					t.Fatalf("%s: sample label %q pushed (unbounded or redundant)", pr.Type, k)
				}
			}
			if len(s.NumLabel) > 0 {
				t.Fatalf("%s: numeric labels %v pushed", pr.Type, s.NumLabel)
			}
		}
	}
	// The fixture has wall, lock and the one off-CPU interval inside the
	// slow window; it samples no CPU, so no cpu profile.
	for _, want := range []string{TypeWall, TypeLock, TypeSwitchedOut} {
		if !slices.Contains(types, want) {
			t.Errorf("pushed types %v lack %s", types, want)
		}
	}
	if slices.Contains(types, TypeCPU) {
		t.Errorf("pushed types %v: an empty cpu profile", types)
	}
}

// TestPushDecodedByIngest pushes a real merged period through the
// uploader to a test ingest endpoint that decodes the wire format, and
// checks what Pyroscope would store: the series labels and profile types.
func TestPushDecodedByIngest(t *testing.T) {
	res := mergedFixture(t)
	srv := pyroscopetest.New(t)
	from := time.Now().Add(-time.Minute).Truncate(time.Second)
	until := from.Add(time.Minute)
	var want int
	p, err := NewPusher(Options{URL: srv.URL, Labels: map[string]string{"host": "b1", "broker": "b1:9092", "kafka-cluster": "main"},
		BasicAuthUser: "lockscope", BasicAuthPassword: "s3cret", TenantID: "team-kafka"})
	if err != nil {
		t.Fatal(err)
	}
	for breach, prof := range map[string]*profile.Profile{"true": res.Slow, "false": res.Baseline} {
		profs, err := Split(prof, from, until, map[string]string{LabelSLOBreach: breach})
		if err != nil {
			t.Fatal(err)
		}
		want += len(profs)
		p.Push(profs...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if s := p.Stats(); s.Pushed != int64(want) || s.Dropped+s.Failed+s.Rejected != 0 {
		t.Errorf("stats %+v, want %d pushed", s, want)
	}
	got := map[string]bool{}
	for _, in := range srv.Ingests() {
		wantLabels := map[string]string{"host": "b1", "broker": "b1:9092", "kafka_cluster": "main", "slo_breach": in.Labels["slo_breach"]}
		if diff := cmp.Diff(wantLabels, in.Labels); diff != "" || (in.Labels["slo_breach"] != "true" && in.Labels["slo_breach"] != "false") {
			t.Errorf("labels (-want +got):\n%s", diff)
		}
		if in.App != DefaultAppName || !in.From.Equal(from) || !in.Until.Equal(until) || in.Query["spyName"] != SpyName {
			t.Errorf("push %s %v..%v spy %q", in.App, in.From, in.Until, in.Query["spyName"])
		}
		if auth := in.Header.Get("Authorization"); auth != "Basic "+base64.StdEncoding.EncodeToString([]byte("lockscope:s3cret")) {
			t.Errorf("Authorization %q", auth)
		}
		if in.Header.Get("X-Scope-OrgID") != "team-kafka" {
			t.Errorf("tenant %q", in.Header.Get("X-Scope-OrgID"))
		}
		got[in.Labels["slo_breach"]+" "+in.ProfileType] = true
	}
	for _, want := range []string{
		"true wall:wall:nanoseconds:wall:nanoseconds",
		"true lock:lock:nanoseconds:lock:nanoseconds",
		"true switched_out:switched_out:nanoseconds:switched_out:nanoseconds",
		"false wall:wall:nanoseconds:wall:nanoseconds",
		"false lock:lock:nanoseconds:lock:nanoseconds",
	} {
		if !got[want] {
			t.Errorf("no push of %s; got %v", want, got)
		}
	}
	for k := range got {
		if strings.Contains(k, "process_cpu") {
			t.Errorf("%s: off-CPU or another type filed under process_cpu", k)
		}
	}
}

func TestBearerToken(t *testing.T) {
	srv := pyroscopetest.New(t)
	p, err := NewPusher(Options{URL: srv.URL, BearerToken: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	p.Push(smallProfile(t, 1, 0))
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if in := srv.Ingests(); len(in) != 1 || in[0].Header.Get("Authorization") != "Bearer tok" {
		t.Errorf("ingests %+v", in)
	}
}

// smallProfile is a pushable one-type profile of about size bytes of
// function names, distinguishable by its seq.
func smallProfile(t testing.TB, seq, size int) Profile {
	fn := &profile.Function{ID: 1, Name: fmt.Sprintf("f%d%s", seq, strings.Repeat("x", size))}
	loc := &profile.Location{ID: 1, Line: []profile.Line{{Function: fn}}}
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: TypeWall, Unit: "nanoseconds"}},
		PeriodType: &profile.ValueType{Type: TypeWall, Unit: "nanoseconds"},
		Sample:     []*profile.Sample{{Location: []*profile.Location{loc}, Value: []int64{int64(seq + 1)}}},
		Location:   []*profile.Location{loc},
		Function:   []*profile.Function{fn},
		TimeNanos:  time.Now().UnixNano(),
	}
	var b bytes.Buffer
	// Uncompressed, so the size is what the queue holds.
	if err := p.WriteUncompressed(&b); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	return Profile{Type: TypeWall, Labels: map[string]string{LabelSLOBreach: "false", "seq": fmt.Sprint(seq)}, From: now.Add(-time.Second), Until: now, Data: b.Bytes()}
}

func fastRetry(o Options) Options {
	o.RetryMin, o.RetryMax = time.Millisecond, 4*time.Millisecond
	return o
}

func TestRetryThenSuccess(t *testing.T) {
	srv := pyroscopetest.New(t)
	srv.SetStatus(func(n int) int {
		if n <= 2 {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	p, err := NewPusher(fastRetry(Options{URL: srv.URL}))
	if err != nil {
		t.Fatal(err)
	}
	p.Push(smallProfile(t, 1, 0))
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s := p.Stats(); s.Pushed != 1 || s.Retries != 2 || s.Failed != 0 || s.LastError != "" {
		t.Errorf("stats %+v", s)
	}
	if len(srv.Ingests()) != 1 || srv.Requests() != 3 {
		t.Errorf("%d ingests, %d requests", len(srv.Ingests()), srv.Requests())
	}
}

// TestDownBoundedRetries: a server answering 503 gets exactly MaxAttempts
// requests per profile, then the profile is given up and counted.
func TestDownBoundedRetries(t *testing.T) {
	srv := pyroscopetest.New(t)
	srv.SetStatus(func(int) int { return http.StatusServiceUnavailable })
	p, err := NewPusher(fastRetry(Options{URL: srv.URL, MaxAttempts: 3}))
	if err != nil {
		t.Fatal(err)
	}
	p.Push(smallProfile(t, 1, 0), smallProfile(t, 2, 0))
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	s := p.Stats()
	if s.Failed != 2 || s.Pushed != 0 || s.Retries != 4 || !strings.Contains(s.LastError, "HTTP 503") {
		t.Errorf("stats %+v", s)
	}
	if srv.Requests() != 6 {
		t.Errorf("%d requests, want 2 profiles × 3 attempts", srv.Requests())
	}
}

// TestPyroscope422 follows what a real Pyroscope answered while shutting
// down (422 with a downstream Unavailable) and what it answers for a
// profile it refuses (422 too).
func TestPyroscope422(t *testing.T) {
	srv := pyroscopetest.New(t)
	unavailable := `{"code":"unknown","message":"pushing IngestInput-pprof failed push series with index 0 and id  failed: unknown: rpc error: code = Unavailable desc = service is unavailable"}`
	srv.SetReply(func(n int) (int, string) {
		switch n {
		case 1:
			return http.StatusUnprocessableEntity, unavailable
		case 2:
			return http.StatusOK, ""
		default:
			return http.StatusUnprocessableEntity, `{"code":"invalid_argument","message":"invalid labels"}`
		}
	})
	p, err := NewPusher(fastRetry(Options{URL: srv.URL}))
	if err != nil {
		t.Fatal(err)
	}
	p.Push(smallProfile(t, 1, 0), smallProfile(t, 2, 0))
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s := p.Stats(); s.Pushed != 1 || s.Retries != 1 || s.Rejected != 1 || srv.Requests() != 3 {
		t.Errorf("stats %+v after %d requests; want the Unavailable one retried and pushed, the invalid one refused", s, srv.Requests())
	}
}

func TestRejectedNotRetried(t *testing.T) {
	srv := pyroscopetest.New(t)
	srv.SetStatus(func(int) int { return http.StatusUnauthorized })
	var logged []string
	p, err := NewPusher(fastRetry(Options{URL: srv.URL, Logf: func(f string, a ...any) { logged = append(logged, fmt.Sprintf(f, a...)) }}))
	if err != nil {
		t.Fatal(err)
	}
	p.Push(smallProfile(t, 1, 0))
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s := p.Stats(); s.Rejected != 1 || s.Retries != 0 || srv.Requests() != 1 {
		t.Errorf("stats %+v, %d requests", s, srv.Requests())
	}
	if len(logged) != 1 || !strings.Contains(logged[0], "HTTP 401") {
		t.Errorf("logged %q", logged)
	}
}

// TestQueueDropsOldest: while the server hangs, the queue keeps the newest
// MaxQueue profiles and counts the rest as dropped.
func TestQueueDropsOldest(t *testing.T) {
	srv := pyroscopetest.New(t)
	release := srv.Hold()
	p, err := NewPusher(fastRetry(Options{URL: srv.URL, MaxQueue: 4}))
	if err != nil {
		t.Fatal(err)
	}
	p.Push(smallProfile(t, 0, 0))
	for srv.Requests() == 0 { // profile 0 is in flight, held
		time.Sleep(time.Millisecond)
	}
	for i := 1; i <= 10; i++ {
		p.Push(smallProfile(t, i, 0))
	}
	if s := p.Stats(); s.Queued != 4 || s.Dropped != 6 {
		t.Errorf("stats %+v, want 4 queued and 6 dropped", s)
	}
	release()
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	var seqs []string
	for _, in := range srv.Ingests() {
		seqs = append(seqs, in.Labels["seq"])
	}
	if diff := cmp.Diff([]string{"0", "7", "8", "9", "10"}, seqs); diff != "" {
		t.Errorf("pushed (-want +got):\n%s", diff)
	}
}

func TestQueueByteBound(t *testing.T) {
	srv := pyroscopetest.New(t)
	release := srv.Hold()
	defer release()
	p, err := NewPusher(fastRetry(Options{URL: srv.URL, MaxQueueBytes: 100 << 10}))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		p.Push(smallProfile(t, i, 30<<10))
	}
	if s := p.Stats(); s.Bytes > 100<<10 || s.Queued != 3 || s.Dropped < 16 {
		t.Errorf("stats %+v: over the 100 KiB bound", s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := p.Close(ctx); err == nil || !strings.Contains(err.Error(), "not pushed at exit") {
		t.Errorf("Close with the server hanging: %v", err)
	}
}

// closedPort returns an address nothing listens on.
func closedPort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

// TestMemoryFlatWhenDown pushes many periods' worth of profiles to a
// closed port and to a server answering 503, and checks that the heap
// after the queue has filled does not grow with the number of periods, and
// that no goroutine is left after Close.
func TestMemoryFlatWhenDown(t *testing.T) {
	srv := pyroscopetest.New(t)
	srv.SetStatus(func(int) int { return http.StatusServiceUnavailable })
	for _, tc := range []struct{ name, url string }{{"closed port", closedPort(t)}, {"503", srv.URL}} {
		t.Run(tc.name, func(t *testing.T) {
			goroutines := runtime.NumGoroutine()
			const perPeriod, size = 10, 20 << 10
			o := fastRetry(Options{URL: tc.url, MaxQueue: 50, MaxQueueBytes: 4 << 20, MaxAttempts: 2})
			p, err := NewPusher(o)
			if err != nil {
				t.Fatal(err)
			}
			heap := func() uint64 {
				runtime.GC()
				var m runtime.MemStats
				runtime.ReadMemStats(&m)
				return m.HeapAlloc
			}
			var after20, after400 uint64
			for period := 1; period <= 400; period++ {
				profs := make([]Profile, perPeriod)
				for i := range profs {
					profs[i] = smallProfile(t, period*perPeriod+i, size)
				}
				p.Push(profs...)
				time.Sleep(200 * time.Microsecond) // let the sender try
				if s := p.Stats(); s.Queued > o.MaxQueue || s.Bytes > o.MaxQueueBytes {
					t.Fatalf("period %d: queue %+v over its bound", period, s)
				}
				switch period {
				case 20:
					after20 = heap()
				case 400:
					after400 = heap()
				}
			}
			s := p.Stats()
			t.Logf("heap after 20 periods %d KiB, after 400 %d KiB (queue bound %d KiB); %+v",
				after20>>10, after400>>10, o.MaxQueueBytes>>10, s)
			// 380 periods pushed 74 MiB more; the heap may move by noise,
			// not by that.
			if after400 > after20+2<<20 {
				t.Errorf("heap grew from %d to %d KiB while Pyroscope was down", after20>>10, after400>>10)
			}
			if s.Dropped == 0 || s.Pushed != 0 {
				t.Errorf("stats %+v: want drops, no pushes", s)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			if err := p.Close(ctx); err == nil {
				t.Error("Close with profiles left: want an error saying so")
			}
			// The uploader's and the pusher's goroutines are gone; idle
			// HTTP connections may take a moment to close.
			for range 100 {
				if runtime.NumGoroutine() <= goroutines+1 {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			if n := runtime.NumGoroutine(); n > goroutines+1 {
				t.Errorf("%d goroutines after Close, %d before", n, goroutines)
			}
		})
	}
}

// BenchmarkSplit measures the cost per period of cutting a merged slow
// profile (a real recording's) into the pushed profiles.
func BenchmarkSplit(b *testing.B) {
	res := mergedFixture(b)
	var buf bytes.Buffer
	res.All.Write(&buf)
	b.SetBytes(int64(buf.Len()))
	b.ReportAllocs()
	now := time.Now()
	for b.Loop() {
		if _, err := Split(res.All, now, now.Add(time.Minute), nil); err != nil {
			b.Fatal(err)
		}
	}
}
