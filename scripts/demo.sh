#!/usr/bin/env bash
# The README's main job on a fresh machine: set up, start the demo broker with
# a known cause of slow windows (a stall inside the partition log's append
# lock), drive it with producers, capture it with lockscope and print what
# lockscope found and where the flame graphs are.
#
#   scripts/demo.sh [DURATION]      (capture length, default 20s)
#
# Environment: DEMO_DIR (default /tmp/lockscope-demo), DEMO_PORT (9092),
# DEMO_RATE (records/s, 1000), DEMO_CLIENTS (8), DEMO_STALL_MS and
# DEMO_STALL_EVERY (150 ms every 1000 appends of a partition), DEMO_PROFILER
# (auto: async-profiler when installed, else the JDK Flight Recorder).
set -euo pipefail
cd "$(dirname "$0")/.."

duration=${1:-20s}
dir=${DEMO_DIR:-/tmp/lockscope-demo}
port=${DEMO_PORT:-9092}

bash scripts/setup.sh
make build

classes="$dir/classes"
rm -rf "$dir/logs" "$dir/bundle" "$classes"
mkdir -p "$classes"
javac -d "$classes" $(find scripts/demobroker/src -name '*.java')

java -cp "$classes" kafka.Kafka --port="$port" --log-dir="$dir/logs" \
	--stall-ms="${DEMO_STALL_MS:-150}" --stall-every="${DEMO_STALL_EVERY:-1000}" >"$dir/broker.out" 2>"$dir/broker.err" &
broker=$!
load=""
cleanup() {
	[[ -n $load ]] && kill "$load" 2>/dev/null
	kill "$broker" 2>/dev/null
	wait 2>/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 100); do
	grep -q 'listening on' "$dir/broker.out" 2>/dev/null && break
	kill -0 "$broker" 2>/dev/null || { cat "$dir/broker.err" >&2; exit 1; }
	sleep 0.2
done
cat "$dir/broker.out"

# Producers run a little longer than the capture, reporting their own view.
go build -o bin/loadgen ./scripts/loadgen
secs=$(( ${duration%s} + 10 ))
bin/loadgen --brokers "127.0.0.1:$port" --rate "${DEMO_RATE:-1000}" --clients "${DEMO_CLIENTS:-8}" \
	--duration "${secs}s" --interval 5s >"$dir/loadgen.out" 2>&1 &
load=$!
sleep 3

bin/lockscope capture --pid "$broker" --duration "$duration" --latency "kafka:$port" --iface lo \
	--profiler "${DEMO_PROFILER:-auto}" -o "$dir/bundle"

wait "$load" || true
load=""
echo
echo "The producers' own view (scripts/loadgen):"
cat "$dir/loadgen.out"
echo
echo "Flame graphs of the slow windows: lockscope view $dir/bundle   (pprof web UI, baseline as diff base)"
echo "Folded stacks for flamegraph tools: $dir/bundle/slow.folded, $dir/bundle/baseline.folded"
