package jfr

import (
	"errors"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/lockscope/lockscope/internal/testdata"
)

// TestParallel: decoding chunks concurrently gives the sequential counts,
// and a truncated file gives its complete chunks and the same error.
func TestParallel(t *testing.T) {
	for _, name := range []string{"jdk-lockscope-jfc-multichunk.jfr", "asprof-wall-lock-nocstack-chunked-truncated.jfr"} {
		t.Run(name, func(t *testing.T) {
			path := testdata.JFR(t, name)
			want, wantTotal, wantChunks, wantErr := countFile(t, path)
			var mu sync.Mutex
			got := map[string]int{}
			total, chunks := 0, 0
			err := Parallel(path, 2, func(c *Chunk) error {
				local := map[string]int{}
				n := 0
				for c.Next() {
					local[c.Event().Type.Name]++
					c.Event().Stack()
					n++
				}
				mu.Lock()
				defer mu.Unlock()
				for k, v := range local {
					got[k] += v
				}
				total += n
				chunks++
				return c.Err()
			})
			if diff := cmp.Diff(want, got); diff != "" || total != wantTotal || chunks != wantChunks {
				t.Errorf("%d events in %d chunks, want %d in %d; counts (-seq +par):\n%s", total, chunks, wantTotal, wantChunks, diff)
			}
			var e1, e2 *Error
			if (wantErr == nil) != (err == nil) || wantErr != nil && (!errors.As(err, &e1) || !errors.As(wantErr, &e2) || e1.Chunk != e2.Chunk || e1.Offset != e2.Offset || e1.Error() != e2.Error()) {
				t.Errorf("error %v, sequential reader says %v", err, wantErr)
			}
		})
	}
}
