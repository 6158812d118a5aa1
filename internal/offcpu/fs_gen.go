package offcpu

// The filesystem tracer's BPF object and bindings, generated and committed
// like the off-CPU collector's (see gen.go).
//
//go:generate go tool bpf2go -tags linux -go-package offcpu -target bpfel -type fs_event -type fs_journal -type fs_hist_key -type fs_hist -type fs_op -type fs_counter -type fs_rec fs ../../bpf/fs.bpf.c -- -I../../bpf -I/usr/include/x86_64-linux-gnu -I/usr/include/aarch64-linux-gnu -O2 -Wall -Werror
