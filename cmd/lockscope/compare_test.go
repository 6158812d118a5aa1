package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lockscope/lockscope/internal/latency"
)

// writeRequests writes n produce requests of 1..n ms to a requests.jsonl.
func writeRequests(t *testing.T, n int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "requests.jsonl")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := latency.NewJSONLWriter(f)
	for i := 1; i <= n; i++ {
		d := time.Duration(i) * time.Millisecond
		end := int64(1_700_000_000_000_000_000) + int64(i)*int64(10*time.Millisecond)
		w.Write(&latency.Request{APIKey: latency.APIProduce, RequestEnd: end - int64(d), ResponseEnd: end, Wire: d, Service: d, Status: latency.Answered})
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return path
}

func TestCompareCommand(t *testing.T) {
	a, b := writeRequests(t, 1000), writeRequests(t, 100)
	run := func(args ...string) (string, error) {
		root := newRootCmd()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&bytes.Buffer{})
		root.SetArgs(append([]string{"compare"}, args...))
		err := root.Execute()
		return out.String(), err
	}
	out, err := run("--slo", "65ms", a, b)
	if err != nil {
		t.Fatal(err)
	}
	// 1..1000ms: 935 over 65ms; 1..100ms: 35.
	for _, want := range []string{"935", "93.50%", "35.00%", "999ms", "1s"} {
		if !strings.Contains(out, want) {
			t.Errorf("compare output lacks %q:\n%s", want, out)
		}
	}
	out, err = run("--slo", "65ms", "--format", "json", a)
	if err != nil {
		t.Fatal(err)
	}
	var js struct {
		Columns []struct {
			Stats struct {
				OverSLO int `json:"over_slo"`
			} `json:"stats"`
		} `json:"columns"`
	}
	if err := json.Unmarshal([]byte(out), &js); err != nil || len(js.Columns) != 1 || js.Columns[0].Stats.OverSLO != 935 {
		t.Errorf("json: %v %+v", err, js)
	}
	page := filepath.Join(t.TempDir(), "cmp.html")
	maps := filepath.Join(t.TempDir(), "maps")
	if _, err := run("--slo", "65ms", "--format", "html", "-o", page, "--heatmaps", maps, a, b); err != nil {
		t.Fatal(err)
	}
	// Both inputs are named requests.jsonl, so their paths name them.
	for _, pat := range []string{"01-*requests.jsonl.svg", "01-*requests.jsonl.png", "02-*requests.jsonl.svg", "02-*requests.jsonl.png"} {
		m, _ := filepath.Glob(filepath.Join(maps, pat))
		if len(m) != 1 {
			t.Errorf("heat map files %s: %v", pat, m)
			continue
		}
		if st, err := os.Stat(m[0]); err != nil || st.Size() < 1000 {
			t.Errorf("heat map file %s: %v", m[0], err)
		}
	}
	if b, err := os.ReadFile(page); err != nil || !strings.Contains(string(b), "<svg") {
		t.Errorf("html page: %v", err)
	}

	for _, bad := range [][]string{
		{a},                                     // no SLO anywhere
		{"--slo", "65ms", "--format", "xml", a}, // unknown format
		{"--slo", "65ms", "--latency-kind", "fast", a},
		{"--slo", "-1s", a},
		{"--slo", "65ms", filepath.Join(t.TempDir(), "missing")},
		{"--slo", "65ms", t.TempDir()}, // a directory that is not a bundle
	} {
		if _, err := run(bad...); err == nil {
			t.Errorf("compare %v: want an error", bad)
		} else if strings.Contains(fmt.Sprint(err), "panic") {
			t.Errorf("compare %v: %v", bad, err)
		}
	}
}
