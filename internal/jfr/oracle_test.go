package jfr

import (
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestOracleJDK records a fresh JFR file from a real JVM (testdata/
// Contended.java with testdata/oracle.jfc: a monitor, a ReentrantLock,
// sleeps, a custom event with every field kind) and compares everything
// this package reads with what the JDK's own `jfr print --json` prints:
// per-type counts, and for every event its start time, duration, thread
// (ids and names), every stack frame (class, method, line, bytecode index,
// type), and for the custom event every field.
func TestOracleJDK(t *testing.T) {
	java, jfrTool := lookTool(t, "java"), lookTool(t, "jfr")
	dir := t.TempDir()
	rec := filepath.Join(dir, "oracle.jfr")
	jfc, _ := filepath.Abs("testdata/oracle.jfc")
	src, _ := filepath.Abs("testdata/Contended.java")
	cmd := exec.Command(java, "-XX:StartFlightRecording=filename="+rec+",settings="+jfc, src, "1500")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("running the contended JVM: %v\n%s", err, out)
	}
	out, err := exec.Command(jfrTool, "print", "--json", "--stack-depth", "4096", rec).Output()
	if err != nil {
		t.Fatalf("jfr print --json: %v", err)
	}
	var doc struct {
		Recording struct {
			Events []jsonEvent `json:"events"`
		} `json:"recording"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatalf("parsing jfr print --json: %v", err)
	}
	wantCounts := map[string]int{}
	byKey := map[string][]jsonEvent{}
	for _, e := range doc.Recording.Events {
		wantCounts[e.Type]++
		k := e.key(t)
		byKey[k] = append(byKey[k], e)
	}
	for _, ty := range []string{"jdk.JavaMonitorEnter", "jdk.ThreadPark", "jdk.ThreadSleep", "jdk.ExecutionSample", "lockscope.test.Work"} {
		if wantCounts[ty] == 0 {
			t.Errorf("the JVM recorded no %s: the oracle test would prove nothing", ty)
		}
	}

	r, err := Open(rec)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	gotCounts := map[string]int{}
	compared := 0
	for {
		c, err := r.NextChunk()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if c.Producer != ProducerJDK {
			t.Errorf("producer: got %v, want JDK", c.Producer)
		}
		for c.Next() {
			ev := c.Event()
			gotCounts[ev.Type.Name]++
			k := ourKey(ev)
			cands := byKey[k]
			if len(cands) == 0 {
				t.Errorf("%s event at %d (key %s) not printed by the JDK", ev.Type.Name, ev.Offset(), k)
				continue
			}
			// Several events can share a key; take the one whose stack
			// matches, if any.
			best, bestDiff := 0, ""
			for i, je := range cands {
				d := compareEvent(t, ev, je)
				if d == "" {
					best, bestDiff = i, ""
					break
				}
				if i == 0 {
					bestDiff = d
				}
			}
			if bestDiff != "" {
				t.Errorf("%s event at %d differs from jfr print (-jdk +ours):\n%s", ev.Type.Name, ev.Offset(), bestDiff)
			}
			byKey[k] = append(cands[:best], cands[best+1:]...)
			compared++
		}
		if err := c.Err(); err != nil {
			t.Fatal(err)
		}
	}
	if diff := cmp.Diff(wantCounts, gotCounts); diff != "" {
		t.Errorf("per-type counts (-jdk +ours):\n%s", diff)
	}
	t.Logf("compared %d events of %d types with jfr print --json", compared, len(gotCounts))
}

func lookTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found (%v): install a JDK (scripts/setup.sh installs openjdk-17)", name, err)
	}
	return p
}

type jsonEvent struct {
	Type   string                     `json:"type"`
	Values map[string]json.RawMessage `json:"values"`
}

type jsonThread struct {
	OSName       *string `json:"osName"`
	OSThreadID   int64   `json:"osThreadId"`
	JavaName     *string `json:"javaName"`
	JavaThreadID int64   `json:"javaThreadId"`
}

type jsonFrame struct {
	Method *struct {
		Type *struct {
			Name string `json:"name"`
		} `json:"type"`
		Name       string `json:"name"`
		Descriptor string `json:"descriptor"`
	} `json:"method"`
	LineNumber    int32  `json:"lineNumber"`
	BytecodeIndex int32  `json:"bytecodeIndex"`
	Type          string `json:"type"`
}

type jsonStack struct {
	Truncated bool        `json:"truncated"`
	Frames    []jsonFrame `json:"frames"`
}

func (e jsonEvent) threadField() json.RawMessage {
	if v, ok := e.Values["eventThread"]; ok {
		return v
	}
	return e.Values["sampledThread"]
}

// key identifies an event by type, start, duration and thread.
func (e jsonEvent) key(t *testing.T) string {
	start := int64(0)
	if raw, ok := e.Values["startTime"]; ok {
		var s string
		json.Unmarshal(raw, &s)
		ts, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatalf("startTime %q: %v", s, err)
		}
		start = ts.UnixNano()
	}
	dur := int64(0)
	if raw, ok := e.Values["duration"]; ok {
		var s string
		json.Unmarshal(raw, &s)
		dur = parseISODuration(t, s)
	}
	var th jsonThread
	if raw := e.threadField(); raw != nil {
		json.Unmarshal(raw, &th)
	}
	return fmt.Sprintf("%s|%d|%d|%d", e.Type, start, dur, th.OSThreadID)
}

func ourKey(ev *Event) string {
	start := int64(0)
	if ev.Type.common.start >= 0 {
		start = ev.Start()
	}
	var tid int64
	if th := ev.Thread(); th != nil {
		tid = th.OSThreadID
	}
	return fmt.Sprintf("%s|%d|%d|%d", ev.Type.Name, start, ev.Duration(), tid)
}

var isoDur = regexp.MustCompile(`^(-)?PT(?:(\d+)H)?(?:(\d+)M)?(?:(-?\d+)(?:\.(\d+))?S)?$`)

// parseISODuration parses java.time.Duration.toString output.
func parseISODuration(t *testing.T, s string) int64 {
	m := isoDur.FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("duration %q", s)
	}
	n := func(x string) int64 { v, _ := strconv.ParseInt(x, 10, 64); return v }
	ns := n(m[2])*3600e9 + n(m[3])*60e9 + n(m[4])*1e9
	if m[5] != "" {
		frac := (m[5] + "000000000")[:9]
		f := n(frac)
		if strings.HasPrefix(m[4], "-") {
			f = -f
		}
		ns += f
	}
	if m[1] != "" {
		ns = -ns
	}
	return ns
}

// compareEvent returns a diff of thread, stack and (for the custom event)
// field values, or "".
func compareEvent(t *testing.T, ev *Event, je jsonEvent) string {
	var diffs []string
	if raw := je.threadField(); raw != nil && string(raw) != "null" {
		var th jsonThread
		json.Unmarshal(raw, &th)
		want := fmt.Sprintf("os %d %q java %d %q", th.OSThreadID, deref(th.OSName), th.JavaThreadID, deref(th.JavaName))
		got := "<nil>"
		if g := ev.Thread(); g != nil {
			got = fmt.Sprintf("os %d %q java %d %q", g.OSThreadID, g.OSName, g.JavaThreadID, g.JavaName)
		}
		if want != got {
			diffs = append(diffs, cmp.Diff(want, got))
		}
	}
	if raw, ok := je.Values["stackTrace"]; ok && string(raw) != "null" {
		var js jsonStack
		json.Unmarshal(raw, &js)
		want := []string{fmt.Sprint("truncated ", js.Truncated)}
		for _, f := range js.Frames {
			cls, name := "", ""
			if f.Method != nil {
				name = f.Method.Name + f.Method.Descriptor
				if f.Method.Type != nil {
					cls = strings.ReplaceAll(f.Method.Type.Name, "/", ".")
				}
			}
			want = append(want, fmt.Sprintf("%s.%s:%d@%d %s", cls, name, f.LineNumber, f.BytecodeIndex, f.Type))
		}
		var got []string
		if st := ev.Stack(); st != nil {
			got = append(got, fmt.Sprint("truncated ", st.Truncated))
			for _, f := range st.Frames {
				cls, name := "", ""
				if f.Method != nil {
					name = f.Method.Name + f.Method.Descriptor
					if f.Method.Class != nil {
						cls = f.Method.Class.Name
					}
				}
				got = append(got, fmt.Sprintf("%s.%s:%d@%d %s", cls, name, f.Line, f.BCI, f.Type))
			}
		}
		if d := cmp.Diff(want, got); d != "" {
			diffs = append(diffs, d)
		}
	}
	if ev.Type.Name == "lockscope.test.Work" {
		want := map[string]string{}
		for k, raw := range je.Values {
			switch k {
			case "startTime", "duration", "eventThread", "stackTrace":
				continue
			case "worker":
				var th jsonThread
				json.Unmarshal(raw, &th)
				want[k] = fmt.Sprint(th.OSThreadID)
			case "cls":
				var c struct{ Name string }
				json.Unmarshal(raw, &c)
				want[k] = c.Name
			default:
				var x any
				json.Unmarshal(raw, &x)
				if f, ok := x.(float64); ok {
					if i := ev.Type.FieldIndex(k); i >= 0 && ev.Type.Fields[i].Type.Name == "float" {
						f = float64(float32(f))
					}
					want[k] = strconv.FormatFloat(f, 'g', -1, 64)
				} else {
					want[k] = fmt.Sprint(x)
				}
			}
		}
		got := map[string]string{}
		vals := ev.Values()
		for i, f := range ev.Type.Fields {
			v := vals[i]
			switch f.Name {
			case "startTime", "duration", "eventThread", "stackTrace":
				continue
			case "worker":
				got[f.Name] = fmt.Sprint(v.Field("osThreadId").Int)
			case "cls":
				got[f.Name] = v.Field("name").Field("string").Str
			default:
				got[f.Name] = jsonish(v)
			}
		}
		if d := cmp.Diff(want, got); d != "" {
			diffs = append(diffs, d)
		}
	}
	return strings.Join(diffs, "\n")
}

// jsonish formats a primitive Value as the test formats the JSON one.
func jsonish(v Value) string {
	switch v.Kind {
	case KindNull:
		return "<nil>"
	case KindBool:
		return strconv.FormatBool(v.Int != 0)
	case KindInt:
		if v.Type.Name == "char" {
			return string(rune(v.Int))
		}
		return strconv.FormatFloat(float64(v.Int), 'g', -1, 64)
	case KindFloat:
		return strconv.FormatFloat(v.Float, 'g', -1, 64)
	case KindString:
		return v.Str
	}
	return fmt.Sprint(v)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
