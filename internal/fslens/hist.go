package fslens

import (
	"time"

	"github.com/lockscope/lockscope/internal/bundle"
	"github.com/lockscope/lockscope/internal/offcpu"
)

// Histogram counts operations of one kind, on one file or summed over a
// group of files. Buckets[i] counts operations that took [2^i, 2^(i+1)) ns
// (the last bucket also everything longer).
type Histogram struct {
	Op    string
	File  *bundle.FSFileInfo // nil for a sum over files
	Count uint64
	SumNs uint64
	MaxNs uint64
	Bytes uint64
	// Buckets has offcpu.FSHistBuckets entries.
	Buckets []uint64
}

// FromTracer converts a kernel histogram of file f.
func FromTracer(h *offcpu.FSHistogram, f *bundle.FSFileInfo) Histogram {
	return Histogram{Op: h.Op.String(), File: f, Count: h.Count, SumNs: h.SumNs, MaxNs: h.MaxNs, Bytes: h.Bytes,
		Buckets: append([]uint64(nil), h.Buckets[:]...)}
}

// Add sums o into h (any file, same operation or not).
func (h *Histogram) Add(o *Histogram) {
	h.Count += o.Count
	h.SumNs += o.SumNs
	h.MaxNs = max(h.MaxNs, o.MaxNs)
	h.Bytes += o.Bytes
	if len(h.Buckets) < len(o.Buckets) {
		h.Buckets = append(h.Buckets, make([]uint64, len(o.Buckets)-len(h.Buckets))...)
	}
	for i, b := range o.Buckets {
		h.Buckets[i] += b
	}
}

// Mean is the average latency.
func (h *Histogram) Mean() time.Duration {
	if h.Count == 0 {
		return 0
	}
	return time.Duration(h.SumNs / h.Count)
}

// Quantile estimates the q-quantile (0 < q <= 1) of the latencies,
// interpolating linearly inside the log2 bucket it falls in, so the error
// is below the bucket's width (a factor of two); it never exceeds MaxNs
// when MaxNs is known.
func (h *Histogram) Quantile(q float64) time.Duration {
	var total uint64
	for _, b := range h.Buckets {
		total += b
	}
	if total == 0 {
		return 0
	}
	rank := q * float64(total)
	var cum float64
	for i, b := range h.Buckets {
		if b == 0 {
			continue
		}
		if cum+float64(b) >= rank {
			lo := float64(uint64(1) << i)
			if i == 0 {
				lo = 0
			}
			hi := float64(uint64(1) << (i + 1))
			v := lo + (hi-lo)*(rank-cum)/float64(b)
			if h.MaxNs > 0 && v > float64(h.MaxNs) {
				v = float64(h.MaxNs)
			}
			return time.Duration(v)
		}
		cum += float64(b)
	}
	return time.Duration(h.MaxNs)
}

// BundleHistogram converts h into the bundle's record.
func BundleHistogram(h *Histogram) bundle.FSHistogram {
	return bundle.FSHistogram{Op: h.Op, File: h.File, Count: h.Count, SumNs: h.SumNs, MaxNs: h.MaxNs, Bytes: h.Bytes,
		Buckets: append([]uint64(nil), h.Buckets...)}
}

// FromBundleHistogram converts a bundle record.
func FromBundleHistogram(b *bundle.FSHistogram) Histogram {
	return Histogram{Op: b.Op, File: b.File, Count: b.Count, SumNs: b.SumNs, MaxNs: b.MaxNs, Bytes: b.Bytes,
		Buckets: append([]uint64(nil), b.Buckets...)}
}
