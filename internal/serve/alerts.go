package serve

import (
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Webhook is Alertmanager's webhook payload, version 4 (the only version
// Alertmanager has sent since 0.9).
type Webhook struct {
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   int               `json:"truncatedAlerts"`
	Status            string            `json:"status"`
	Receiver          string            `json:"receiver"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Alerts            []Alert           `json:"alerts"`
}

// Alert is one alert of a webhook payload.
type Alert struct {
	Status       string            `json:"status"` // "firing" or "resolved"
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// matcher is one label matcher, with Alertmanager's semantics: a missing
// label is the empty string, and regexes match the whole value.
type matcher struct {
	name, value string
	re          *regexp.Regexp
	negate      bool
}

func parseMatchers(ss []string) ([]matcher, error) {
	var ms []matcher
	for _, s := range ss {
		m, err := parseMatcher(s)
		if err != nil {
			return nil, err
		}
		ms = append(ms, m)
	}
	return ms, nil
}

func parseMatcher(s string) (matcher, error) {
	// The operator is the first of =~, !~, !=, = after the label name.
	i := strings.IndexAny(s, "=!")
	if i <= 0 {
		return matcher{}, fmt.Errorf("matcher %q: want label=value, label!=value, label=~regex or label!~regex", s)
	}
	m := matcher{name: strings.TrimSpace(s[:i])}
	rest := s[i:]
	var op string
	for _, o := range []string{"=~", "!~", "!=", "="} {
		if strings.HasPrefix(rest, o) {
			op = o
			break
		}
	}
	if op == "" {
		return matcher{}, fmt.Errorf("matcher %q: unknown operator", s)
	}
	m.value = strings.Trim(strings.TrimSpace(rest[len(op):]), `"`)
	m.negate = op[0] == '!'
	if strings.HasSuffix(op, "~") {
		re, err := regexp.Compile("^(?:" + m.value + ")$")
		if err != nil {
			return matcher{}, fmt.Errorf("matcher %q: %w", s, err)
		}
		m.re = re
	}
	return m, nil
}

func (m matcher) matches(labels map[string]string) bool {
	v := labels[m.name]
	ok := v == m.value
	if m.re != nil {
		ok = m.re.MatchString(v)
	}
	return ok != m.negate
}

func matchAll(ms []matcher, labels map[string]string) bool {
	for _, m := range ms {
		if !m.matches(labels) {
			return false
		}
	}
	return true
}

// firing returns the payload's firing alerts that match ms, in order.
func (w *Webhook) firing(ms []matcher) []Alert {
	var out []Alert
	for _, a := range w.Alerts {
		if a.Status == "firing" && matchAll(ms, a.Labels) {
			out = append(out, a)
		}
	}
	return out
}
