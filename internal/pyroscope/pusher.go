package pyroscope

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/grafana/pyroscope-go/upstream"
	"github.com/grafana/pyroscope-go/upstream/remote"
)

// SpyName is the spyName the profiles are pushed with (Pyroscope's
// pyroscope_spy label).
const SpyName = "lockscope"

// Stats count what a Pusher did.
type Stats struct {
	Pushed   int64 // accepted by the server
	Retries  int64 // attempts after a transient failure
	Failed   int64 // given up after MaxAttempts transient failures
	Rejected int64 // refused by the server (4xx other than 408 and 429): not retried
	Dropped  int64 // evicted from a full queue (oldest first) or left at Close
	Queued   int   // waiting now
	Bytes    int   // their size
	// LastError is the last failure, "" when the last attempt succeeded.
	LastError string
}

// Pusher pushes profiles to Pyroscope with grafana/pyroscope-go's uploader
// from one goroutine, in order, with a bounded queue and back-off. Push
// never blocks; memory is bounded by the queue whatever the server does.
type Pusher struct {
	o      Options
	remote *remote.Remote
	client *outcomeClient

	mu     sync.Mutex
	queue  []*item // oldest first
	bytes  int
	closed bool

	wake    chan struct{} // a profile was queued (capacity 1)
	closing chan struct{} // Close was called: drain, then stop
	abort   chan struct{} // Close's context ended: stop now
	done    chan struct{} // the sender returned

	pushed, retries, failed, rejected, dropped atomic.Int64
	lastErr                                    atomic.Pointer[string]
}

// NewPusher validates o and starts the sender.
func NewPusher(o Options) (*Pusher, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o = o.withDefaults()
	p := &Pusher{
		o:       o,
		wake:    make(chan struct{}, 1),
		closing: make(chan struct{}),
		abort:   make(chan struct{}),
		done:    make(chan struct{}),
	}
	abortCtx, cancel := context.WithCancel(context.Background())
	p.client = &outcomeClient{
		ctx: abortCtx,
		c: &http.Client{
			// Its own transport, so Close can drop its idle connections.
			Transport: http.DefaultTransport.(*http.Transport).Clone(),
			Timeout:   o.Timeout,
			// As the uploader's own client: a redirect would drop the
			// Authorization header and turn into a confusing 401.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
	cfg := remote.Config{
		BasicAuthUser:     o.BasicAuthUser,
		BasicAuthPassword: o.BasicAuthPassword,
		TenantID:          o.TenantID,
		Threads:           1,
		Address:           o.URL,
		Timeout:           o.Timeout,
		Logger:            quietLogger{},
		HTTPClient:        p.client,
	}
	if o.BearerToken != "" {
		// The uploader's AuthToken is deprecated; it says to set the
		// header instead.
		cfg.HTTPHeaders = map[string]string{"Authorization": "Bearer " + o.BearerToken}
	}
	r, err := remote.NewRemote(cfg)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("creating the Pyroscope uploader: %w", err)
	}
	p.remote = r
	r.Start()
	go func() {
		<-p.abort
		cancel()
	}()
	go p.send()
	return p, nil
}

// Push queues profiles, dropping the oldest queued ones (counted) when the
// queue is full. After Close it drops them.
func (p *Pusher) Push(profs ...Profile) {
	p.mu.Lock()
	for i := range profs {
		if p.closed {
			p.dropped.Add(1)
			continue
		}
		p.queue = append(p.queue, &item{Profile: profs[i]})
		p.bytes += len(profs[i].Data)
		p.evictLocked()
	}
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// evictLocked drops the oldest profiles until the queue is within bounds.
func (p *Pusher) evictLocked() {
	n := 0
	for len(p.queue)-n > p.o.MaxQueue || (p.bytes > p.o.MaxQueueBytes && len(p.queue)-n > 1) {
		p.bytes -= len(p.queue[n].Data)
		p.queue[n] = nil
		n++
	}
	if n > 0 {
		p.queue = p.queue[n:]
		p.dropped.Add(int64(n))
		p.o.Logf("pyroscope: queue full, dropped the %d oldest profiles (%d dropped so far)", n, p.dropped.Load())
	}
}

// Stats returns the counters now.
func (p *Pusher) Stats() Stats {
	p.mu.Lock()
	s := Stats{Queued: len(p.queue), Bytes: p.bytes}
	p.mu.Unlock()
	s.Pushed, s.Retries, s.Failed = p.pushed.Load(), p.retries.Load(), p.failed.Load()
	s.Rejected, s.Dropped = p.rejected.Load(), p.dropped.Load()
	if e := p.lastErr.Load(); e != nil {
		s.LastError = *e
	}
	return s
}

// Close stops taking profiles and pushes those queued until ctx ends; what
// is left then is dropped (counted) and the in-flight request cancelled.
// It returns an error naming how many profiles were not pushed.
func (p *Pusher) Close(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		<-p.done
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	close(p.closing)
	select {
	case <-p.done:
	case <-ctx.Done():
		close(p.abort)
		<-p.done
	}
	p.remote.Stop()
	p.client.c.CloseIdleConnections()
	p.mu.Lock()
	left := len(p.queue)
	p.queue, p.bytes = nil, 0
	p.mu.Unlock()
	select {
	case <-p.abort:
	default:
		close(p.abort)
	}
	if left > 0 {
		p.dropped.Add(int64(left))
		s := p.Stats()
		return fmt.Errorf("pyroscope: %d profiles not pushed at exit (last error: %s)", left, s.LastError)
	}
	return nil
}

// item is a queued profile and how often it was tried.
type item struct {
	Profile
	attempts int
}

// next waits for the oldest queued profile; nil when closing with an empty
// queue, or aborted.
func (p *Pusher) next() *item {
	for {
		p.mu.Lock()
		if len(p.queue) > 0 {
			pr := p.queue[0]
			p.queue[0] = nil
			p.queue = p.queue[1:]
			p.bytes -= len(pr.Data)
			p.mu.Unlock()
			return pr
		}
		p.mu.Unlock()
		select {
		case <-p.wake:
		case <-p.closing:
			p.mu.Lock()
			empty := len(p.queue) == 0
			p.mu.Unlock()
			if empty {
				return nil
			}
		case <-p.abort:
			return nil
		}
	}
}

// requeue puts pr back at the head to be retried, unless the queue filled
// up meanwhile: then pr, the oldest, is the one to drop.
func (p *Pusher) requeue(pr *item) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.queue)+1 > p.o.MaxQueue || p.bytes+len(pr.Data) > p.o.MaxQueueBytes && len(p.queue) > 0 {
		p.dropped.Add(1)
		return false
	}
	p.queue = append(p.queue, nil)
	copy(p.queue[1:], p.queue)
	p.queue[0] = pr
	p.bytes += len(pr.Data)
	return true
}

// send is the one goroutine talking to the server. The back-off is shared:
// after a transient failure nothing is sent until it has passed, and it
// doubles with every failure up to RetryMax, so a server that is down sees
// at most one request per RetryMax, and memory stays at the queue's bound.
func (p *Pusher) send() {
	defer close(p.done)
	backoff := time.Duration(0)
	for {
		pr := p.next()
		if pr == nil {
			return
		}
		err := p.upload(pr)
		if err == nil {
			p.pushed.Add(1)
			p.lastErr.Store(nil)
			backoff = 0
			continue
		}
		msg := err.Error()
		p.lastErr.Store(&msg)
		var perm *permanentError
		if errors.As(err, &perm) {
			p.rejected.Add(1)
			p.o.Logf("pyroscope: %s profile refused, not retried: %v", pr.Type, err)
			continue
		}
		pr.attempts++
		if pr.attempts >= p.o.MaxAttempts {
			p.failed.Add(1)
			p.o.Logf("pyroscope: %s profile given up after %d attempts: %v", pr.Type, p.o.MaxAttempts, err)
		} else if p.requeue(pr) {
			p.retries.Add(1)
		}
		backoff = min(max(2*backoff, p.o.RetryMin), p.o.RetryMax)
		// ±20% jitter so that many agents do not retry in step.
		wait := backoff - backoff/5 + rand.N(backoff/5*2+1)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-p.abort:
			t.Stop()
			return
		}
	}
}

// upload sends one profile through the uploader and returns how it went.
func (p *Pusher) upload(pr *item) error {
	p.client.reset()
	p.remote.Upload(&upstream.UploadJob{
		Name:       IngestName(p.o.AppName, merged(p.o.Labels, pr.Labels)),
		StartTime:  pr.From,
		EndTime:    pr.Until,
		SpyName:    SpyName,
		SampleRate: 100,
		Units:      "nanoseconds",
		Format:     upstream.FormatPprof,
		Profile:    pr.Data,
	})
	// The uploader queues the job for its one worker; Flush waits until
	// it has been sent, so the outcome recorded by the client is its own.
	p.remote.Flush()
	return p.client.result()
}

func merged(a, b map[string]string) map[string]string {
	m := make(map[string]string, len(a)+len(b))
	for k, v := range a {
		m[k] = v
	}
	for k, v := range b {
		m[k] = v
	}
	return m
}

// permanentError is a refusal retrying cannot fix (a bad label, a
// too-large profile, wrong credentials).
type permanentError struct {
	status int
	body   string
}

func (e *permanentError) Error() string {
	return fmt.Sprintf("pushing profile: HTTP %d: %s", e.status, e.body)
}

// outcomeClient is the uploader's HTTP client: it records each request's
// outcome, which the uploader itself only logs, and cancels requests when
// the Pusher is aborted.
type outcomeClient struct {
	ctx context.Context
	c   *http.Client

	mu  sync.Mutex
	err error
	set bool
}

func (c *outcomeClient) reset() {
	c.mu.Lock()
	c.err, c.set = nil, false
	c.mu.Unlock()
}

func (c *outcomeClient) result() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.set {
		// The uploader failed before sending (it only logs that).
		return errors.New("pushing profile: the uploader did not send it")
	}
	return c.err
}

func (c *outcomeClient) record(err error) {
	c.mu.Lock()
	c.err, c.set = err, true
	c.mu.Unlock()
}

func (c *outcomeClient) Do(req *http.Request) (*http.Response, error) {
	resp, err := c.c.Do(req.WithContext(c.ctx))
	if err != nil {
		// Name the server, not the whole ingest URL with its query.
		cause := err
		var ue *url.Error
		if errors.As(err, &ue) {
			cause = ue.Err
		}
		c.record(fmt.Errorf("pushing profile to %s: %w", req.URL.Host, cause))
		return nil, err
	}
	if resp.StatusCode == http.StatusOK {
		c.record(nil)
		return resp, nil
	}
	// Keep the start of the body for the error, and hand the uploader an
	// equal one to read.
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	body := string(bytes.TrimSpace(b))
	if transientStatus(resp.StatusCode, body) {
		c.record(fmt.Errorf("pushing profile: HTTP %d: %s", resp.StatusCode, body))
	} else {
		c.record(&permanentError{status: resp.StatusCode, body: body})
	}
	return resp, nil
}

// transientStatus tells the answers worth retrying: 408, 429, 5xx, and
// Pyroscope's 422 when its cause is downstream. Pyroscope's /ingest
// answers 422 for every failure after decoding, a profile it refuses as
// well as "rpc error: code = Unavailable" while it starts or shuts down
// (seen for about 25 s of a graceful shutdown), so the message decides.
func transientStatus(status int, body string) bool {
	switch {
	case status == http.StatusRequestTimeout, status == http.StatusTooManyRequests, status >= 500:
		return true
	case status == http.StatusUnprocessableEntity:
		b := strings.ToLower(body)
		for _, cause := range []string{"unavailable", "deadline", "resource_exhausted", "resourceexhausted", "timeout", "too many", "connection refused", "context canceled"} {
			if strings.Contains(b, cause) {
				return true
			}
		}
	}
	return false
}

// quietLogger drops the uploader's own log lines: the Pusher logs each
// outcome itself, once, through Options.Logf.
type quietLogger struct{}

func (quietLogger) Infof(string, ...any)  {}
func (quietLogger) Debugf(string, ...any) {}
func (quietLogger) Errorf(string, ...any) {}
