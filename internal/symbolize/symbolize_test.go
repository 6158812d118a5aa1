package symbolize

import (
	"bufio"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestKernel(t *testing.T) {
	k, err := LoadKernel()
	if errors.Is(err, ErrKernelHidden) {
		t.Skip("skipping: kernel addresses hidden (not root or kptr_restrict)")
	}
	if err != nil {
		t.Fatal(err)
	}
	// The address of schedule from kallsyms itself, plus an offset, must
	// name schedule.
	b, err := os.ReadFile("/proc/kallsyms")
	if err != nil {
		t.Fatal(err)
	}
	var addr uint64
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[2] == "schedule" && (f[1] == "T" || f[1] == "t") {
			addr, _ = strconv.ParseUint(f[0], 16, 64)
		}
	}
	if addr == 0 {
		t.Fatal("no schedule in /proc/kallsyms")
	}
	if got := k.Name(addr + 4); got != "schedule" {
		t.Errorf("Name(schedule+4) = %q", got)
	}
	if got := k.Name(1); got != "0x1" {
		t.Errorf("Name(1) = %q, want the hex address", got)
	}
}

func TestParseKallsyms(t *testing.T) {
	in := "0000000000000000 T _stext\n0000000000000000 t foo\n"
	if _, err := ParseKallsyms(strings.NewReader(in)); !errors.Is(err, ErrKernelHidden) {
		t.Errorf("zero addresses: got %v, want ErrKernelHidden", err)
	}
	in = "ffffffff81000000 T _stext\nffffffff81000100 t bar\nffffffff81000200 D data\nffffffffc0000000 t modfn\t[ext4]\n"
	k, err := ParseKallsyms(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[uint64]string{0xffffffff81000000: "_stext", 0xffffffff81000150: "bar", 0xffffffff81000250: "bar", 0xffffffffc0000010: "modfn"} {
		if got := k.Name(addr); got != want {
			t.Errorf("Name(%#x) = %q, want %q", addr, got, want)
		}
	}
	if _, mod, _ := k.Lookup(0xffffffffc0000010); mod != "ext4" {
		t.Errorf("module %q, want ext4", mod)
	}
	if _, err := ParseKallsyms(strings.NewReader("zz T x\n")); err == nil {
		t.Error("bad address accepted")
	}
}

// A real process linked against libc: an address inside clock_nanosleep,
// computed from libc's own dynamic symbol table and the process mappings,
// is named clock_nanosleep.
func TestProcessLibc(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	time.Sleep(100 * time.Millisecond) // let the loader map libc
	p, err := NewProcess(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	var libc mapping
	for _, m := range p.maps {
		if strings.Contains(m.path, "libc.so") {
			libc = m
		}
	}
	if libc.path == "" {
		t.Fatal("sleep maps no libc")
	}
	f, err := elf.Open(libc.path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	syms, err := f.DynamicSymbols()
	if err != nil {
		t.Fatal(err)
	}
	var sym elf.Symbol
	for _, s := range syms {
		if s.Name == "clock_nanosleep" && s.Value != 0 {
			sym = s
		}
	}
	var seg *elf.Prog
	for _, pr := range f.Progs {
		if pr.Type == elf.PT_LOAD && pr.Flags&elf.PF_X != 0 && sym.Value >= pr.Vaddr && sym.Value < pr.Vaddr+pr.Memsz {
			seg = pr
		}
	}
	if seg == nil {
		t.Fatal("clock_nanosleep not in an executable segment of libc")
	}
	fileOff := sym.Value - seg.Vaddr + seg.Off
	addr := libc.start + fileOff - libc.off + 3
	got := p.Lookup(addr)
	if !got.Known || got.Name != "clock_nanosleep" || got.File != libc.path {
		t.Errorf("Lookup(%#x) = %+v, want clock_nanosleep in %s", addr, got, libc.path)
	}
	if got := p.Lookup(8); got.Known || got.Name != "0x8" {
		t.Errorf("Lookup(8) = %+v, want unknown", got)
	}
	// libc's first page holds its ELF header, no function.
	if got := p.Lookup(libc.start); got.Known || got.Name != fmt.Sprintf("%s+%#x", filepath.Base(libc.path), libc.off) {
		t.Errorf("Lookup(libc start) = %+v, want file+offset", got)
	}
}

// A real JVM: its perf map (jcmd PID Compiler.perfmap) names JIT code, and
// libjvm's symbol table names HotSpot's C++ code.
func TestProcessJVM(t *testing.T) {
	java, err := exec.LookPath("java")
	if err != nil {
		t.Fatal("java not found: run scripts/setup.sh (installs openjdk-17)")
	}
	dir := t.TempDir()
	src := dir + "/Spin.java"
	os.WriteFile(src, []byte(`public class Spin { public static void main(String[] a) throws Exception {
		Object o = new Object(); long s = 0;
		for (int i = 0; i < 200000; i++) s += o.hashCode() + Integer.toString(i).length();
		System.out.println("ready"); Thread.sleep(60000); } }`), 0o644)
	cmd := exec.Command(java, "-Xshare:auto", src)
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
		os.Remove(fmt.Sprintf("/tmp/perf-%d.map", pid))
	}()
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("java: %q, %v", line, err)
	}
	if out, err := exec.Command("jcmd", strconv.Itoa(pid), "Compiler.perfmap").CombinedOutput(); err != nil {
		t.Fatalf("jcmd Compiler.perfmap: %v: %s", err, out)
	}
	b, err := os.ReadFile(fmt.Sprintf("/tmp/perf-%d.map", pid))
	if err != nil {
		t.Fatal(err)
	}
	// Pick a compiled method and look up an address inside it.
	var start, size uint64
	var name string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.SplitN(line, " ", 3)
		if len(f) == 3 && strings.Contains(f[2], "java.lang.Object.hashCode()") {
			start, _ = strconv.ParseUint(strings.TrimPrefix(f[0], "0x"), 16, 64)
			size, _ = strconv.ParseUint(strings.TrimPrefix(f[1], "0x"), 16, 64)
			name = f[2]
		}
	}
	if start == 0 || size < 2 {
		t.Fatalf("no Object.hashCode in the perf map:\n%.2000s", b)
	}
	p, err := NewProcess(pid)
	if err != nil {
		t.Fatal(err)
	}
	got := p.Lookup(start + size/2)
	if !got.Known || got.Name != name || got.File != "[perf-map]" {
		t.Errorf("Lookup = %+v, want %q from the perf map", got, name)
	}

	// libjvm's own symbol table names HotSpot's C++ functions, demangled.
	var jvm mapping
	for _, m := range p.maps {
		if strings.HasSuffix(m.path, "/libjvm.so") {
			jvm = m
		}
	}
	if jvm.path == "" {
		t.Fatal("no libjvm.so mapping")
	}
	addr, err := elfSymbolAddr(jvm, "_ZN13ObjectMonitor6EnterIEP10JavaThread")
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Lookup(addr + 1); !got.Known || got.Name != "ObjectMonitor::EnterI" {
		t.Errorf("Lookup(ObjectMonitor::EnterI+1) = %+v", got)
	}
}

// elfSymbolAddr returns where symbol name of the file of m is mapped.
func elfSymbolAddr(m mapping, name string) (uint64, error) {
	f, err := elf.Open(m.path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	syms, err := f.Symbols()
	if err != nil {
		return 0, err
	}
	for _, s := range syms {
		if s.Name != name {
			continue
		}
		for _, pr := range f.Progs {
			if pr.Type == elf.PT_LOAD && pr.Flags&elf.PF_X != 0 && s.Value >= pr.Vaddr && s.Value < pr.Vaddr+pr.Memsz {
				return m.start + (s.Value - pr.Vaddr + pr.Off) - m.off, nil
			}
		}
	}
	return 0, fmt.Errorf("%s not in the symbol table of %s", name, m.path)
}
