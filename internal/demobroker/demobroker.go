package demobroker

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// EnvSource names an environment variable that overrides where the Java
// sources are (the scripts/demobroker/src directory of a checkout).
const EnvSource = "LOCKSCOPE_DEMOBROKER_SRC"

// MainClass is the demo broker's main class, named as Kafka's is.
const MainClass = "kafka.Kafka"

// Config is how to run a demo broker. The zero value is valid except for
// LogDir, which must be set.
type Config struct {
	// Port to listen on; 0 picks a free port (see Broker.Addr).
	Port int
	// LogDir holds one topic-partition directory per partition.
	LogDir string
	// Partitions of auto-created topics (default 3).
	Partitions int
	// IOThreads is the number of request-handler threads (default 8).
	IOThreads int
	// NetworkThreads is the number of network threads (default 3).
	NetworkThreads int
	// SegmentBytes rolls a segment past this size (default 64 MiB).
	SegmentBytes int64
	// FlushMessages fsyncs inside the append lock every N appends (0: never).
	FlushMessages int
	// FlushInterval is the scheduler's periodic flush and checkpoint (default 1s; negative: off).
	FlushInterval time.Duration
	// StallMs and StallEvery: the holder of a partition's append lock sleeps
	// StallMs every StallEvery appends, a slow window with a known cause.
	StallMs, StallEvery int
	// PressureThreads write and fsync files beside the logs, loading the
	// filesystem journal (the demo's noisy neighbour), PressureWriteKB at
	// a time (default 256).
	PressureThreads int
	PressureWriteKB int
	// FaultOn and FaultOff put the faults on a schedule: off for FaultOff,
	// on for FaultOn, repeated (Broker.FaultWindows says when); zero: the
	// faults act all the time.
	FaultOn, FaultOff time.Duration
	// GCStormMBs allocates this many MB/s, GCStormRetainMB of it kept alive
	// (default 64): garbage-collection pauses, worse in a small heap (give
	// -Xmx in JVMArgs).
	GCStormMBs      int
	GCStormRetainMB int
	// AppendMode "handoff" makes one kafka-log-writer thread do every
	// append, fed through a queue; "" or "direct": the handlers append.
	AppendMode string
	// BrokerID and Cluster ("ID@HOST:PORT,...", every broker) make the
	// broker one of a replicated cluster (StartCluster sets them):
	// followers fetch from leaders, acks=all waits for the in-sync
	// replicas. ReplicationFactor defaults to 3, ReplicaLagTimeMax to 10 s.
	BrokerID int
	Cluster  string
	// RequestLog is where the broker writes Kafka's request log (JSON, a
	// line per completed request with its phases); empty: none.
	RequestLog        string
	ReplicationFactor int
	ReplicaLagTimeMax time.Duration
	// JVMArgs go before the main class (e.g. -XX:+PreserveFramePointer).
	JVMArgs []string
	// Stderr receives the broker's standard error; nil keeps the last 64 KiB
	// for error messages only.
	Stderr io.Writer
}

// Validate reports a configuration that cannot run.
func (c *Config) Validate() error {
	if c.LogDir == "" {
		return errors.New("demo broker: log dir is required")
	}
	if c.Port < 0 || c.Port > 65535 {
		return fmt.Errorf("demo broker: port %d out of range", c.Port)
	}
	for name, v := range map[string]int{"partitions": c.Partitions, "io threads": c.IOThreads,
		"network threads": c.NetworkThreads, "flush messages": c.FlushMessages, "stall ms": c.StallMs,
		"stall every": c.StallEvery, "pressure threads": c.PressureThreads, "pressure write KB": c.PressureWriteKB,
		"gc storm MB/s": c.GCStormMBs, "gc storm retain MB": c.GCStormRetainMB, "fault on ms": int(c.FaultOn.Milliseconds()),
		"fault off ms": int(c.FaultOff.Milliseconds())} {
		if v < 0 {
			return fmt.Errorf("demo broker: %s must not be negative, got %d", name, v)
		}
	}
	if c.AppendMode != "" && c.AppendMode != "direct" && c.AppendMode != "handoff" {
		return fmt.Errorf("demo broker: append mode %q: want direct or handoff", c.AppendMode)
	}
	return nil
}

// Args returns the broker's command-line options for c.
func (c *Config) Args() []string {
	args := []string{"--port=" + strconv.Itoa(c.Port), "--log-dir=" + c.LogDir}
	add := func(name string, v int64) {
		if v != 0 {
			args = append(args, "--"+name+"="+strconv.FormatInt(v, 10))
		}
	}
	add("partitions", int64(c.Partitions))
	add("io-threads", int64(c.IOThreads))
	add("network-threads", int64(c.NetworkThreads))
	add("segment-bytes", c.SegmentBytes)
	add("flush-messages", int64(c.FlushMessages))
	switch {
	case c.FlushInterval < 0:
		args = append(args, "--flush-interval-ms=0")
	case c.FlushInterval > 0:
		add("flush-interval-ms", max(1, c.FlushInterval.Milliseconds()))
	}
	add("stall-ms", int64(c.StallMs))
	add("stall-every", int64(c.StallEvery))
	add("pressure-threads", int64(c.PressureThreads))
	add("pressure-write-kb", int64(c.PressureWriteKB))
	add("fault-on-ms", c.FaultOn.Milliseconds())
	add("fault-off-ms", c.FaultOff.Milliseconds())
	add("gc-storm-mb-s", int64(c.GCStormMBs))
	add("gc-storm-retain-mb", int64(c.GCStormRetainMB))
	if c.AppendMode != "" {
		args = append(args, "--append-mode="+c.AppendMode)
	}
	if c.RequestLog != "" {
		args = append(args, "--request-log="+c.RequestLog)
	}
	if c.Cluster != "" {
		args = append(args, "--broker-id="+strconv.Itoa(c.BrokerID), "--cluster="+c.Cluster)
		add("replication-factor", int64(c.ReplicationFactor))
		add("replica-lag-time-max-ms", c.ReplicaLagTimeMax.Milliseconds())
	}
	return args
}

// SourceDir returns the directory of the demo broker's Java sources.
func SourceDir() (string, error) {
	if d := os.Getenv(EnvSource); d != "" {
		return d, nil
	}
	var candidates []string
	// Built from a checkout (tests, go run): the sources sit beside this file's module.
	if _, file, _, ok := runtime.Caller(0); ok {
		candidates = append(candidates, filepath.Join(filepath.Dir(file), "..", "..", "scripts", "demobroker", "src"))
	}
	if wd, err := os.Getwd(); err == nil {
		for d := wd; ; d = filepath.Dir(d) {
			candidates = append(candidates, filepath.Join(d, "scripts", "demobroker", "src"))
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	for _, c := range candidates {
		if st, err := os.Stat(filepath.Join(c, "kafka", "Kafka.java")); err == nil && !st.IsDir() {
			return filepath.Clean(c), nil
		}
	}
	return "", fmt.Errorf("demo broker sources not found (looked for scripts/demobroker/src in the checkout); set %s", EnvSource)
}

var buildMu sync.Mutex

// Build compiles the sources in src with javac into a cache directory named
// by their content hash, and returns that directory (a classpath). A cache
// hit costs one hash of the sources.
func Build(ctx context.Context, src string) (string, error) {
	buildMu.Lock()
	defer buildMu.Unlock()
	files, sum, err := hashSources(src)
	if err != nil {
		return "", err
	}
	out := filepath.Join(os.TempDir(), "lockscope-demobroker-"+sum[:16])
	if _, err := os.Stat(filepath.Join(out, "kafka", "Kafka.class")); err == nil {
		return out, nil
	}
	javac, err := exec.LookPath("javac")
	if err != nil {
		return "", errors.New("javac not found: install a JDK 17 (scripts/setup.sh does)")
	}
	tmp, err := os.MkdirTemp(os.TempDir(), "lockscope-demobroker-build-")
	if err != nil {
		return "", fmt.Errorf("creating build dir: %w", err)
	}
	defer os.RemoveAll(tmp)
	cmd := exec.CommandContext(ctx, javac, append([]string{"-d", tmp, "-encoding", "UTF-8"}, files...)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("compiling demo broker: %w\n%s", err, b)
	}
	// Another process may have won the race; its output is as good as ours.
	if err := os.Rename(tmp, out); err != nil {
		if _, statErr := os.Stat(filepath.Join(out, "kafka", "Kafka.class")); statErr == nil {
			return out, nil
		}
		return "", fmt.Errorf("installing compiled demo broker: %w", err)
	}
	return out, nil
}

func hashSources(src string) ([]string, string, error) {
	var files []string
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".java") {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("reading demo broker sources: %w", err)
	}
	if len(files) == 0 {
		return nil, "", fmt.Errorf("no .java files under %s", src)
	}
	sort.Strings(files)
	h := sha256.New()
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, "", fmt.Errorf("reading demo broker sources: %w", err)
		}
		rel, _ := filepath.Rel(src, f)
		fmt.Fprintf(h, "%s %d\n", rel, len(b))
		h.Write(b)
	}
	return files, hex.EncodeToString(h.Sum(nil)), nil
}

// Broker is a running demo broker.
type Broker struct {
	cmd    *exec.Cmd
	addr   string
	logDir string
	stderr *tailBuffer
	done   chan struct{}
	err    error // of Wait, valid after done is closed
	once   sync.Once
	// faults are the fault windows the broker printed (CLOCK_MONOTONIC).
	faultMu sync.Mutex
	faults  []FaultWindow
}

// FaultWindow is a stretch in which the faults acted, in CLOCK_MONOTONIC
// ns (the JVM's System.nanoTime); End is 0 while it lasts.
type FaultWindow struct{ Start, End int64 }

// FaultWindows returns the fault windows seen so far (a schedule's; none
// when the faults act all the time).
func (b *Broker) FaultWindows() []FaultWindow {
	b.faultMu.Lock()
	defer b.faultMu.Unlock()
	return append([]FaultWindow(nil), b.faults...)
}

var faultRE = regexp.MustCompile(`^fault (on|off) (\d+)$`)

func (b *Broker) faultLine(line string) {
	m := faultRE.FindStringSubmatch(line)
	if m == nil {
		return
	}
	t, err := strconv.ParseInt(m[2], 10, 64)
	if err != nil {
		return
	}
	b.faultMu.Lock()
	defer b.faultMu.Unlock()
	switch n := len(b.faults); {
	case m[1] == "on":
		b.faults = append(b.faults, FaultWindow{Start: t})
	case n > 0 && b.faults[n-1].End == 0:
		b.faults[n-1].End = t
	}
}

var listenRE = regexp.MustCompile(`^demo broker listening on (\S+:\d+) `)

// Start compiles (or reuses) the demo broker, runs it with cfg and returns
// once it accepts connections. The context bounds only the start-up; use
// Close to stop the broker.
func Start(ctx context.Context, cfg Config) (*Broker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	src, err := SourceDir()
	if err != nil {
		return nil, err
	}
	classes, err := Build(ctx, src)
	if err != nil {
		return nil, err
	}
	java, err := exec.LookPath("java")
	if err != nil {
		return nil, errors.New("java not found: install a JDK 17 (scripts/setup.sh does)")
	}
	args := append(append(append([]string{}, cfg.JVMArgs...), "-cp", classes, MainClass), cfg.Args()...)
	cmd := exec.Command(java, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("starting demo broker: %w", err)
	}
	b := &Broker{cmd: cmd, logDir: cfg.LogDir, stderr: &tailBuffer{max: 64 << 10}, done: make(chan struct{})}
	if cfg.Stderr != nil {
		cmd.Stderr = io.MultiWriter(cfg.Stderr, b.stderr)
	} else {
		cmd.Stderr = b.stderr
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting demo broker: %w", err)
	}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			b.faultLine(sc.Text())
			if m := listenRE.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case ready <- m[1]:
				default:
				}
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	go func() {
		b.err = cmd.Wait()
		close(b.done)
	}()
	timeout := time.NewTimer(90 * time.Second)
	defer timeout.Stop()
	select {
	case b.addr = <-ready:
		return b, nil
	case <-b.done:
		return nil, fmt.Errorf("demo broker exited during start-up (%v): %s", b.err, b.stderr.String())
	case <-ctx.Done():
		b.Close()
		return nil, fmt.Errorf("starting demo broker: %w", ctx.Err())
	case <-timeout.C:
		b.Close()
		return nil, fmt.Errorf("demo broker did not listen within 90s: %s", b.stderr.String())
	}
}

// Addr is the host:port the broker listens on.
func (b *Broker) Addr() string { return b.addr }

// Pid is the broker JVM's process id.
func (b *Broker) Pid() int { return b.cmd.Process.Pid }

// LogDir is the broker's log directory.
func (b *Broker) LogDir() string { return b.logDir }

// Stderr returns the tail of what the broker wrote to standard error.
func (b *Broker) Stderr() string { return b.stderr.String() }

// Exited is closed when the broker process has exited.
func (b *Broker) Exited() <-chan struct{} { return b.done }

// Close stops the broker: SIGTERM (its shutdown hook flushes the logs), then
// SIGKILL to the whole process group after 10 seconds. It returns nil for a
// broker that stopped on SIGTERM.
func (b *Broker) Close() error {
	var err error
	b.once.Do(func() {
		select {
		case <-b.done:
			err = fmt.Errorf("demo broker had exited: %v", b.err)
			return
		default:
		}
		_ = b.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-b.done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL)
			<-b.done
			err = errors.New("demo broker ignored SIGTERM for 10s; killed")
		}
	})
	return err
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf.Write(p)
	if over := t.buf.Len() - t.max; over > 0 {
		t.buf.Next(over)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.buf.String()
}
