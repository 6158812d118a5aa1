#!/usr/bin/env bash
# The filesystem experiment: the demo broker under the same producer load and
# the same journal pressure on four loop-mounted filesystems -- ext4 in its
# default data=ordered mode, ext4 data=writeback, ext4 with fast_commit, and
# XFS -- a lockscope capture of each, then `lockscope compare` of the four
# bundles: one table (text, JSON, HTML with heat maps on one scale).
#
#   scripts/fs-experiment.sh [CAPTURE_DURATION]      (default 40s)
#
# Environment: OUT (default /tmp/lockscope-fs-experiment), RATE (records/s,
# 2500), CLIENTS (8), PRESSURE_THREADS (3), PRESSURE_KB (4096), FLUSH_EVERY
# (fsync inside the append lock every N appends, 10), SLO (20ms: the demo
# broker's tail is tens of milliseconds, not Allegro's seconds, so its SLO is
# scaled down with it; the producers' own view at the end uses 65ms),
# IMAGE_SIZE (2G), CONFIGS (default "ext4-ordered ext4-writeback
# ext4-fastcommit xfs"). The loop devices use direct I/O, so journal commits
# wait for the real disk rather than the host's page cache (without it the
# tail barely shows; see scripts/experiments/broker-latency.sh).
#
# Everything it mounts it unmounts and detaches, also when interrupted. Needs
# root (loop mounts, eBPF).
set -euo pipefail
cd "$(dirname "$0")/.."

duration=${1:-40s}
out=${OUT:-/tmp/lockscope-fs-experiment}
configs=(${CONFIGS:-ext4-ordered ext4-writeback ext4-fastcommit xfs})
[[ $EUID -eq 0 ]] || { echo "fs-experiment: loop mounts and eBPF need root (sudo $0)" >&2; exit 1; }

bash scripts/setup.sh >/dev/null
make build >/dev/null
go build -o bin/loadgen ./scripts/loadgen

work=$(mktemp -d /tmp/lockscope-fsx.XXXXXX)
loop="" broker="" load=""
stop_run() {
	if [[ -n $load ]]; then kill "$load" 2>/dev/null || true; wait "$load" 2>/dev/null || true; fi
	if [[ -n $broker ]]; then kill "$broker" 2>/dev/null || true; wait "$broker" 2>/dev/null || true; fi
	load="" broker=""
	if mountpoint -q "$work/mnt" 2>/dev/null; then umount "$work/mnt" || umount -l "$work/mnt"; fi
	if [[ -n $loop ]]; then losetup -d "$loop" || true; fi
	loop=""
	rm -f "$work/fs.img"
}
trap 'stop_run; rm -rf "$work"' EXIT
trap 'exit 130' INT TERM HUP PIPE

classes=$work/classes
mkdir -p "$classes" "$work/mnt"
source scripts/lib-demobroker.sh
demo_broker_compile "$classes"
rm -rf "$out"
mkdir -p "$out"
secs=$(( ${duration%s} + 10 ))

for cfg in "${configs[@]}"; do
	truncate -s "${IMAGE_SIZE:-2G}" "$work/fs.img"
	loop=$(losetup --find --show --direct-io=on "$work/fs.img")
	case $cfg in
	ext4-ordered) mkfs.ext4 -q "$loop"; opts="" ;;
	ext4-writeback) mkfs.ext4 -q "$loop"; opts="data=writeback" ;;
	ext4-fastcommit) mkfs.ext4 -q -O fast_commit "$loop"; opts="" ;;
	xfs) mkfs.xfs -q -f "$loop"; opts="" ;;
	*) echo "unknown configuration $cfg" >&2; exit 2 ;;
	esac
	mount ${opts:+-o "$opts"} "$loop" "$work/mnt"
	echo "== $cfg: $(findmnt -no FSTYPE,OPTIONS "$work/mnt")"

	demo_broker_start "$classes" "$out/$cfg.broker" --port=0 --log-dir="$work/mnt/logs" \
		--pressure-threads="${PRESSURE_THREADS:-3}" --pressure-write-kb="${PRESSURE_KB:-4096}" \
		--flush-messages="${FLUSH_EVERY:-10}"
	broker=$demo_broker_pid addr=$demo_broker_addr
	port=${addr##*:}

	bin/loadgen --brokers "$addr" --rate "${RATE:-2500}" --clients "${CLIENTS:-8}" \
		--duration "${secs}s" --interval 10s >"$out/$cfg.loadgen.out" 2>&1 &
	load=$!
	sleep 3
	bin/lockscope capture --pid "$broker" --duration "$duration" --latency "kafka:$port" --iface lo \
		--slo "${SLO:-20ms}" --label "filesystem=$cfg" -o "$out/$cfg" >"$out/$cfg.capture.out" 2>&1 ||
		{ cat "$out/$cfg.capture.out" >&2; exit 1; }
	grep -A3 '^Filesystem' "$out/$cfg/summary.txt" | sed 's/^/   /' || true
	stop_run
done

bundles=()
for cfg in "${configs[@]}"; do bundles+=("$out/$cfg"); done
bin/lockscope compare "${bundles[@]}" | tee "$out/compare.txt"
bin/lockscope compare --format json -o "$out/compare.json" "${bundles[@]}"
bin/lockscope compare --format html -o "$out/compare.html" --heatmaps "$out/heatmaps" "${bundles[@]}"
echo
echo "What lockscope named, per filesystem:"
for cfg in "${configs[@]}"; do
	echo "$cfg: $(grep -m1 -A1 '^Filesystem' "$out/$cfg/summary.txt" | tail -1 | sed 's/^ *//')"
	grep -m1 -A1 '^Who held' "$out/$cfg/summary.txt" | tail -1 | sed 's/^ */    /' || true
done
echo
echo "The producers' own view (scripts/loadgen; over-slo counts records over 65ms):"
for cfg in "${configs[@]}"; do
	echo "$cfg: $(tail -1 "$out/$cfg.loadgen.out")"
done
echo
echo "Table: $out/compare.txt   JSON: $out/compare.json   page: $out/compare.html   bundles: $out/<config>/report.html"
