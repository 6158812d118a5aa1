#!/usr/bin/env bash
# Installs, idempotently, everything lockscope's demo and tests need on a
# fresh Debian 12 machine (run as root). Packages already present are not
# touched, and apt-get runs only when something is missing.
#
#   scripts/setup.sh            # everything the tests need
#
# Each package is listed with what needs it, so a line can be dropped when
# its user goes away.
set -euo pipefail

packages=(
	openjdk-17-jdk-headless # java, javac, jcmd, jfr: demo broker, JVM tests, JFR oracle
	kcat                    # librdkafka producer: a second real Kafka client in tests
	clang llvm libbpf-dev   # make generate: compiling bpf/ with bpf2go
	bpftool                 # inspecting loaded programs and links in eBPF tests
	linux-perf              # perf bench sched pipe: off-CPU collector overhead benchmark
	bpftrace                # the offcputime-style reference in that benchmark
	e2fsprogs xfsprogs      # mkfs.ext4 / mkfs.xfs for loop-mounted test filesystems
	util-linux mount        # losetup, mount
	tshark                  # Kafka dissector: the oracle for the protocol sniffer
	iproute2                # network namespaces for sniffer tests
	procps psmisc           # pgrep, fuser in tests and scripts
	stress-ng               # scripts/test-loaded.sh: the CPU hog the suite must pass beside
	chromium fonts-liberation # headless browser: internal/report tests load report.html in it (fonts: the heat maps' Liberation Sans)
	prometheus              # lockscope serve e2e: scrapes serve's /metrics and evaluates the shipped alert rule (run directly, not as a service)
	prometheus-alertmanager # lockscope serve e2e: posts the shipped webhook to serve's /alerts
	jetty9                  # internal/scenario: a third-party JVM server (Debian's jetty) for verdict scenarios
	tomcat10                # internal/scenario: a second third-party JVM server (Debian's Tomcat 10) for verdict scenarios
)

missing=()
for p in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done

if ((${#missing[@]} > 0)); then
	if [[ $EUID -ne 0 ]]; then
		echo "setup: missing packages: ${missing[*]}; run this script as root to install them" >&2
		exit 1
	fi
	echo "setup: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	# tshark asks whether non-root users may capture; answer for it.
	echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

for tool in go java javac jcmd jfr kcat; do
	command -v "$tool" >/dev/null || { echo "setup: $tool not found on PATH after install" >&2; exit 1; }
done

# Classic tracepoints (syscalls, jbd2) are read through tracefs; a fresh VM
# may not have it mounted.
if [[ $EUID -eq 0 && -d /sys/kernel/tracing && ! -e /sys/kernel/tracing/events ]]; then
	mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null || echo "setup: could not mount tracefs on /sys/kernel/tracing" >&2
fi
echo "setup: ok"
