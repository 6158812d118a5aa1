package offcpu

// The BPF object and its Go bindings are generated from ../../bpf and
// committed, so that building lockscope needs no clang. `make generate`
// reruns this with Debian's clang; scripts/check-generated.sh fails CI when
// the committed output is stale.
//
// The multiarch include directories hold <asm/types.h>, which <linux/bpf.h>
// needs; clang ignores the one that does not exist on the build host.
//
//go:generate go tool bpf2go -tags linux -go-package offcpu -target bpfel -type event -type event_eager -type counter -type event_flag offcpu ../../bpf/offcpu.bpf.c -- -I../../bpf -I/usr/include/x86_64-linux-gnu -I/usr/include/aarch64-linux-gnu -O2 -Wall -Werror
