// Package pyroscopetest is an in-process stand-in for Pyroscope's /ingest
// endpoint, for tests: Pyroscope's server is in no package registry, so CI
// cannot run it. The server decodes exactly what grafana/pyroscope-go's
// uploader sends (POST /ingest?name=app{k=v,...}&from=&until=&spyName=...
// with a multipart form whose "profile" part is a gzipped pprof) and
// applies the rules of Pyroscope's ingestion that lockscope depends on:
// the name's label syntax and label-name characters, and the profile type
// name Pyroscope derives from the sample types.
//
// Every request is kept (decoded) until the test ends; a Server is safe for
// concurrent use.
package pyroscopetest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/pprof/profile"
)

// Ingest is one decoded /ingest request.
type Ingest struct {
	App    string            // the name before '{' (service_name)
	Labels map[string]string // the name's labels
	From   time.Time
	Until  time.Time
	Query  map[string]string // spyName, sampleRate, units, aggregationType, format...
	Header http.Header
	// Profile is the decoded "profile" part; ProfileType the id Pyroscope
	// would give it (__name__:type:unit:period_type:period_unit).
	Profile     *profile.Profile
	ProfileType string
	// SampleTypeConfig is the raw "sample_type_config" part, if any.
	SampleTypeConfig []byte
}

// Server is a test ingest endpoint.
type Server struct {
	*httptest.Server

	mu       sync.Mutex
	ingests  []Ingest
	requests int
	reply    func(n int) (int, string) // status and body for the n-th request (1-based)
	hold     chan struct{}             // when set, handlers wait for it to close
}

// New starts a server answering 200 to every valid push; it is closed when
// the test ends.
func New(tb testing.TB) *Server {
	s := &Server{reply: func(int) (int, string) { return http.StatusOK, "" }}
	s.Server = httptest.NewServer(http.HandlerFunc(s.handle))
	tb.Cleanup(s.Close)
	return s
}

// SetStatus makes the n-th request (1-based, counted over the server's
// life) answer status(n) instead of 200; a non-200 push is not kept.
func (s *Server) SetStatus(status func(n int) int) {
	s.SetReply(func(n int) (int, string) {
		st := status(n)
		return st, http.StatusText(st)
	})
}

// SetReply is SetStatus with the body too (Pyroscope's error messages).
func (s *Server) SetReply(reply func(n int) (status int, body string)) {
	s.mu.Lock()
	s.reply = reply
	s.mu.Unlock()
}

// Hold makes requests wait until the returned function is called.
func (s *Server) Hold() (release func()) {
	ch := make(chan struct{})
	s.mu.Lock()
	s.hold = ch
	s.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			s.hold = nil
			s.mu.Unlock()
			close(ch)
		})
	}
}

// Ingests returns the pushes accepted so far.
func (s *Server) Ingests() []Ingest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Ingest(nil), s.ingests...)
}

// Requests counts the requests received, accepted or not.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

func (s *Server) handle(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests++
	n, hold, reply := s.requests, s.hold, s.reply
	s.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-r.Context().Done():
			return
		}
	}
	if r.Method != http.MethodPost || r.URL.Path != "/ingest" {
		http.Error(w, "want POST /ingest", http.StatusNotFound)
		return
	}
	in, err := Decode(r)
	if err != nil {
		// Pyroscope answers a malformed push with 400 (422 for some).
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if st, body := reply(n); st != http.StatusOK {
		http.Error(w, body, st)
		return
	}
	s.mu.Lock()
	s.ingests = append(s.ingests, *in)
	s.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

// Decode decodes an /ingest request as Pyroscope does for the pprof
// multipart form the uploader sends.
func Decode(r *http.Request) (*Ingest, error) {
	q := r.URL.Query()
	in := &Ingest{Query: map[string]string{}, Header: r.Header.Clone()}
	for k := range q {
		in.Query[k] = q.Get(k)
	}
	var err error
	if in.App, in.Labels, err = ParseName(q.Get("name")); err != nil {
		return nil, fmt.Errorf("name: %w", err)
	}
	if in.From, err = unixNanos(q.Get("from")); err != nil {
		return nil, fmt.Errorf("from: %w", err)
	}
	if in.Until, err = unixNanos(q.Get("until")); err != nil {
		return nil, fmt.Errorf("until: %w", err)
	}
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" {
		return nil, fmt.Errorf("content type %q: want multipart/form-data", r.Header.Get("Content-Type"))
	}
	form, err := multipart.NewReader(r.Body, params["boundary"]).ReadForm(32 << 20)
	if err != nil {
		return nil, fmt.Errorf("reading the form: %w", err)
	}
	defer form.RemoveAll()
	raw, err := field(form, "profile")
	if err != nil || raw == nil {
		return nil, fmt.Errorf("no profile part: %v", err)
	}
	if prev, _ := field(form, "prev_profile"); prev != nil {
		return nil, errors.New("prev_profile: unsupported client version")
	}
	if in.SampleTypeConfig, err = field(form, "sample_type_config"); err != nil {
		return nil, err
	}
	if in.Profile, err = profile.ParseData(raw); err != nil {
		return nil, fmt.Errorf("profile: %w", err)
	}
	if err := in.Profile.CheckValid(); err != nil {
		return nil, fmt.Errorf("profile: %w", err)
	}
	in.ProfileType = ProfileTypeID(in.Profile)
	return in, nil
}

func field(f *multipart.Form, name string) ([]byte, error) {
	fh := f.File[name]
	if len(fh) == 0 {
		return nil, nil
	}
	rd, err := fh[0].Open()
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	var b bytes.Buffer
	_, err = io.Copy(&b, rd)
	return b.Bytes(), err
}

func unixNanos(s string) (time.Time, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, err
	}
	return time.Unix(0, n), nil
}

// ParseName parses app{k=v,...} as Pyroscope's labelset parser does, and
// validates it as Pyroscope does: service-name characters (letters,
// digits, _ . - /) and label-name characters (letters, digits, _ .; a '.'
// is accepted here but Pyroscope later drops such labels, so it is an
// error for lockscope too).
func ParseName(name string) (app string, labels map[string]string, err error) {
	app, rest, _ := strings.Cut(name, "{")
	app = strings.TrimSpace(app)
	if app == "" {
		return "", nil, errors.New("service name is required")
	}
	for _, r := range app {
		if !(letterDigit(r) || r == '_' || r == '.' || r == '-' || r == '/') {
			return "", nil, fmt.Errorf("invalid service name %q: character %q", app, r)
		}
	}
	labels = map[string]string{}
	rest, _, _ = strings.Cut(rest, "}")
	if strings.TrimSpace(rest) == "" {
		return app, labels, nil
	}
	for _, kv := range strings.Split(rest, ",") {
		k, v, ok := strings.Cut(kv, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return "", nil, fmt.Errorf("label %q: want name=value", kv)
		}
		for _, r := range k {
			if !(letterDigit(r) || r == '_') {
				return "", nil, fmt.Errorf("invalid label name %q: character %q", k, r)
			}
		}
		labels[k] = strings.TrimSpace(v)
	}
	return app, labels, nil
}

func letterDigit(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
}

// MetricName is the __name__ Pyroscope gives a pprof pushed to /ingest
// without a sample_type_config, by its rules (pkg/og/convert/pprof,
// RawProfile.metricName): "wall" if a sample type is exactly "wall", else
// the first rule matched by a sample type in order: contains "cpu" →
// process_cpu; alloc_/inuse_ or exactly space/objects → memory; mutex_ →
// mutex; block_ → block; goroutines → goroutines; else the last sample
// type's name.
func MetricName(p *profile.Profile) string {
	for _, st := range p.SampleType {
		if st.Type == "wall" {
			return "wall"
		}
	}
	var name string
	for _, st := range p.SampleType {
		name = st.Type
		switch {
		case strings.Contains(name, "cpu"):
			return "process_cpu"
		case strings.Contains(name, "alloc_"), strings.Contains(name, "inuse_"), name == "space", name == "objects":
			return "memory"
		case strings.Contains(name, "mutex_"):
			return "mutex"
		case strings.Contains(name, "block_"):
			return "block"
		case strings.Contains(name, "goroutines"):
			return "goroutines"
		}
	}
	return name
}

// ProfileTypeID is the id of a one-sample-type profile in Pyroscope:
// __name__:sample_type:sample_unit:period_type:period_unit.
func ProfileTypeID(p *profile.Profile) string {
	if len(p.SampleType) != 1 {
		return fmt.Sprintf("%s:<%d sample types>", MetricName(p), len(p.SampleType))
	}
	st, pt := p.SampleType[0], p.PeriodType
	if pt == nil {
		pt = &profile.ValueType{}
	}
	return strings.Join([]string{MetricName(p), st.Type, st.Unit, pt.Type, pt.Unit}, ":")
}
