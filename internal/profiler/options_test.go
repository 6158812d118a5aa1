package profiler

import (
	"encoding/xml"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/lockscope/lockscope/internal/testdata"
)

func TestAsprofStart(t *testing.T) {
	const file, log = "/tmp/lockscope-1.jfr", "/tmp/asprof-log.lockscope-1"
	cpu := DefaultOptions()
	cpu.Duration, cpu.Grace = 90*time.Second, 30*time.Second
	cpu.CPU = time.Millisecond
	cpu.Alloc = 512 << 10
	cpu.CStack = "vm"
	cpu.ThreadFilter = []int{120, 121, 7}
	cpu.Include = []string{"*kafka/log/UnifiedLog.append*"}
	cpu.Exclude = []string{"*Idle*"}
	noWall := DefaultOptions()
	noWall.Wall, noWall.CPU, noWall.Duration, noWall.Grace = 0, 0, 1500*time.Millisecond, time.Second

	tests := []struct {
		name string
		o    Options
		want string
	}{
		{"defaults", DefaultOptions(),
			"start,event=wall,interval=10ms,lock=10us,clock=monotonic,jfr,file=/tmp/lockscope-1.jfr,timeout=90,log=/tmp/asprof-log.lockscope-1"},
		{"cpu with wall, alloc, filters", cpu,
			"start,event=cpu,interval=1ms,wall=10ms,lock=10us,alloc=524288,cstack=vm,filter=120;121;7,include=*kafka/log/UnifiedLog.append*,exclude=*Idle*,clock=monotonic,jfr,file=/tmp/lockscope-1.jfr,timeout=120,log=/tmp/asprof-log.lockscope-1"},
		{"lock only, timeout rounds up", noWall,
			"start,lock=10us,clock=monotonic,jfr,file=/tmp/lockscope-1.jfr,timeout=3,log=/tmp/asprof-log.lockscope-1"},
	}
	for _, tt := range tests {
		if err := tt.o.Validate(); err != nil {
			t.Errorf("%s: Validate: %v", tt.name, err)
		}
		if got := asprofStart(tt.o, file, log); got != tt.want {
			t.Errorf("%s:\n got %s\nwant %s", tt.name, got, tt.want)
		}
	}
	if got, want := asprofStop(file, log), "stop,jfr,file=/tmp/lockscope-1.jfr,log=/tmp/asprof-log.lockscope-1"; got != want {
		t.Errorf("asprofStop = %s, want %s", got, want)
	}
}

func TestJFRCommands(t *testing.T) {
	o := DefaultOptions()
	o.Duration = 45 * time.Second
	got := jfrStart(o, "lockscope-1", "/tmp/s.jfc", "/tmp/r.jfr")
	want := "JFR.start name=lockscope-1 settings=/tmp/s.jfc duration=75s filename=/tmp/r.jfr disk=true dumponexit=true"
	if got != want {
		t.Errorf("jfrStart:\n got %s\nwant %s", got, want)
	}
	if got, want := jfrStop("lockscope-1", "/tmp/r.jfr"), "JFR.stop name=lockscope-1 filename=/tmp/r.jfr"; got != want {
		t.Errorf("jfrStop = %s, want %s", got, want)
	}
}

func TestValidate(t *testing.T) {
	mod := func(f func(*Options)) Options { o := DefaultOptions(); f(&o); return o }
	bad := map[string]Options{
		"profiler":      mod(func(o *Options) { o.Profiler = "yourkit" }),
		"duration":      mod(func(o *Options) { o.Duration = 0 }),
		"grace":         mod(func(o *Options) { o.Grace = 100 * time.Millisecond }),
		"negative":      mod(func(o *Options) { o.Lock = -1 }),
		"tiny interval": mod(func(o *Options) { o.Wall = 10 * time.Microsecond }),
		"nothing":       mod(func(o *Options) { o.Wall, o.Lock = 0, 0 }),
		"cstack":        mod(func(o *Options) { o.CStack = "magic" }),
		"filter comma":  mod(func(o *Options) { o.Include = []string{"a,b"} }),
		"thread id":     mod(func(o *Options) { o.ThreadFilter = []int{0} }),
	}
	for name, o := range bad {
		if err := o.Validate(); err == nil {
			t.Errorf("%s: Validate accepted %+v", name, o)
		}
	}
	if err := DefaultOptions().Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
}

func TestSettings(t *testing.T) {
	// The shipped file must be a valid .jfc as is.
	var shipped jfc
	if err := xml.Unmarshal(Settings, &shipped); err != nil {
		t.Fatalf("lockscope.jfc: %v", err)
	}
	o := DefaultOptions()
	o.Lock = 50 * time.Microsecond
	o.IO = 0
	o.Wall = 0
	o.CPU = 20 * time.Millisecond
	b, err := settings(o)
	if err != nil {
		t.Fatal(err)
	}
	var c jfc
	if err := xml.Unmarshal(b, &c); err != nil {
		t.Fatalf("rendered settings: %v\n%s", err, b)
	}
	got := map[string]string{}
	for _, e := range c.Events {
		for _, s := range e.Settings {
			got[e.Name+"/"+s.Name] = s.Value
		}
	}
	want := map[string]string{
		"jdk.JavaMonitorEnter/threshold":  "50 us",
		"jdk.ThreadPark/threshold":        "50 us",
		"jdk.ExecutionSample/period":      "20 ms",
		"jdk.ExecutionSample/enabled":     "true",
		"jdk.NativeMethodSample/enabled":  "false",
		"jdk.FileWrite/threshold":         "0 ms",
		"jdk.FileForce/threshold":         "0 ms",
		"jdk.ThreadSleep/threshold":       "50 us",
		"jdk.SafepointBegin/enabled":      "true",
		"jdk.GarbageCollection/threshold": "0 ms",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	// Every event the issue names is configured.
	for _, e := range []string{"jdk.ExecutionSample", "jdk.NativeMethodSample", "jdk.JavaMonitorEnter", "jdk.ThreadPark",
		"jdk.ThreadSleep", "jdk.FileForce", "jdk.FileWrite", "jdk.SocketRead", "jdk.SocketWrite", "jdk.GCPhasePause", "jdk.SafepointBegin"} {
		if _, ok := got[e+"/enabled"]; !ok {
			t.Errorf("settings lack %s", e)
		}
	}
}

func TestUnits(t *testing.T) {
	for d, want := range map[time.Duration]string{
		10 * time.Millisecond: "10ms", 10 * time.Microsecond: "10us", 3 * time.Second: "3s", 1500 * time.Nanosecond: "1500ns", 0: "0s",
	} {
		if got := units(d); got != want {
			t.Errorf("units(%v) = %s, want %s", d, got, want)
		}
	}
	if got := jfrUnits(10 * time.Microsecond); got != "10 us" {
		t.Errorf("jfrUnits = %q", got)
	}
}

func TestLocate(t *testing.T) {
	mk := func(dir string, files ...string) string {
		for _, f := range files {
			p := filepath.Join(dir, f)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte("#!/bin/sh\necho Async-profiler 9.9 built today\n"), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	release := mk(t.TempDir(), "lib/libasyncProfiler.so", "bin/asprof")
	build := mk(t.TempDir(), "build/lib/libasyncProfiler.so")
	empty := t.TempDir()

	in, err := Locate(release)
	if err != nil {
		t.Fatal(err)
	}
	want := &Install{Home: release, Lib: filepath.Join(release, "lib/libasyncProfiler.so"), Asprof: filepath.Join(release, "bin/asprof"), Version: "9.9", From: "flag"}
	if diff := cmp.Diff(want, in); diff != "" {
		t.Errorf("release layout (-want +got):\n%s", diff)
	}
	if in, err := Locate(build); err != nil || in.Lib != filepath.Join(build, "build/lib/libasyncProfiler.so") {
		t.Errorf("source build layout: %+v, %v", in, err)
	}
	if _, err := Locate(empty); !errors.Is(err, ErrNoAsyncProfiler) || !strings.Contains(err.Error(), empty) {
		t.Errorf("empty home: got %v, want ErrNoAsyncProfiler naming the directory", err)
	}

	t.Setenv(EnvHome, release)
	if in, err := Locate(""); err != nil || in.From != EnvHome {
		t.Errorf("from %s: %+v, %v", EnvHome, in, err)
	}
	t.Setenv(EnvHome, empty)
	if _, err := Locate(""); !errors.Is(err, ErrNoAsyncProfiler) || !strings.Contains(err.Error(), EnvHome) {
		t.Errorf("bad %s: got %v, want an error naming it", EnvHome, err)
	}
	t.Setenv(EnvHome, "")
	bin := t.TempDir()
	if err := os.Symlink(filepath.Join(release, "bin/asprof"), filepath.Join(bin, "asprof")); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin)
	if in, err := Locate(""); err != nil || in.From != "PATH" || in.Home != release {
		t.Errorf("asprof on PATH: %+v, %v", in, err)
	}
}

func TestKindFlag(t *testing.T) {
	var k Kind
	if err := k.Set("async-profiler"); err != nil || k != AsyncProfiler {
		t.Errorf("Set(async-profiler): %v, %v", k, err)
	}
	if err := k.Set("honest"); err == nil {
		t.Error("Set(honest): want an error")
	}
}

// TestOptionsMatchFixture checks the values lockscope sends against what
// async-profiler 4.5 recorded as its active settings for the same options in
// the shared fixture (PROVENANCE.md: start,event=wall,interval=10ms,
// lock=10us,clock=monotonic,jfr).
func TestOptionsMatchFixture(t *testing.T) {
	got := agentOptions(asprofStart(DefaultOptions(), "/tmp/x.jfr", "/tmp/asprof-log.x"))
	recorded := activeSettings(t, testdata.JFR(t, "asprof-wall-lock-monotonic.jfr"))
	for opt, setting := range map[string]string{"event": "event", "interval": "interval", "lock": "lock", "clock": "clock"} {
		if v := nanos(got[opt]); v != recorded[setting] {
			t.Errorf("option %s=%s is %q in async-profiler's units, the fixture recorded %q", opt, got[opt], v, recorded[setting])
		}
	}
}

// agentOptions splits an agent option string into key=value pairs.
func agentOptions(s string) map[string]string {
	m := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

// nanos turns "10ms"/"10us" into nanoseconds the way async-profiler
// records them; other values pass through.
func nanos(v string) string {
	for _, u := range []struct {
		suffix string
		mult   time.Duration
	}{{"ms", time.Millisecond}, {"us", time.Microsecond}, {"ns", 1}, {"s", time.Second}} {
		if n, ok := strings.CutSuffix(v, u.suffix); ok {
			if i, err := strconv.Atoi(n); err == nil {
				return strconv.FormatInt(int64(time.Duration(i)*u.mult), 10)
			}
		}
	}
	return v
}

// activeSettings reads the jdk.ActiveSetting events of a recording with the
// JDK's jfr tool; names that repeat (enabled, per event type) are dropped.
func activeSettings(t *testing.T, file string) map[string]string {
	t.Helper()
	out, err := exec.Command("jfr", "print", "--events", "jdk.ActiveSetting", file).CombinedOutput()
	if err != nil {
		t.Fatalf("jfr print: %v: %s", err, out)
	}
	m := map[string]string{}
	var name string
	for line := range strings.Lines(string(out)) {
		line = strings.TrimSpace(line)
		if v, ok := strings.CutPrefix(line, "name = "); ok {
			name = strings.Trim(v, `"`)
		} else if v, ok := strings.CutPrefix(line, "value = "); ok && name != "enabled" {
			m[name] = strings.Trim(v, `"`)
		}
	}
	return m
}
