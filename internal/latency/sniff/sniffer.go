package sniff

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync/atomic"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/lockscope/lockscope/internal/latency"
	"github.com/lockscope/lockscope/internal/latency/kafka"
)

// Options configure a Sniffer. Validate checks them; zero durations and
// sizes take the defaults.
type Options struct {
	// Ports are the broker ports: a segment to one of them is a request,
	// from one of them a response.
	Ports []uint16
	// HoleTimeout is how long out-of-order data waits for a missing
	// segment before the hole is skipped. Retransmissions come after at
	// least the 200 ms minimum RTO, so the default is 1 s.
	HoleTimeout time.Duration
	// MaxBuffered bounds the out-of-order bytes held per direction of a
	// connection (default 4 MiB), MaxBufferedTotal those of all connections
	// together (default 256 MiB).
	MaxBuffered      int
	MaxBufferedTotal int
	// IdleTimeout closes connections without packets for that long (default
	// 10 minutes); their pending requests are reported Unanswered.
	IdleTimeout time.Duration
	// MaxConnections bounds the connections followed at once (default
	// 65536); past it the longest idle one is closed, so a port scan or a
	// SYN flood cannot grow the table without bound.
	MaxConnections int
	// Limits bound the Kafka framer.
	Limits kafka.Limits
}

// Validate checks the options.
func (o *Options) Validate() error {
	if len(o.Ports) == 0 {
		return errors.New("no broker port: give the port the broker listens on (e.g. 9092)")
	}
	for _, p := range o.Ports {
		if p == 0 {
			return errors.New("broker port 0: give the port the broker listens on (e.g. 9092)")
		}
	}
	if o.HoleTimeout < 0 || o.IdleTimeout < 0 || o.MaxBuffered < 0 || o.MaxBufferedTotal < 0 || o.MaxConnections < 0 {
		return fmt.Errorf("negative hole timeout, idle timeout, buffer size or connection limit")
	}
	return nil
}

func (o Options) withDefaults() Options {
	if o.HoleTimeout == 0 {
		o.HoleTimeout = time.Second
	}
	if o.MaxBuffered == 0 {
		o.MaxBuffered = 4 << 20
	}
	if o.MaxBufferedTotal == 0 {
		o.MaxBufferedTotal = 256 << 20
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = 10 * time.Minute
	}
	if o.MaxConnections == 0 {
		o.MaxConnections = 1 << 16
	}
	return o
}

// Stats counts packets and reassembly events. Fields are atomic so that a
// reporter may read them while packets are handled.
type Stats struct {
	Packets     atomic.Uint64 // packets handed to the sniffer
	Bytes       atomic.Uint64 // TCP payload bytes of broker connections
	Ignored     atomic.Uint64 // not TCP, or not to or from a broker port
	Malformed   atomic.Uint64 // headers that did not parse
	Fragments   atomic.Uint64 // IP fragments (not reassembled)
	Truncated   atomic.Uint64 // packets cut by the capture's snap length
	Duplicates  atomic.Uint64 // segments whose bytes were all seen already
	OutOfOrder  atomic.Uint64 // segments that arrived ahead of a hole
	Holes       atomic.Uint64 // holes skipped (lost segments)
	Connections atomic.Uint64 // connections followed
	// EvictedConnections were closed early to stay under MaxConnections.
	EvictedConnections atomic.Uint64
	// KernelDrops is set by a live capture from the socket's counters.
	KernelDrops atomic.Uint64
}

// Sniffer follows the broker connections seen in a packet stream.
type Sniffer struct {
	opts   Options
	ports  [65536 / 64]uint64 // bitmap of broker ports
	parser *kafka.Parser
	emit   func(*latency.Request)
	flows  map[flowKey]*flow
	seg    segment
	// buffered counts the out-of-order bytes held by all connections.
	buffered int
	Stats    Stats
	// lastSweep is when idle flows were last looked for.
	lastSweep int64
}

type flowKey struct{ client, server netip.AddrPort }

type flow struct {
	conn     *kafka.Conn
	half     [2]half // indexed by kafka.Dir
	lastSeen int64
	finSeen  [2]bool
}

// half is one direction's reassembly state.
type half struct {
	started   bool
	next      uint32 // next expected sequence number
	ooo       []pendingSeg
	oooBytes  int
	holeSince int64
}

type pendingSeg struct {
	seq     uint32
	data    []byte
	missing int // bytes cut by the snap length after data
	t       int64
	fin     bool
}

// New returns a Sniffer handing each request to emit.
func New(opts Options, emit func(*latency.Request)) (*Sniffer, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	s := &Sniffer{
		opts:   opts.withDefaults(),
		parser: kafka.NewParser(opts.Limits),
		emit:   emit,
		flows:  make(map[flowKey]*flow),
	}
	for _, p := range opts.Ports {
		s.ports[p/64] |= 1 << (p % 64)
	}
	return s, nil
}

// Kafka returns the framer's statistics.
func (s *Sniffer) Kafka() *kafka.Stats { return &s.parser.Stats }

func (s *Sniffer) isBroker(port uint16) bool { return s.ports[port/64]&(1<<(port%64)) != 0 }

// Packet handles one captured packet of the given link type, received at t
// (wall-clock ns). data is not retained.
func (s *Sniffer) Packet(link layers.LinkType, data []byte, t int64) {
	s.Stats.Packets.Add(1)
	seg := &s.seg
	switch decode(link, data, seg) {
	case decodedTCP:
	case malformedPacket:
		s.Stats.Malformed.Add(1)
		return
	case fragment:
		s.Stats.Fragments.Add(1)
		return
	default:
		s.Stats.Ignored.Add(1)
		return
	}
	var key flowKey
	var dir kafka.Dir
	switch {
	case s.isBroker(seg.dst.Port()):
		key, dir = flowKey{seg.src, seg.dst}, kafka.ToServer
	case s.isBroker(seg.src.Port()):
		key, dir = flowKey{seg.dst, seg.src}, kafka.ToClient
	default:
		s.Stats.Ignored.Add(1)
		return
	}
	if t-s.lastSweep > int64(time.Second) {
		s.sweep(t)
	}
	f := s.flows[key]
	if seg.flags&flagSYN != 0 && f != nil && f.half[dir].started && seg.seq+1 != f.half[dir].next {
		// A new connection on the same ports: the old one ended unseen.
		s.closeFlow(key, f, t)
		f = nil
	}
	if f == nil {
		// Only a SYN or data starts following a connection: the last ACK
		// after both FINs, or a RST, belongs to one that just ended.
		if seg.flags&flagSYN == 0 && len(seg.payload) == 0 {
			return
		}
		if len(s.flows) >= s.opts.MaxConnections {
			s.evictIdlest(t)
		}
		f = &flow{conn: s.parser.NewConn(key.client, key.server, s.emit)}
		s.flows[key] = f
		s.Stats.Connections.Add(1)
	}
	f.lastSeen = t
	s.Stats.Bytes.Add(uint64(len(seg.payload)))
	if seg.missing > 0 {
		s.Stats.Truncated.Add(1)
	}
	s.segment(f, dir, seg, t)
	if seg.flags&flagACK != 0 {
		s.acked(f, 1-dir, seg.ack)
	}
	if seg.flags&flagRST != 0 || (f.finSeen[0] && f.finSeen[1]) {
		s.closeFlow(key, f, t)
	}
}

// segment reassembles one direction.
func (s *Sniffer) segment(f *flow, dir kafka.Dir, seg *segment, t int64) {
	h := &f.half[dir]
	payload := seg.payload
	seq := seg.seq
	if seg.flags&flagSYN != 0 {
		h.started = true
		h.next = seq + 1
		s.buffered -= h.oooBytes
		h.ooo, h.oooBytes = h.ooo[:0], 0
		return
	}
	if !h.started {
		// The capture began after this connection did.
		h.started = true
		h.next = seq
		f.conn.Desync(dir)
	}
	fin := seg.flags&flagFIN != 0
	if len(payload) == 0 && seg.missing == 0 && !fin {
		s.checkHole(f, dir, t)
		return
	}
	diff := int32(seq - h.next)
	switch {
	case diff < 0:
		// Overlaps what was delivered: a retransmission or, on loopback
		// captures that see both copies, a duplicate.
		over := int(-diff)
		if over >= len(payload)+seg.missing {
			if len(payload) > 0 {
				s.Stats.Duplicates.Add(1)
			}
			s.checkHole(f, dir, t)
			return
		}
		if over >= len(payload) {
			seg.missing -= over - len(payload)
			payload = nil
		} else {
			payload = payload[over:]
		}
		seq = h.next
		fallthrough
	case diff == 0:
		s.deliver(f, dir, payload, seg.missing, t, fin)
		s.drain(f, dir, t)
	default:
		s.Stats.OutOfOrder.Add(1)
		if h.oooBytes+len(payload) > s.opts.MaxBuffered || s.buffered+len(payload) > s.opts.MaxBufferedTotal {
			// No room to wait: give up the holes before this segment now,
			// delivering what was buffered between them.
			for len(h.ooo) > 0 && int32(h.ooo[0].seq-seq) < 0 {
				s.skipHole(f, dir)
			}
			if gap := int32(seq - h.next); gap > 0 {
				s.Stats.Holes.Add(1)
				f.conn.Gap(dir, int64(gap), t)
				h.next = seq
			}
			// Now in order (or overlapping what was delivered).
			s.segment(f, dir, &segment{seq: seq, payload: payload, missing: seg.missing, flags: seg.flags}, t)
			return
		}
		if len(h.ooo) == 0 {
			h.holeSince = t
		}
		p := pendingSeg{seq: seq, data: append([]byte(nil), payload...), missing: seg.missing, t: t, fin: fin}
		i, _ := slices.BinarySearchFunc(h.ooo, seq, func(a pendingSeg, s uint32) int { return int(int32(a.seq - s)) })
		h.ooo = slices.Insert(h.ooo, i, p)
		h.oooBytes += len(p.data)
		s.buffered += len(p.data)
	}
	s.checkHole(f, dir, t)
}

func (s *Sniffer) deliver(f *flow, dir kafka.Dir, payload []byte, missing int, t int64, fin bool) {
	h := &f.half[dir]
	if len(payload) > 0 {
		f.conn.Feed(dir, payload, t)
		h.next += uint32(len(payload))
	}
	if missing > 0 {
		f.conn.Gap(dir, int64(missing), t)
		h.next += uint32(missing)
	}
	if fin {
		f.finSeen[dir] = true
		h.next++
	}
}

// drain delivers buffered segments that are now in order.
func (s *Sniffer) drain(f *flow, dir kafka.Dir, t int64) {
	h := &f.half[dir]
	for len(h.ooo) > 0 {
		p := h.ooo[0]
		diff := int32(p.seq - h.next)
		if diff > 0 {
			return
		}
		h.ooo = h.ooo[1:]
		h.oooBytes -= len(p.data)
		s.buffered -= len(p.data)
		data, missing := p.data, p.missing
		if over := int(-diff); over < len(data) {
			data = data[over:]
		} else {
			missing = max(0, missing-(over-len(data)))
			data = nil
		}
		// The broker had these bytes only once the hole filled.
		s.deliver(f, dir, data, missing, max(p.t, t), p.fin)
	}
	if len(h.ooo) == 0 {
		h.ooo = nil
	}
}

// skipHole gives up waiting for the bytes before the first buffered segment.
func (s *Sniffer) skipHole(f *flow, dir kafka.Dir) {
	h := &f.half[dir]
	if len(h.ooo) == 0 {
		return
	}
	p := h.ooo[0]
	s.Stats.Holes.Add(1)
	f.conn.Gap(dir, int64(p.seq-h.next), p.t)
	h.next = p.seq
	s.drain(f, dir, p.t)
}

// acked learns from the peer's acknowledgement of direction dir: once the
// receiver has acknowledged the bytes up to a buffered segment, the bytes
// of the hole before it reached the receiver and will never be sent again;
// only the capture missed them. Skip the hole now instead of waiting.
func (s *Sniffer) acked(f *flow, dir kafka.Dir, ack uint32) {
	h := &f.half[dir]
	for len(h.ooo) > 0 && int32(ack-h.ooo[0].seq) >= 0 {
		s.skipHole(f, dir)
	}
}

// checkHole skips holes that waited longer than HoleTimeout, in both
// directions: a stuck request stream must not hold back its responses'
// matching forever.
func (s *Sniffer) checkHole(f *flow, _ kafka.Dir, t int64) {
	for d := range f.half {
		h := &f.half[d]
		for len(h.ooo) > 0 && t-h.holeSince > int64(s.opts.HoleTimeout) {
			s.skipHole(f, kafka.Dir(d))
			if len(h.ooo) > 0 {
				h.holeSince = h.ooo[0].t
			}
		}
	}
}

func (s *Sniffer) closeFlow(key flowKey, f *flow, t int64) {
	for d := range f.half {
		for len(f.half[d].ooo) > 0 {
			s.skipHole(f, kafka.Dir(d))
		}
	}
	f.conn.Close(t)
	delete(s.flows, key)
}

// evictIdlest closes the connection that has been quiet longest.
func (s *Sniffer) evictIdlest(t int64) {
	var oldKey flowKey
	var old *flow
	for k, f := range s.flows {
		if old == nil || f.lastSeen < old.lastSeen {
			oldKey, old = k, f
		}
	}
	if old != nil {
		s.Stats.EvictedConnections.Add(1)
		s.closeFlow(oldKey, old, t)
	}
}

// sweep closes idle connections.
func (s *Sniffer) sweep(t int64) {
	s.lastSweep = t
	for k, f := range s.flows {
		if t-f.lastSeen > int64(s.opts.IdleTimeout) {
			s.closeFlow(k, f, f.lastSeen)
		}
	}
}

// Flush ends every connection, as at the end of a capture: held segments
// are delivered past their holes and pending requests are reported
// Unanswered with t as the end.
func (s *Sniffer) Flush(t int64) {
	for k, f := range s.flows {
		s.closeFlow(k, f, t)
	}
}

// Idle tells the sniffer that time passed without packets (a live
// capture's poll timeout), so holes can time out and idle connections close.
func (s *Sniffer) Idle(t int64) {
	for _, f := range s.flows {
		s.checkHole(f, 0, t)
	}
	if t-s.lastSweep > int64(time.Second) {
		s.sweep(t)
	}
}

// Connections returns how many connections are being followed.
func (s *Sniffer) Connections() int { return len(s.flows) }
