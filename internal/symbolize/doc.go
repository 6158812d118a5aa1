// Package symbolize names the raw instruction addresses of off-CPU stacks:
// kernel addresses from /proc/kallsyms, native user addresses from the ELF
// symbol tables (.symtab, else .dynsym) of the files a process maps, and
// JIT-compiled Java frames from the JVM's perf map (/tmp/perf-PID.map,
// written by -XX:+DumpPerfMapAtExit, jcmd PID Compiler.perfmap or
// async-profiler).
//
// A Kernel table is immutable once loaded and safe for concurrent use. A
// Process reads the process's mappings when created, and again (at most once
// a second) when an address falls in none of them or in no perf-map entry,
// since a JVM maps libraries and compiles code long after it starts; it
// loads each ELF file once, on first use, and is not safe for concurrent
// use. After the process exits it keeps naming with what it last read. Both keep only
// names and addresses, never open files. Unknown addresses are not errors:
// they are named by their hex value so that a stack keeps its depth.
//
// Only the standard library is used: debug/elf reads symbol tables well, and
// nothing in the module proxy adds kallsyms or perf-map parsing worth a
// dependency.
package symbolize
