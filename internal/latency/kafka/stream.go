package kafka

import (
	"encoding/base64"
	"encoding/binary"

	"github.com/lockscope/lockscope/internal/latency"
)

// state is where a stream is inside the current frame. Each state reads
// one primitive; a primitive split across chunks is gathered in stream.acc.
type state uint8

const (
	stSize state = iota // the 4-byte frame size (no frame open yet)
	// request header
	stReqHeader // api key, api version, correlation id
	stClientIDLen
	stClientID
	// tagged fields (flexible versions), returning to tagNext
	stTagCount
	stTagTag
	stTagSize
	stTagSkip
	// produce body
	stTxnLen
	stTxn
	stAcks
	stTimeout
	stTopicCount
	stTopicNameLen
	stTopicName
	stTopicID
	stPartCount
	stPartIndex
	stRecLen
	stRecHead   // first 17 bytes of a batch or legacy message
	stRecV2Head // the rest of a v2 batch header, up to its record count
	stRecSkip   // the rest of a batch
	// fetch body
	stReqKeep // the body of a Fetch request, kept for a replica's offsets
	// response header
	stRespCorr
	stRespKeep // the body of a Metadata or Produce response, kept (topic names, base offsets)
	// the rest of the frame
	stSkip
)

// maxPrimitive bounds a string or byte field kept in memory.
const maxPrimitive = 64 << 10

type stream struct {
	dir        Dir
	synced     bool
	firstBytes bool // nothing seen yet: the first bytes are checked for TLS
	st         state
	acc        []byte // a primitive split across chunks
	remain     int64  // bytes left in the current frame
	start      int64  // time of the frame's first byte
	damaged    bool

	// request being parsed (ToServer)
	cur        *latency.Request
	flexible   bool
	acksKnown  bool
	strLen     int
	tagsLeft   int
	tagNext    state
	topicsLeft int
	partsLeft  int
	topic      string
	part       latency.Partition
	recLeft    int64 // bytes left in the current partition's record set
	skip       int64 // bytes left to skip in stRecSkip
	records    int   // records counted so far in this record set, -1 unknown
	batchLen   int64

	corr int32 // response being parsed (ToClient)
	// keepFor is the request whose response is kept (stRespKeep): a
	// Metadata request's (topic names) or a Produce request's (offsets).
	keepFor *latency.Request
	keep    []byte

	lim   *Limits
	stats *Stats

	// strs interns the client ids and topic names of a connection, which
	// repeat in every request: one allocation per name, not per request.
	strs []string

	// resync
	carry     []byte
	carryAt   []carried
	tlsChunks int
}

func (s *stream) init(d Dir, lim *Limits, stats *Stats) {
	s.dir = d
	s.lim, s.stats = lim, stats
	s.synced = true
	s.firstBytes = true
	s.acc = make([]byte, 0, 64)
}

// reset closes the current frame.
func (s *stream) reset() {
	s.st = stSize
	s.acc = s.acc[:0]
	if cap(s.acc) > 4<<10 {
		// One long client id should not pin 64 KiB per connection.
		s.acc = make([]byte, 0, 64)
	}
	s.remain = 0
	s.damaged = false
	s.cur = nil
	s.keepFor = nil
	s.acksKnown = false
}

func (s *stream) enterSkip() { s.st = stSkip; s.acc = s.acc[:0] }

// take returns the next n bytes of the frame (n ≤ remain), from data itself
// when it holds them and nothing is gathered, else through acc. ok is false
// when data ran out first; the bytes seen are kept for the next call.
func (s *stream) take(data *[]byte, n int) ([]byte, bool) {
	d := *data
	if len(s.acc) == 0 && len(d) >= n {
		*data = d[n:]
		s.remain -= int64(n)
		return d[:n], true
	}
	k := min(n-len(s.acc), len(d))
	s.acc = append(s.acc, d[:k]...)
	*data = d[k:]
	s.remain -= int64(k)
	if len(s.acc) < n {
		return nil, false
	}
	b := s.acc
	s.acc = s.acc[:0]
	return b, true
}

// uvarint reads an unsigned varint of at most 5 bytes (a 32-bit value).
// bad is set when it is longer or runs past the frame.
func (s *stream) uvarint(data *[]byte) (v uint32, ok, bad bool) {
	for len(*data) > 0 {
		if s.remain == 0 {
			return 0, false, true
		}
		b := (*data)[0]
		*data = (*data)[1:]
		s.remain--
		s.acc = append(s.acc, b)
		if b < 0x80 {
			var x uint32
			for i, c := range s.acc {
				x |= uint32(c&0x7f) << (7 * i)
			}
			s.acc = s.acc[:0]
			return x, true, false
		}
		if len(s.acc) == 5 {
			return 0, false, true
		}
	}
	return 0, false, false
}

// fits reports whether n more bytes lie inside the frame.
func (s *stream) fits(n int) bool { return n >= 0 && int64(n) <= s.remain }

// feed runs the stream's state machine over data.
func (c *Conn) feed(s *stream, data []byte, t int64) {
	for len(data) > 0 && !c.tls {
		if !s.synced {
			data = c.resync(s, data, t)
			continue
		}
		if s.st == stSize {
			if len(s.acc) == 0 {
				s.start = t
			}
			// The size field is outside the frame: do not count it in remain.
			s.remain = 4
			b, ok := s.take(&data, 4)
			if !ok {
				s.remain = 0
				continue
			}
			size := int32(binary.BigEndian.Uint32(b))
			min := int32(8)
			if s.dir == ToClient {
				min = 4
			}
			if size < min || size > c.lim.MaxFrame {
				c.lose(s, t)
				continue
			}
			s.remain = int64(size)
			s.damaged = false
			if s.dir == ToServer {
				s.st = stReqHeader
			} else {
				s.st = stRespCorr
			}
			continue
		}
		if s.dir == ToServer {
			data = c.stepRequest(s, data, t)
		} else {
			data = c.stepResponse(s, data)
		}
		if s.synced && s.st != stSize && s.remain == 0 {
			c.endFrame(s, t)
		}
	}
}

// endFrame completes the current frame at t, the arrival of its last byte.
func (c *Conn) endFrame(s *stream, t int64) {
	if s.dir == ToClient {
		switch {
		case s.st == stRespCorr:
			// Cut before its correlation id: nothing to match.
			c.stats.UnmatchedResponses.Add(1)
		default:
			switch {
			case s.st != stRespKeep || s.damaged:
			case replicated(s.keepFor):
				c.learnOffsets(s.keepFor, s.keep)
			default:
				c.learnTopics(s.keepFor.APIVersion, s.keep)
			}
			c.finishResponse(s.corr, s.start, t, s.damaged)
		}
		if cap(s.keep) > 64<<10 {
			s.keep = nil
		}
		s.reset()
		return
	}
	r := s.cur
	if r == nil {
		// Cut inside the request header.
		c.stats.LostRequests.Add(1)
		s.reset()
		return
	}
	if s.st != stSkip && r.APIKey == latency.APIProduce && !s.damaged {
		// The frame ended before the produce body did.
		c.stats.Malformed.Add(1)
	}
	r.RequestStart, r.RequestEnd = s.start, t
	r.Damaged = r.Damaged || s.damaged
	if s.st == stReqKeep && !s.damaged {
		c.learnReplicaFetch(r, s.keep)
	}
	if cap(s.keep) > 64<<10 {
		s.keep = nil
	}
	acks := s.acksKnown
	s.reset()
	c.finishRequest(r, acks)
}

func (c *Conn) malformed(s *stream) {
	c.stats.Malformed.Add(1)
	s.enterSkip()
}

func (c *Conn) stepResponse(s *stream, data []byte) []byte {
	switch s.st {
	case stRespCorr:
		b, ok := s.take(&data, 4)
		if !ok {
			return data
		}
		s.corr = int32(binary.BigEndian.Uint32(b))
		s.enterSkip()
		// Keep a Metadata response whole: it names the topic ids that
		// Produce v13+ uses; and an acks=all Produce response: its base
		// offsets.
		if r := c.pendingRequest(s.corr); r != nil && (namesTopics(r) && s.remain <= maxMetadata ||
			replicated(r) && s.remain <= maxProduceResponse) {
			s.st = stRespKeep
			s.keepFor = r
			s.keep = s.keep[:0]
		}
	case stRespKeep:
		n := min(int64(len(data)), s.remain)
		s.keep = append(s.keep, data[:n]...)
		s.remain -= n
		data = data[n:]
	case stSkip:
		n := min(int64(len(data)), s.remain)
		s.remain -= n
		data = data[n:]
	}
	return data
}

// plausibleRequestHeader checks an api key, version and correlation id.
func plausibleRequestHeader(key, ver int16, corr int32) bool {
	return key >= 0 && key <= maxAPIKey && ver >= 0 && ver <= maxAPIVersion && corr >= 0
}

const (
	maxAPIKey     = 127
	maxAPIVersion = 30
)

// headerV0 reports requests whose header has no client id: only
// ControlledShutdown v0.
func headerV0(key, ver int16) bool { return key == 7 && ver == 0 }

func (c *Conn) stepRequest(s *stream, data []byte, t int64) []byte {
	switch s.st {
	case stReqHeader:
		if !s.fits(8) {
			c.lose(s, t)
			return data
		}
		b, ok := s.take(&data, 8)
		if !ok {
			return data
		}
		key := int16(binary.BigEndian.Uint16(b))
		ver := int16(binary.BigEndian.Uint16(b[2:]))
		corr := int32(binary.BigEndian.Uint32(b[4:]))
		if !plausibleRequestHeader(key, ver, corr) {
			c.lose(s, t)
			return data
		}
		s.cur = &latency.Request{
			Client: c.client, Server: c.server,
			APIKey: key, APIVersion: ver, CorrelationID: corr,
		}
		s.acksKnown = false
		s.flexible = key == latency.APIProduce && ver >= 9 || key == latency.APIFetch && ver >= 12
		if headerV0(key, ver) {
			s.afterHeader()
		} else {
			s.st = stClientIDLen
		}
	case stClientIDLen:
		if !s.fits(2) {
			c.lose(s, t)
			return data
		}
		b, ok := s.take(&data, 2)
		if !ok {
			return data
		}
		n := int(int16(binary.BigEndian.Uint16(b)))
		switch {
		case n == -1:
			s.afterClientID()
		case n < 0 || !s.fits(n):
			// A header that does not fit its frame: this was no frame.
			c.lose(s, t)
		default:
			s.strLen = n
			s.st = stClientID
		}
	case stClientID:
		b, ok := s.take(&data, s.strLen)
		if !ok {
			return data
		}
		s.cur.ClientID = s.intern(b)
		s.afterClientID()
	case stTagCount:
		n, ok, bad := s.uvarint(&data)
		if bad {
			c.malformed(s)
		} else if ok {
			s.tagsLeft = int(n)
			s.nextTag()
		}
	case stTagTag:
		if _, ok, bad := s.uvarint(&data); bad {
			c.malformed(s)
		} else if ok {
			s.st = stTagSize
		}
	case stTagSize:
		n, ok, bad := s.uvarint(&data)
		switch {
		case bad || !s.fits(int(n)):
			c.malformed(s)
		case ok && n == 0:
			s.tagsLeft--
			s.nextTag()
		case ok:
			s.skip = int64(n)
			s.st = stTagSkip
		}
	case stTagSkip:
		k := min(int64(len(data)), s.skip)
		data = data[k:]
		s.skip -= k
		s.remain -= k
		if s.skip == 0 {
			s.tagsLeft--
			s.nextTag()
		}
	case stTxnLen:
		n, ok, bad := s.strLength(&data, true)
		switch {
		case bad:
			c.malformed(s)
		case !ok:
		case n < 0:
			s.st = stAcks
		default:
			s.strLen = n
			s.st = stTxn
		}
	case stTxn:
		b, ok := s.take(&data, s.strLen)
		if ok {
			s.cur.TransactionalID = string(b)
			s.st = stAcks
		}
	case stAcks:
		if !s.fits(2) {
			c.malformed(s)
			return data
		}
		if b, ok := s.take(&data, 2); ok {
			s.cur.Acks = int16(binary.BigEndian.Uint16(b))
			s.acksKnown = true
			s.st = stTimeout
		}
	case stTimeout:
		if !s.fits(4) {
			c.malformed(s)
			return data
		}
		if _, ok := s.take(&data, 4); ok {
			s.st = stTopicCount
			s.cur.Partitions = make([]latency.Partition, 0, 1)
		}
	case stTopicCount:
		n, ok, bad := s.arrayLength(&data)
		switch {
		case bad:
			c.malformed(s)
		case ok:
			s.topicsLeft = n
			s.nextTopic()
		}
	case stTopicNameLen:
		n, ok, bad := s.strLength(&data, false)
		switch {
		case bad:
			c.malformed(s)
		case ok:
			s.strLen = n
			s.st = stTopicName
		}
	case stTopicName:
		if b, ok := s.take(&data, s.strLen); ok {
			s.topic = s.intern(b)
			s.st = stPartCount
		}
	case stTopicID:
		if !s.fits(16) {
			c.malformed(s)
			return data
		}
		if b, ok := s.take(&data, 16); ok {
			// Kafka's own spelling of a topic id (Uuid.toString): what
			// kafka-topics --describe shows. Named once metadata is seen.
			s.topic = base64.RawURLEncoding.EncodeToString(b)
			s.st = stPartCount
		}
	case stPartCount:
		n, ok, bad := s.arrayLength(&data)
		switch {
		case bad:
			c.malformed(s)
		case ok:
			s.partsLeft = n
			s.nextPartition()
		}
	case stPartIndex:
		if !s.fits(4) {
			c.malformed(s)
			return data
		}
		if b, ok := s.take(&data, 4); ok {
			s.part = latency.Partition{Topic: s.topic, Partition: int32(binary.BigEndian.Uint32(b))}
			s.st = stRecLen
		}
	case stRecLen:
		var n int
		var ok, bad bool
		if s.flexible {
			var u uint32
			u, ok, bad = s.uvarint(&data)
			n = int(u) - 1
		} else if !s.fits(4) {
			bad = true
		} else {
			var b []byte
			if b, ok = s.take(&data, 4); ok {
				n = int(int32(binary.BigEndian.Uint32(b)))
			}
		}
		switch {
		case bad || (ok && n >= 0 && !s.fits(n)):
			c.malformed(s)
		case !ok:
		default:
			s.recLeft = int64(max(n, 0))
			s.part.Bytes = max(n, 0)
			s.records = 0
			s.nextBatch()
		}
	case stRecHead:
		if b, ok := s.take(&data, 17); ok {
			s.recLeft -= 17
			s.batchLen = int64(int32(binary.BigEndian.Uint32(b[8:])))
			magic := b[16]
			switch {
			case s.batchLen < 5 || s.batchLen-5 > s.recLeft:
				// A batch claiming more than its record set: count what
				// we cannot walk as unknown.
				s.records = -1
				s.skipRecords(s.recLeft)
			case magic >= 2 && s.batchLen-5 >= 44:
				s.st = stRecV2Head
			default:
				if s.records >= 0 {
					s.records++ // a legacy message (a compressed wrapper counts once)
				}
				s.skipRecords(s.batchLen - 5)
			}
		}
	case stRecV2Head:
		if b, ok := s.take(&data, 44); ok {
			s.recLeft -= 44
			if n := int32(binary.BigEndian.Uint32(b[40:])); s.records >= 0 && n >= 0 {
				s.records += int(n)
			}
			s.skipRecords(s.batchLen - 49)
		}
	case stRecSkip:
		k := min(int64(len(data)), s.skip)
		data = data[k:]
		s.skip -= k
		s.recLeft -= k
		s.remain -= k
		if s.skip == 0 {
			s.nextBatch()
		}
	case stReqKeep:
		n := min(int64(len(data)), s.remain)
		s.keep = append(s.keep, data[:n]...)
		s.remain -= n
		data = data[n:]
	case stSkip:
		n := min(int64(len(data)), s.remain)
		s.remain -= n
		data = data[n:]
	}
	return data
}

// intern returns b as a string, reusing an earlier equal one.
func (s *stream) intern(b []byte) string {
	for _, x := range s.strs {
		if x == string(b) {
			return x
		}
	}
	x := string(b)
	if len(s.strs) < 16 {
		s.strs = append(s.strs, x)
	}
	return x
}

// afterHeader moves past the request header to the body.
func (s *stream) afterHeader() {
	if s.cur.APIKey == latency.APIFetch {
		s.keepFetch(false)
		return
	}
	if s.cur.APIKey != latency.APIProduce {
		s.enterSkip()
		return
	}
	if s.cur.APIVersion >= 3 {
		s.st = stTxnLen
	} else {
		s.st = stAcks
	}
}

// keepFetch keeps a Fetch request's body, small as a follower's is, to
// read its replica id and offsets once whole; afterTags first skips the
// header's tagged fields (flexible versions). A larger one is skipped.
func (s *stream) keepFetch(afterTags bool) {
	if s.remain > maxFetchRequest {
		s.enterSkip()
		return
	}
	s.keep = s.keep[:0]
	if afterTags {
		s.tags(stReqKeep)
		return
	}
	s.st = stReqKeep
}

func (s *stream) afterClientID() {
	if s.flexible && s.cur.APIKey == latency.APIFetch {
		s.keepFetch(true)
		return
	}
	if s.flexible {
		s.tags(stTxnLen)
		if s.cur.APIVersion < 3 { // never: flexible Produce is v9+
			s.tagNext = stAcks
		}
		return
	}
	s.afterHeader()
}

// tags starts skipping a tagged-field section, continuing at next.
func (s *stream) tags(next state) {
	s.tagNext = next
	s.st = stTagCount
}

func (s *stream) nextTag() {
	if s.tagsLeft > 0 {
		s.st = stTagTag
		return
	}
	s.st = s.tagNext
	switch s.st {
	case stTopicNameLen:
		// After a topic's tags: the next topic, or the body's tags.
		s.nextTopic()
	case stPartIndex:
		s.nextPartition()
	}
}

// strLength reads a string length: int16, or compact uvarint−1 when the
// request is flexible. n < 0 is null, allowed only when nullable.
func (s *stream) strLength(data *[]byte, nullable bool) (n int, ok, bad bool) {
	if s.flexible {
		u, ok, bad := s.uvarint(data)
		if !ok || bad {
			return 0, ok, bad
		}
		n = int(u) - 1
	} else {
		if !s.fits(2) {
			return 0, false, true
		}
		b, ok := s.take(data, 2)
		if !ok {
			return 0, false, false
		}
		n = int(int16(binary.BigEndian.Uint16(b)))
	}
	if n < 0 {
		return n, true, !nullable || n < -1
	}
	return n, true, n > maxPrimitive || !s.fits(n)
}

// arrayLength reads an array length: int32, or compact uvarint−1.
func (s *stream) arrayLength(data *[]byte) (n int, ok, bad bool) {
	if s.flexible {
		u, ok, bad := s.uvarint(data)
		if !ok || bad {
			return 0, ok, bad
		}
		n = int(u) - 1
	} else {
		if !s.fits(4) {
			return 0, false, true
		}
		b, ok := s.take(data, 4)
		if !ok {
			return 0, false, false
		}
		n = int(int32(binary.BigEndian.Uint32(b)))
	}
	// Every element takes at least one byte.
	return n, true, n < -1 || int64(n) > s.remain
}

func (s *stream) nextTopic() {
	if s.topicsLeft <= 0 {
		if s.flexible && s.tagNext != stSkip {
			s.tags(stSkip)
			return
		}
		s.enterSkip()
		return
	}
	s.topicsLeft--
	if s.cur.APIVersion >= 13 {
		s.st = stTopicID
	} else {
		s.st = stTopicNameLen
	}
}

func (s *stream) nextPartition() {
	if s.partsLeft <= 0 {
		if s.flexible {
			// The topic's tagged fields, then the next topic.
			s.tags(stTopicNameLen)
			return
		}
		s.nextTopic()
		return
	}
	s.partsLeft--
	s.st = stPartIndex
}

// skipRecords skips n bytes of record data, then goes on to the next batch.
func (s *stream) skipRecords(n int64) {
	s.skip = n
	s.st = stRecSkip
	if n == 0 {
		s.nextBatch()
	}
}

// nextBatch walks the record set to its next batch, or finishes the partition.
func (s *stream) nextBatch() {
	if s.recLeft >= 17 {
		s.st = stRecHead
		return
	}
	if s.recLeft > 0 {
		// A trailing partial batch (clients never send one): skip it.
		s.records = -1
		s.skip = s.recLeft
		s.st = stRecSkip
		return
	}
	s.part.Records = s.records
	if len(s.cur.Partitions) < s.lim.MaxPartitions {
		s.cur.Partitions = append(s.cur.Partitions, s.part)
	} else {
		s.stats.PartitionsDropped.Add(1)
	}
	if s.flexible {
		s.tags(stPartIndex)
		return
	}
	s.nextPartition()
}
