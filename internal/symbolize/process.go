package symbolize

import (
	"bufio"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ianlancetaylor/demangle"
)

// Frame is a named user address.
type Frame struct {
	// Name is the function (C, demangled C++, or the Java method from the
	// perf map); for an address in a file without a symbol for it,
	// "file+0xoffset"; for an address in no mapping, the hex address.
	Name string
	// File is the mapped file (or "[perf-map]" for JIT code); empty when
	// the address is in no mapping.
	File string
	// Known is false when Name is only the address.
	Known bool
}

type mapping struct {
	start, end, off uint64
	path            string
}

// Process names addresses of one process.
type Process struct {
	pid      int
	maps     []mapping
	mapsRead time.Time
	files    map[string]*elfSyms
	perfMap  *symTable
	perfRead time.Time
}

// NewProcess reads the mappings of pid. Call it while the process lives;
// its files and perf map are read on first use.
func NewProcess(pid int) (*Process, error) {
	p := &Process{pid: pid, files: map[string]*elfSyms{}}
	if err := p.readMaps(); err != nil {
		return nil, err
	}
	return p, nil
}

// mapsRefresh bounds how often an address in no known mapping makes the
// mappings be read again: a JVM maps libraries and code long after start.
const mapsRefresh = time.Second

func (p *Process) readMaps() error {
	p.mapsRead = time.Now()
	f, err := os.Open(fmt.Sprintf("/proc/%d/maps", p.pid))
	if err != nil {
		return fmt.Errorf("reading mappings of process %d: %w", p.pid, err)
	}
	defer f.Close()
	var maps []mapping
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// start-end perms offset dev inode path
		fs := strings.Fields(sc.Text())
		if len(fs) < 6 || !strings.Contains(fs[1], "x") || !strings.HasPrefix(fs[5], "/") {
			continue
		}
		se := strings.SplitN(fs[0], "-", 2)
		start, err1 := strconv.ParseUint(se[0], 16, 64)
		end, err2 := strconv.ParseUint(se[1], 16, 64)
		off, err3 := strconv.ParseUint(fs[2], 16, 64)
		if err1 != nil || err2 != nil || err3 != nil {
			continue
		}
		maps = append(maps, mapping{start: start, end: end, off: off, path: strings.Join(fs[5:], " ")})
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading mappings of process %d: %w", p.pid, err)
	}
	p.maps = maps
	return nil
}

// Lookup names addr.
func (p *Process) Lookup(addr uint64) Frame {
	f, ok := p.lookupMaps(addr)
	if !ok && time.Since(p.mapsRead) >= mapsRefresh {
		// A process that has exited keeps the mappings known so far.
		if p.readMaps() == nil {
			f, ok = p.lookupMaps(addr)
		}
	}
	if ok {
		return f
	}
	if name, ok := p.perf().lookup(addr); ok {
		return Frame{Name: name, File: "[perf-map]", Known: true}
	}
	// The JVM appends to its perf map as it compiles (or writes it on
	// demand, jcmd Compiler.perfmap): read it again on a miss.
	if time.Since(p.perfRead) >= mapsRefresh {
		p.perfMap = nil
		if name, ok := p.perf().lookup(addr); ok {
			return Frame{Name: name, File: "[perf-map]", Known: true}
		}
	}
	return Frame{Name: fmt.Sprintf("%#x", addr)}
}

func (p *Process) lookupMaps(addr uint64) (Frame, bool) {
	for _, m := range p.maps {
		if addr < m.start || addr >= m.end {
			continue
		}
		off := addr - m.start + m.off
		es := p.elf(m.path)
		if es != nil {
			if name, ok := es.lookup(off); ok {
				// C++ (libjvm) names are mangled in the symbol table.
				return Frame{Name: demangle.Filter(name, demangle.NoParams), File: m.path, Known: true}, true
			}
		}
		// Stripped code (Debian's libc keeps only its exported
		// symbols): the file and offset still name the place, and
		// can be resolved later against debug symbols.
		return Frame{Name: fmt.Sprintf("%s+%#x", filepath.Base(m.path), off), File: m.path}, true
	}
	return Frame{}, false
}

func (p *Process) elf(path string) *elfSyms {
	if es, ok := p.files[path]; ok {
		return es
	}
	// Through the process's root, so that containerized JVMs resolve
	// their own libjvm.
	es, err := loadELF(filepath.Join(fmt.Sprintf("/proc/%d/root", p.pid), path))
	if err != nil {
		es, _ = loadELF(path)
	}
	p.files[path] = es
	return es
}

// perf returns the perf map read last, reading it if there is none yet;
// an absent map is an empty table.
func (p *Process) perf() *symTable {
	if p.perfMap == nil {
		p.perfRead = time.Now()
		p.perfMap = &symTable{}
		f, err := os.Open(fmt.Sprintf("/tmp/perf-%d.map", p.pid))
		if err == nil {
			if t, err := parsePerfMap(f); err == nil {
				p.perfMap = t
			}
			f.Close()
		}
	}
	return p.perfMap
}

// symTable is a sorted list of sized symbols.
type symTable struct {
	addrs, sizes []uint64
	names        []string
}

func (t *symTable) add(addr, size uint64, name string) {
	t.addrs = append(t.addrs, addr)
	t.sizes = append(t.sizes, size)
	t.names = append(t.names, name)
}

func (t *symTable) sort() {
	idx := make([]int, len(t.addrs))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return t.addrs[idx[a]] < t.addrs[idx[b]] })
	a, s, n := make([]uint64, len(idx)), make([]uint64, len(idx)), make([]string, len(idx))
	for i, j := range idx {
		a[i], s[i], n[i] = t.addrs[j], t.sizes[j], t.names[j]
	}
	t.addrs, t.sizes, t.names = a, s, n
}

func (t *symTable) lookup(addr uint64) (string, bool) {
	i := sort.Search(len(t.addrs), func(i int) bool { return t.addrs[i] > addr }) - 1
	// Walk back over zero-sized or overlapping neighbours a little.
	for j := i; j >= 0 && j > i-4; j-- {
		if addr >= t.addrs[j] && (addr < t.addrs[j]+t.sizes[j] || (t.sizes[j] == 0 && j == i)) {
			return t.names[j], true
		}
	}
	return "", false
}

// parsePerfMap reads a perf map ("START SIZE name" per line, hex).
func parsePerfMap(r io.Reader) (*symTable, error) {
	t := &symTable{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		fs := strings.SplitN(sc.Text(), " ", 3)
		if len(fs) < 3 {
			continue
		}
		start, err1 := strconv.ParseUint(strings.TrimPrefix(fs[0], "0x"), 16, 64)
		size, err2 := strconv.ParseUint(strings.TrimPrefix(fs[1], "0x"), 16, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		t.add(start, size, fs[2])
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading perf map: %w", err)
	}
	t.sort()
	return t, nil
}

// elfSyms maps file offsets of executable segments to symbols.
type elfSyms struct {
	segs []elf.ProgHeader
	syms symTable
}

func loadELF(path string) (*elfSyms, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening ELF %s: %w", path, err)
	}
	defer f.Close()
	es := &elfSyms{}
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD && p.Flags&elf.PF_X != 0 {
			es.segs = append(es.segs, p.ProgHeader)
		}
	}
	syms, err := f.Symbols()
	if errors.Is(err, elf.ErrNoSymbols) || len(syms) == 0 {
		syms, err = f.DynamicSymbols()
	}
	if err != nil && !errors.Is(err, elf.ErrNoSymbols) {
		return nil, fmt.Errorf("reading symbols of %s: %w", path, err)
	}
	for _, s := range syms {
		if elf.ST_TYPE(s.Info) != elf.STT_FUNC || s.Value == 0 {
			continue
		}
		es.syms.add(s.Value, s.Size, s.Name)
	}
	es.syms.sort()
	return es, nil
}

// lookup names a file offset.
func (e *elfSyms) lookup(off uint64) (string, bool) {
	for _, s := range e.segs {
		if off >= s.Off && off < s.Off+s.Filesz {
			return e.syms.lookup(off - s.Off + s.Vaddr)
		}
	}
	return "", false
}
