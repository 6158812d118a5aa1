# Sourced by the scripts that run the demo broker (demo.sh, bench-*.sh,
# fs-experiment.sh): compile it, start it and wait until it listens.

# demo_broker_compile CLASSES: compiles the demo broker into CLASSES.
demo_broker_compile() {
	mkdir -p "$1"
	javac -d "$1" $(find scripts/demobroker/src -name '*.java')
}

# demo_broker_start CLASSES OUT ARGS...: starts the demo broker with ARGS,
# its output in OUT.out and OUT.err, and returns once it listens, with its
# pid in demo_broker_pid and its HOST:PORT in demo_broker_addr. A broker
# that exits, or does not listen within 20 s (then it is stopped), is an
# error showing why.
demo_broker_start() {
	local classes=$1 out=$2
	shift 2
	java -cp "$classes" kafka.Kafka "$@" >"$out.out" 2>"$out.err" &
	demo_broker_pid=$!
	for _ in $(seq 100); do
		if grep -q 'listening on' "$out.out" 2>/dev/null; then
			demo_broker_addr=$(grep -o 'listening on [0-9.]*:[0-9]*' "$out.out" | awk '{print $3}')
			return 0
		fi
		kill -0 "$demo_broker_pid" 2>/dev/null || { cat "$out.err" >&2; return 1; }
		sleep 0.2
	done
	kill "$demo_broker_pid" 2>/dev/null
	echo "the demo broker did not listen within 20 s: see $out.out and $out.err" >&2
	return 1
}
