#!/usr/bin/env bash
# Added cost per write() of lockscope's filesystem tracer (lockscope fs).
#
# Enabling syscall tracepoints puts every system call of every process on
# the kernel's slower tracing path, so two costs matter:
#   - a non-target process: what every other process on the broker's host
#     pays per write() (and per any other system call);
#   - the target (the broker): what each of its write()s pays for being
#     traced (fd table walk, two clock reads, per-thread state, histogram).
#
# Workload: a small C program (below) doing LOOPS pwrite()s of 64 bytes at
# offset 0 of a file in a temporary directory (page cache only, no disk
# I/O), timed with CLOCK_MONOTONIC and with its own CPU time (getrusage), so
# that other load on the shared machine, which stretches wall time, distorts
# it less; then LOOPS getppid()s, a system call the tracer does not follow,
# to show the global slow-path cost. Pinned to BENCH_CPU; tracers on
# BENCH_TRACER_CPU.
# Configurations, run alternately in every round, compared by medians:
#   off      no tracing
#   other    lockscope fs following another (idle) process: non-target cost
#   target   lockscope fs on the writer (--min 1ms: histograms only)
#   tp-only  a program that only filters on another pid (lockscope's first
#            step), on syscalls/sys_enter_pwrite64 and sys_exit_pwrite64:
#            the dispatch cost of lockscope's per-syscall tracepoints
#   raw-only the same program on the raw tracepoints sys_enter/sys_exit,
#            which fire for every system call: the alternative design
#   (the last two are internal/offcpu's test binary in the mode of
#   fs_bench_test.go)
# Finally one run each of other and target with kernel.bpf_stats_enabled
# gives the programs' own run time per write.
#
# Usage: sudo scripts/bench-fs.sh [ROUNDS (7)] [LOOPS per run (1000000)]
# Env: BENCH_CPU (0), BENCH_TRACER_CPU (1), BENCH_CONFIGS to pick configs,
# BENCH_STATS_RUNS (3) bpf_stats runs of each tracer. ROUNDS 0 gives only
# the bpf_stats runs: a quick check of a change to the programs.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=${1:-7}
loops=${2:-1000000}
cpu=${BENCH_CPU:-0}
tracer_cpu=${BENCH_TRACER_CPU:-1}
read -r -a configs <<<"${BENCH_CONFIGS:-off other target tp-only raw-only}"

[ "$(id -u)" = 0 ] || { echo "bench-fs: needs root (eBPF)" >&2; exit 1; }
for tool in cc taskset go bpftool python3; do
	command -v "$tool" >/dev/null || { echo "bench-fs: $tool not found: run scripts/setup.sh" >&2; exit 1; }
done
if [ ! -e /sys/kernel/tracing/events ]; then
	mount -t tracefs nodev /sys/kernel/tracing ||
		{ echo "bench-fs: tracefs not mounted: mount -t tracefs nodev /sys/kernel/tracing" >&2; exit 1; }
fi

tmp=$(mktemp -d)
pids=()
cur=()
cleanup() {
	for p in "${cur[@]}" "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	sysctl -q kernel.bpf_stats_enabled=0 || true
	rm -rf "$tmp"
}
trap cleanup EXIT

cat >"$tmp/writer.c" <<'EOF'
// Waits for a line on the fifo argv[1], then times argv[3] pwrite()s of
// 64 bytes at offset 0 of argv[2], and as many getppid()s, prints the
// results and waits for a line on the fifo argv[1].end before it exits (so
// that a tracer following it is still there to be inspected).
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static double cpu(void) {
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e9 + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e3;
}

int main(int argc, char **argv) {
	if (argc != 4)
		return 2;
	char end[4096];
	snprintf(end, sizeof(end), "%s.end", argv[1]);
	long n = atol(argv[3]);
	char buf[64] = {0}, line[8];
	int fd = open(argv[2], O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || pwrite(fd, buf, sizeof(buf), 0) != sizeof(buf))
		return 2;
	FILE *f = fopen(argv[1], "r");
	if (!f || !fgets(line, sizeof(line), f))
		return 2;
	double t0 = now(), c0 = cpu();
	for (long i = 0; i < n; i++)
		if (pwrite(fd, buf, sizeof(buf), 0) != sizeof(buf))
			return 2;
	double t1 = now(), c1 = cpu();
	for (long i = 0; i < n; i++)
		syscall(SYS_getppid);
	double t2 = now(), c2 = cpu();
	printf("pwrite %.1f %.1f\ngetppid %.1f %.1f\n", (t1 - t0) / n, (c1 - c0) / n, (t2 - t1) / n, (c2 - c1) / n);
	fflush(stdout);
	FILE *e = fopen(end, "r");
	if (!e || !fgets(line, sizeof(line), e))
		return 2;
	return 0;
}
EOF
cc -O2 -o "$tmp/writer" "$tmp/writer.c"
go build -o "$tmp/lockscope" ./cmd/lockscope
go test -c -o "$tmp/offcpu.test" ./internal/offcpu
sleep 100000 &
idle=$!
pids+=("$idle")

wait_for() {
	for _ in $(seq 300); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "bench-fs: tracer did not attach: $(cat "$1")" >&2
	return 1
}

stop() {
	for _ in $(seq 20); do
		kill -INT "$1" 2>/dev/null || break
		sleep 0.5
		kill -0 "$1" 2>/dev/null || break
	done
	kill -KILL "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

stats=0
touch "$tmp/results" "$tmp/stats"
# run CONFIG: one run; appends "config op wall_ns cpu_ns" lines to results.
run() {
	local cfg=$1 fifo="$tmp/go" out="$tmp/writer.out" log="$tmp/tracer.log" tracer=""
	rm -f "$fifo" "$fifo.end" "$log"
	mkfifo "$fifo" "$fifo.end"
	taskset -c "$cpu" "$tmp/writer" "$fifo" "$tmp/data" "$loops" >"$out" &
	local writer=$!
	cur=("$writer")
	case $cfg in
	other | target)
		local target=$idle
		[ "$cfg" = target ] && target=$writer
		taskset -c "$tracer_cpu" "$tmp/lockscope" fs --pid "$target" >"$log" 2>&1 &
		tracer=$!
		cur+=("$tracer")
		wait_for "$log" "Tracing file operations"
		;;
	tp-only | raw-only)
		local style=${cfg%-only}
		LOCKSCOPE_FS_ATTACH=$style LOCKSCOPE_FS_ATTACH_PID=$idle taskset -c "$tracer_cpu" "$tmp/offcpu.test" >"$log" 2>&1 &
		tracer=$!
		cur+=("$tracer")
		wait_for "$log" attached
		;;
	esac
	[ "$stats" = 1 ] && sysctl -q kernel.bpf_stats_enabled=1
	echo go >"$fifo"
	while ! grep -q getppid "$out" 2>/dev/null; do
		kill -0 "$writer" 2>/dev/null || { echo "bench-fs: writer failed" >&2; exit 1; }
		sleep 0.05
	done
	if [ "$stats" = 1 ]; then
		sysctl -q kernel.bpf_stats_enabled=0
		bpftool prog show -j | python3 -c '
import json, os, sys
cfg, n, tracer = sys.argv[1], int(sys.argv[2]), sys.argv[3]
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
    if p["id"] in ids and p.get("run_cnt"):
        tot += p["run_time_ns"]
        parts.append("%s %.0f ns/run x %.2f runs/write" % (p.get("name", "?"), p["run_time_ns"] / p["run_cnt"], p["run_cnt"] / n))
print("program time %s: %.0f ns/write (%s)" % (cfg, tot / n, "; ".join(parts)))
' "$cfg" "$loops" "$tracer" >>"$tmp/stats" || true
	fi
	echo end >"$fifo.end"
	wait "$writer"
	[ -n "$tracer" ] && stop "$tracer"
	cur=()
	[ "$stats" = 1 ] && return
	awk -v c="$cfg" '{print c, $1, $2, $3}' "$out" >>"$tmp/results"
	if [ "$cfg" = target ]; then
		grep -E "^topic|pwrite64|Tracer:" "$log" | tail -2 >>"$tmp/summaries" || true
	fi
}

echo "bench-fs: $rounds rounds x ${#configs[@]} configs, $loops pwrite(64 B) + getppid on CPU $cpu, tracers on CPU $tracer_cpu" >&2
for r in $(seq "$rounds"); do
	for cfg in "${configs[@]}"; do
		run "$cfg"
	done
	echo "bench-fs: round $r/$rounds done" >&2
done
stats=1
for _ in $(seq "${BENCH_STATS_RUNS:-3}"); do
	for cfg in other target tp-only raw-only; do
		case " ${configs[*]} " in *" $cfg "*) run "$cfg" ;; esac
	done
done

median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
minimum() { sort -g | head -1; }
if [ "$rounds" -gt 0 ]; then
	# The minimum is the least disturbed run: other load only adds time.
	printf "%-8s %-8s %11s %11s %11s %11s %11s %11s\n" config syscall "wall med" "cpu med" "cpu min" "+wall med" "+cpu med" "+cpu min"
	for op in pwrite getppid; do
		base_w=$(awk -v o=$op '$1=="off" && $2==o {print $3}' "$tmp/results" | median)
		base_c=$(awk -v o=$op '$1=="off" && $2==o {print $4}' "$tmp/results" | median)
		base_m=$(awk -v o=$op '$1=="off" && $2==o {print $4}' "$tmp/results" | minimum)
		for cfg in "${configs[@]}"; do
			w=$(awk -v c="$cfg" -v o=$op '$1==c && $2==o {print $3}' "$tmp/results" | median)
			c=$(awk -v c="$cfg" -v o=$op '$1==c && $2==o {print $4}' "$tmp/results" | median)
			m=$(awk -v c="$cfg" -v o=$op '$1==c && $2==o {print $4}' "$tmp/results" | minimum)
			printf "%-8s %-8s %11.1f %11.1f %11.1f %11s %11s %11s\n" "$cfg" "$op" "$w" "$c" "$m" \
				"$(awk -v a="$w" -v b="${base_w:-0}" 'BEGIN {printf "%+.1f", a-b}')" \
				"$(awk -v a="$c" -v b="${base_c:-0}" 'BEGIN {printf "%+.1f", a-b}')" \
				"$(awk -v a="$m" -v b="${base_m:-0}" 'BEGIN {printf "%+.1f", a-b}')"
		done
	done
fi
echo
# Per-run program times drop the programs that did not run during the
# writes; bpf_stats adds its own two clock reads per run.
sed -E 's/ ?[a-z0-9_]+ [0-9]+ ns\/run x 0\.00 runs\/write;?//g' "$tmp/stats"
[ -s "$tmp/summaries" ] && { echo; echo "target runs (lockscope fs summary):"; cat "$tmp/summaries"; }
echo "(medians of $rounds runs; wall and CPU time of the writer; other load on the machine inflates both)"
