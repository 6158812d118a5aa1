package latency

import "time"

// TimeOf formats a realtime nanosecond time stamp for people.
func TimeOf(ns int64) time.Time { return time.Unix(0, ns) }
