// Package synth writes synthetic captures of Kafka produce traffic (pcap,
// Ethernet, IPv4, TCP) with known latencies, for tests and benchmarks of the
// sniffer that must not depend on a kernel, and for benchmark inputs of any
// size. The packets are what a real capture holds: MSS-sized segments, the
// peer's ACKs, handshakes; requests and responses are built with franz-go's
// kmsg, so their encoding is a real client's, not ours.
package synth

import (
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Config describes the traffic.
type Config struct {
	Connections int           // client connections (default 8)
	Requests    int           // produce requests in all (default 1000)
	Port        uint16        // broker port (default 9092)
	SlowEvery   int           // every SlowEvery-th request takes Slow (0: none)
	Slow        time.Duration // default 80 ms
	MaxRecords  int           // records per batch, 1..MaxRecords (default 16)
	RecordSize  int           // bytes per record value (default 200)
	Seed        uint64
	Start       time.Time // time of the first packet (default 2025-01-02 10:00 UTC)
}

// Expect is one request as generated.
type Expect struct {
	Client  netip.AddrPort
	Corr    int32
	Wire    time.Duration
	Records int
}

const mss = 1448

type conn struct {
	client         netip.AddrPort
	cseq, sseq     uint32
	corr           int32
	clientMAC, mac [6]byte
}

type writer struct {
	w      *pcapgo.Writer
	buf    gopacket.SerializeBuffer
	opts   gopacket.SerializeOptions
	server netip.AddrPort
	bytes  int64
}

func (w *writer) packet(t time.Time, c *conn, toServer bool, flags uint8, payload []byte) error {
	eth := &layers.Ethernet{EthernetType: layers.EthernetTypeIPv4, SrcMAC: c.clientMAC[:], DstMAC: c.mac[:]}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP,
		SrcIP: c.client.Addr().AsSlice(), DstIP: w.server.Addr().AsSlice()}
	tcp := &layers.TCP{SrcPort: layers.TCPPort(c.client.Port()), DstPort: layers.TCPPort(w.server.Port()),
		Seq: c.cseq, Ack: c.sseq, Window: 65535, DataOffset: 5}
	if !toServer {
		eth.SrcMAC, eth.DstMAC = eth.DstMAC, eth.SrcMAC
		ip.SrcIP, ip.DstIP = ip.DstIP, ip.SrcIP
		tcp.SrcPort, tcp.DstPort = tcp.DstPort, tcp.SrcPort
		tcp.Seq, tcp.Ack = c.sseq, c.cseq
	}
	tcp.SYN, tcp.ACK, tcp.PSH, tcp.FIN = flags&2 != 0, flags&0x10 != 0, flags&8 != 0, flags&1 != 0
	if err := gopacket.SerializeLayers(w.buf, w.opts, eth, ip, tcp, gopacket.Payload(payload)); err != nil {
		return err
	}
	data := w.buf.Bytes()
	w.bytes += int64(len(data))
	ci := gopacket.CaptureInfo{Timestamp: t, CaptureLength: len(data), Length: len(data)}
	if err := w.w.WritePacket(ci, data); err != nil {
		return fmt.Errorf("write packet: %w", err)
	}
	n := uint32(len(payload))
	if flags&3 != 0 {
		n++
	}
	if toServer {
		c.cseq += n
	} else {
		c.sseq += n
	}
	return nil
}

// send writes a message as MSS-sized segments 1 µs apart, then the peer's
// ACK; it returns the time of the last segment.
func (w *writer) send(t time.Time, c *conn, toServer bool, msg []byte) (time.Time, error) {
	for len(msg) > 0 {
		k := min(mss, len(msg))
		if err := w.packet(t, c, toServer, 0x18, msg[:k]); err != nil {
			return t, err
		}
		msg = msg[k:]
		if len(msg) > 0 {
			t = t.Add(time.Microsecond)
		}
	}
	return t, w.packet(t.Add(5*time.Microsecond), c, !toServer, 0x10, nil)
}

// Write writes the capture and calls expect (if not nil) for every request.
// It returns the bytes written.
func Write(out io.Writer, cfg Config, expect func(Expect)) (int64, error) {
	if cfg.Connections <= 0 {
		cfg.Connections = 8
	}
	if cfg.Requests <= 0 {
		cfg.Requests = 1000
	}
	if cfg.Port == 0 {
		cfg.Port = 9092
	}
	if cfg.Slow == 0 {
		cfg.Slow = 80 * time.Millisecond
	}
	if cfg.MaxRecords <= 0 {
		cfg.MaxRecords = 16
	}
	if cfg.RecordSize <= 0 {
		cfg.RecordSize = 200
	}
	if cfg.Start.IsZero() {
		cfg.Start = time.Date(2025, 1, 2, 10, 0, 0, 0, time.UTC)
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 42))
	pw := pcapgo.NewWriterNanos(out)
	if err := pw.WriteFileHeader(65536, layers.LinkTypeEthernet); err != nil {
		return 0, err
	}
	w := &writer{w: pw, buf: gopacket.NewSerializeBuffer(), opts: gopacket.SerializeOptions{FixLengths: true},
		server: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, 1}), cfg.Port)}
	t := cfg.Start
	conns := make([]*conn, cfg.Connections)
	for i := range conns {
		c := &conn{
			client: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 1, byte(i / 250)}), uint16(40000+i)),
			cseq:   rng.Uint32(), sseq: rng.Uint32(),
			clientMAC: [6]byte{2, 0, 0, 0, 1, byte(i)}, mac: [6]byte{2, 0, 0, 0, 0, 1},
		}
		conns[i] = c
		// Handshake.
		if err := w.packet(t, c, true, 0x02, nil); err != nil {
			return w.bytes, err
		}
		c.sseq-- // the SYN-ACK carries the server's initial sequence number
		if err := w.packet(t.Add(10*time.Microsecond), c, false, 0x12, nil); err != nil {
			return w.bytes, err
		}
		if err := w.packet(t.Add(20*time.Microsecond), c, true, 0x10, nil); err != nil {
			return w.bytes, err
		}
		t = t.Add(50 * time.Microsecond)
	}
	value := make([]byte, cfg.RecordSize)
	for i := range value {
		value[i] = byte('a' + i%26)
	}
	formatter := kmsg.NewRequestFormatter(kmsg.FormatterClientID("synth-producer"))
	var reqBuf []byte
	for i := range cfg.Requests {
		c := conns[i%len(conns)]
		nrec := 1 + rng.IntN(cfg.MaxRecords)
		req := kmsg.NewPtrProduceRequest()
		req.Version = 7
		req.Acks = -1
		req.TimeoutMillis = 30000
		topic := kmsg.NewProduceRequestTopic()
		topic.Topic = "orders"
		part := kmsg.NewProduceRequestTopicPartition()
		part.Partition = int32(rng.IntN(12))
		part.Records = batch(nrec, value)
		topic.Partitions = append(topic.Partitions, part)
		req.Topics = append(req.Topics, topic)
		reqBuf = formatter.AppendRequest(reqBuf[:0], req, c.corr)
		end, err := w.send(t, c, true, reqBuf)
		if err != nil {
			return w.bytes, err
		}
		lat := time.Duration(50+rng.IntN(2000)) * time.Microsecond
		if cfg.SlowEvery > 0 && i%cfg.SlowEvery == cfg.SlowEvery-1 {
			lat = cfg.Slow + time.Duration(rng.IntN(1000))*time.Microsecond
		}
		resp := response(c.corr, part.Partition)
		// The response's last segment is the one that counts.
		respStart := end.Add(lat).Add(-time.Duration((len(resp)-1)/mss) * time.Microsecond)
		if _, err := w.send(respStart, c, false, resp); err != nil {
			return w.bytes, err
		}
		if expect != nil {
			expect(Expect{Client: c.client, Corr: c.corr, Wire: lat, Records: nrec})
		}
		c.corr++
		t = end.Add(lat).Add(time.Duration(5+rng.IntN(20)) * time.Microsecond)
	}
	for _, c := range conns {
		if err := w.packet(t, c, true, 0x11, nil); err != nil {
			return w.bytes, err
		}
		if err := w.packet(t.Add(10*time.Microsecond), c, false, 0x11, nil); err != nil {
			return w.bytes, err
		}
		t = t.Add(20 * time.Microsecond)
	}
	return w.bytes, nil
}

// batch builds a v2 record batch of n records with kmsg's record encoding.
func batch(n int, value []byte) []byte {
	var recs []byte
	for i := range n {
		r := kmsg.Record{OffsetDelta: int32(i), Value: value}
		// Length counts what follows it; with Length 0 that is all but
		// the one byte of its varint.
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		recs = r.AppendTo(recs)
	}
	b := kmsg.RecordBatch{
		Magic: 2, LastOffsetDelta: int32(n - 1), ProducerID: -1, ProducerEpoch: -1,
		FirstSequence: -1, NumRecords: int32(n), Records: recs,
	}
	b.Length = int32(len(b.AppendTo(nil)) - 12)
	return b.AppendTo(nil)
}

func response(corr, partition int32) []byte {
	resp := kmsg.NewPtrProduceResponse()
	resp.Version = 7
	t := kmsg.NewProduceResponseTopic()
	t.Topic = "orders"
	p := kmsg.NewProduceResponseTopicPartition()
	p.Partition = partition
	t.Partitions = append(t.Partitions, p)
	resp.Topics = append(resp.Topics, t)
	body := resp.AppendTo(nil)
	b := binary.BigEndian.AppendUint32(nil, uint32(4+len(body)))
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	return append(b, body...)
}
