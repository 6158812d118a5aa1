//go:build linux

package offcpu

import (
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
)

// scripts/bench-fs.sh compares the dispatch cost of the two ways a
// syscall tracer can attach, with the same minimal body (return unless
// the current tgid is the target's, the first thing lockscope's programs
// do): per-syscall tracepoints (syscalls/sys_enter_pwrite64 and
// sys_exit_pwrite64, what the filesystem tracer uses) and the raw
// tracepoints sys_enter/sys_exit, which fire for every system call. The
// test binary runs this with LOCKSCOPE_FS_ATTACH=tp|raw and
// LOCKSCOPE_FS_ATTACH_PID set, prints "attached" and holds the programs
// until SIGINT.
func init() {
	if style := os.Getenv("LOCKSCOPE_FS_ATTACH"); style != "" {
		os.Exit(attachFilterOnly(style, os.Getenv("LOCKSCOPE_FS_ATTACH_PID")))
	}
}

func attachFilterOnly(style, pidStr string) int {
	pid, err := strconv.Atoi(pidStr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "attach: bad pid:", pidStr)
		return 2
	}
	typ := ebpf.TracePoint
	if style == "raw" {
		typ = ebpf.RawTracepoint
	}
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:    typ,
		License: "GPL",
		Instructions: asm.Instructions{
			asm.FnGetCurrentPidTgid.Call(),
			asm.RSh.Imm(asm.R0, 32),
			asm.JNE.Imm(asm.R0, int32(pid), "out"),
			asm.Mov.Imm(asm.R0, 1),
			asm.Return(),
			asm.Mov.Imm(asm.R0, 0).WithSymbol("out"),
			asm.Return(),
		},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "attach: loading:", err)
		return 2
	}
	defer prog.Close()
	var links []link.Link
	for _, dir := range []string{"enter", "exit"} {
		var l link.Link
		if style == "raw" {
			l, err = link.AttachRawTracepoint(link.RawTracepointOptions{Name: "sys_" + dir, Program: prog})
		} else {
			l, err = link.Tracepoint("syscalls", "sys_"+dir+"_pwrite64", prog, nil)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "attach:", err)
			return 2
		}
		links = append(links, l)
	}
	fmt.Println("attached")
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	for _, l := range links {
		l.Close()
	}
	return 0
}
