package sniff

import (
	"encoding/binary"
	"testing"

	"golang.org/x/net/bpf"
)

func ipv4TCP(src, dst uint16, fragOff uint16) []byte {
	b := make([]byte, 40)
	b[0] = 0x45
	binary.BigEndian.PutUint16(b[2:], 40)
	binary.BigEndian.PutUint16(b[6:], fragOff)
	b[9] = 6
	binary.BigEndian.PutUint16(b[20:], src)
	binary.BigEndian.PutUint16(b[22:], dst)
	return b
}

func ipv6TCP(src, dst uint16, next byte) []byte {
	b := make([]byte, 60)
	b[0] = 0x60
	b[6] = next
	binary.BigEndian.PutUint16(b[40:], src)
	binary.BigEndian.PutUint16(b[42:], dst)
	return b
}

// TestPortFilter runs the filter's IP part in x/net/bpf's interpreter (it
// has no ancillary loads, so the loopback prefix is left out here and
// exercised by the live capture test).
func TestPortFilter(t *testing.T) {
	raw, err := portFilter([]uint16{9092, 9093}, -1, 65535)
	if err != nil {
		t.Fatal(err)
	}
	var ins []bpf.Instruction
	for _, r := range raw {
		ins = append(ins, r.Disassemble())
	}
	vm, err := bpf.NewVM(ins)
	if err != nil {
		t.Fatal(err)
	}
	udp := ipv4TCP(40000, 9092, 0)
	udp[9] = 17
	for _, tc := range []struct {
		name string
		pkt  []byte
		keep bool
	}{
		{"v4 request", ipv4TCP(40000, 9092, 0), true},
		{"v4 response", ipv4TCP(9093, 40000, 0), true},
		{"v4 other port", ipv4TCP(40000, 8080, 0), false},
		{"v4 fragment", ipv4TCP(40000, 9092, 0x0010), false},
		{"v4 don't-fragment bit", ipv4TCP(40000, 9092, 0x4000), true},
		{"v4 udp", udp, false},
		{"v6 request", ipv6TCP(40000, 9092, 6), true},
		{"v6 response", ipv6TCP(9092, 40000, 6), true},
		{"v6 udp", ipv6TCP(40000, 9092, 17), false},
		{"v6 other", ipv6TCP(1, 2, 6), false},
	} {
		n, err := vm.Run(tc.pkt)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if (n > 0) != tc.keep {
			t.Errorf("%s: kept %d bytes, want keep=%v", tc.name, n, tc.keep)
		}
	}
}
