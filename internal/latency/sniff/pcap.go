package sniff

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// packetSource is what pcapgo's two readers have in common.
type packetSource interface {
	ZeroCopyReadPacketData() ([]byte, gopacket.CaptureInfo, error)
}

// ReadFile feeds the packets of a pcap or pcapng file (told apart by their
// magic numbers) to s, then flushes s at the last packet's time. It returns
// the number of packets read. A file cut short mid-packet (a capture still
// being written) ends the read without an error, as tshark does; a file
// that is neither format is an error naming the cause.
func ReadFile(path string, s *Sniffer) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("open capture: %w", err)
	}
	defer f.Close()
	n, err := Read(f, s)
	if err != nil {
		return n, fmt.Errorf("read capture %s: %w", path, err)
	}
	return n, nil
}

// ErrNotCapture is returned for input that is neither pcap nor pcapng.
var ErrNotCapture = errors.New("not a pcap or pcapng file (write one with tcpdump -w, dumpcap -w or lockscope sniff --write)")

// Read is ReadFile on an open stream.
func Read(r io.Reader, s *Sniffer) (int, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	magic, err := br.Peek(4)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return 0, fmt.Errorf("%w: shorter than a header", ErrNotCapture)
		}
		return 0, err
	}
	var src packetSource
	var linkOf func(ci *gopacket.CaptureInfo) layers.LinkType
	switch {
	case bytes.Equal(magic, []byte{0x0a, 0x0d, 0x0d, 0x0a}):
		ng, err := pcapgo.NewNgReader(br, pcapgo.NgReaderOptions{})
		if err != nil {
			return 0, fmt.Errorf("pcapng header: %w", err)
		}
		src = ng
		links := map[int]layers.LinkType{}
		linkOf = func(ci *gopacket.CaptureInfo) layers.LinkType {
			lt, ok := links[ci.InterfaceIndex]
			if !ok {
				lt = ng.LinkType()
				if intf, err := ng.Interface(ci.InterfaceIndex); err == nil {
					lt = intf.LinkType
				}
				links[ci.InterfaceIndex] = lt
			}
			return lt
		}
	case isPcapMagic(magic):
		pr, err := pcapgo.NewReader(br)
		if err != nil {
			return 0, fmt.Errorf("pcap header: %w", err)
		}
		src = pr
		lt := pr.LinkType()
		linkOf = func(*gopacket.CaptureInfo) layers.LinkType { return lt }
	default:
		return 0, ErrNotCapture
	}
	var n int
	var last int64
	for {
		data, ci, err := src.ZeroCopyReadPacketData()
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				break
			}
			s.Flush(last)
			return n, fmt.Errorf("packet %d: %w", n+1, err)
		}
		n++
		last = ci.Timestamp.UnixNano()
		s.Packet(linkOf(&ci), data, last)
	}
	s.Flush(last)
	return n, nil
}

func isPcapMagic(m []byte) bool {
	for _, want := range [][]byte{
		{0xa1, 0xb2, 0xc3, 0xd4}, {0xd4, 0xc3, 0xb2, 0xa1}, // microseconds
		{0xa1, 0xb2, 0x3c, 0x4d}, {0x4d, 0x3c, 0xb2, 0xa1}, // nanoseconds
	} {
		if bytes.Equal(m, want) {
			return true
		}
	}
	return false
}
