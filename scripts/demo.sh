#!/usr/bin/env bash
# The README's main job on a fresh machine: set up, start the demo broker with
# a known cause of slow windows (a stall inside the partition log's append
# lock), drive it with producers, capture it with lockscope and print what
# lockscope found and where the flame graphs are.
#
#   scripts/demo.sh [DURATION]             (capture length, default 20s)
#   scripts/demo.sh --cluster [DURATION]   a replicated cluster of three
#       brokers whose broker 2 stalls, producers with acks=all, and a cluster
#       capture of all three with broker 0's request log as the latency
#       source: the answer names the replication phase and the follower.
#
# Environment: DEMO_DIR (default /tmp/lockscope-demo), DEMO_PORT (9092; a
# cluster takes three ports from it), DEMO_RATE (records/s, 1000; 150 for a
# cluster, whose three brokers share this machine's CPUs), DEMO_CLIENTS (8),
# DEMO_STALL_MS and DEMO_STALL_EVERY (150 ms every 1000 appends of a
# partition; 200 ms every 20 of broker 2's in a cluster), DEMO_PROFILER (auto:
# async-profiler when installed, else the JDK Flight Recorder).
set -euo pipefail
cd "$(dirname "$0")/.."

cluster=""
if [[ ${1:-} == --cluster ]]; then
	cluster=1
	shift
fi
duration=${1:-20s}
dir=${DEMO_DIR:-/tmp/lockscope-demo}
port=${DEMO_PORT:-9092}

bash scripts/setup.sh
make build

classes="$dir/classes"
rm -rf "$dir/logs" "$dir/bundle" "$dir/cluster" "$dir/request-0.log" "$classes"
mkdir -p "$dir/logs"
source scripts/lib-demobroker.sh
demo_broker_compile "$classes"

brokers=()
load=""
cleanup() {
	[[ -n $load ]] && kill "$load" 2>/dev/null
	for b in "${brokers[@]}"; do kill "$b" 2>/dev/null; done
	wait 2>/dev/null || true
}
trap cleanup EXIT

# start_broker NAME ARGS...: starts a demo broker and waits until it listens.
start_broker() {
	local name=$1
	shift
	demo_broker_start "$classes" "$dir/$name" "$@"
	brokers+=("$demo_broker_pid")
	cat "$dir/$name.out"
}

if [[ -z $cluster ]]; then
	start_broker broker --port="$port" --log-dir="$dir/logs" \
		--stall-ms="${DEMO_STALL_MS:-150}" --stall-every="${DEMO_STALL_EVERY:-1000}"
	seeds="127.0.0.1:$port"
	rate=${DEMO_RATE:-1000}
else
	spec="0@127.0.0.1:$port,1@127.0.0.1:$((port + 1)),2@127.0.0.1:$((port + 2))"
	for i in 0 1 2; do
		args=(--port="$((port + i))" --broker-id="$i" --cluster="$spec" --log-dir="$dir/logs/broker-$i")
		[[ $i == 0 ]] && args+=(--request-log="$dir/request-0.log")
		[[ $i == 2 ]] && args+=(--stall-ms="${DEMO_STALL_MS:-200}" --stall-every="${DEMO_STALL_EVERY:-20}")
		start_broker "broker-$i" "${args[@]}"
	done
	seeds="127.0.0.1:$port,127.0.0.1:$((port + 1)),127.0.0.1:$((port + 2))"
	rate=${DEMO_RATE:-150}
fi

# Producers (acks=all) run a little longer than the capture, reporting
# their own view.
go build -o bin/loadgen ./scripts/loadgen
secs=$(( ${duration%s} + 10 ))
bin/loadgen --brokers "$seeds" --rate "$rate" --clients "${DEMO_CLIENTS:-8}" \
	--duration "${secs}s" --interval 5s >"$dir/loadgen.out" 2>&1 &
load=$!
sleep 3

if [[ -z $cluster ]]; then
	bin/lockscope capture --pid "${brokers[0]}" --duration "$duration" --latency "kafka:$port" --iface lo \
		--profiler "${DEMO_PROFILER:-auto}" -o "$dir/bundle"
else
	bin/lockscope capture --pid "${brokers[0]}" --pid "${brokers[1]}" --pid "${brokers[2]}" --duration "$duration" \
		--latency "requestlog:$dir/request-0.log" --profiler "${DEMO_PROFILER:-auto}" -o "$dir/cluster"
	echo
	sed -n '/^Phases of produce requests/,/^$/p' "$dir/cluster/broker-0/summary.txt"
fi

wait "$load" || true
load=""
echo
echo "The producers' own view (scripts/loadgen):"
cat "$dir/loadgen.out"
echo
if [[ -z $cluster ]]; then
	echo "Flame graphs of the slow windows: lockscope view $dir/bundle   (pprof web UI, baseline as diff base)"
	echo "Folded stacks for flamegraph tools: $dir/bundle/slow.folded, $dir/bundle/baseline.folded"
else
	echo "Each broker's bundle: $dir/cluster/broker-N (lockscope view $dir/cluster/broker-2: the slow follower's flame graphs)"
	echo "The answer again: $dir/cluster/cluster.txt; the leader's phases: $dir/cluster/broker-0/report.html"
fi
