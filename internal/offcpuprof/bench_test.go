package offcpuprof

import (
	"strings"
	"testing"

	"github.com/lockscope/lockscope/internal/offcpu"
	"github.com/lockscope/lockscope/internal/symbolize"
)

// BenchmarkBuilderAdd is the per-interval cost of aggregation and kernel
// symbolization on the command's read path.
func BenchmarkBuilderAdd(b *testing.B) {
	k, err := symbolize.ParseKallsyms(strings.NewReader(kallsyms))
	if err != nil {
		b.Fatal(err)
	}
	bl := NewBuilder(k)
	ivs := make([]offcpu.Interval, 64)
	for i := range ivs {
		ivs[i] = offcpu.Interval{TID: uint32(100 + i%8), TGID: 1, Thread: "kafka-request-h", State: offcpu.Sleeping,
			Start: 0, End: 2e6, Kernel: []uint64{0xffffffff81000510, 0xffffffff81000410, 0xffffffff81000110 + uint64(i%4), 0xffffffff81000010}}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		bl.Add(&ivs[i%len(ivs)])
	}
}
