#!/usr/bin/env bash
# Fails when the committed bpf2go output (internal/offcpu/*_bpfel.{o,go})
# is stale: regenerates it from bpf/ in a scratch copy of the module with
# Debian's clang and compares byte for byte. The working tree is not touched.
# Needs clang, llvm-strip and libbpf-dev (scripts/setup.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in clang llvm-strip; do
	command -v "$tool" >/dev/null || { echo "check-generated: $tool not found: run scripts/setup.sh" >&2; exit 1; }
done
[ -e /usr/include/bpf/bpf_helpers.h ] || { echo "check-generated: libbpf-dev headers missing: run scripts/setup.sh" >&2; exit 1; }

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$scratch/internal"
cp go.mod go.sum "$scratch/"
cp -r bpf "$scratch/bpf"
cp -r internal/offcpu "$scratch/internal/offcpu"
rm -f "$scratch"/internal/offcpu/*_bpfel.*
(cd "$scratch/internal/offcpu" && go generate ./)

status=0
for f in internal/offcpu/*_bpfel.o internal/offcpu/*_bpfel.go; do
	if ! cmp -s "$f" "$scratch/$f"; then
		echo "check-generated: $f is stale: run 'make generate' and commit the result" >&2
		status=1
	fi
done
[ "$status" = 0 ] && echo "check-generated: bpf2go output is up to date"
exit "$status"
