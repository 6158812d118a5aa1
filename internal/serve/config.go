package serve

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/lockscope/lockscope/internal/capture"
	"github.com/lockscope/lockscope/internal/continuous"
	"github.com/lockscope/lockscope/internal/latency"
	"github.com/lockscope/lockscope/internal/profiler"
	"github.com/lockscope/lockscope/internal/pyroscope"
)

// Config is serve's configuration file (YAML). Load fills the defaults;
// every field is described in scripts/monitoring/lockscope-serve.yaml.
type Config struct {
	// Listen is the HTTP address; the default binds to loopback only.
	Listen string `yaml:"listen"`
	Auth   Auth   `yaml:"auth"`
	// MaxBodyBytes bounds a request body (an Alertmanager payload).
	MaxBodyBytes ByteSize `yaml:"max_body_bytes"`

	Target   Target        `yaml:"target"`
	Capture  CaptureConfig `yaml:"capture"`
	Alerts   AlertsConfig  `yaml:"alerts"`
	Watch    WatchConfig   `yaml:"watch"`
	Cooldown time.Duration `yaml:"cooldown"`
	Bundles  BundlesConfig `yaml:"bundles"`
	Quota    QuotaConfig   `yaml:"quota"`
	// Continuous is the continuous-profiling section; serve owns the
	// one-capture-at-a-time gate it shares with triggered captures.
	Continuous ContinuousConfig `yaml:"continuous"`
}

// Auth guards /alerts and /captures (and /metrics with ProtectMetrics).
// Secrets live in files so that they never appear in the config, the
// command line or the logs.
type Auth struct {
	// BearerTokenFile holds the token Alertmanager sends
	// (http_config.authorization.credentials_file on its side).
	BearerTokenFile string `yaml:"bearer_token_file"`
	// BasicAuthFile holds one line "user:password".
	BasicAuthFile string `yaml:"basic_auth_file"`
	// ProtectMetrics also requires credentials for /metrics.
	ProtectMetrics bool `yaml:"protect_metrics"`
	// Insecure allows running without any credentials (tests, a private
	// loopback-only host). Without it a config with no credentials is
	// refused.
	Insecure bool `yaml:"insecure_no_auth"`
}

// Target says how to find the broker JVM each time a capture starts (it may
// have restarted with a new pid since serve started).
type Target struct {
	// PIDFile holds the broker's pid (as kafka-server-start's wrapper or
	// systemd's PIDFile= write it).
	PIDFile string `yaml:"pid_file"`
	// Match finds the process by its command line: a plain string must be
	// one whole argument (the main class "kafka.Kafka"); "=~REGEX" is
	// matched against the arguments joined by spaces.
	Match string `yaml:"match"`
}

// CaptureConfig is the template of every capture serve starts.
type CaptureConfig struct {
	Duration time.Duration `yaml:"duration"`
	SLO      time.Duration `yaml:"slo"`
	Pad      time.Duration `yaml:"pad"`
	// Kind is the latency compared with the SLO: service or wire.
	Kind string `yaml:"kind"`
	// Latency is kafka:PORT[,PORT] (also what the metrics and the SLO watch
	// sniff), requestlog:FILE (also what they follow, with each request's
	// phases), pcap:FILE, csv:FILE or none.
	Latency       string        `yaml:"latency"`
	Interface     string        `yaml:"interface"`
	MinBlock      time.Duration `yaml:"min_block"`
	RequireOffCPU bool          `yaml:"require_offcpu"`
	Profiler      string        `yaml:"profiler"`
	AsyncProfiler string        `yaml:"async_profiler"`
	Wall          time.Duration `yaml:"wall"`
	Lock          time.Duration `yaml:"lock"`
	CPU           time.Duration `yaml:"cpu"`
	Grace         time.Duration `yaml:"grace"`
}

// AlertsConfig chooses which Alertmanager alerts start a capture.
type AlertsConfig struct {
	// Matchers are "label=value", "label!=value", "label=~regex" or
	// "label!~regex" (regexes anchored, as Alertmanager's are); an alert
	// must satisfy all of them. Empty matches every firing alert.
	Matchers []string `yaml:"matchers"`
}

// WatchConfig is the built-in SLO watch, for hosts without Alertmanager.
type WatchConfig struct {
	Enabled bool `yaml:"enabled"`
	// Window is the sliding window the share is computed over.
	Window time.Duration `yaml:"window"`
	// Threshold is the share of produce requests over the SLO (0..1) that
	// starts a capture, once the window holds MinRequests requests.
	Threshold   float64 `yaml:"threshold"`
	MinRequests int     `yaml:"min_requests"`
}

// BundlesConfig is where bundles go and how many are kept.
type BundlesConfig struct {
	Dir string `yaml:"dir"`
	// MaxCount and MaxBytes: after each capture (and at start) the oldest
	// bundles are removed until both hold; zero is no limit.
	MaxCount int      `yaml:"max_count"`
	MaxBytes ByteSize `yaml:"max_bytes"`
}

// QuotaConfig refuses to start a capture that would fill the disk.
type QuotaConfig struct {
	// MinFreeBytes: no capture while the bundle directory's filesystem has
	// less free space than this.
	MinFreeBytes ByteSize `yaml:"min_free_bytes"`
	// MaxBytes: no capture while the bundles take this much or more (after
	// retention).
	MaxBytes ByteSize `yaml:"max_bytes"`
}

// ContinuousConfig is continuous profiling between triggered captures:
// package continuous, one capture per period pushed to Pyroscope.
type ContinuousConfig struct {
	Enabled bool          `yaml:"enabled"`
	Period  time.Duration `yaml:"period"`
	// Pyroscope is the server's base URL; Application the application name
	// (service_name); Labels are added to every profile (host and broker
	// are added when absent).
	Pyroscope   string            `yaml:"pyroscope"`
	Application string            `yaml:"application"`
	Labels      map[string]string `yaml:"labels"`
	// BearerTokenFile and TenantID authenticate to Pyroscope (Grafana Cloud
	// or a multi-tenant server).
	BearerTokenFile string `yaml:"bearer_token_file"`
	TenantID        string `yaml:"tenant_id"`
}

// Defaults returns the configuration an empty file gives.
func Defaults() Config {
	p := profiler.DefaultOptions()
	return Config{
		Listen:       "127.0.0.1:9464",
		MaxBodyBytes: 1 << 20,
		Target:       Target{Match: "kafka.Kafka"},
		Capture: CaptureConfig{Duration: 60 * time.Second, SLO: 65 * time.Millisecond, Kind: "service",
			Latency: "kafka:9092", Interface: "any", MinBlock: time.Millisecond, Profiler: string(p.Profiler),
			Wall: p.Wall, Lock: p.Lock, Grace: p.Grace},
		Watch:      WatchConfig{Window: 30 * time.Second, Threshold: 0.05, MinRequests: 100},
		Cooldown:   10 * time.Minute,
		Bundles:    BundlesConfig{Dir: "/var/lib/lockscope/bundles", MaxCount: 20, MaxBytes: 5 << 30},
		Quota:      QuotaConfig{MinFreeBytes: 1 << 30},
		Continuous: ContinuousConfig{Period: 60 * time.Second, Application: pyroscope.DefaultAppName},
	}
}

// Load reads and validates a config file. Unknown keys are errors: a
// misspelt key silently ignored would leave a safety setting off.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	c, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// Parse decodes a config over the defaults and validates it.
func Parse(b []byte) (*Config, error) {
	c := Defaults()
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) { // io.EOF: an empty file, all defaults
		return nil, fmt.Errorf("parsing YAML: %w", err)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// Validate checks the configuration without touching the network, the JVM
// or the kernel (it does read the credential files, so that a missing one
// is found at start and not at the first alert).
func (c *Config) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		errs = append(errs, fmt.Errorf("listen %q: want host:port (e.g. 127.0.0.1:9464)", c.Listen))
	}
	if c.Auth.BearerTokenFile == "" && c.Auth.BasicAuthFile == "" && !c.Auth.Insecure {
		errs = append(errs, errors.New("auth: set bearer_token_file or basic_auth_file (or insecure_no_auth: true on a private host)"))
	}
	if _, err := c.Auth.load(); err != nil {
		errs = append(errs, err)
	}
	if c.MaxBodyBytes <= 0 {
		errs = append(errs, fmt.Errorf("max_body_bytes %d: must be positive", c.MaxBodyBytes))
	}
	if c.Target.PIDFile == "" && c.Target.Match == "" {
		errs = append(errs, errors.New("target: set pid_file or match (e.g. match: kafka.Kafka)"))
	}
	if m, ok := strings.CutPrefix(c.Target.Match, "=~"); ok {
		if _, err := regexp.Compile(m); err != nil {
			errs = append(errs, fmt.Errorf("target.match: %w", err))
		}
	}
	// The capture template is validated as a capture would be, with a
	// stand-in pid and output.
	o := c.CaptureOptions()
	o.PID, o.Out = 1, "x"
	if err := o.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("capture: %w", err))
	}
	if _, err := parseMatchers(c.Alerts.Matchers); err != nil {
		errs = append(errs, fmt.Errorf("alerts.matchers: %w", err))
	}
	if c.Watch.Enabled {
		if len(c.SniffPorts()) == 0 && c.RequestLog() == "" {
			errs = append(errs, fmt.Errorf("watch: needs capture.latency kafka:PORT to sniff or requestlog:FILE to follow, have %q", c.Capture.Latency))
		}
		if c.Watch.Window < time.Second {
			errs = append(errs, fmt.Errorf("watch.window %v: must be at least 1s", c.Watch.Window))
		}
		if !(c.Watch.Threshold > 0 && c.Watch.Threshold <= 1) {
			errs = append(errs, fmt.Errorf("watch.threshold %v: want a share in (0, 1], e.g. 0.05", c.Watch.Threshold))
		}
		if c.Watch.MinRequests < 1 {
			errs = append(errs, fmt.Errorf("watch.min_requests %d: must be at least 1", c.Watch.MinRequests))
		}
	}
	if c.Cooldown < 0 {
		errs = append(errs, fmt.Errorf("cooldown %v: must not be negative", c.Cooldown))
	}
	if c.Bundles.Dir == "" {
		errs = append(errs, errors.New("bundles.dir: give the directory bundles are written to"))
	}
	if c.Bundles.MaxCount < 0 || c.Bundles.MaxBytes < 0 || c.Quota.MaxBytes < 0 || c.Quota.MinFreeBytes < 0 {
		errs = append(errs, errors.New("bundles and quota limits must not be negative"))
	}
	if c.Continuous.Enabled {
		if c.Continuous.Pyroscope == "" {
			errs = append(errs, errors.New("continuous.pyroscope: give the Pyroscope server's URL"))
		} else if o, err := c.continuousOptions(1); err != nil {
			errs = append(errs, err)
		} else if err := o.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("continuous: %w", err))
		}
	}
	return errors.Join(errs...)
}

// CaptureOptions is the capture template: everything but PID, Out and
// Labels, which each capture sets.
func (c *Config) CaptureOptions() capture.Options {
	p := profiler.DefaultOptions()
	p.Profiler = profiler.Kind(c.Capture.Profiler)
	p.AsyncProfilerHome = c.Capture.AsyncProfiler
	p.Wall, p.Lock, p.CPU, p.Grace = c.Capture.Wall, c.Capture.Lock, c.Capture.CPU, c.Capture.Grace
	return capture.Options{Duration: c.Capture.Duration, SLO: c.Capture.SLO, Pad: c.Capture.Pad, Kind: c.Capture.Kind,
		Latency: c.Capture.Latency, Interface: c.Capture.Interface, Profiler: p, MinBlock: c.Capture.MinBlock,
		RequireOffCPU: c.Capture.RequireOffCPU}
}

// continuousOptions is continuous mode's template for the JVM pid; serve
// sets the gate and the callbacks.
func (c *Config) continuousOptions(pid int) (continuous.Options, error) {
	cc := c.Continuous
	o := continuous.Options{Capture: c.CaptureOptions(), Period: cc.Period,
		Pyroscope: pyroscope.Options{URL: cc.Pyroscope, AppName: cc.Application, Labels: cc.Labels, TenantID: cc.TenantID}}
	o.Capture.PID = pid
	if cc.BearerTokenFile != "" {
		t, err := readSecret(cc.BearerTokenFile)
		if err != nil {
			return o, fmt.Errorf("continuous.bearer_token_file: %w", err)
		}
		o.Pyroscope.BearerToken = t
	}
	return o, nil
}

// SniffPorts are the broker ports of a kafka:PORT latency source, which
// serve also sniffs continuously for its metrics and SLO watch.
func (c *Config) SniffPorts() []uint16 {
	arg, ok := strings.CutPrefix(c.Capture.Latency, "kafka:")
	if !ok {
		return nil
	}
	var ports []uint16
	for _, p := range strings.Split(arg, ",") {
		n, err := strconv.Atoi(p)
		if err != nil || n <= 0 || n > 65535 {
			return nil
		}
		ports = append(ports, uint16(n))
	}
	return ports
}

// RequestLog is the file of a requestlog:FILE latency source, which serve
// also follows continuously for its metrics (with each request's phases)
// and SLO watch; "" for other sources.
func (c *Config) RequestLog() string {
	path, _ := strings.CutPrefix(c.Capture.Latency, "requestlog:")
	if path == c.Capture.Latency {
		return ""
	}
	return path
}

// metric is the latency compared with the SLO.
func (c *Config) metric() latency.Metric {
	m, _ := latency.ParseMetric(c.Capture.Kind)
	return m
}

// ByteSize is a size in bytes that YAML may spell as a number or with a
// unit: 512MiB, 5GiB, 1GB, 100k.
type ByteSize int64

// UnmarshalYAML parses a number or a number with a unit.
func (s *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseByteSize(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*s = v
	return nil
}

var byteUnits = []struct {
	suffix string
	mult   float64
}{
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
	{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12},
	{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"t", 1 << 40}, {"b", 1},
}

// ParseByteSize parses "1048576", "512MiB", "5GB", "100k".
func ParseByteSize(s string) (ByteSize, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	mult := 1.0
	for _, u := range byteUnits {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || f < 0 || math.IsInf(f*mult, 0) || f*mult > math.MaxInt64 {
		return 0, fmt.Errorf("size %q: want bytes, optionally with a unit (512MiB, 5GB)", s)
	}
	return ByteSize(f * mult), nil
}
