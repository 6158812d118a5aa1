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
	t, err := tail.TailFile(path, tail.Config{Follow: true, ReOpen: true, MustExist: true, CompleteLines: true,
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
