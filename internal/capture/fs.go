package capture

import (
	"context"
	"errors"
	"sort"
	"time"

	"github.com/lockscope/lockscope/internal/bundle"
	"github.com/lockscope/lockscope/internal/fslens"
	"github.com/lockscope/lockscope/internal/offcpu"
)

// startFS starts the filesystem lens writing the bundle's fs.jsonl: the
// broker's file operations of at least FSMin one by one, resolved to paths
// and topic-partitions while the files are still open, and the journal
// activity of the machine's ext4 and XFS devices. The returned function
// stops it, writes the in-kernel histograms and records the devices the
// broker wrote to. Without root or tracefs the capture goes on without it,
// saying so.
func (c *run) startFS(ctx context.Context) (func(), error) {
	if c.o.NoFS {
		return func() {}, nil
	}
	fctx, cancel := context.WithCancel(ctx)
	tr, err := offcpu.StartFS(fctx, offcpu.FSConfig{PIDs: []int{c.o.PID}, Min: c.o.FSMin})
	if err != nil {
		cancel()
		c.warn("filesystem ops not collected (--no-fs skips the lens): %v", err)
		return func() {}, nil
	}
	f, err := c.w.Create(bundle.FSStreamFile)
	if err != nil {
		cancel()
		tr.Close()
		c.warn("filesystem ops not collected: %v", err)
		return func() {}, nil
	}
	res := fslens.NewResolver()
	res.ScanFDs(c.o.PID)
	names := offcpu.NewThreadNames()
	names.Prime(uint32(c.o.PID))
	fw := bundle.NewFSWriter(f)
	c.meta.FS = &bundle.FS{File: bundle.FSStreamFile, Min: c.o.FSMin}
	if c.meta.FS.Min == 0 {
		c.meta.FS.Min = offcpu.DefaultFSMin
	}
	used := map[string]bool{}
	done := make(chan error, 1)
	go func() {
		var werr error
		evs, js := tr.Events(), tr.Journal()
		// Files the broker opens and closes between slow operations (a
		// checkpoint rewritten and renamed) are only in its histograms:
		// learn their paths while they are open. The stream is written
		// out on the same tick, so that a capture that is killed loses
		// at most the last second of it.
		scan := time.NewTicker(time.Second)
		defer scan.Stop()
		for evs != nil || js != nil {
			select {
			case <-scan.C:
				res.ScanFDs(c.o.PID)
				if werr == nil {
					werr = fw.Flush()
				}
			case ev, ok := <-evs:
				if !ok {
					evs = nil
					continue
				}
				if werr != nil {
					continue // keep draining so the tracer is not blocked
				}
				file := res.File(int(ev.TGID), ev.Dev, ev.Ino)
				op := fslens.OpRecord(&ev, file, names.Get(ev.TGID, ev.TID))
				werr = fw.WriteOp(&op)
				used[file.Dev] = true
			case j, ok := <-js:
				if !ok {
					js = nil
					continue
				}
				if werr == nil {
					rec := fslens.JournalRecord(&j)
					werr = fw.WriteJournal(&rec)
				}
			}
		}
		done <- errors.Join(werr, tr.Err())
	}()
	stop := func() {
		cancel()
		err := <-done
		hists, herr := tr.Histograms()
		cnt, cerr := tr.Counters()
		missing := tr.Missing()
		tr.Close()
		if err == nil && herr == nil {
			for i := range hists {
				file := res.File(int(hists[i].TGID), hists[i].Dev, hists[i].Ino)
				h := fslens.FromTracer(&hists[i], file)
				rec := fslens.BundleHistogram(&h)
				if err = fw.WriteHistogram(&rec); err != nil {
					break
				}
				used[file.Dev] = true
			}
		}
		if ferr := fw.Flush(); err == nil {
			err = ferr
		}
		f.Close()
		if err := errors.Join(err, herr); err != nil {
			c.warn("filesystem stream: %v", err)
		}
		for _, m := range missing {
			c.warn("filesystem lens: %s not traced", m)
		}
		meta := &bundle.FS{File: bundle.FSStreamFile, Min: c.o.FSMin, Devices: devices(c.o.PID, used)}
		if meta.Min == 0 {
			meta.Min = offcpu.DefaultFSMin
		}
		if cerr == nil {
			meta.Counters = map[string]uint64{"events": cnt.Events, "journal_events": cnt.JournalEvents, "drops": cnt.Drops,
				"histogram_overflow": cnt.HistogramOverflow, "inflight_failures": cnt.InflightFailures, "malformed": cnt.Malformed,
				"non_files": cnt.NonFiles, "unpaired": cnt.Unpaired}
			if cnt.Drops > 0 {
				c.warn("filesystem lens dropped %d records (ring buffer full)", cnt.Drops)
			}
		}
		c.meta.FS = meta
	}
	return stop, nil
}

// devices describes the filesystems the broker did file I/O on, as mounted
// in its mount namespace.
func devices(pid int, used map[string]bool) []bundle.FSDevice {
	mounts, err := fslens.Mounts(pid)
	if err != nil {
		return nil
	}
	var out []bundle.FSDevice
	for dev, m := range fslens.ByDev(mounts) {
		d := fslens.DevString(dev)
		if !used[d] {
			continue
		}
		out = append(out, bundle.FSDevice{Dev: d, MountPoint: m.MountPoint, FSType: m.FSType, Options: m.Options, Source: m.Source})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Dev < out[j].Dev })
	return out
}
