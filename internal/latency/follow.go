package latency

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/nxadm/tail"
)

// FollowRequestLog follows a Kafka request log as it is written, as
// `tail -F` does (github.com/nxadm/tail): from its end, across log4j's
// rotations (the file renamed and a new one created), whole lines only. It
// calls fn for every completed request until ctx ends, and returns nil
// then; lines that do not parse are counted in the stats, never fatal.
// The file must exist when it starts.
func FollowRequestLog(ctx context.Context, path string, loc *time.Location, fn func(*Request)) (LogStats, error) {
	var st LogStats
	// Polled (every 250 ms) rather than watched with inotify: in a CI run
	// under heavy I/O the inotify watcher never delivered the first line
	// written to the new file after a rotation (not reproduced since);
	// polling compares the file at path with the one open, whatever the
	// order of the kernel's events.
	t, err := tail.TailFile(path, tail.Config{Follow: true, ReOpen: true, MustExist: true, CompleteLines: true, Poll: true,
		Location: &tail.SeekInfo{Whence: io.SeekEnd}, Logger: tail.DiscardingLogger})
	if err != nil {
		return st, fmt.Errorf("following the request log %s: %w", path, err)
	}
	defer t.Cleanup()
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return st, nil
		case line, ok := <-t.Lines:
			if !ok {
				if err := t.Err(); err != nil && !errors.Is(err, context.Canceled) {
					return st, fmt.Errorf("following the request log %s: %w", path, err)
				}
				return st, nil
			}
			if line.Err != nil {
				return st, fmt.Errorf("following the request log %s: %w", path, line.Err)
			}
			st.Lines++
			r, err := ParseRequestLogLine([]byte(line.Text), loc)
			if err != nil {
				st.Malformed++
				if st.FirstMalformed == 0 {
					st.FirstMalformed, st.FirstMalformedErr = st.Lines, err
				}
				continue
			}
			if r != nil {
				st.Requests++
				fn(r)
			}
		}
	}
}
