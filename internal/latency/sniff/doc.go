// Package sniff turns packets into Kafka requests with their latencies: it
// decodes link, IP and TCP headers, reassembles each connection's two byte
// streams, and feeds them to the framer of package kafka. Packets come from
// a pcap or pcapng file (ReadFile) or from a live AF_PACKET socket
// (Capture, Linux only, no cgo).
//
// Reassembly is our own rather than gopacket/reassembly's: the framer needs
// the exact size of every hole (a hole inside record data costs nothing, a
// hole across frames costs a resync), and the offline path must run at many
// times tshark's speed, which per-packet allocation would not allow. Header
// decoding is hand-written for the same reason; it accepts Ethernet (with
// VLAN tags), Linux cooked SLL and SLL2, BSD loopback and raw IP.
//
// Memory is bounded: out-of-order segments wait for a hole to fill at most
// Options.HoleTimeout, Options.MaxBuffered bytes per direction and
// Options.MaxBufferedTotal bytes in all, and a hole is skipped (counted)
// as soon as the receiver's ACK shows the capture, not the network, lost
// it; at most Options.MaxConnections connections are followed. A Sniffer is
// not safe for concurrent use (its Stats are atomic, for reporters);
// requests are handed to the emit function synchronously and belong to it.
//
// RunOptions and Run are `lockscope sniff`: the live or offline loop with
// its per-interval lines, slow-request lines and summary. Subpackage synth
// writes captures with known latencies for tests and benchmarks.
package sniff
