package kafka

import (
	"encoding/base64"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/lockscope/lockscope/internal/latency"
)

// What the wire says of replication: a follower's Fetch request carries
// its replica id and, per partition, the offset it fetches from, which is
// how far it has the log; a Produce response carries the base offset the
// leader gave each partition's records. Together they tell, for an
// acks=all produce request, when each follower had its records. Both are
// small frames, kept whole (bounded) and decoded with franz-go's kmsg,
// which knows every version; the framer itself stays ours.

const (
	// maxFetchRequest bounds a Fetch request kept for its offsets: a
	// follower's names each partition it follows in some 30 bytes.
	maxFetchRequest = 1 << 20
	// maxProduceResponse bounds a Produce response kept for its offsets.
	maxProduceResponse = 1 << 20
)

// replicated reports whether r is an acks=all Produce request, the only
// ones whose replication is followed.
func replicated(r *latency.Request) bool { return r.APIKey == latency.APIProduce && r.Acks == -1 }

// learnOffsets decodes the body of the Produce response to r (after the
// correlation id) and gives r's partitions their base offsets.
func (c *Conn) learnOffsets(r *latency.Request, b []byte) {
	ver := r.APIVersion
	if ver >= 9 {
		// Flexible response header: its tagged fields (none, one byte).
		if len(b) == 0 || b[0] != 0 {
			return
		}
		b = b[1:]
	}
	resp := kmsg.NewPtrProduceResponse()
	resp.Version = ver
	if err := resp.ReadFrom(b); err != nil {
		c.stats.Malformed.Add(1)
		return
	}
	for _, t := range resp.Topics {
		name := t.Topic
		if ver >= 13 {
			name = base64.RawURLEncoding.EncodeToString(t.TopicID[:])
		}
		for _, p := range t.Partitions {
			if p.ErrorCode != 0 || p.BaseOffset < 0 {
				continue
			}
			for i := range r.Partitions {
				q := &r.Partitions[i]
				if q.Topic == name && q.Partition == p.Partition {
					off := p.BaseOffset
					q.BaseOffset = &off
				}
			}
		}
	}
}

// learnReplicaFetch decodes a Fetch request body and, when a follower sent
// it (a replica id set), records its offsets in r.Replica.
func (c *Conn) learnReplicaFetch(r *latency.Request, b []byte) {
	req := kmsg.NewPtrFetchRequest()
	req.Version = r.APIVersion
	if err := req.ReadFrom(b); err != nil {
		c.stats.Malformed.Add(1)
		return
	}
	id := req.ReplicaID
	if req.Version >= 15 {
		id = req.ReplicaState.ID
	}
	if id < 0 {
		return // a consumer
	}
	f := &latency.ReplicaFetch{Replica: id}
	for _, t := range req.Topics {
		name := t.Topic
		if req.Version >= 13 {
			name = base64.RawURLEncoding.EncodeToString(t.TopicID[:])
		}
		for _, p := range t.Partitions {
			f.Offsets = append(f.Offsets, latency.FetchOffset{Topic: name, Partition: p.Partition, Offset: p.FetchOffset})
		}
	}
	r.Replica = f
}
