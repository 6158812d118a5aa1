#!/usr/bin/env bash
# Benchmarks of the JFR reader and the JFR-to-pprof conversion on the big
# shared fixture (asprof-big-wall1ms-lock1us-64t.jfr.gz, 195 MB, 9.2 M
# events), plus the peak RSS of a real `lockscope convert` run on it.
# Targets (issue 3): >= 860 MB/s decode with resolved stacks, <= 0.5 s to
# pprof, peak RSS <= 2x the largest chunk (100 MB) plus the output.
# Usage: scripts/bench-jfr.sh [count]   (default 3 runs of each benchmark)
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-3}

go test -run '^$' -bench 'Big' -benchtime 3x -count "$count" ./internal/jfr/ ./internal/jfrconv/

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
gz=${LOCKSCOPE_SHARED_TESTDATA:-../shared/testdata}/jfr/asprof-big-wall1ms-lock1us-64t.jfr.gz
gunzip -c "$gz" >"$tmp/big.jfr"
go build -o "$tmp/lockscope" ./cmd/lockscope
for kind in wall lock; do
	/usr/bin/time -f "convert --event $kind: %e s elapsed, %M KB peak RSS" \
		"$tmp/lockscope" convert --event "$kind" -o "$tmp/$kind.pb.gz" "$tmp/big.jfr"
done
/usr/bin/time -f "jfr summary: %e s elapsed, %M KB peak RSS" "$tmp/lockscope" jfr summary "$tmp/big.jfr" >/dev/null
