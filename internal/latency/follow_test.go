package latency

import (
	"context"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestFollowRequestLog: lines already in the log are skipped (the follow
// starts at its end), a line written in two parts is read once whole, and
// a log4j rotation (the file renamed, a new one created) is followed.
func TestFollowRequestLog(t *testing.T) {
	path := t.TempDir() + "/kafka-request.log"
	if err := os.WriteFile(path, []byte(textLine+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []int32
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan LogStats)
	go func() {
		st, err := FollowRequestLog(ctx, path, time.UTC, func(r *Request) {
			mu.Lock()
			got = append(got, r.CorrelationID)
			mu.Unlock()
		})
		if err != nil {
			t.Error(err)
		}
		done <- st
	}()
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(got)
	}
	waitFor := func(n int) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); count() < n; {
			if time.Now().After(deadline) {
				t.Fatalf("followed %d requests, want %d", count(), n)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	appendTo := func(s string) {
		f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteString(s); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(200 * time.Millisecond) // the follow has opened the file
	line := func(corr int) string {
		return strings.Replace(jsonLine, `"correlationId":283`, `"correlationId":`+strconv.Itoa(corr), 1)
	}
	appendTo(line(1) + "\n" + line(2)[:100])
	time.Sleep(100 * time.Millisecond)
	appendTo(line(2)[100:] + "\nINFO another logger's line\n")
	waitFor(2)
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	appendTo(line(3) + "\n")
	waitFor(3)
	cancel()
	st := <-done
	if want := []int32{1, 2, 3}; len(got) != 3 || got[0] != 1 || got[1] != 2 || got[2] != 3 {
		t.Errorf("followed correlation ids %v, want %v", got, want)
	}
	if st.Requests != 3 || st.Malformed != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestFollowRequestLogMissing: a log that does not exist is an error
// naming it, not a wait.
func TestFollowRequestLogMissing(t *testing.T) {
	path := t.TempDir() + "/nope.log"
	_, err := FollowRequestLog(context.Background(), path, time.UTC, func(*Request) {})
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("following a missing log: %v", err)
	}
}
