package jfr

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"strconv"
	"testing"
	"unicode/utf16"

	"github.com/google/go-cmp/cmp"
)

// enc writes JFR encodings for hand-made test recordings that exercise
// what the fixtures do not: fixed-size integers, every string encoding,
// 9-byte varints, 64-bit pool keys, arrays and nested structs.
type enc struct {
	b          []byte
	compressed bool
}

func (w *enc) varint(v uint64) {
	for i := 0; i < 8; i++ {
		if v < 0x80 {
			w.b = append(w.b, byte(v))
			return
		}
		w.b = append(w.b, byte(v)|0x80)
		v >>= 7
	}
	w.b = append(w.b, byte(v))
}

func (w *enc) i32(v int32) {
	if w.compressed {
		w.varint(uint64(uint32(v)))
	} else {
		w.b = binary.BigEndian.AppendUint32(w.b, uint32(v))
	}
}

func (w *enc) i64(v int64) {
	if w.compressed {
		w.varint(uint64(v))
	} else {
		w.b = binary.BigEndian.AppendUint64(w.b, uint64(v))
	}
}

func (w *enc) i16(v int16) {
	if w.compressed {
		w.varint(uint64(uint16(v)))
	} else {
		w.b = binary.BigEndian.AppendUint16(w.b, uint16(v))
	}
}

// str writes s with the given string encoding (strPool: s is the key).
func (w *enc) str(e byte, s string) {
	w.b = append(w.b, e)
	switch e {
	case strPool:
		k, _ := strconv.ParseInt(s, 10, 64)
		w.i64(k)
	case strUTF8:
		w.i32(int32(len(s)))
		w.b = append(w.b, s...)
	case strChars:
		u := utf16.Encode([]rune(s))
		w.i32(int32(len(u)))
		for _, c := range u {
			w.i32(int32(c))
		}
	case strLatin1:
		r := []rune(s)
		w.i32(int32(len(r)))
		for _, c := range r {
			w.b = append(w.b, byte(c))
		}
	}
}

// record wraps a record body with its size (padded to 5 bytes in
// compressed mode, as async-profiler does; 4 bytes otherwise).
func (w *enc) record(body []byte) {
	n := len(body) + 5
	if !w.compressed {
		n = len(body) + 4
		w.b = binary.BigEndian.AppendUint32(w.b, uint32(n))
	} else {
		w.b = append(w.b, byte(n)|0x80, byte(n>>7)|0x80, byte(n>>14)|0x80, byte(n>>21)|0x80, byte(n>>28))
	}
	w.b = append(w.b, body...)
}

type elem struct {
	name  string
	attrs [][2]string
	kids  []elem
}

func class(id int, name, super string, kids ...elem) elem {
	a := [][2]string{{"id", strconv.Itoa(id)}, {"name", name}}
	if super != "" {
		a = append(a, [2]string{"superType", super})
	}
	return elem{name: "class", attrs: a, kids: kids}
}

func field(name string, cls int, extra ...string) elem {
	a := [][2]string{{"name", name}, {"class", strconv.Itoa(cls)}}
	for _, e := range extra {
		switch e {
		case "cp":
			a = append(a, [2]string{"constantPool", "true"})
		case "array":
			a = append(a, [2]string{"dimension", "1"})
		}
	}
	return elem{name: "field", attrs: a}
}

const (
	idLong, idInt, idString, idBool, idShort, idChar, idByte, idFloat, idDouble   = 10, 11, 12, 13, 14, 15, 16, 17, 18
	idThread, idSymbol, idClass, idMethod, idFrameType, idFrame, idStack, idPoint = 20, 21, 22, 23, 24, 25, 26, 27
	idEvent                                                                       = 100
)

// bigThreadKey is a pool key above 2^63, to test unsigned 64-bit keys.
var bigThreadKey uint64 = 1<<63 + 5

func synthMetadata() elem {
	return elem{name: "root", kids: []elem{{name: "metadata", kids: []elem{
		class(idLong, "long", ""), class(idInt, "int", ""), class(idString, "java.lang.String", ""),
		class(idBool, "boolean", ""), class(idShort, "short", ""), class(idChar, "char", ""),
		class(idByte, "byte", ""), class(idFloat, "float", ""), class(idDouble, "double", ""),
		class(idThread, "java.lang.Thread", "", field("osName", idString), field("osThreadId", idLong),
			field("javaName", idString), field("javaThreadId", idLong)),
		class(idSymbol, "jdk.types.Symbol", "", field("string", idString)),
		class(idClass, "java.lang.Class", "", field("name", idSymbol, "cp"), field("modifiers", idInt)),
		class(idMethod, "jdk.types.Method", "", field("type", idClass, "cp"), field("name", idSymbol, "cp"),
			field("descriptor", idSymbol, "cp")),
		class(idFrameType, "jdk.types.FrameType", "", field("description", idString)),
		class(idFrame, "jdk.types.StackFrame", "", field("method", idMethod, "cp"), field("lineNumber", idInt),
			field("bytecodeIndex", idInt), field("type", idFrameType, "cp")),
		class(idStack, "jdk.types.StackTrace", "", field("truncated", idBool), field("frames", idFrame, "array")),
		class(idPoint, "test.Point", "", field("x", idInt), field("y", idShort)),
		class(idEvent, "test.Event", "jdk.jfr.Event",
			elem{name: "annotation", attrs: [][2]string{{"class", "999"}, {"value", "ignored: unknown annotation class"}}},
			field("startTime", idLong), field("duration", idLong), field("eventThread", idThread, "cp"),
			field("stackTrace", idStack, "cp"), field("s", idString), field("p", idPoint), field("pts", idPoint, "array"),
			field("f", idFloat), field("d", idDouble), field("c", idChar), field("by", idByte), field("big", idLong),
			field("ok", idBool), field("names", idString, "array")),
	}}, {name: "region", attrs: [][2]string{{"locale", "en_US"}}}}}
}

// synthEvent is what one synthetic event holds.
type synthEvent struct {
	strEnc byte
	s      string
	big    int64
}

var synthEvents = []synthEvent{
	{strNull, "", 0},
	{strEmpty, "", -1},
	{strPool, "7", math.MinInt64},
	{strUTF8, "héllo ✓", math.MaxInt64},
	{strChars, "日本 𝄞", 1 << 40},
	{strLatin1, "café", -2},
}

// synthChunk builds one chunk: metadata, events, an unknown record, and a
// constant pool at the end.
func synthChunk(compressed bool) []byte {
	w := &enc{compressed: compressed}
	w.b = make([]byte, headerSize)
	// Metadata.
	strs := map[string]int{}
	var order []string
	intern := func(s string) int {
		if i, ok := strs[s]; ok {
			return i
		}
		strs[s] = len(order)
		order = append(order, s)
		return strs[s]
	}
	var walk func(e elem)
	walk = func(e elem) {
		intern(e.name)
		for _, a := range e.attrs {
			intern(a[0])
			intern(a[1])
		}
		for _, k := range e.kids {
			walk(k)
		}
	}
	root := synthMetadata()
	walk(root)
	body := &enc{compressed: compressed}
	body.i64(0) // type
	body.i64(0) // start
	body.i64(0) // duration
	body.i64(1) // metadata id
	body.i32(int32(len(order)))
	for _, s := range order {
		body.str(strUTF8, s)
	}
	var emit func(e elem)
	emit = func(e elem) {
		body.i32(int32(strs[e.name]))
		body.i32(int32(len(e.attrs)))
		for _, a := range e.attrs {
			body.i32(int32(strs[a[0]]))
			body.i32(int32(strs[a[1]]))
		}
		body.i32(int32(len(e.kids)))
		for _, k := range e.kids {
			emit(k)
		}
	}
	emit(root)
	metaOff := len(w.b)
	w.record(body.b)
	// Events.
	for i, se := range synthEvents {
		e := &enc{compressed: compressed}
		e.i64(idEvent)
		e.i64(1_000_000 + int64(i)*1000) // startTime (ticks)
		e.i64(500)                       // duration
		e.i64(int64(bigThreadKey))       // eventThread
		e.i64(int64(1 + i%2))            // stackTrace
		e.str(se.strEnc, se.s)
		e.i32(int32(i)) // p.x
		e.i16(int16(-i))
		e.i32(2) // pts
		e.i32(1)
		e.i16(2)
		e.i32(3)
		e.i16(-4)
		e.b = binary.BigEndian.AppendUint32(e.b, math.Float32bits(1.5))
		e.b = binary.BigEndian.AppendUint64(e.b, math.Float64bits(-2.25))
		e.i16('x')
		e.b = append(e.b, 0xfe) // byte -2
		e.i64(se.big)
		e.b = append(e.b, 1)
		e.i32(1) // names
		e.str(strLatin1, "n")
		w.record(e.b)
		if i == 2 {
			u := &enc{compressed: compressed}
			u.i64(4242) // a type the metadata does not declare
			u.b = append(u.b, 1, 2, 3)
			w.record(u.b)
		}
	}
	// Constant pool.
	cp := &enc{compressed: compressed}
	cp.i64(1)
	cp.i64(0)
	cp.i64(0)
	cp.i64(0) // delta: no earlier checkpoint
	cp.b = append(cp.b, 1)
	cp.i32(7)
	cp.i64(idString)
	cp.i32(1)
	cp.i64(7)
	cp.str(strUTF8, "pooled")
	cp.i64(idThread)
	cp.i32(1)
	cp.i64(int64(bigThreadKey))
	cp.str(strUTF8, "worker-1")
	cp.i64(4321)
	cp.str(strChars, "worker-1")
	cp.i64(17)
	cp.i64(idSymbol)
	cp.i32(3)
	for i, s := range []string{"com/example/Foo", "run", "()V"} {
		cp.i64(int64(i + 1))
		cp.str(strLatin1, s)
	}
	cp.i64(idClass)
	cp.i32(1)
	cp.i64(1 << 40)
	cp.i64(1)
	cp.i32(1)
	cp.i64(idMethod)
	cp.i32(1)
	cp.i64(9)
	cp.i64(1 << 40)
	cp.i64(2)
	cp.i64(3)
	cp.i64(idFrameType)
	cp.i32(1)
	cp.i64(0)
	cp.str(strUTF8, "Interpreted")
	cp.i64(idStack)
	cp.i32(2)
	for k := 1; k <= 2; k++ {
		cp.i64(int64(k))
		cp.b = append(cp.b, byte(k-1)) // truncated
		cp.i32(int32(k))
		for j := 0; j < k; j++ {
			cp.i64(9)
			cp.i32(int32(10 + j))
			cp.i32(int32(j))
			cp.i64(0)
		}
	}
	cpOff := len(w.b)
	w.record(cp.b)
	h := w.b[:headerSize]
	copy(h, "FLR\x00")
	be := binary.BigEndian
	be.PutUint16(h[4:], 2)
	be.PutUint16(h[6:], 0)
	be.PutUint64(h[8:], uint64(len(w.b)))
	be.PutUint64(h[16:], uint64(cpOff))
	be.PutUint64(h[24:], uint64(metaOff))
	be.PutUint64(h[32:], 1_700_000_000_000_000_000)
	be.PutUint64(h[40:], 1e9)
	be.PutUint64(h[48:], 1_000_000)
	be.PutUint64(h[56:], 1e9)
	if compressed {
		be.PutUint32(h[64:], 1)
	}
	return w.b
}

// TestSynthetic reads hand-made chunks in both integer encodings, two
// chunks back to back, as a stream and from memory.
func TestSynthetic(t *testing.T) {
	for _, compressed := range []bool{true, false} {
		t.Run("compressed="+strconv.FormatBool(compressed), func(t *testing.T) {
			one := synthChunk(compressed)
			data := append(append([]byte{}, one...), one...)
			r := NewReader(bytes.NewReader(data))
			chunks := 0
			for {
				c, err := r.NextChunk()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if c.Offset != int64(chunks*len(one)) {
					t.Errorf("chunk offset %d", c.Offset)
				}
				chunks++
				i := 0
				for c.Next() {
					checkSynthEvent(t, c.Event(), i)
					i++
				}
				if c.Err() != nil || i != len(synthEvents) || c.UnknownEvents != 1 {
					t.Errorf("err %v, %d events, %d unknown", c.Err(), i, c.UnknownEvents)
				}
			}
			if chunks != 2 {
				t.Errorf("%d chunks", chunks)
			}
		})
	}
}

func checkSynthEvent(t *testing.T, ev *Event, i int) {
	t.Helper()
	se := synthEvents[i]
	if ev.Type.Name != "test.Event" || ev.StartTicks() != 1_000_000+int64(i)*1000 || ev.Start() != 1_700_000_000_000_000_000+int64(i)*1000 || ev.Duration() != 500 {
		t.Errorf("event %d: %s start %d duration %d", i, ev.Type.Name, ev.Start(), ev.Duration())
	}
	th := ev.Thread()
	if th == nil || th.OSName != "worker-1" || th.OSThreadID != 4321 || th.JavaName != "worker-1" || th.JavaThreadID != 17 || th.ID != bigThreadKey {
		t.Errorf("event %d thread %+v", i, th)
	}
	st := ev.Stack()
	if st == nil || len(st.Frames) != 1+i%2 || st.Truncated != (i%2 == 1) {
		t.Fatalf("event %d stack %+v", i, st)
	}
	for j, f := range st.Frames {
		if f.Method.FullName() != "com.example.Foo.run" || f.Method.Descriptor != "()V" || f.Line != int32(10+j) || f.BCI != int32(j) || f.Type != "Interpreted" {
			t.Errorf("event %d frame %d: %+v %+v", i, j, f, f.Method)
		}
	}
	want := se.s
	if se.strEnc == strPool {
		want = "pooled"
	}
	if s, ok := ev.String("s"); !ok || s != want {
		t.Errorf("event %d: s = %q, want %q", i, s, want)
	}
	if big, ok := ev.Int("big"); !ok || big != se.big {
		t.Errorf("event %d: big = %d, want %d", i, big, se.big)
	}
	vals := ev.Values()
	got := map[string]any{}
	for k, f := range ev.Type.Fields {
		v := vals[k]
		switch v.Kind {
		case KindInt, KindBool:
			got[f.Name] = v.Int
		case KindFloat:
			got[f.Name] = v.Float
		case KindString:
			got[f.Name] = v.Str
		case KindNull:
			got[f.Name] = nil
		case KindStruct:
			got[f.Name] = [2]int64{v.Field("x").Int, v.Field("y").Int}
		case KindArray:
			var a []any
			for _, e := range v.Elems {
				if e.Kind == KindStruct {
					a = append(a, [2]int64{e.Field("x").Int, e.Field("y").Int})
				} else {
					a = append(a, e.Str)
				}
			}
			got[f.Name] = a
		}
	}
	var s any = se.s
	switch se.strEnc {
	case strNull:
		s = nil
	case strPool:
		s = "pooled"
	}
	wantVals := map[string]any{
		"startTime": int64(1_000_000 + i*1000), "duration": int64(500), "eventThread": [2]int64{0, 0},
		"stackTrace": [2]int64{0, 0}, "s": s, "p": [2]int64{int64(i), int64(-i)},
		"pts": []any{[2]int64{1, 2}, [2]int64{3, -4}}, "f": 1.5, "d": -2.25, "c": int64('x'), "by": int64(-2),
		"big": se.big, "ok": int64(1), "names": []any{"n"},
	}
	if diff := cmp.Diff(wantVals, got); diff != "" {
		t.Errorf("event %d values (-want +got):\n%s", i, diff)
	}
	if tv := vals[ev.Type.FieldIndex("eventThread")]; !tv.Ref || tv.Key != bigThreadKey || tv.Field("osThreadId").Int != 4321 {
		t.Errorf("event %d: eventThread value %+v", i, tv)
	}
}

// TestSyntheticBroken cuts and corrupts a synthetic chunk at every byte
// offset: reading must end in an *Error, never panic or hang.
func TestSyntheticBroken(t *testing.T) {
	good := synthChunk(true)
	for n := 0; n < len(good); n++ {
		r := NewReader(bytes.NewReader(good[:n]))
		_, err := readAll(r)
		if n == 0 {
			if err != nil {
				t.Errorf("empty input: %v", err)
			}
			continue
		}
		var e *Error
		if !errors.As(err, &e) || !errors.Is(err, ErrTruncated) {
			t.Fatalf("cut at %d: %v, want an *Error wrapping ErrTruncated", n, err)
		}
	}
	for i := headerSize; i < len(good); i++ {
		bad := append([]byte{}, good...)
		bad[i] ^= 0xff
		readAll(NewReader(bytes.NewReader(bad)))
	}
}

// readAll reads everything a reader gives, generically and through every
// resolver, as the fuzz target does; it returns the number of events.
func readAll(r *Reader) (int, error) {
	n := 0
	for {
		c, err := r.NextChunk()
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		for c.Next() {
			ev := c.Event()
			n++
			ev.Values()
			ev.Base()
			ev.WallClockSample()
			ev.MonitorEnter()
			ev.ThreadPark()
			for _, f := range ev.Type.Fields {
				ev.String(f.Name)
				ev.Class(f.Name)
				ev.Nanos(f.Name)
			}
		}
		if err := c.Err(); err != nil {
			return n, err
		}
	}
}
