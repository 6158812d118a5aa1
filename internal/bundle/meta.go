package bundle

import (
	"time"

	"github.com/lockscope/lockscope/internal/clock"
)

// Format identifies a lockscope bundle's meta.json.
const Format = "lockscope-bundle"

// Version is the bundle format version this package writes. A reader
// accepts any bundle of the same major version; fields are only ever added
// within a version.
const Version = 1

// File names of a bundle's inputs and outputs.
const (
	MetaFile      = "meta.json"
	RecordingFile = "recording.jfr"  // JFR from async-profiler or the JDK Flight Recorder
	OffCPUFile    = "offcpu.jsonl"   // off-CPU intervals, see offcpu.go
	RequestsFile  = "requests.jsonl" // one latency.Request per line
	FetchesFile   = "fetches.jsonl"  // followers' Fetch requests the sniffer saw, one latency.Request per line
	WindowsFile   = "windows.jsonl"  // the SLO-breach windows the capture computed
	CPUFile       = "cpu.jsonl"      // CPU and cgroup samples of the target (internal/cpustat)

	// Outputs of merge.
	SlowProfile     = "slow.pb.gz"     // inside the SLO-breach windows
	BaselineProfile = "baseline.pb.gz" // outside them
	AllProfile      = "all.pb.gz"      // the whole capture
	ReportFile      = "report.html"
)

// Meta is meta.json: what was captured, how, and with which clocks.
type Meta struct {
	Format  string `json:"format"`
	Version int    `json:"version"`
	// Lockscope is the version of the lockscope that wrote the bundle.
	Lockscope string    `json:"lockscope"`
	Created   time.Time `json:"created"`
	Host      string    `json:"host"`
	Kernel    string    `json:"kernel,omitempty"`
	// BootID is the capturing host's boot id: CLOCK_MONOTONIC times of the
	// bundle compare with the clock now only within the same boot.
	BootID string `json:"boot_id,omitempty"`
	// Provisional marks the meta.json a capture writes when it starts and
	// updates as it goes: the capture has not finished (or was killed).
	// Open refuses such a bundle; lockscope merge recovers it.
	Provisional bool `json:"provisional,omitempty"`

	Target Target `json:"target"`
	// Clock maps the bundle's CLOCK_MONOTONIC times to wall-clock time:
	// pairs sampled when the capture started and ended.
	Clock clock.Mapping `json:"clock"`
	// Start and End bound the capture in CLOCK_MONOTONIC nanoseconds: from
	// when the collector and the latency source started to when everything
	// stopped (the profiler starts later: Profiler.Started).
	Start int64 `json:"start_ns"`
	End   int64 `json:"end_ns"`
	// Requested is the duration asked for; Ended says why it ended
	// ("duration", "interrupted", "target exited", ...).
	Requested time.Duration `json:"requested_ns"`
	Ended     string        `json:"ended"`

	Profiler *Profiler `json:"profiler,omitempty"`
	OffCPU   *OffCPU   `json:"offcpu,omitempty"`
	Latency  *Latency  `json:"latency,omitempty"`
	// FS is the filesystem lens (fs.jsonl), when it ran.
	FS *FS `json:"fs,omitempty"`
	// CPU is the CPU sampler (cpu.jsonl), when it ran.
	CPU *CPU `json:"cpu,omitempty"`

	// Labels come from whoever asked for the capture (an alert's labels).
	Labels map[string]string `json:"labels,omitempty"`
	// Warnings are what the capture could not do, for the user to see
	// ("off-CPU not collected: not root").
	Warnings []string `json:"warnings,omitempty"`
	// Files lists what Finish found in the directory.
	Files []File `json:"files"`
}

// Target is the profiled JVM.
type Target struct {
	PID int `json:"pid"`
	// NSPID is the pid inside the JVM's pid namespace, when it differs.
	NSPID   int      `json:"nspid,omitempty"`
	Command []string `json:"command,omitempty"`
	// JVM is the JVM's version string; Flags the flags that matter to
	// profiling (PreserveFramePointer, DebugNonSafepoints, ...).
	JVM   string            `json:"jvm,omitempty"`
	Flags map[string]string `json:"flags,omitempty"`
}

// Profiler is how the JFR recording was made.
type Profiler struct {
	// Name is "async-profiler" or "jfr" (the JDK Flight Recorder).
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
	// Options is the profiler's own option string or settings.
	Options string `json:"options,omitempty"`
	// File is the recording's name inside the bundle.
	File string `json:"file,omitempty"`
	// Clock says what the recording's ticks count: "monotonic" (async-
	// profiler) or "jvm" (JDK: converted with the chunk's start time and
	// the bundle's clock mapping).
	Clock string `json:"clock,omitempty"`
	// WallInterval is the wall-clock sampling interval, the weight of one
	// wall sample.
	WallInterval time.Duration `json:"wall_interval_ns,omitempty"`
	// Started is when the profiler ran (CLOCK_MONOTONIC ns): attaching and
	// starting the JDK's recorder take seconds after the capture's Start,
	// which Java stacks do not cover.
	Started int64 `json:"started_ns,omitempty"`
	// Remote is where the JVM writes the recording, in its own mount
	// namespace (/tmp/lockscope-<id>.jfr); RemoteOnHost says the JVM
	// shared lockscope's mount namespace, so Remote is a host path too,
	// even after the JVM exits. Deadline is when the profiler stops by
	// itself (CLOCK_MONOTONIC ns: started, plus duration and grace). A
	// provisional meta.json has them so that the recording of a killed
	// capture can be collected once the JVM has finished writing it.
	Remote       string `json:"remote,omitempty"`
	RemoteOnHost bool   `json:"remote_on_host,omitempty"`
	Deadline     int64  `json:"deadline_ns,omitempty"`
}

// OffCPU is how the off-CPU intervals were collected and what was lost.
type OffCPU struct {
	Mode     string        `json:"mode"`
	MinBlock time.Duration `json:"min_block_ns"`
	File     string        `json:"file,omitempty"`
	// Counters are the collector's totals (events, drops, stack failures).
	Counters map[string]uint64 `json:"counters,omitempty"`
}

// Latency is where request latencies came from and the SLO applied.
type Latency struct {
	// Source is how requests were seen: "kafka:PORT" (live sniffing),
	// "pcap:FILE", "requestlog:FILE", "csv:FILE", "jsonl:FILE".
	Source string        `json:"source"`
	SLO    time.Duration `json:"slo_ns"`
	// BrokerPorts are the broker's ports in a pcap source.
	BrokerPorts []int `json:"broker_ports,omitempty"`
	// Kind is the latency compared with the SLO: "wire" or "service".
	Kind     string        `json:"kind"`
	Pad      time.Duration `json:"pad_ns,omitempty"`
	Requests int64         `json:"requests"`
	OverSLO  int64         `json:"over_slo"`
	// Counters are the source's losses (kernel packet drops, unmatched
	// responses, unparsable frames).
	Counters map[string]uint64 `json:"counters,omitempty"`
}

// File is one file of the bundle.
type File struct {
	Name   string `json:"name"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
}

// CPU is how the CPU sampler ran: the host's and the target's CPU use and
// the target cgroup's quota and throttling, every Interval.
type CPU struct {
	File     string        `json:"file"`
	Interval time.Duration `json:"interval_ns"`
	// CPUs is the number of CPUs online.
	CPUs int `json:"cpus"`
	// Cgroup is the target's CPU cgroup when the capture started.
	Cgroup string `json:"cgroup,omitempty"`
}
