// Package serve is `lockscope serve`, the agent on a broker host: it
// captures the broker JVM when Alertmanager posts a matching firing alert
// (webhook payload version 4) or when its own SLO watch sees the share of
// produce requests over the SLO pass a threshold, and exports Prometheus
// metrics from a live Kafka sniffer.
//
// Promises:
//   - One capture at a time (async-profiler allows one session per JVM): a
//     trigger while a capture runs joins it (HTTP 202, the running
//     capture's id, status "joined"); cooldown (429), quota (507), a
//     missing target (503) refuse with a JSON body saying why. Every
//     trigger's result is counted in lockscope_triggers_total. The gate is
//     shared with continuous profiling, which a triggered capture preempts.
//   - Credentials are read from files at start, compared in constant time
//     (of their SHA-256), and never logged or echoed.
//   - Bundles live under bundles.dir as ID/ with a record ID.json beside
//     each; retention removes the oldest finished ones by count and bytes
//     and never a running one. Files are served through os.Root: no path
//     or symlink leaves the bundle directory.
//   - When Run's context ends (SIGTERM), the capture in flight is cut
//     short, written and recorded before Run returns; the profiler is
//     stopped by capture.Run (and has its own timeout should serve die).
//
// A Server lives from New to the end of Run; the config it was given must
// not change meanwhile. YAML is decoded with go.yaml.in/yaml/v3, the YAML
// organisation's maintained continuation of gopkg.in/yaml.v3 (the decoder
// Prometheus' own libraries moved to), in strict mode so a misspelt key is
// an error rather than a silently missing safety setting; metrics use
// prometheus/client_golang with a registry of the Server's own.
package serve
