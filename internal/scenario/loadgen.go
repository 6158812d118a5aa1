package scenario

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"
)

// LoadOptions say what load to generate.
type LoadOptions struct {
	// URL is the endpoint (Jetty.URL); each request adds key=wN-M to its
	// query.
	URL string
	// Workers is the number of concurrent requesters (default 8), each
	// with at most one request in flight.
	Workers int
	// Duration stops issuing requests after this long (0: only the
	// context stops it). Requests in flight then still finish, so the
	// tail is not cut off.
	Duration time.Duration
	// Rate caps the total request rate, per second (0: each worker sends
	// its next request as soon as the last one is answered). The load
	// stays closed-loop: when all workers are busy the schedule slips
	// rather than queueing sends, so a slow server is offered less load.
	Rate float64
	// Timeout bounds each request (default 10s).
	Timeout time.Duration
}

// Validate checks the options.
func (o LoadOptions) Validate() error {
	u, err := url.Parse(o.URL)
	if err != nil {
		return fmt.Errorf("load URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("load URL %q: want http or https", o.URL)
	}
	if o.Workers < 0 || o.Duration < 0 || o.Rate < 0 || o.Timeout < 0 {
		return errors.New("load options: workers, duration, rate and timeout must not be negative")
	}
	return nil
}

// Request is one request as the client saw it.
type Request struct {
	// Start is when the request was sent, in unix nanoseconds
	// (CLOCK_REALTIME, time.Now().UnixNano()), the clock latency CSVs use.
	Start int64
	// Duration is from sending to having read the whole response.
	Duration time.Duration
	// Status is the HTTP status code, 0 when no response arrived.
	Status int
	// Err is why the request failed (transport error, timeout, status
	// other than 200), nil when it succeeded.
	Err error
}

// Load sends requests to o.URL from o.Workers workers until ctx is done or
// o.Duration has passed, and returns every request, ordered by start. Failed
// requests are kept, with Err set (Summarize counts them); the error is only
// for invalid options. Requests cut short because ctx was cancelled are
// dropped: their duration says nothing about the server.
func Load(ctx context.Context, o LoadOptions) ([]Request, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.Workers == 0 {
		o.Workers = 8
	}
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Second
	}
	u, _ := url.Parse(o.URL)
	// Issuing stops at stop; requests use ctx, so the Duration deadline
	// lets the ones in flight finish.
	stop := ctx
	if o.Duration > 0 {
		var cancel context.CancelFunc
		stop, cancel = context.WithTimeout(ctx, o.Duration)
		defer cancel()
	}
	client := &http.Client{
		Timeout: o.Timeout,
		Transport: &http.Transport{
			// One kept-alive connection per worker.
			MaxIdleConns:        o.Workers,
			MaxIdleConnsPerHost: o.Workers,
			IdleConnTimeout:     time.Minute,
		},
	}
	defer client.CloseIdleConnections()

	var tokens <-chan struct{}
	if o.Rate > 0 {
		tokens = pace(stop, o.Rate)
	}
	perWorker := make([][]Request, o.Workers)
	var wg sync.WaitGroup
	for w := range o.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			q := u.Query()
			var reqs []Request
			for i := 0; stop.Err() == nil; i++ {
				if tokens != nil {
					if _, ok := <-tokens; !ok {
						break
					}
				}
				q.Set("key", "w"+strconv.Itoa(w)+"-"+strconv.Itoa(i))
				u2 := *u
				u2.RawQuery = q.Encode()
				r := get(ctx, client, u2.String())
				if r.Err != nil && ctx.Err() != nil {
					break
				}
				reqs = append(reqs, r)
			}
			perWorker[w] = reqs
		}()
	}
	wg.Wait()
	all := slices.Concat(perWorker...)
	slices.SortFunc(all, func(a, b Request) int { return cmp.Compare(a.Start, b.Start) })
	return all, nil
}

// get sends one request and reads the whole response.
func get(ctx context.Context, client *http.Client, u string) Request {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return Request{Start: time.Now().UnixNano(), Err: err}
	}
	t0 := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return Request{Start: t0.UnixNano(), Duration: time.Since(t0), Err: err}
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	r := Request{Start: t0.UnixNano(), Duration: time.Since(t0), Status: resp.StatusCode, Err: err}
	if r.Err == nil && resp.StatusCode != http.StatusOK {
		r.Err = fmt.Errorf("status %s", resp.Status)
	}
	return r
}

// pace hands out rate tokens per second until ctx is done. A token nobody
// takes in time delays the next ones instead of piling up.
func pace(ctx context.Context, rate float64) <-chan struct{} {
	ch := make(chan struct{})
	interval := time.Duration(float64(time.Second) / rate)
	go func() {
		defer close(ch)
		next := time.Now()
		for {
			if d := time.Until(next); d > 0 {
				select {
				case <-time.After(d):
				case <-ctx.Done():
					return
				}
			}
			select {
			case ch <- struct{}{}:
			case <-ctx.Done():
				return
			}
			next = next.Add(interval)
			if now := time.Now(); now.Sub(next) > interval {
				next = now // slipped: do not burst to catch up
			}
		}
	}()
	return ch
}

// Summary counts a load's outcome.
type Summary struct {
	Requests, OK, Failed int
	// FirstErr is the first failure by start time, nil if none.
	FirstErr error
}

// Summarize counts the requests that succeeded and failed.
func Summarize(reqs []Request) Summary {
	s := Summary{Requests: len(reqs)}
	for _, r := range reqs {
		if r.Err != nil {
			s.Failed++
			if s.FirstErr == nil {
				s.FirstErr = r.Err
			}
		} else {
			s.OK++
		}
	}
	return s
}

// WriteCSV writes reqs as start_unix_ns,duration_ns rows (failed requests
// too: a timeout is tail latency), after a "start_ns,duration_ns" header
// line when header is true.
func WriteCSV(path string, reqs []Request, header bool) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("writing latency CSV: %w", err)
	}
	w := bufio.NewWriter(f)
	if header {
		w.WriteString("start_ns,duration_ns\n")
	}
	var line []byte
	for _, r := range reqs {
		line = strconv.AppendInt(line[:0], r.Start, 10)
		line = append(line, ',')
		line = strconv.AppendInt(line, int64(r.Duration), 10)
		line = append(line, '\n')
		w.Write(line)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("writing latency CSV: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing latency CSV: %w", err)
	}
	return nil
}
