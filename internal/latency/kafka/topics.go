package kafka

import (
	"encoding/base64"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/lockscope/lockscope/internal/latency"
)

// Produce v13+ names topics by id; the names come from Metadata responses
// (v10+ carry both), which clients fetch on connecting and every few
// minutes. Those responses are small next to produce traffic; they are
// kept whole (up to maxMetadata) and decoded with franz-go's kmsg, which
// knows every version of them. The framer itself stays ours.

const (
	// maxMetadata bounds a Metadata response kept for its topic names.
	maxMetadata = 4 << 20
	// maxTopicNames bounds the id → name table shared by a parser's
	// connections.
	maxTopicNames = 1 << 16
)

// namesTopics reports whether r is a Metadata request recent enough for
// its response to carry topic ids.
func namesTopics(r *latency.Request) bool { return r.APIKey == 3 && r.APIVersion >= 10 }

// learnTopics decodes a Metadata response body (after the correlation id)
// and records its topics' ids and names.
func (c *Conn) learnTopics(ver int16, b []byte) {
	if ver >= 9 {
		// Flexible response header: skip its tagged fields (clients'
		// brokers send none; a count of zero is one byte).
		if len(b) == 0 || b[0] != 0 {
			return
		}
		b = b[1:]
	}
	resp := kmsg.NewPtrMetadataResponse()
	resp.Version = ver
	if err := resp.ReadFrom(b); err != nil {
		c.stats.Malformed.Add(1)
		return
	}
	names := c.parser.topicNames
	for _, t := range resp.Topics {
		if t.Topic == nil || t.TopicID == [16]byte{} {
			continue
		}
		id := base64.RawURLEncoding.EncodeToString(t.TopicID[:])
		if _, ok := names[id]; !ok && len(names) >= maxTopicNames {
			continue
		}
		names[id] = *t.Topic
	}
}

// nameTopics replaces topic ids in a Produce or Fetch v13+ request by
// known names.
func (c *Conn) nameTopics(r *latency.Request) {
	if r.APIVersion < 13 {
		return
	}
	names := c.parser.topicNames
	switch {
	case r.APIKey == latency.APIProduce:
		for i := range r.Partitions {
			if name, ok := names[r.Partitions[i].Topic]; ok {
				r.Partitions[i].Topic = name
			}
		}
	case r.Replica != nil:
		for i := range r.Replica.Offsets {
			if name, ok := names[r.Replica.Offsets[i].Topic]; ok {
				r.Replica.Offsets[i].Topic = name
			}
		}
	}
}
