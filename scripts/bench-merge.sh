#!/usr/bin/env bash
# Measures merging a 60 s capture of the demo broker (with its stall fault,
# so the verdict has slow windows to explain): time and peak RSS of
# lockscope merge, which reads the recording, the off-CPU and filesystem
# streams, the requests and the CPU samples, and writes every output with
# the verdict.
#
#   scripts/bench-merge.sh [SECONDS] [MERGES]     (default a 60 s capture, merged 3 times)
#
# Run as root on an otherwise idle machine. BENCH_KEEP=DIR keeps the bundle
# there (to profile the merge, say).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
merges=${2:-3}
work=$(mktemp -d /tmp/lockscope-bench-merge.XXXXXX)
broker=""
cleanup() {
	[[ -n $broker ]] && { kill "$broker" 2>/dev/null; wait "$broker" 2>/dev/null || true; }
	rm -rf "$work"
}
trap cleanup EXIT

make build >/dev/null
go build -o "$work/loadgen" ./scripts/loadgen
source scripts/lib-demobroker.sh
demo_broker_compile "$work/classes"
demo_broker_start "$work/classes" "$work/broker" --port=0 --log-dir="$work/logs" --stall-ms=150 --stall-every=1000
broker=$demo_broker_pid addr=$demo_broker_addr
port=${addr##*:}
"$work/loadgen" --brokers "$addr" --rate 1000 --clients 8 --duration 5s --interval 5s >/dev/null

bin/lockscope capture --pid "$broker" --duration "${secs}s" --latency "kafka:$port" --iface lo -o "$work/bundle" >/dev/null 2>&1 &
cap=$!
sleep 2
"$work/loadgen" --brokers "$addr" --rate 1000 --clients 8 --duration "$((secs + 2))s" --interval "$((secs + 2))s" >/dev/null
wait "$cap"
du -sh "$work/bundle" | awk -v s="$secs" '{print s " s bundle: " $1}'
for i in $(seq "$merges"); do
	/usr/bin/time -f "merge $i: %e s, %M KB max RSS" bin/lockscope merge "$work/bundle" >/dev/null
done
head -1 "$work/bundle/summary.txt"
if [[ -n ${BENCH_KEEP:-} ]]; then
	rm -rf "$BENCH_KEEP" && cp -r "$work/bundle" "$BENCH_KEEP" && echo "bundle kept in $BENCH_KEEP"
fi
