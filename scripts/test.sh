#!/usr/bin/env bash
# The test command of README.md and CI: sets up a fresh Debian machine, then
# runs the linters and every test. eBPF, JVM, Kafka-client and loop-mount
# tests run for real here (CI is root on a VM with BTF).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
# The committed bpf2go output must match bpf/ (CI regenerates and compares).
bash scripts/check-generated.sh
make lint
go test -count=1 -timeout 60m ./...
