package sniff

import (
	"net"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/lockscope/lockscope/internal/latency"
)

// packet serializes IP/TCP with gopacket behind the given link layers.
func packet(t testing.TB, v6 bool, link []gopacket.SerializableLayer, payload []byte) []byte {
	t.Helper()
	tcp := &layers.TCP{SrcPort: 40000, DstPort: 9092, Seq: 1000, Ack: 7, PSH: true, ACK: true, Window: 100}
	var ip gopacket.SerializableLayer
	if v6 {
		ip6 := &layers.IPv6{Version: 6, NextHeader: layers.IPProtocolTCP, HopLimit: 64,
			SrcIP: net.ParseIP("fd00::2"), DstIP: net.ParseIP("fd00::1")}
		tcp.SetNetworkLayerForChecksum(ip6)
		ip = ip6
	} else {
		ip4 := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP,
			SrcIP: net.IP{10, 0, 0, 2}, DstIP: net.IP{10, 0, 0, 1}}
		tcp.SetNetworkLayerForChecksum(ip4)
		ip = ip4
	}
	buf := gopacket.NewSerializeBuffer()
	ls := append(append([]gopacket.SerializableLayer{}, link...), ip, tcp, gopacket.Payload(payload))
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestDecodeLinkTypes(t *testing.T) {
	payload := []byte("kafka bytes")
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	for _, tc := range []struct {
		name string
		link layers.LinkType
		v6   bool
		hdr  func(v6 bool) []gopacket.SerializableLayer
		pad  int // Ethernet padding after the IP packet
	}{
		{"ethernet", layers.LinkTypeEthernet, false, func(v6 bool) []gopacket.SerializableLayer {
			return []gopacket.SerializableLayer{&layers.Ethernet{SrcMAC: mac, DstMAC: mac, EthernetType: layers.EthernetTypeIPv4}}
		}, 0},
		{"ethernet padded", layers.LinkTypeEthernet, false, func(v6 bool) []gopacket.SerializableLayer {
			return []gopacket.SerializableLayer{&layers.Ethernet{SrcMAC: mac, DstMAC: mac, EthernetType: layers.EthernetTypeIPv4}}
		}, 6},
		{"vlan ipv6", layers.LinkTypeEthernet, true, func(v6 bool) []gopacket.SerializableLayer {
			return []gopacket.SerializableLayer{&layers.Ethernet{SrcMAC: mac, DstMAC: mac, EthernetType: layers.EthernetTypeDot1Q},
				&layers.Dot1Q{VLANIdentifier: 7, Type: layers.EthernetTypeIPv6}}
		}, 0},
		{"sll", layers.LinkTypeLinuxSLL, false, func(v6 bool) []gopacket.SerializableLayer {
			return []gopacket.SerializableLayer{gopacket.Payload(append([]byte{0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0}, 0x08, 0x00))}
		}, 0},
		{"sll2 ipv6", layers.LinkTypeLinuxSLL2, true, func(v6 bool) []gopacket.SerializableLayer {
			return []gopacket.SerializableLayer{gopacket.Payload([]byte{0x86, 0xdd, 0, 0, 0, 0, 0, 1, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0})}
		}, 0},
		{"null", layers.LinkTypeNull, false, func(v6 bool) []gopacket.SerializableLayer {
			return []gopacket.SerializableLayer{gopacket.Payload([]byte{2, 0, 0, 0})}
		}, 0},
		{"raw ipv6", layers.LinkTypeRaw, true, func(v6 bool) []gopacket.SerializableLayer { return nil }, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := packet(t, tc.v6, tc.hdr(tc.v6), payload)
			b = append(b, make([]byte, tc.pad)...)
			var seg segment
			if r := decode(tc.link, b, &seg); r != decodedTCP {
				t.Fatalf("decode = %d, want a TCP segment", r)
			}
			src := "10.0.0.2:40000"
			if tc.v6 {
				src = "[fd00::2]:40000"
			}
			if seg.src != netip.MustParseAddrPort(src) || seg.dst.Port() != 9092 || seg.seq != 1000 || seg.ack != 7 ||
				string(seg.payload) != string(payload) || seg.missing != 0 {
				t.Errorf("got %+v payload %q", seg, seg.payload)
			}
			// Cut by a snap length: the missing bytes are counted.
			if r := decode(tc.link, b[:len(b)-tc.pad-4], &seg); r != decodedTCP || seg.missing != 4 {
				t.Errorf("truncated: decode = %d, missing %d; want TCP, 4", r, seg.missing)
			}
		})
	}
}

// FuzzPacket: any bytes, under any link type, leave the sniffer without a
// panic and with consistent requests.
func FuzzPacket(f *testing.F) {
	f.Add(uint8(1), packet(f, false, []gopacket.SerializableLayer{&layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, EthernetType: layers.EthernetTypeIPv4}}, []byte{0, 0, 0, 8, 0, 3, 0, 1, 0, 0, 0, 1}))
	f.Add(uint8(101), packet(f, true, nil, []byte{0, 0, 0, 4, 0, 0, 0, 1}))
	f.Fuzz(func(t *testing.T, link uint8, data []byte) {
		s, err := New(Options{Ports: []uint16{9092}, MaxBuffered: 1 << 16}, func(r *latency.Request) {
			if r.Status == latency.Answered && int64(r.Wire) != r.ResponseEnd-r.RequestEnd {
				t.Fatalf("inconsistent request %+v", r)
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		lt := []layers.LinkType{layers.LinkTypeEthernet, layers.LinkTypeLinuxSLL, layers.LinkTypeLinuxSLL2, layers.LinkTypeRaw, layers.LinkTypeNull}[int(link)%5]
		// The same bytes as several packets, as a stream would bring them.
		for i := range 3 {
			s.Packet(lt, data, int64(i))
		}
		s.Flush(10)
	})
}
