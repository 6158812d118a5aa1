#!/usr/bin/env bash
# Benchmarks the Kafka sniffer (issue 5's targets):
#  1. offline: parse a large generated pcap of produce traffic, side by side
#     with tshark's Kafka dissector in the same run (target: >= 50x tshark);
#  2. live: a paced produce load on loopback under an AF_PACKET capture
#     (target: 50k requests/s without kernel drops). Needs root.
#
#   scripts/bench-sniff.sh                       # 200k requests offline, 50k/s live for 10s
#   REQUESTS=500000 RATE=80000 DURATION=20s CONNS=64 scripts/bench-sniff.sh
#
# Both share the machine's CPUs with whatever else runs: note the load
# average printed first when you compare numbers.
set -euo pipefail
cd "$(dirname "$0")/.."

REQUESTS=${REQUESTS:-200000}
RATE=${RATE:-50000}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-128}
COUNT=${COUNT:-3}

command -v tshark >/dev/null || { echo "bench-sniff: tshark missing; run scripts/setup.sh" >&2; exit 1; }
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs"

echo "== offline: lockscope vs tshark on a generated capture of ${REQUESTS} produce requests"
go test ./internal/latency/sniff -run '^$' -bench '^BenchmarkReadCapture$' -benchtime "${COUNT}x" -count 1 \
	-args -sniff.requests="${REQUESTS}"

if [[ $EUID -ne 0 ]]; then
	echo "bench-sniff: not root: skipping the live capture benchmark (needs CAP_NET_RAW)" >&2
	exit 0
fi
echo "== live: ${RATE} requests/s offered over ${CONNS} loopback connections for ${DURATION}"
go test ./internal/latency/sniff -run '^$' -bench '^BenchmarkLiveCapture$' -benchtime 1x -count 1 -timeout 10m \
	-args -sniff.rate="${RATE}" -sniff.duration="${DURATION}" -sniff.conns="${CONNS}"
