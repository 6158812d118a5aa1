#!/usr/bin/env bash
# Measures the demo broker's produce latency under the load generator on one
# filesystem: a directory given (e.g. /tmp), or a fresh loop-mounted ext4 or
# XFS image, optionally with the broker's journal-pressure writers and fsync
# inside the append lock. Everything it mounts it unmounts and detaches.
#
#   scripts/experiments/broker-latency.sh tmp|ext4|xfs [DURATION] [-- broker options...]
#
# e.g.  broker-latency.sh ext4 20s -- --pressure-threads=2 --flush-messages=200
set -euo pipefail
cd "$(dirname "$0")/../.."

fs=${1:?usage: $0 tmp|ext4|xfs [DURATION] [-- broker options]}
shift
duration=20s
if [[ $# -gt 0 && $1 != -- ]]; then duration=$1; shift; fi
[[ ${1:-} == -- ]] && shift
broker_opts=("$@")

work=$(mktemp -d /tmp/lockscope-latency.XXXXXX)
loop=""
cleanup() {
	[[ -n ${broker:-} ]] && { kill "$broker" 2>/dev/null; wait "$broker" 2>/dev/null || true; }
	mountpoint -q "$work/mnt" 2>/dev/null && umount "$work/mnt"
	[[ -n $loop ]] && losetup -d "$loop"
	rm -rf "$work"
}
trap cleanup EXIT

case $fs in
tmp) logdir=$work/logs ;;
ext4 | xfs)
	[[ $EUID -eq 0 ]] || { echo "loop mounts need root" >&2; exit 1; }
	truncate -s 2G "$work/fs.img"
	# Direct I/O on the backing file: the loop device then waits for the real disk, not the page cache.
	loop=$(losetup --find --show ${LOOP_DIRECT_IO:+--direct-io=on} "$work/fs.img")
	if [[ $fs == ext4 ]]; then mkfs.ext4 -q "$loop"; else mkfs.xfs -q "$loop"; fi
	mkdir -p "$work/mnt"
	mount "$loop" "$work/mnt"
	logdir=$work/mnt/logs
	;;
*) echo "unknown filesystem $fs" >&2; exit 2 ;;
esac

classes=$work/classes
mkdir -p "$classes"
javac -d "$classes" $(find scripts/demobroker/src -name '*.java')
java -cp "$classes" kafka.Kafka --port=0 --log-dir="$logdir" "${broker_opts[@]}" >"$work/broker.out" 2>"$work/broker.err" &
broker=$!
for _ in $(seq 100); do
	grep -q 'listening on' "$work/broker.out" 2>/dev/null && break
	sleep 0.2
done
addr=$(grep -o 'listening on [0-9.]*:[0-9]*' "$work/broker.out" | awk '{print $3}')
echo "broker on $fs ($logdir) at $addr, options: ${broker_opts[*]:-none}"
go run ./scripts/loadgen --brokers "$addr" --rate "${RATE:-2000}" --duration "$duration" --interval 5s
