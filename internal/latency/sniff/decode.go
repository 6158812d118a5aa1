package sniff

import (
	"encoding/binary"
	"net/netip"

	"github.com/gopacket/gopacket/layers"
)

// segment is a decoded TCP segment. payload aliases the packet's bytes.
type segment struct {
	src, dst netip.AddrPort
	seq, ack uint32
	flags    uint8
	payload  []byte
	// missing counts payload bytes the capture cut off (snap length).
	missing int
}

const (
	flagFIN = 0x01
	flagSYN = 0x02
	flagRST = 0x04
	flagACK = 0x10
)

// decodeResult says why a packet was not a TCP segment.
type decodeResult uint8

const (
	decodedTCP decodeResult = iota
	notTCP
	malformedPacket
	fragment
)

// decode parses the link, IP and TCP headers of a packet.
func decode(link layers.LinkType, b []byte, seg *segment) decodeResult {
	var etherType uint16
	switch link {
	case layers.LinkTypeEthernet:
		if len(b) < 14 {
			return malformedPacket
		}
		etherType = binary.BigEndian.Uint16(b[12:])
		b = b[14:]
		// 802.1Q / 802.1ad tags.
		for (etherType == 0x8100 || etherType == 0x88a8) && len(b) >= 4 {
			etherType = binary.BigEndian.Uint16(b[2:])
			b = b[4:]
		}
	case layers.LinkTypeLinuxSLL:
		if len(b) < 16 {
			return malformedPacket
		}
		etherType = binary.BigEndian.Uint16(b[14:])
		b = b[16:]
	case layers.LinkTypeLinuxSLL2:
		if len(b) < 20 {
			return malformedPacket
		}
		etherType = binary.BigEndian.Uint16(b[0:])
		b = b[20:]
	case layers.LinkTypeNull, layers.LinkTypeLoop:
		if len(b) < 4 {
			return malformedPacket
		}
		// The address family, in the capturing host's byte order (Null)
		// or big-endian (Loop); 2 is IPv4, 24/28/30 are IPv6 on BSDs.
		fam := binary.LittleEndian.Uint32(b)
		if link == layers.LinkTypeLoop || fam > 0xffff {
			fam = binary.BigEndian.Uint32(b)
		}
		b = b[4:]
		switch fam {
		case 2:
			etherType = 0x0800
		case 10, 24, 28, 30:
			etherType = 0x86dd
		default:
			return notTCP
		}
	case layers.LinkTypeRaw, layers.LinkTypeIPv4, layers.LinkTypeIPv6:
		if len(b) < 1 {
			return malformedPacket
		}
		switch b[0] >> 4 {
		case 4:
			etherType = 0x0800
		case 6:
			etherType = 0x86dd
		default:
			return notTCP
		}
	default:
		return notTCP
	}
	var src, dst netip.Addr
	var ipPayload int // the TCP segment's length according to the IP header
	switch etherType {
	case 0x0800:
		if len(b) < 20 || b[0]>>4 != 4 {
			return malformedPacket
		}
		ihl := int(b[0]&0x0f) * 4
		total := int(binary.BigEndian.Uint16(b[2:]))
		if ihl < 20 || len(b) < ihl || total < ihl {
			return malformedPacket
		}
		if b[9] != 6 {
			return notTCP
		}
		if frag := binary.BigEndian.Uint16(b[6:]); frag&0x3fff != 0 {
			// More-fragments or an offset: TCP over fragmented IP does not
			// happen with path-MTU discovery; count and skip.
			return fragment
		}
		src = netip.AddrFrom4([4]byte(b[12:16]))
		dst = netip.AddrFrom4([4]byte(b[16:20]))
		ipPayload = total - ihl
		b = b[ihl:]
	case 0x86dd:
		if len(b) < 40 || b[0]>>4 != 6 {
			return malformedPacket
		}
		next := b[6]
		ipPayload = int(binary.BigEndian.Uint16(b[4:]))
		src = netip.AddrFrom16([16]byte(b[8:24]))
		dst = netip.AddrFrom16([16]byte(b[24:40]))
		b = b[40:]
		for next != 6 {
			switch next {
			case 0, 43, 60: // hop-by-hop, routing, destination options
				if len(b) < 8 {
					return malformedPacket
				}
				n := (int(b[1]) + 1) * 8
				if len(b) < n {
					return malformedPacket
				}
				next = b[0]
				b = b[n:]
				ipPayload -= n
			case 44:
				return fragment
			default:
				return notTCP
			}
		}
	default:
		return notTCP
	}
	if len(b) < 20 {
		return malformedPacket
	}
	off := int(b[12]>>4) * 4
	if off < 20 || off > len(b) || ipPayload < off {
		return malformedPacket
	}
	seg.src = netip.AddrPortFrom(src, binary.BigEndian.Uint16(b[0:]))
	seg.dst = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(b[2:]))
	seg.seq = binary.BigEndian.Uint32(b[4:])
	seg.ack = binary.BigEndian.Uint32(b[8:])
	seg.flags = b[13]
	want := ipPayload - off
	b = b[off:]
	// Ethernet pads short frames: the IP length is the truth.
	seg.missing = 0
	if len(b) > want {
		b = b[:want]
	} else if len(b) < want {
		seg.missing = want - len(b)
	}
	seg.payload = b
	return decodedTCP
}
