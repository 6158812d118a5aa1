#!/usr/bin/env bash
# The test command of README.md, run RUNS times in a row (default 3) while a
# CPU hog takes two CPUs (stress-ng --cpu 2): the suite must pass on a loaded
# machine, as shared CI machines are. Stops at the first failing run.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-3}
hogs=${HOGS:-2}

bash scripts/setup.sh
stress-ng --cpu "$hogs" --timeout 0 --quiet &
hog=$!
trap 'kill "$hog" 2>/dev/null; wait "$hog" 2>/dev/null || true' EXIT

for i in $(seq 1 "$runs"); do
	start=$(date +%s)
	if ! bash scripts/test.sh; then
		echo "test-loaded: run $i of $runs failed beside stress-ng --cpu $hogs" >&2
		exit 1
	fi
	echo "test-loaded: run $i of $runs passed in $(($(date +%s) - start)) s beside stress-ng --cpu $hogs"
done
