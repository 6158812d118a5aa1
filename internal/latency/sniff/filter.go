package sniff

import (
	"fmt"

	"golang.org/x/net/bpf"
)

// Linux packet types (the sll_pkttype of a packet socket).
const packetOutgoing = 4

// asm assembles classic BPF with symbolic jump targets.
type asm struct {
	ins    []bpf.Instruction
	jumps  map[int][2]string // instruction index → true/false labels
	labels map[string]int
}

func (a *asm) add(i bpf.Instruction) { a.ins = append(a.ins, i) }

// jump adds a conditional jump; an empty label falls through.
func (a *asm) jump(cond bpf.JumpTest, val uint32, ifTrue, ifFalse string) {
	a.jumps[len(a.ins)] = [2]string{ifTrue, ifFalse}
	a.add(bpf.JumpIf{Cond: cond, Val: val})
}

func (a *asm) label(name string) { a.labels[name] = len(a.ins) }

func (a *asm) assemble() ([]bpf.RawInstruction, error) {
	for i, l := range a.jumps {
		j := a.ins[i].(bpf.JumpIf)
		for k, name := range l {
			if name == "" {
				continue
			}
			to, ok := a.labels[name]
			if !ok || to <= i || to-i-1 > 255 {
				return nil, fmt.Errorf("assemble filter: bad jump to %q", name)
			}
			if k == 0 {
				j.SkipTrue = uint8(to - i - 1)
			} else {
				j.SkipFalse = uint8(to - i - 1)
			}
		}
		a.ins[i] = j
	}
	return bpf.Assemble(a.ins)
}

// portFilter returns a classic BPF program for packets that start at the IP
// header (a SOCK_DGRAM packet socket): it keeps unfragmented IPv4 and IPv6
// TCP segments from or to one of ports. With loIndex ≥ 0 it first drops
// packets leaving the loopback interface of that index: loopback hands a
// packet socket every packet twice, once outgoing and once incoming, and
// libpcap drops the outgoing copy the same way. loIndex 0 means the socket
// is bound to loopback itself.
func portFilter(ports []uint16, loIndex int, snaplen uint32) ([]bpf.RawInstruction, error) {
	a := &asm{jumps: map[int][2]string{}, labels: map[string]int{}}
	if loIndex >= 0 {
		a.add(bpf.LoadExtension{Num: bpf.ExtType})
		a.jump(bpf.JumpEqual, packetOutgoing, "", "ip")
		if loIndex > 0 {
			a.add(bpf.LoadExtension{Num: bpf.ExtInterfaceIndex})
			a.jump(bpf.JumpEqual, uint32(loIndex), "drop", "ip")
		} else {
			a.add(bpf.RetConstant{Val: 0})
		}
		a.label("ip")
	}
	ports4 := func(first, then string) {
		for i, p := range ports {
			next := ""
			if i == len(ports)-1 {
				next = then
			}
			a.jump(bpf.JumpEqual, uint32(p), "accept", next)
		}
	}
	a.add(bpf.LoadAbsolute{Off: 0, Size: 1})
	a.add(bpf.ALUOpConstant{Op: bpf.ALUOpShiftRight, Val: 4})
	a.jump(bpf.JumpEqual, 4, "v4", "")
	a.jump(bpf.JumpEqual, 6, "v6", "drop")

	a.label("v4")
	a.add(bpf.LoadAbsolute{Off: 9, Size: 1})
	a.jump(bpf.JumpEqual, 6, "", "drop")
	a.add(bpf.LoadAbsolute{Off: 6, Size: 2})
	a.jump(bpf.JumpBitsSet, 0x1fff, "drop", "")
	a.add(bpf.LoadMemShift{Off: 0})
	a.add(bpf.LoadIndirect{Off: 0, Size: 2})
	ports4("accept", "v4dst")
	a.label("v4dst")
	a.add(bpf.LoadIndirect{Off: 2, Size: 2})
	ports4("accept", "drop")

	a.label("v6")
	a.add(bpf.LoadAbsolute{Off: 6, Size: 1})
	a.jump(bpf.JumpEqual, 6, "", "drop")
	a.add(bpf.LoadAbsolute{Off: 40, Size: 2})
	ports4("accept", "v6dst")
	a.label("v6dst")
	a.add(bpf.LoadAbsolute{Off: 42, Size: 2})
	ports4("accept", "drop")

	a.label("accept")
	a.add(bpf.RetConstant{Val: snaplen})
	a.label("drop")
	a.add(bpf.RetConstant{Val: 0})
	return a.assemble()
}
