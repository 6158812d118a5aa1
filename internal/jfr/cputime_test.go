package jfr

import (
	"syscall"
	"testing"
	"time"
)

// cpuTime is the process's user+system CPU time. The benchmarks report it
// besides wall time because the 2 vCPUs of the test machine are shared:
// under load, wall time measures the neighbours as much as the code.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU adds cpu-ms/op and cpu-MB/s metrics for the loop since start.
func reportCPU(b *testing.B, start time.Duration, bytes int64) {
	d := cpuTime() - start
	per := d / time.Duration(b.N)
	b.ReportMetric(float64(per)/1e6, "cpu-ms/op")
	b.ReportMetric(float64(bytes)/per.Seconds()/1e6, "cpu-MB/s")
}
