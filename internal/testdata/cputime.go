package testdata

import (
	"syscall"
	"testing"
	"time"
)

// CPUTime is the process's user+system CPU time. Benchmarks report it
// besides wall time because the 2 vCPUs of the test machine are shared:
// under load, wall time measures the neighbours as much as the code.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// ReportCPU adds cpu-ms/op and cpu-MB/s metrics for the loop since start
// (a CPUTime reading), bytes being what one iteration processes.
func ReportCPU(b *testing.B, start time.Duration, bytes int64) {
	per := (CPUTime() - start) / time.Duration(b.N)
	b.ReportMetric(float64(per)/1e6, "cpu-ms/op")
	b.ReportMetric(float64(bytes)/per.Seconds()/1e6, "cpu-MB/s")
}
