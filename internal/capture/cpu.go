package capture

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"time"

	"github.com/lockscope/lockscope/internal/bundle"
	"github.com/lockscope/lockscope/internal/cpustat"
	"github.com/lockscope/lockscope/internal/latency"
	"github.com/lockscope/lockscope/internal/verdict"
)

// cpuEvery is the CPU sampler's interval: fine enough to see a 100 ms
// window, a few hundred lines a minute.
const cpuEvery = 100 * time.Millisecond

// startCPU starts the CPU sampler writing cpu.jsonl; the returned function
// stops it. The sampler failing only costs the verdict its CPU evidence.
func (c *run) startCPU(ctx context.Context) func() {
	s, err := cpustat.New(c.o.PID)
	if err != nil {
		c.warn("CPU and cgroup throttling not sampled: %v", err)
		return func() {}
	}
	f, err := c.w.Create(bundle.CPUFile)
	if err != nil {
		c.warn("CPU and cgroup throttling not sampled: %v", err)
		return func() {}
	}
	c.meta.CPU = &bundle.CPU{File: bundle.CPUFile, Interval: cpuEvery, CPUs: runtime.NumCPU()}
	if first, err := s.Read(); err == nil {
		c.meta.CPU.Cgroup = first.Cgroup
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		bw := bufio.NewWriter(f)
		enc := json.NewEncoder(bw)
		err := s.Run(sctx, cpuEvery, func(smp cpustat.Sample) error {
			if err := enc.Encode(smp); err != nil {
				return err
			}
			return bw.Flush() // a killed capture loses at most one sample
		})
		done <- errors.Join(err, bw.Flush(), f.Close())
	}()
	return func() {
		cancel()
		if err := <-done; err != nil {
			c.warn("CPU sampler: %v", bundle.Hint(err))
		}
	}
}

// cpuEvidence reads a bundle's cpu.jsonl and splits what it saw between
// the slow windows and the rest; nil without the file.
func cpuEvidence(b *bundle.Bundle, ws *latency.WindowSet) (*verdict.CPUEvidence, error) {
	if b.Meta.CPU == nil || !exists(b.Path(bundle.CPUFile)) {
		return nil, nil
	}
	f, err := os.Open(b.Path(bundle.CPUFile))
	if err != nil {
		return nil, fmt.Errorf("merge: %w", err)
	}
	defer f.Close()
	ev := &verdict.CPUEvidence{Cgroup: b.Meta.CPU.Cgroup, CPUs: b.Meta.CPU.CPUs}
	hz := float64(clkTck)
	var slowNs, baseNs, thrSlow, thrBase, busySlow, busyBase, procSlow, procBase float64
	var prev *cpustat.Sample
	dec := json.NewDecoder(f)
	for {
		var smp cpustat.Sample
		if err := dec.Decode(&smp); err != nil {
			break // the end, or a line cut by a kill
		}
		if smp.QuotaUs > 0 && smp.PeriodUs > 0 {
			// The tightest quota seen, and the cgroup that had it.
			if q := float64(smp.QuotaUs) / float64(smp.PeriodUs); ev.Quota == 0 || q < ev.Quota {
				ev.Quota, ev.Cgroup = q, smp.Cgroup
			}
		}
		if prev != nil && smp.T > prev.T {
			d := float64(smp.T - prev.T)
			in := 0.0
			if ws != nil {
				in = float64(ws.Overlap(prev.T, smp.T)) / d
			}
			var thr float64
			if smp.Cgroup == prev.Cgroup && smp.ThrottledNs >= prev.ThrottledNs {
				thr = float64(smp.ThrottledNs - prev.ThrottledNs)
			}
			busy := 0.0
			if t := float64(smp.HostTotal - prev.HostTotal); smp.HostTotal > prev.HostTotal {
				busy = float64(smp.HostBusy-prev.HostBusy) / t * d
			}
			proc := float64(smp.ProcTicks-prev.ProcTicks) / hz * 1e9
			slowNs += in * d
			baseNs += (1 - in) * d
			thrSlow += in * thr
			thrBase += (1 - in) * thr
			busySlow += in * busy
			busyBase += (1 - in) * busy
			procSlow += in * proc
			procBase += (1 - in) * proc
		}
		prev = &smp
	}
	div := func(a, b float64) float64 {
		if b <= 0 {
			return 0
		}
		return a / b
	}
	ev.ThrottledSlow, ev.ThrottledBase = div(thrSlow, slowNs), div(thrBase, baseNs)
	ev.HostBusySlow, ev.HostBusyBase = div(busySlow, slowNs), div(busyBase, baseNs)
	ev.TargetSlow, ev.TargetBase = div(procSlow, slowNs), div(procBase, baseNs)
	return ev, nil
}

// clkTck is USER_HZ, the unit of /proc's CPU times: 100 on every Linux
// architecture Go supports.
const clkTck = 100
