#!/usr/bin/env bash
# The README's main job on a fresh machine: set up, start the demo broker with
# a known slow-window cause, drive it with the load generator and show the
# produce latency it sees.
#
#   scripts/demo.sh [DURATION]      (default 20s)
#
# Environment: DEMO_DIR (default /tmp/lockscope-demo), DEMO_PORT (9092),
# DEMO_RATE (records/s, 2000), DEMO_STALL_MS/DEMO_STALL_EVERY (a stall inside
# the append lock: 150 ms every 2000 appends of a partition).
set -euo pipefail
cd "$(dirname "$0")/.."

duration=${1:-20s}
dir=${DEMO_DIR:-/tmp/lockscope-demo}
port=${DEMO_PORT:-9092}

bash scripts/setup.sh
make build

classes="$dir/classes"
rm -rf "$dir/logs" "$classes"
mkdir -p "$classes"
javac -d "$classes" $(find scripts/demobroker/src -name '*.java')

java -cp "$classes" kafka.Kafka --port="$port" --log-dir="$dir/logs" \
	--stall-ms="${DEMO_STALL_MS:-150}" --stall-every="${DEMO_STALL_EVERY:-2000}" >"$dir/broker.out" 2>"$dir/broker.err" &
broker=$!
trap 'kill "$broker" 2>/dev/null; wait "$broker" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
	grep -q 'listening on' "$dir/broker.out" 2>/dev/null && break
	kill -0 "$broker" 2>/dev/null || { cat "$dir/broker.err" >&2; exit 1; }
	sleep 0.2
done
cat "$dir/broker.out"

go run ./scripts/loadgen --brokers "127.0.0.1:$port" --rate "${DEMO_RATE:-2000}" --duration "$duration" --interval 5s
echo "demo: broker pid $broker, logs in $dir/logs"
