package merge

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/lockscope/lockscope/internal/latency"
	"github.com/lockscope/lockscope/internal/verdict"
)

// Replication as the wire shows it, without the broker's request log: a
// follower's Fetch request asks for a partition from the offset it has
// reached, so its first fetch past a produce request's records is when it
// had them; the leader answers an acks=all request once every follower in
// the ISR has them. The follower whose fetch came last, before the
// response, is the one the request waited for; how long after the request
// it came is how long replication held it.

// ReplicationSummary compares, per follower, how often it was the one
// acks=all produce requests waited for and how long after the request it
// had their records, for the requests over the SLO and the others.
type ReplicationSummary struct {
	// Slow and Within count the acks=all requests whose replication was
	// followed (offsets known, followers' fetches seen).
	Slow   int `json:"slow_requests"`
	Within int `json:"within_requests"`
	// SlowLatency is the slow requests' mean latency.
	SlowLatency time.Duration `json:"slow_mean_latency_ns"`
	Followers   []FollowerLag `json:"followers"`
	// Dominant is the follower the most slow requests waited for, when
	// one did for most of them; Sentence says what the wire showed.
	Dominant string `json:"dominant,omitempty"`
	Sentence string `json:"sentence"`
}

// FollowerLag is one follower's part in the requests' replication.
type FollowerLag struct {
	Replica int32 `json:"replica"`
	// Last counts the requests it was the last follower to have, of the
	// slow ones and of the others.
	LastSlow   int `json:"last_slow"`
	LastWithin int `json:"last_within"`
	// Lag is the mean time from a request to this follower's fetch past
	// its records, for the slow requests and the others.
	LagSlow   time.Duration `json:"lag_slow_ns"`
	LagWithin time.Duration `json:"lag_within_ns"`
}

// ReplicationAccumulator gathers produce requests and replica fetches as
// they are read, in any order.
type ReplicationAccumulator struct {
	produces []replProduce
	// fetches are the followers' fetch offsets by partition, then by
	// replica.
	fetches map[topicPartition]map[int32][]fetchAt
}

type replProduce struct {
	end, resp int64 // the request's last byte, the response's first
	parts     []offsetRange
	slow      bool
	lat       time.Duration
}

type offsetRange struct {
	topicPartition
	last int64
}

type topicPartition struct {
	topic     string
	partition int32
}

type fetchAt struct {
	t      int64
	offset int64
}

// Add takes a request: an acks=all produce request whose offsets the
// response gave, or a follower's fetch; others are ignored.
func (a *ReplicationAccumulator) Add(r *latency.Request, metric latency.Metric, slo time.Duration) {
	switch {
	case r.Replica != nil:
		if a.fetches == nil {
			a.fetches = map[topicPartition]map[int32][]fetchAt{}
		}
		for _, o := range r.Replica.Offsets {
			k := topicPartition{o.Topic, o.Partition}
			byReplica := a.fetches[k]
			if byReplica == nil {
				byReplica = map[int32][]fetchAt{}
				a.fetches[k] = byReplica
			}
			byReplica[r.Replica.Replica] = append(byReplica[r.Replica.Replica], fetchAt{r.RequestEnd, o.Offset})
		}
	case r.APIKey == latency.APIProduce && r.Acks == -1 && r.Measured() && r.ResponseStart > 0:
		p := replProduce{end: r.RequestEnd, resp: r.ResponseStart, lat: r.Latency(metric)}
		p.slow = p.lat > slo
		for _, q := range r.Partitions {
			if q.BaseOffset != nil && q.Records > 0 {
				p.parts = append(p.parts, offsetRange{topicPartition{q.Topic, q.Partition}, *q.BaseOffset + int64(q.Records) - 1})
			}
		}
		if len(p.parts) > 0 {
			a.produces = append(a.produces, p)
		}
	}
}

// ackSlack is how long after the response's first byte a follower's fetch
// may arrive and still count as one the leader waited for: the fetch that
// completes a request reaches the wire just before its response, but the
// capture may order the two packets either way.
const ackSlack = int64(time.Millisecond)

// Summary follows every request's replication; nil when no acks=all
// request could be followed.
func (a *ReplicationAccumulator) Summary() *ReplicationSummary {
	if len(a.produces) == 0 || len(a.fetches) == 0 {
		return nil
	}
	for _, byReplica := range a.fetches {
		for _, fs := range byReplica {
			sort.Slice(fs, func(i, j int) bool { return fs[i].t < fs[j].t })
		}
	}
	type sums struct {
		lastSlow, lastWithin int
		lagSlow, lagWithin   time.Duration
		nSlow, nWithin       int
	}
	by := map[int32]*sums{}
	s := &ReplicationSummary{}
	var slowLat time.Duration
	for _, p := range a.produces {
		// When each follower had all of the request's records.
		acked := map[int32]int64{}
		for _, part := range p.parts {
			for replica, fs := range a.fetches[part.topicPartition] {
				i := sort.Search(len(fs), func(i int) bool { return fs[i].t >= p.end })
				for ; i < len(fs) && fs[i].t <= p.resp+ackSlack; i++ {
					if fs[i].offset > part.last {
						acked[replica] = max(acked[replica], fs[i].t)
						break
					}
				}
			}
		}
		if len(acked) == 0 {
			continue
		}
		var last int32
		var lastT int64
		for r, t := range acked {
			if t > lastT || t == lastT && r < last {
				last, lastT = r, t
			}
		}
		if p.slow {
			s.Slow++
			slowLat += p.lat
		} else {
			s.Within++
		}
		for r, t := range acked {
			x := by[r]
			if x == nil {
				x = &sums{}
				by[r] = x
			}
			lag := time.Duration(t - p.end)
			if p.slow {
				x.lagSlow += lag
				x.nSlow++
				if r == last {
					x.lastSlow++
				}
			} else {
				x.lagWithin += lag
				x.nWithin++
				if r == last {
					x.lastWithin++
				}
			}
		}
	}
	if s.Slow+s.Within == 0 {
		return nil
	}
	for r, x := range by {
		f := FollowerLag{Replica: r, LastSlow: x.lastSlow, LastWithin: x.lastWithin}
		if x.nSlow > 0 {
			f.LagSlow = x.lagSlow / time.Duration(x.nSlow)
		}
		if x.nWithin > 0 {
			f.LagWithin = x.lagWithin / time.Duration(x.nWithin)
		}
		s.Followers = append(s.Followers, f)
	}
	slices.SortFunc(s.Followers, func(a, b FollowerLag) int {
		if a.LastSlow != b.LastSlow {
			return b.LastSlow - a.LastSlow
		}
		return int(a.Replica - b.Replica)
	})
	if s.Slow == 0 {
		s.Sentence = fmt.Sprintf("no acks=all produce request over the SLO; %d others' replication followed on the wire", s.Within)
		return s
	}
	s.SlowLatency = slowLat / time.Duration(s.Slow)
	top := s.Followers[0]
	if 2*top.LastSlow > s.Slow {
		s.Dominant = fmt.Sprintf("broker %d", top.Replica)
	}
	var others []string
	for _, f := range s.Followers[1:] {
		others = append(others, fmt.Sprintf("broker %d's %v", f.Replica, f.LagSlow.Round(time.Millisecond/10)))
	}
	s.Sentence = fmt.Sprintf("of the %d acks=all produce requests over the SLO whose replication the wire showed, %d (%.0f%%) waited last for follower broker %d, which fetched past their records %v after the request on average (%v for the %d others)",
		s.Slow, top.LastSlow, 100*float64(top.LastSlow)/float64(s.Slow), top.Replica, top.LagSlow.Round(time.Millisecond/10),
		top.LagWithin.Round(time.Millisecond/10), s.Within)
	if len(others) > 0 {
		s.Sentence += "; " + strings.Join(others, ", ")
	}
	return s
}

// Verdict is the summary as the verdict takes it (nil for nil, or when no
// slow request's replication was followed).
func (s *ReplicationSummary) Verdict() *verdict.Replication {
	if s == nil || s.Slow == 0 || len(s.Followers) == 0 {
		return nil
	}
	top := s.Followers[0]
	return &verdict.Replication{Follower: fmt.Sprintf("broker %d", top.Replica), Last: top.LastSlow, Slow: s.Slow,
		Lag: top.LagSlow, LagWithin: top.LagWithin, SlowLatency: s.SlowLatency, Within: s.Within}
}

// WriteText writes the replication table.
func (s *ReplicationSummary) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Replication of acks=all produce requests, from the followers' fetches on the wire:\n  %s\n", s.Sentence)
	fmt.Fprintf(&b, "  %-10s %16s %16s %14s %14s\n", "follower", fmt.Sprintf("last, slow (%d)", s.Slow), fmt.Sprintf("last, others (%d)", s.Within), "lag slow", "lag others")
	for _, f := range s.Followers {
		fmt.Fprintf(&b, "  %-10s %16d %16d %14v %14v\n", fmt.Sprintf("broker %d", f.Replica), f.LastSlow, f.LastWithin,
			f.LagSlow.Round(time.Microsecond), f.LagWithin.Round(time.Microsecond))
	}
	_, err := io.WriteString(w, b.String())
	return err
}
