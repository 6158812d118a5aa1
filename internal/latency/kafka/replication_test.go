package kafka

import (
	"encoding/base64"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/lockscope/lockscope/internal/latency"
)

// fetchFrame is a Fetch request of version ver from replica (-1: a
// consumer) for partition 0 of topic at offset.
func fetchFrame(ver int16, corr, replica int32, topic string, offset int64) []byte {
	req := kmsg.NewPtrFetchRequest()
	req.Version = ver
	req.ReplicaID = replica
	req.ReplicaState.ID = replica
	req.MaxWaitMillis, req.MinBytes, req.MaxBytes = 500, 1, 1<<20
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	copy(rt.TopicID[:], topic)
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = 0, offset, 1<<20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return kmsg.NewRequestFormatter(kmsg.FormatterClientID("broker-1-fetcher-0")).AppendRequest(nil, req, corr)
}

// TestReplicaFetches: a follower's Fetch request, in the versions that
// carry the replica id in the body (v4–v14), in the flexible header (v12+),
// in the replica state (v15+) and with topic ids (v13+), gives its replica
// id and offsets, however the frame is cut; a consumer's gives none.
func TestReplicaFetches(t *testing.T) {
	for _, c := range []struct {
		ver     int16
		replica int32
		topic   string
	}{
		{4, 2, "orders"}, {11, 1, "orders"}, {12, 1, "orders"}, {13, 2, "orders"}, {15, 3, "orders"}, {12, -1, "orders"},
	} {
		_, conn, rec := newTestConn(Limits{})
		feedSplit(conn, ToServer, fetchFrame(c.ver, 7, c.replica, c.topic, 41), 3, 1)
		conn.Feed(ToClient, responseFrame(7, c.ver >= 12, 16), 2)
		if len(rec.got) != 1 {
			t.Fatalf("v%d: %d requests, want 1", c.ver, len(rec.got))
		}
		f := rec.got[0].Replica
		if c.replica < 0 {
			if f != nil {
				t.Errorf("v%d: a consumer's fetch taken for a replica's: %+v", c.ver, f)
			}
			continue
		}
		want := c.topic
		if c.ver >= 13 {
			var id [16]byte
			copy(id[:], c.topic)
			want = base64.RawURLEncoding.EncodeToString(id[:])
		}
		if f == nil || f.Replica != c.replica || len(f.Offsets) != 1 || f.Offsets[0] != (latency.FetchOffset{Topic: want, Partition: 0, Offset: 41}) {
			t.Errorf("v%d: replica fetch %+v, want replica %d at %s-0 offset 41", c.ver, f, c.replica, want)
		}
	}
}

// produceResponseFrame is a Produce response of version ver giving each
// partition of topic a base offset (or an error, for a negative one).
func produceResponseFrame(ver int16, corr int32, topic string, offsets map[int32]int64) []byte {
	resp := kmsg.NewPtrProduceResponse()
	resp.Version = ver
	rt := kmsg.NewProduceResponseTopic()
	rt.Topic = topic
	copy(rt.TopicID[:], topic)
	for p, off := range offsets {
		rp := kmsg.NewProduceResponseTopicPartition()
		rp.Partition, rp.BaseOffset = p, off
		if off < 0 {
			rp.ErrorCode = 6 // NOT_LEADER_OR_FOLLOWER
		}
		rt.Partitions = append(rt.Partitions, rp)
	}
	resp.Topics = append(resp.Topics, rt)
	return responseWith(corr, ver >= 9, resp.AppendTo(nil))
}

// TestProduceBaseOffsets: an acks=all Produce response's base offsets
// reach the request's partitions, in flexible and older versions; a
// partition that failed gets none, nor does an acks=1 request.
func TestProduceBaseOffsets(t *testing.T) {
	for _, ver := range []int16{3, 7, 9} {
		_, conn, rec := newTestConn(Limits{})
		conn.Feed(ToServer, produceFrame(t, ver, 5, -1, "", []tp{{"orders", 0, [][]byte{batch(3, 10)}}, {"orders", 1, [][]byte{batch(1, 10)}}}), 1)
		feedSplit(conn, ToClient, produceResponseFrame(ver, 5, "orders", map[int32]int64{0: 120, 1: -1}), 5, 2)
		if len(rec.got) != 1 {
			t.Fatalf("v%d: %d requests, want 1", ver, len(rec.got))
		}
		ps := rec.got[0].Partitions
		if len(ps) != 2 || ps[0].BaseOffset == nil || *ps[0].BaseOffset != 120 || ps[0].Records != 3 || ps[1].BaseOffset != nil {
			t.Errorf("v%d: partitions %+v, want orders-0 at 120 (3 records) and orders-1 without an offset", ver, ps)
		}
	}
	_, conn, rec := newTestConn(Limits{})
	conn.Feed(ToServer, produceFrame(t, 9, 5, 1, "", []tp{{"orders", 0, [][]byte{batch(3, 10)}}}), 1)
	conn.Feed(ToClient, produceResponseFrame(9, 5, "orders", map[int32]int64{0: 120}), 2)
	if len(rec.got) != 1 || rec.got[0].Partitions[0].BaseOffset != nil {
		t.Errorf("acks=1: %+v, want no base offset", rec.got)
	}
}
