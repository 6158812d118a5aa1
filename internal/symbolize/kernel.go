package symbolize

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
)

// ErrKernelHidden means /proc/kallsyms shows only zero addresses.
var ErrKernelHidden = errors.New("kernel symbol addresses are hidden (kernel.kptr_restrict): run as root, or `sysctl kernel.kptr_restrict=0`")

// Kernel is a sorted table of the kernel's text symbols.
type Kernel struct {
	addrs   []uint64
	names   []string
	modules []string
}

// LoadKernel reads /proc/kallsyms.
func LoadKernel() (*Kernel, error) {
	f, err := os.Open("/proc/kallsyms")
	if err != nil {
		return nil, fmt.Errorf("opening kernel symbols: %w", err)
	}
	defer f.Close()
	return ParseKallsyms(f)
}

// ParseKallsyms reads a table in /proc/kallsyms format.
func ParseKallsyms(r io.Reader) (*Kernel, error) {
	type sym struct {
		addr         uint64
		name, module string
	}
	var syms []sym
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	nonzero := false
	for sc.Scan() {
		// "ffffffff81000000 T _stext" or "... t name\t[module]"
		line := sc.Text()
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		switch f[1] {
		case "t", "T", "w", "W":
		default:
			continue
		}
		addr, err := strconv.ParseUint(f[0], 16, 64)
		if err != nil {
			return nil, fmt.Errorf("parsing kernel symbols: bad address in %q", line)
		}
		if addr != 0 {
			nonzero = true
		}
		s := sym{addr: addr, name: f[2]}
		if len(f) > 3 {
			s.module = strings.Trim(f[3], "[]")
		}
		syms = append(syms, s)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading kernel symbols: %w", err)
	}
	if len(syms) == 0 {
		return nil, errors.New("reading kernel symbols: no text symbols in /proc/kallsyms")
	}
	if !nonzero {
		return nil, ErrKernelHidden
	}
	sort.SliceStable(syms, func(i, j int) bool { return syms[i].addr < syms[j].addr })
	k := &Kernel{
		addrs:   make([]uint64, len(syms)),
		names:   make([]string, len(syms)),
		modules: make([]string, len(syms)),
	}
	for i, s := range syms {
		k.addrs[i], k.names[i], k.modules[i] = s.addr, s.name, s.module
	}
	return k, nil
}

// Lookup returns the symbol containing addr: the last one starting at or
// before it. ok is false below the first symbol.
func (k *Kernel) Lookup(addr uint64) (name, module string, ok bool) {
	i := sort.Search(len(k.addrs), func(i int) bool { return k.addrs[i] > addr }) - 1
	if i < 0 {
		return "", "", false
	}
	return k.names[i], k.modules[i], true
}

// Name returns the symbol name for addr, or its hex value.
func (k *Kernel) Name(addr uint64) string {
	if name, _, ok := k.Lookup(addr); ok {
		return name
	}
	return fmt.Sprintf("%#x", addr)
}

// tracingFrames name the frames a stack walked from inside a tracepoint
// starts with (the tracepoint dispatch calling the BPF program).
var tracingFrames = []string{"bpf_trace_run", "__bpf_trace_", "__traceiter_", "__probestub_"}

// Stack names a kernel stack, innermost first. Stacks walked at switch-out
// from inside the tracepoint begin with the BPF program and the tracepoint
// dispatch; those frames describe the collector, not the thread, and are
// dropped.
func (k *Kernel) Stack(addrs []uint64) []string {
	names := make([]string, len(addrs))
	cut := 0
	for i, a := range addrs {
		names[i] = k.Name(a)
		if i < 6 {
			for _, p := range tracingFrames {
				if strings.HasPrefix(names[i], p) {
					cut = i + 1
				}
			}
		}
	}
	return names[cut:]
}
