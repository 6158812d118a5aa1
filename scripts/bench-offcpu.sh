#!/usr/bin/env bash
# Added cost per context switch of lockscope's off-CPU collector.
#
# Workload: `perf bench sched pipe -T` (two threads of one process ping-pong
# over pipes), pinned to one CPU, so every round trip is two context switches
# of the benchmark's own threads. The tracers run pinned to another CPU.
# The added cost is measured in CPU time of the benchmark's threads per
# switch (the BPF program runs in the context of the task switching out), so
# that other load on a shared machine, which stretches wall time, distorts it
# less; wall time is shown too.
# Configurations, run alternately in every round so that noise from other
# load on the machine spreads evenly, compared by their medians:
#   none      no tracing
#   other     lockscope offcpu following another process (non-target switches)
#   lazy      lockscope offcpu on the benchmark (default: lazy, min block 1ms)
#   eager     lockscope offcpu --mode eager on the benchmark
#   bpftrace  offcputime-style bpftrace one-liner (kstack at switch-out)
#   keepall   lockscope offcpu --min-block 0 (an event with a kernel stack for
#             every switch): its counters show whether events are lost
#
# Finally one run each of other and lazy with kernel.bpf_stats_enabled gives
# the programs' own run time per switch, which other load does not distort.
#
# Usage: sudo scripts/bench-offcpu.sh [ROUNDS (7)] [LOOPS per run (100000)]
# Env: BENCH_CPU (0) runs the workload, BENCH_TRACER_CPU (1) the tracers;
# BENCH_STATS_RUNS (1) bpf_stats runs of each of other and lazy. ROUNDS 0
# gives only the bpf_stats runs: a quick check of a change to the programs.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=${1:-7}
loops=${2:-100000}
cpu=${BENCH_CPU:-0}
tracer_cpu=${BENCH_TRACER_CPU:-1}
configs=(none other lazy eager bpftrace keepall)

[ "$(id -u)" = 0 ] || { echo "bench-offcpu: needs root (eBPF)" >&2; exit 1; }
for tool in perf bpftrace taskset go; do
	command -v "$tool" >/dev/null || { echo "bench-offcpu: $tool not found: run scripts/setup.sh" >&2; exit 1; }
done
# bpftrace's tracepoints need tracefs (lockscope's tp_btf/raw_tp do not).
if [ ! -e /sys/kernel/tracing/events ]; then
	mount -t tracefs tracefs /sys/kernel/tracing ||
		{ echo "bench-offcpu: tracefs not mounted: mount -t tracefs tracefs /sys/kernel/tracing" >&2; exit 1; }
fi

stats=0
tmp=$(mktemp -d)
touch "$tmp/results" "$tmp/summaries"
pids=()
cur=() # the running benchmark and tracer
cleanup() {
	for p in "${cur[@]}" "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

go build -o "$tmp/lockscope" ./cmd/lockscope
sleep 100000 &
idle=$!
pids+=("$idle")

# wait_for FILE PATTERN: until a tracer says it is attached.
wait_for() {
	for _ in $(seq 300); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "bench-offcpu: tracer did not attach: $(cat "$1")" >&2
	return 1
}

# cpu_seconds FILE: user+system seconds of reaped children in the output of
# the times builtin (which must run in this shell, not in a subshell).
cpu_seconds() {
	awk 'NR==2 {split($1, u, "m"); split($2, s, "m"); printf "%.3f", u[1]*60 + u[2] + s[1]*60 + s[2]}' "$1"
}

# stop PID: SIGINT (both tracers then print their summary and exit); a busy
# machine can delay bpftrace's handler, so repeat, then give up with SIGKILL.
stop() {
	for _ in $(seq 20); do
		kill -INT "$1" 2>/dev/null || break
		sleep 0.5
		kill -0 "$1" 2>/dev/null || break
	done
	kill -KILL "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

# run CONFIG ROUND: one benchmark run; appends "config usecs/op" to results
# and the tracer's summary to summaries.
run() {
	local cfg=$1 fifo="$tmp/go" out="$tmp/bench.out" log="$tmp/tracer.log" tracer=""
	rm -f "$fifo" "$log"
	mkfifo "$fifo"
	# The benchmark's pid is known before it runs: the wrapper execs it.
	taskset -c "$cpu" sh -c 'read _ < "$0"; exec perf bench sched pipe -T -l "$1"' "$fifo" "$loops" >"$out" 2>&1 &
	local bench=$!
	cur=("$bench")
	case $cfg in
	other | lazy | eager | keepall)
		local target=$bench args=()
		[ "$cfg" = other ] && target=$idle
		[ "$cfg" = eager ] && args=(--mode eager)
		[ "$cfg" = keepall ] && args=(--min-block 0)
		taskset -c "$tracer_cpu" "$tmp/lockscope" offcpu --pid "$target" --duration 0 --format folded \
			-o "$tmp/folded" "${args[@]}" 2>"$log" &
		tracer=$!
		cur+=("$tracer")
		wait_for "$log" attached
		;;
	bpftrace)
		taskset -c "$tracer_cpu" bpftrace -e "
tracepoint:sched:sched_switch {
	if (pid == $bench) { @start[tid] = nsecs; @kst[tid] = kstack; }
	\$s = @start[args->next_pid];
	if (\$s) { @off[@kst[args->next_pid]] = sum(nsecs - \$s); delete(@start[args->next_pid]); }
}" >"$log" 2>&1 &
		tracer=$!
		cur+=("$tracer")
		wait_for "$log" Attaching
		sleep 0.5 # bpftrace prints before it has attached everything
		;;
	esac
	local before after
	times >"$tmp/t0"
	[ "$stats" = 1 ] && sysctl -q kernel.bpf_stats_enabled=1
	echo go >"$fifo"
	wait "$bench"
	times >"$tmp/t1"
	if [ "$stats" = 1 ]; then
		sysctl -q kernel.bpf_stats_enabled=0
		# Per-program run time while the benchmark ran, per switch of
		# the benchmark: what the programs themselves cost, free of
		# the noise of other load (the run time includes bpf_stats' own
		# two clock reads per run).
		bpftool prog show -j | python3 -c '
import json, os, sys
cfg, switches, tracer = sys.argv[1], int(sys.argv[2]), sys.argv[3]
# The tracer'"'"'s own programs: the prog_id of its BPF program fds.
ids = set()
fdinfo = "/proc/%s/fdinfo" % tracer
for fd in os.listdir(fdinfo):
    try:
        for line in open(os.path.join(fdinfo, fd)):
            if line.startswith("prog_id:"):
                ids.add(int(line.split()[1]))
    except OSError:
        pass
tot, parts = 0, []
for p in json.load(sys.stdin):
    name = p.get("name", "")
    if p["id"] in ids and p.get("run_cnt"):
        tot += p["run_time_ns"]
        parts.append("%s %.0f ns/run x %.2f runs/switch" % (name, p["run_time_ns"] / p["run_cnt"], p["run_cnt"] / switches))
print("program time %s: %.0f ns/switch (%s)" % (cfg, tot / switches, "; ".join(parts)))
' "$cfg" "$((2 * loops))" "$tracer" >>"$tmp/stats" || true
	fi
	before=$(cpu_seconds "$tmp/t0")
	after=$(cpu_seconds "$tmp/t1")
	[ -n "$tracer" ] && stop "$tracer"
	cur=()
	local usecs
	usecs=$(awk '/usecs\/op/ {print $1}' "$out")
	# CPU time of the benchmark's threads per switch: other load on the
	# shared machine stretches wall time, much less CPU time.
	local cpu_ns
	cpu_ns=$(awk -v a="$after" -v b="$before" -v l="$loops" 'BEGIN {printf "%.1f", (a-b)*1e9/(2*l)}')
	[ "$stats" = 1 ] && return
	echo "$cfg $usecs $cpu_ns" >>"$tmp/results"
	if [ "$cfg" = keepall ]; then
		local ops
		ops=$(awk '/ops\/sec/ {print $1}' "$out")
		echo "keepall: $((2 * ops)) switches/s of the target; $(grep -o 'events=.*' "$log")" >>"$tmp/summaries"
	fi
	if [ "$cfg" = lazy ] || [ "$cfg" = eager ]; then
		echo "$cfg: $(grep -o 'events=.*' "$log")" >>"$tmp/summaries"
	fi
}

echo "bench-offcpu: $rounds rounds x ${#configs[@]} configs, perf bench sched pipe -T -l $loops on CPU $cpu, tracers on CPU $tracer_cpu" >&2
for r in $(seq "$rounds"); do
	for cfg in "${configs[@]}"; do
		run "$cfg" "$r"
	done
	echo "bench-offcpu: round $r/$rounds done" >&2
done

# One more run each of other and lazy with kernel.bpf_stats_enabled, for
# the programs' own run time (not part of the medians above).
stats=1
for _ in $(seq "${BENCH_STATS_RUNS:-1}"); do
	for cfg in other lazy; do
		run "$cfg" stats
	done
done
stats=0
median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
col() { awk -v c="$1" -v k="$2" '$1==c {print $k}' "$tmp/results"; }
base_wall=$(col none 2 | median)
base_cpu=$(col none 3 | median)
printf '%-9s %10s %10s %12s %12s   %s\n' config "usecs/op" "wall ns/sw" "cpu ns/sw" "added cpu ns" "all runs (cpu ns/switch)"
for cfg in "${configs[@]}"; do
	wall=$(col "$cfg" 2 | median)
	cpu_ns=$(col "$cfg" 3 | median)
	all=$(col "$cfg" 3 | tr '\n' ' ')
	awk -v c="$cfg" -v w="$wall" -v p="$cpu_ns" -v b="$base_cpu" -v all="$all" \
		'BEGIN {printf "%-9s %10.3f %10.0f %12.0f %12.0f   %s\n", c, w, w*1000/2, p, p-b, all}'
done
echo
echo "one round trip = 2 context switches of the benchmark; medians over $rounds rounds;"
echo "cpu ns/sw = user+system time of the benchmark / switches (the measure of added cost);"
echo "wall ns/sw includes waiting for CPU $cpu behind other load"
sort "$tmp/summaries" | uniq -c | sed 's/^ */  /' | head -40
echo
cat "$tmp/stats" 2>/dev/null || true
