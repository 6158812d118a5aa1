package kafka

import (
	"encoding/binary"
	"slices"
)

// Header bytes a candidate frame needs before it can be judged: size, api
// key, api version, correlation id and client-id length for requests; size
// and correlation id for responses.
const (
	reqProbe  = 14
	respProbe = 8
	// maxCarry bounds the bytes kept while a candidate frame waits for the
	// next frame's header to confirm it.
	maxCarry = 64 << 10
)

type verdict uint8

const (
	reject verdict = iota
	accept
	undecided // plausible, but the next frame's header is not in yet
)

// carried is a chunk kept while resyncing, with its arrival time, so that a
// frame found in it keeps exact timestamps.
type carried struct {
	off int
	t   int64
}

// resync searches the carried bytes and data for the start of a plausible
// frame. A candidate is confirmed by the header of the frame after it (Kafka
// data is full of small integers that look like a header on their own);
// until that header arrives the bytes from the candidate are carried. When
// a frame is found, the carried chunks from it are fed in sync with their
// own times, and the rest of data is returned.
func (c *Conn) resync(s *stream, data []byte, t int64) []byte {
	if looksTLS(data) {
		// Mid-stream, TLS shows as chunks that start with record headers
		// and no frame ever found between them.
		if s.tlsChunks++; s.tlsChunks >= 3 {
			c.markTLS()
			return nil
		}
	}
	probe := reqProbe
	if s.dir == ToClient {
		probe = respProbe
	}
	s.carryAt = append(s.carryAt, carried{off: len(s.carry), t: t})
	s.carry = append(s.carry, data...)
	buf := s.carry
	i := 0
	for ; i+probe <= len(buf); i++ {
		var v verdict
		if s.dir == ToServer {
			v = c.plausibleRequest(buf[i:])
		} else {
			v = c.plausibleResponse(buf[i:])
		}
		if v == reject {
			continue
		}
		if v == undecided && len(buf)-i <= maxCarry {
			c.dropCarry(s, i)
			c.crossConfirm()
			return nil
		}
		c.acceptCarry(s, i)
		return nil
	}
	// No frame starts before i; keep what a frame could still start in.
	c.dropCarry(s, max(0, len(buf)-(probe-1)))
	return nil
}

// dropCarry discards carried bytes before from.
func (c *Conn) dropCarry(s *stream, from int) {
	c.stats.SkippedBytes.Add(uint64(from))
	if from == 0 {
		return
	}
	n := copy(s.carry, s.carry[from:])
	s.carry = s.carry[:n]
	at := s.carryAt[:0]
	for k, ct := range s.carryAt {
		end := len(s.carry) + from
		if k+1 < len(s.carryAt) {
			end = s.carryAt[k+1].off
		}
		if end <= from {
			continue
		}
		at = append(at, carried{off: max(ct.off-from, 0), t: ct.t})
	}
	s.carryAt = at
	if cap(s.carry) > 2*maxCarry && len(s.carry) < maxCarry/4 {
		s.carry = append([]byte(nil), s.carry...)
	}
}

// replayCarry feeds the carried bytes from offset from, chunk by chunk with
// their arrival times, to the synced stream.
func (c *Conn) replayCarry(s *stream, from int) {
	buf, at := s.carry, s.carryAt
	s.carry, s.carryAt = nil, nil
	for k, ct := range at {
		end := len(buf)
		if k+1 < len(at) {
			end = at[k+1].off
		}
		lo := max(ct.off, from)
		if lo < end {
			c.feed(s, buf[lo:end], ct.t)
		}
	}
	// Keep the buffers for the next resync unless feeding started one.
	if s.carry == nil {
		s.carry, s.carryAt = buf[:0], at[:0]
	}
}

// plausibleRequest judges whether b starts a request frame: a size the
// broker accepts, an api key and a version Kafka defines (with room for a
// few newer versions), a non-negative correlation id, a client id that fits
// and is printable, and the next frame's header plausible too. Random bytes
// pass with a probability far below one in a million; structured Kafka data
// can fake one header, rarely two in a row.
func (c *Conn) plausibleRequest(b []byte) verdict {
	if !c.plausibleRequestAt(b) {
		return reject
	}
	size := int(binary.BigEndian.Uint32(b))
	key := int16(binary.BigEndian.Uint16(b[4:]))
	ver := int16(binary.BigEndian.Uint16(b[6:]))
	if !headerV0(key, ver) {
		if cid := int(int16(binary.BigEndian.Uint16(b[12:]))); cid > 0 {
			for _, ch := range b[reqProbe:min(len(b), reqProbe+cid)] {
				if ch < 0x20 || ch > 0x7e {
					return reject
				}
			}
		}
	}
	if key == 0 {
		// A produce request's record set is itself size-prefixed and
		// starts with a zero base offset (key 0, version 0, id 0): the
		// body must look like a produce body too.
		if v := plausibleProduceStart(b); v != accept {
			return v
		}
	}
	next := 4 + size
	switch {
	case next+reqProbe <= len(b):
		if c.plausibleRequestAt(b[next:]) {
			return accept
		}
		return reject
	case next > maxCarry:
		// Too large to wait for the next header: only a produce request
		// is that large; judge it by the start of its body.
		return plausibleProduceStart(b)
	}
	return undecided
}

// plausibleProduceStart checks what follows a produce request's header:
// transactional id, acks (-1, 0 or 1), timeout (≥ 0) and a topic count of
// 1 to 100000. It is undecided until those bytes are in.
func plausibleProduceStart(b []byte) verdict {
	key := int16(binary.BigEndian.Uint16(b[4:]))
	ver := int16(binary.BigEndian.Uint16(b[6:]))
	if key != 0 {
		return reject
	}
	i := reqProbe + max(0, int(int16(binary.BigEndian.Uint16(b[12:]))))
	// need returns whether n more bytes are in b.
	need := func(n int) bool { return i+n <= len(b) }
	if ver >= 9 {
		// Header tags (a count of 0: no client sends any) and a compact
		// nullable transactional id shorter than 128 bytes.
		if !need(2) {
			return undecided
		}
		if b[i] != 0 || b[i+1] >= 0x80 {
			return reject
		}
		i += 1 + 1 + max(0, int(b[i+1])-1)
	} else if ver >= 3 {
		if !need(2) {
			return undecided
		}
		n := int(int16(binary.BigEndian.Uint16(b[i:])))
		if n < -1 || n > 1024 {
			return reject
		}
		i += 2 + max(0, n)
	}
	if !need(7) {
		return undecided
	}
	acks := int16(binary.BigEndian.Uint16(b[i:]))
	timeout := int32(binary.BigEndian.Uint32(b[i+2:]))
	if acks < -1 || acks > 1 || timeout < 0 {
		return reject
	}
	i += 6
	if ver >= 9 {
		if b[i] < 2 { // compact array of at least one topic
			return reject
		}
		return accept
	}
	if !need(4) {
		return undecided
	}
	if n := int32(binary.BigEndian.Uint32(b[i:])); n < 1 || n > 100000 {
		return reject
	}
	return accept
}

func (c *Conn) plausibleRequestAt(b []byte) bool {
	size := int32(binary.BigEndian.Uint32(b))
	key := int16(binary.BigEndian.Uint16(b[4:]))
	ver := int16(binary.BigEndian.Uint16(b[6:]))
	corr := int32(binary.BigEndian.Uint32(b[8:]))
	if size < 8 || size > c.lim.MaxFrame || !plausibleRequestHeader(key, ver, corr) {
		return false
	}
	if int(key) < len(maxVersions) && ver > maxVersions[key]+3 {
		return false
	}
	if headerV0(key, ver) {
		return true
	}
	cid := int32(int16(binary.BigEndian.Uint16(b[12:])))
	return size >= 10 && cid >= -1 && cid <= size-10
}

// plausibleResponse judges whether b starts a response frame: a plausible
// size, the correlation id of a request awaiting its response (any
// non-negative id when none is known yet), and the next frame's size
// plausible too.
func (c *Conn) plausibleResponse(b []byte) verdict {
	size := int32(binary.BigEndian.Uint32(b))
	corr := int32(binary.BigEndian.Uint32(b[4:]))
	if size < 4 || size > c.lim.MaxFrame || corr < 0 {
		return reject
	}
	if len(c.pending) > 0 {
		found := false
		for _, p := range c.pending {
			found = found || p.r.CorrelationID == corr
		}
		if !found {
			return reject
		}
	}
	next := 4 + int(size)
	switch {
	case next+respProbe <= len(b):
		ns := int32(binary.BigEndian.Uint32(b[next:]))
		nc := int32(binary.BigEndian.Uint32(b[next+4:]))
		if ns >= 4 && ns <= c.lim.MaxFrame && nc >= 0 {
			return accept
		}
		return reject
	case next > maxCarry:
		return accept
	}
	return undecided
}

// maxVersions is the highest version of each api key that Kafka 4.1
// defines (-1 for unused keys), so that a resync does not take random
// bytes for a request; plausibleRequestAt allows a few versions more.
var maxVersions = [...]int16{
	0: 13, 1: 18, 2: 10, 3: 13, 4: 7, 5: 4, 6: 8, 7: 3, 8: 10, 9: 10,
	10: 6, 11: 9, 12: 4, 13: 5, 14: 5, 15: 6, 16: 5, 17: 1, 18: 4, 19: 7,
	20: 6, 21: 2, 22: 5, 23: 4, 24: 5, 25: 4, 26: 5, 27: 1, 28: 5, 29: 3,
	30: 3, 31: 3, 32: 4, 33: 2, 34: 2, 35: 4, 36: 2, 37: 3, 38: 3, 39: 2,
	40: 2, 41: 3, 42: 2, 43: 2, 44: 1, 45: 0, 46: 0, 47: 0, 48: 1, 49: 1,
	50: 0, 51: 0, 52: 0, 53: 1, 54: 0, 55: 2, 56: 3, 57: 1, 58: 0, 59: 0,
	60: 1, 61: 0, 62: 0, 63: 0, 64: 0, 65: 0, 66: 1, 67: 0, 68: 1, 69: 1,
	70: 0, 71: 0, 72: 0, 73: 0, 74: 0, 75: 0, 76: 1, 77: 1, 78: 1, 79: 1,
	80: 0, 81: 0, 82: 0, 83: 0, 84: 0, 85: 0, 86: 0, 87: 0, 88: 0, 89: 0,
	90: 0, 91: 0, 92: 0,
}

// crossConfirm judges candidates that no next frame confirms yet by the
// other direction: the only request on a connection seen mid-stream (or
// the last one before it goes quiet) has no next header, but its response
// carries its correlation id. Both directions' carried frames must chain
// exactly to the end of what was carried; the request side is settled
// first, so that its pending requests match the responses.
func (c *Conn) crossConfirm() {
	req, resp := &c.req, &c.resp
	switch {
	case !req.synced && !resp.synced:
		i, corrs := c.chainStart(req)
		k, rc := c.chainStart(resp)
		if i < 0 || k < 0 || len(rc) == 0 || !slices.Contains(corrs, rc[0]) {
			return
		}
		c.acceptCarry(req, i)
		c.acceptCarry(resp, k)
	case req.synced && !resp.synced && len(c.pending) > 0:
		// plausibleResponse already asks for a pending correlation id.
		if k, _ := c.chainStart(resp); k >= 0 {
			c.acceptCarry(resp, k)
		}
	}
}

// settle judges a direction's carried candidate when no more bytes will
// come (the connection closes, the capture ends): it is accepted when its
// frames chain exactly to the end of the carried bytes, instead of being
// dropped as undecided.
func (c *Conn) settle(s *stream) {
	if s.synced || len(s.carry) == 0 {
		return
	}
	if i, _ := c.chainStart(s); i >= 0 {
		c.acceptCarry(s, i)
	}
}

// chainStart returns the first offset of the carried bytes where a
// plausible frame starts whose frames chain exactly to their end, with the
// correlation ids of those frames; -1 when there is none.
func (c *Conn) chainStart(s *stream) (int, []int32) {
	buf := s.carry
	probe := reqProbe
	if s.dir == ToClient {
		probe = respProbe
	}
	for i := 0; i+probe <= len(buf); i++ {
		var v verdict
		if s.dir == ToServer {
			v = c.plausibleRequest(buf[i:])
		} else {
			v = c.plausibleResponse(buf[i:])
		}
		if v == reject {
			continue
		}
		if corrs, ok := c.chain(s.dir, buf[i:]); ok {
			return i, corrs
		}
	}
	return -1, nil
}

// chain walks frames from the start of b and reports whether each has a
// plausible header and the last ends exactly at the end of b, with their
// correlation ids.
func (c *Conn) chain(d Dir, b []byte) ([]int32, bool) {
	var corrs []int32
	for j := 0; j < len(b); {
		if d == ToServer {
			if j+reqProbe > len(b) || !c.plausibleRequestAt(b[j:]) {
				return nil, false
			}
			corrs = append(corrs, int32(binary.BigEndian.Uint32(b[j+8:])))
		} else {
			if j+respProbe > len(b) {
				return nil, false
			}
			size := int32(binary.BigEndian.Uint32(b[j:]))
			corr := int32(binary.BigEndian.Uint32(b[j+4:]))
			if size < 4 || size > c.lim.MaxFrame || corr < 0 {
				return nil, false
			}
			corrs = append(corrs, corr)
		}
		j += 4 + int(binary.BigEndian.Uint32(b[j:]))
		if j == len(b) {
			return corrs, true
		}
	}
	return nil, false
}

// acceptCarry takes the candidate at offset i of the carried bytes as a
// frame start: the stream is synced and the carried chunks replayed.
func (c *Conn) acceptCarry(s *stream, i int) {
	c.stats.SkippedBytes.Add(uint64(i))
	s.synced = true
	s.tlsChunks = 0
	s.reset()
	c.replayCarry(s, i)
}
