#!/usr/bin/env bash
# Measures what a lockscope capture costs the broker it profiles: the demo
# broker's produce latency under the same steady load, alternating runs
# without and with a capture. The merge of a 60 s bundle is measured by
# scripts/bench-merge.sh.
#
#   scripts/bench-capture.sh [ROUNDS] [SECONDS]     (default 3 rounds of 20 s)
#
# Run as root on an otherwise idle machine. Prints one line per run and the
# medians of p50/p99 (ms) per mode.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
secs=${2:-20}
work=$(mktemp -d /tmp/lockscope-bench.XXXXXX)
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
demo_broker_start "$work/classes" "$work/broker" --port=0 --log-dir="$work/logs"
broker=$demo_broker_pid addr=$demo_broker_addr
port=${addr##*:}
# Warm the JIT and the page cache before measuring.
"$work/loadgen" --brokers "$addr" --rate 1000 --clients 8 --duration 10s --interval 10s >/dev/null

run() { # mode round
	local out="$work/$1-$2.txt"
	if [[ $1 == capture ]]; then
		bin/lockscope capture --pid "$broker" --duration "$((secs + 4))s" --latency "kafka:$port" --iface lo \
			-o "$work/bundle-$2" >/dev/null 2>&1 &
		local cap=$!
		sleep 3
	fi
	"$work/loadgen" --brokers "$addr" --rate 1000 --clients 8 --duration "${secs}s" --interval "${secs}s" >"$out"
	[[ $1 == capture ]] && wait "$cap"
	local p50 p99
	p50=$(grep '^total' "$out" | grep -o 'p50 [^ ]*' | awk '{print $2}')
	p99=$(grep '^total' "$out" | grep -o 'p99 [^ ]*' | awk '{print $2}')
	echo "$1 round $2: p50 $p50 p99 $p99"
}
for r in $(seq "$rounds"); do
	run none "$r"
	run capture "$r"
done | tee "$work/results.txt"

ms() { # Go duration -> ms
	awk '{v=$1; if (v ~ /µs$/) {sub(/µs$/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v*=1000}; print v}'
}
median() { sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
for mode in none capture; do
	p50=$(grep "^$mode " "$work/results.txt" | awk '{print $5}' | ms | median)
	p99=$(grep "^$mode " "$work/results.txt" | awk '{print $7}' | ms | median)
	echo "median $mode: p50 ${p50} ms, p99 ${p99} ms"
done
