package pyroscope

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
)

// DefaultAppName is the application (service_name) profiles are pushed as
// when Options.AppName is empty.
const DefaultAppName = "kafka-broker"

// Label names lockscope sets itself.
const (
	LabelSLOBreach = "slo_breach" // "true" for the slow windows, "false" for the baseline
	LabelHost      = "host"
	LabelBroker    = "broker"
)

// Options say where and how profiles are pushed.
type Options struct {
	// URL is Pyroscope's base address (http://host:4040); /ingest is
	// appended by the uploader.
	URL string
	// AppName becomes the series' service_name (default DefaultAppName).
	AppName string
	// Labels are added to every pushed series. Names are sanitized for
	// Pyroscope (see SanitizeLabelName); values may not contain ',', '{'
	// or '}', which end a value in the ingest name, and are replaced.
	Labels map[string]string

	// Authentication, as the uploader supports it: basic auth, a bearer
	// token (sent as an Authorization header) and a tenant (X-Scope-OrgID).
	BasicAuthUser     string
	BasicAuthPassword string
	BearerToken       string
	TenantID          string

	// Timeout bounds one HTTP request (default 10s).
	Timeout time.Duration
	// MaxQueue and MaxQueueBytes bound the profiles waiting to be pushed
	// (default 200 profiles, 64 MiB); when either is reached the oldest
	// is dropped and counted.
	MaxQueue      int
	MaxQueueBytes int
	// MaxAttempts is how often one profile is tried before it is given up
	// (default 8: the profile at the head of the queue outlives about 90 s
	// of outage, long enough for a Pyroscope restart, and the profiles
	// behind it wait, bounded by the queue). RetryMin and RetryMax bound
	// the back-off between attempts (default 1s and 30s), which doubles
	// after every failure and is shared by all profiles, so an unreachable
	// server is asked at most once per RetryMax.
	MaxAttempts int
	RetryMin    time.Duration
	RetryMax    time.Duration

	// Logf receives failures and drops; nil is quiet.
	Logf func(format string, args ...any)
}

// withDefaults returns o with its zero fields defaulted.
func (o Options) withDefaults() Options {
	if o.AppName == "" {
		o.AppName = DefaultAppName
	}
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Second
	}
	if o.MaxQueue == 0 {
		o.MaxQueue = 200
	}
	if o.MaxQueueBytes == 0 {
		o.MaxQueueBytes = 64 << 20
	}
	if o.MaxAttempts == 0 {
		o.MaxAttempts = 8
	}
	if o.RetryMin == 0 {
		o.RetryMin = time.Second
	}
	if o.RetryMax == 0 {
		o.RetryMax = 30 * time.Second
	}
	if o.RetryMax < o.RetryMin {
		o.RetryMax = o.RetryMin
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	return o
}

// Validate checks the options without contacting the server.
func (o *Options) Validate() error {
	var errs []error
	if o.URL == "" {
		errs = append(errs, errors.New("--pyroscope: give the Pyroscope server's URL (e.g. http://127.0.0.1:4040)"))
	} else if u, err := url.Parse(o.URL); err != nil {
		errs = append(errs, fmt.Errorf("--pyroscope %q: %w", o.URL, err))
	} else if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("--pyroscope %q: want http://HOST:PORT or https://HOST:PORT", o.URL))
	}
	if o.AppName != "" {
		for _, r := range o.AppName {
			if !serviceNameRune(r) {
				errs = append(errs, fmt.Errorf("--app %q: %q is not allowed in a Pyroscope application name (letters, digits, _ . - /)", o.AppName, r))
				break
			}
		}
	}
	seen := map[string]string{}
	for name := range o.Labels {
		s := SanitizeLabelName(name)
		switch {
		case s == "":
			errs = append(errs, errors.New("--label: empty label name"))
		case strings.HasPrefix(s, "__"):
			errs = append(errs, fmt.Errorf("--label %s: names starting with __ are Pyroscope's own", name))
		case s == LabelSLOBreach || s == "service_name":
			errs = append(errs, fmt.Errorf("--label %s: set by lockscope (use --app for the service name)", name))
		case seen[s] != "":
			errs = append(errs, fmt.Errorf("--label %s and %s: both become %s in Pyroscope", seen[s], name, s))
		default:
			seen[s] = name
		}
	}
	if o.BearerToken != "" && o.BasicAuthUser != "" {
		errs = append(errs, errors.New("pyroscope: give a bearer token or basic auth, not both"))
	}
	if (o.BasicAuthUser == "") != (o.BasicAuthPassword == "") {
		errs = append(errs, errors.New("pyroscope: basic auth needs both a user and a password"))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"timeout", o.Timeout}, {"retry minimum", o.RetryMin}, {"retry maximum", o.RetryMax}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("pyroscope: negative %s %v", d.name, d.v))
		}
	}
	if o.MaxQueue < 0 || o.MaxQueueBytes < 0 || o.MaxAttempts < 0 {
		errs = append(errs, errors.New("pyroscope: negative queue bound or attempts"))
	}
	return errors.Join(errs...)
}

// SanitizeLabelName turns name into one Pyroscope keeps as it is: letters,
// digits and '_' only, not starting with a digit. Pyroscope rejects a push
// whose name has a '-' in a label name and silently drops labels with a
// '.', so both become '_' here, like every other character.
func SanitizeLabelName(name string) string {
	b := []byte(strings.TrimSpace(name))
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			b[i] = '_'
		}
	}
	if len(b) > 0 && b[0] >= '0' && b[0] <= '9' {
		b = append([]byte{'_'}, b...)
	}
	return string(b)
}

// sanitizeLabelValue replaces what would end a value in the ingest name
// (app{k=v,...}): ',' and '}', and '{' for symmetry. The ingest parser
// also trims spaces.
func sanitizeLabelValue(v string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case ',', '{', '}':
			return '_'
		}
		return r
	}, strings.TrimSpace(v))
}

func serviceNameRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-' || r == '/'
}

// IngestName is the uploader's name parameter: app{k=v,...} with sorted,
// sanitized labels. Empty values are left out (Pyroscope drops them).
func IngestName(app string, labels map[string]string) string {
	keys := make([]string, 0, len(labels))
	clean := make(map[string]string, len(labels))
	for k, v := range labels {
		k = SanitizeLabelName(k)
		v = sanitizeLabelValue(v)
		if k == "" || v == "" {
			continue
		}
		if _, dup := clean[k]; !dup {
			keys = append(keys, k)
		}
		clean[k] = v
	}
	slices.Sort(keys)
	var b strings.Builder
	b.WriteString(app)
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(clean[k])
	}
	b.WriteByte('}')
	return b.String()
}
