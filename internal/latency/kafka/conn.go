package kafka

import (
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/lockscope/lockscope/internal/latency"
)

// Dir is the direction of a byte stream on a connection.
type Dir uint8

const (
	// ToServer carries requests.
	ToServer Dir = iota
	// ToClient carries responses.
	ToClient
)

// Limits bound what one connection may hold. The zero value means the
// defaults, which suit any broker configuration seen in practice.
type Limits struct {
	// MaxFrame is the largest frame taken as plausible; Kafka's
	// socket.request.max.bytes defaults to 100 MiB.
	MaxFrame int32
	// MaxPending is how many requests may await their responses on one
	// connection; clients pipeline at most a handful (max.in.flight), so
	// more means responses were lost from the capture.
	MaxPending int
	// MaxOrphans is how many responses seen before their requests are kept.
	MaxOrphans int
	// MaxPartitions is how many partitions of one produce request are kept
	// in its record; the rest are counted in Stats.PartitionsDropped.
	MaxPartitions int
	// Overtaken is how many later responses may pass an unanswered request
	// before it is reported as latency.LostResponse. A broker answers a
	// connection in order, so any overtaking means a lost response; a small
	// slack keeps out-of-order test brokers from causing false losses.
	Overtaken int
}

func (l Limits) withDefaults() Limits {
	if l.MaxFrame <= 0 {
		l.MaxFrame = 100<<20 + 64<<10
	}
	if l.MaxPending <= 0 {
		l.MaxPending = 1024
	}
	if l.MaxOrphans <= 0 {
		l.MaxOrphans = 64
	}
	if l.MaxPartitions <= 0 {
		l.MaxPartitions = 4096
	}
	if l.Overtaken <= 0 {
		l.Overtaken = 4
	}
	return l
}

// Stats counts what the parser met, across all connections that share it.
// Fields are updated atomically, so a reporter may read them while
// connections are fed.
type Stats struct {
	Requests  atomic.Uint64 // request frames parsed
	Responses atomic.Uint64 // response frames parsed
	// Resyncs counts times a stream lost its framing (a mid-stream start or
	// a gap across a frame boundary) and had to search for the next frame.
	Resyncs atomic.Uint64
	// SkippedBytes were discarded while searching for a frame.
	SkippedBytes atomic.Uint64
	// GapBytes were never seen (lost segments, capture drops).
	GapBytes atomic.Uint64
	// Malformed counts frames whose contents did not parse; their timing is
	// still used.
	Malformed atomic.Uint64
	// LostRequests counts requests cut by a gap before their end.
	LostRequests atomic.Uint64
	// UnmatchedResponses had no request: it was lost or never seen.
	UnmatchedResponses atomic.Uint64
	// Evicted requests were pushed out of a full pending queue.
	Evicted atomic.Uint64
	// PartitionsDropped were not kept because of Limits.MaxPartitions.
	PartitionsDropped atomic.Uint64
	// TLSConns are connections recognised as TLS and not parsed.
	TLSConns atomic.Uint64
}

type orphan struct {
	corr       int32
	start, end int64
	damaged    bool
}

// Conn follows one TCP connection between a client and a broker.
type Conn struct {
	parser         *Parser
	client, server netip.AddrPort
	lim            *Limits
	stats          *Stats
	emit           func(*latency.Request)

	req, resp stream

	// pending holds requests awaiting a response, oldest first.
	pending []pendingReq
	// prevRespEnd is when the previous response on this connection ended:
	// the broker could not start answering the next request before it.
	prevRespEnd int64
	orphans     []orphan
	tls         bool
	closed      bool
}

type pendingReq struct {
	r         *latency.Request
	overtaken int
}

// Parser holds what connections share: limits and statistics.
type Parser struct {
	lim   Limits
	Stats Stats
	// topicNames maps topic ids (Kafka's base64 spelling) to names, learnt
	// from Metadata responses on any connection.
	topicNames map[string]string
}

// NewParser returns a parser with the given limits (zero fields take defaults).
func NewParser(lim Limits) *Parser {
	return &Parser{lim: lim.withDefaults(), topicNames: map[string]string{}}
}

// NewConn starts following a connection. If the capture saw its start (a
// SYN), both streams are in sync from their first byte; otherwise call
// Desync for each direction before feeding.
func (p *Parser) NewConn(client, server netip.AddrPort, emit func(*latency.Request)) *Conn {
	c := &Conn{parser: p, client: client, server: server, lim: &p.lim, stats: &p.Stats, emit: emit}
	c.req.init(ToServer, &p.lim, &p.Stats)
	c.resp.init(ToClient, &p.lim, &p.Stats)
	return c
}

// TLS reports whether the connection was recognised as TLS.
func (c *Conn) TLS() bool { return c.tls }

// Desync tells the connection that the next bytes of a direction do not
// necessarily start a frame (the capture started mid-stream).
func (c *Conn) Desync(d Dir) {
	s := c.stream(d)
	if s.synced {
		c.lose(s, 0)
	}
	s.firstBytes = false
}

func (c *Conn) stream(d Dir) *stream {
	if d == ToServer {
		return &c.req
	}
	return &c.resp
}

// Feed hands the connection the next bytes of a direction, received at t
// (wall-clock ns). data is not retained.
func (c *Conn) Feed(d Dir, data []byte, t int64) {
	if c.tls || c.closed || len(data) == 0 {
		return
	}
	s := c.stream(d)
	if s.firstBytes {
		s.firstBytes = false
		if looksTLS(data) {
			c.markTLS()
			return
		}
	}
	c.feed(s, data, t)
}

// Gap tells the connection that n bytes of a direction were lost before the
// bytes fed next, which arrive at t.
func (c *Conn) Gap(d Dir, n int64, t int64) {
	if c.tls || c.closed || n <= 0 {
		return
	}
	c.stats.GapBytes.Add(uint64(n))
	s := c.stream(d)
	s.firstBytes = false
	if !s.synced {
		s.carry, s.carryAt = s.carry[:0], s.carryAt[:0]
		return
	}
	if s.st == stSize {
		// At a frame boundary, or inside the size field: the frames in the
		// gap cannot be counted.
		c.lose(s, t)
		return
	}
	s.damaged = true
	if n < s.remain {
		s.remain -= n
		if s.st == stRecSkip && n <= s.skip {
			// Lost record data: the framing of the rest holds.
			s.skip -= n
			s.recLeft -= n
			s.records = -1
			return
		}
		if s.st != stSkip {
			if s.cur != nil {
				s.cur.Damaged = true
			}
			s.enterSkip()
		}
		return
	}
	// The frame ended inside the gap; its end time is the best bound we
	// have (the first byte seen after it), and what follows is unframed.
	n -= s.remain
	s.remain = 0
	c.endFrame(s, t)
	if n > 0 {
		c.lose(s, t)
	}
}

// Close ends the connection at t (a FIN or RST, an idle timeout, the end of
// a capture): requests still awaiting responses are reported Unanswered.
func (c *Conn) Close(t int64) {
	if c.closed {
		return
	}
	// Candidates still undecided are judged now, requests first so that
	// their responses match.
	if !c.tls {
		c.settle(&c.req)
		c.settle(&c.resp)
	}
	c.closed = true
	for _, p := range c.pending {
		p.r.Status = latency.Unanswered
		c.send(p.r)
	}
	c.pending = nil
	c.stats.UnmatchedResponses.Add(uint64(len(c.orphans)))
	c.orphans = nil
	if c.req.cur != nil && c.req.synced && c.req.st != stSize {
		c.stats.LostRequests.Add(1)
	}
	c.req.cur = nil
}

func (c *Conn) markTLS() {
	c.tls = true
	c.stats.TLSConns.Add(1)
	c.pending, c.orphans = nil, nil
	c.req.cur = nil
}

// looksTLS reports whether b starts with a TLS record header (handshake,
// alert or application data, TLS 1.0–1.3): as a Kafka frame size that would
// be 352 MiB or more, never plausible.
func looksTLS(b []byte) bool {
	return len(b) >= 3 && b[0] >= 0x14 && b[0] <= 0x17 && b[1] == 3 && b[2] <= 4
}

// lose drops the framing of a stream: the current frame is abandoned and the
// stream searches for the next plausible frame.
func (c *Conn) lose(s *stream, t int64) {
	if s.synced && s.st != stSize && s.dir == ToServer && s.cur != nil {
		c.stats.LostRequests.Add(1)
	}
	c.stats.Resyncs.Add(1)
	s.reset()
	s.synced = false
	s.carry, s.carryAt = s.carry[:0], s.carryAt[:0]
	s.tlsChunks = 0
}

// finishRequest takes a request whose last byte arrived.
func (c *Conn) finishRequest(r *latency.Request, acksKnown bool) {
	c.stats.Requests.Add(1)
	if r.APIKey == latency.APIProduce && acksKnown && r.Acks == 0 {
		r.Status = latency.NoResponse
		c.send(r)
		return
	}
	for i, o := range c.orphans {
		if o.corr == r.CorrelationID {
			c.orphans = append(c.orphans[:i], c.orphans[i+1:]...)
			c.answer(r, o.start, o.end, o.damaged)
			return
		}
	}
	if len(c.pending) >= c.lim.MaxPending {
		old := c.pending[0]
		c.pending = c.pending[1:]
		old.r.Status = latency.LostResponse
		c.stats.Evicted.Add(1)
		c.send(old.r)
	}
	c.pending = append(c.pending, pendingReq{r: r})
}

// pendingRequest is the request awaiting response corr, or nil.
func (c *Conn) pendingRequest(corr int32) *latency.Request {
	for _, p := range c.pending {
		if p.r.CorrelationID == corr {
			return p.r
		}
	}
	return nil
}

// finishResponse matches a response to its request by correlation id.
func (c *Conn) finishResponse(corr int32, start, end int64, damaged bool) {
	c.stats.Responses.Add(1)
	for i := range c.pending {
		if c.pending[i].r.CorrelationID != corr {
			continue
		}
		r := c.pending[i].r
		// Requests before this one were overtaken by its response.
		kept := c.pending[:0]
		for j := range c.pending {
			p := c.pending[j]
			switch {
			case j == i:
				continue
			case j < i:
				p.overtaken++
				if p.overtaken > c.lim.Overtaken {
					p.r.Status = latency.LostResponse
					c.send(p.r)
					continue
				}
			}
			kept = append(kept, p)
		}
		clear(c.pending[len(kept):])
		c.pending = kept
		c.answer(r, start, end, damaged)
		return
	}
	if len(c.orphans) >= c.lim.MaxOrphans {
		c.orphans = c.orphans[1:]
		c.stats.UnmatchedResponses.Add(1)
	}
	c.orphans = append(c.orphans, orphan{corr: corr, start: start, end: end, damaged: damaged})
}

func (c *Conn) answer(r *latency.Request, start, end int64, damaged bool) {
	r.ResponseStart, r.ResponseEnd = start, end
	r.Status = latency.Answered
	r.Damaged = r.Damaged || damaged
	r.Wire = time.Duration(end - r.RequestEnd)
	from := max(r.RequestEnd, c.prevRespEnd)
	if from > end {
		// A response seen before its request (capture reordering): the
		// previous response cannot bound this one.
		from = r.RequestEnd
	}
	r.Service = time.Duration(end - from)
	if end > c.prevRespEnd {
		c.prevRespEnd = end
	}
	c.send(r)
}

// send hands a finished request to the emit function, with topic ids named.
func (c *Conn) send(r *latency.Request) {
	c.nameTopics(r)
	c.emit(r)
}
