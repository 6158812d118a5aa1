package profiler

import (
	"bytes"
	_ "embed"
	"encoding/xml"
	"fmt"
	"strings"
	"time"
)

// Settings is lockscope's Flight Recorder configuration with its default
// values, as shipped; settings renders it with a capture's options.
//
//go:embed lockscope.jfc
var Settings []byte

// jfc mirrors the .jfc format as far as lockscope edits it.
type jfc struct {
	XMLName     xml.Name   `xml:"configuration"`
	Version     string     `xml:"version,attr"`
	Label       string     `xml:"label,attr"`
	Description string     `xml:"description,attr,omitempty"`
	Provider    string     `xml:"provider,attr,omitempty"`
	Events      []jfcEvent `xml:"event"`
}

type jfcEvent struct {
	Name     string       `xml:"name,attr"`
	Settings []jfcSetting `xml:"setting"`
}

type jfcSetting struct {
	Name  string `xml:"name,attr"`
	Value string `xml:",chardata"`
}

// settings returns the .jfc for o: sampling periods from Wall and CPU, the
// lock threshold from Lock, the I/O threshold from IO; events whose option
// is off are disabled.
func settings(o Options) ([]byte, error) {
	var c jfc
	if err := xml.Unmarshal(Settings, &c); err != nil {
		return nil, fmt.Errorf("reading lockscope.jfc: %w", err)
	}
	sample := o.CPU
	if sample == 0 {
		sample = o.Wall
	}
	// value, and whether zero means off (else zero records every event).
	type rule struct {
		d        time.Duration
		zeroOffs bool
	}
	slow := max(o.IO, o.Lock)
	rules := map[string]rule{
		"jdk.ExecutionSample/period":       {sample, true},
		"jdk.NativeMethodSample/period":    {o.Wall, true},
		"jdk.JavaMonitorEnter/threshold":   {o.Lock, true},
		"jdk.ThreadPark/threshold":         {o.Lock, true},
		"jdk.FileWrite/threshold":          {o.IO, false},
		"jdk.FileRead/threshold":           {o.IO, false},
		"jdk.SocketWrite/threshold":        {o.IO, false},
		"jdk.SocketRead/threshold":         {o.IO, false},
		"jdk.JavaMonitorWait/threshold":    {slow, false},
		"jdk.ThreadSleep/threshold":        {slow, false},
		"jdk.ExecuteVMOperation/threshold": {slow, false},
	}
	for i := range c.Events {
		e := &c.Events[i]
		for j := range e.Settings {
			r, ok := rules[e.Name+"/"+e.Settings[j].Name]
			if !ok {
				continue
			}
			e.Settings[j].Value = jfrUnits(r.d)
			if r.d == 0 && r.zeroOffs {
				e.setting("enabled", "false")
			}
		}
	}
	var b bytes.Buffer
	b.WriteString(xml.Header)
	b.WriteString("<!-- written by lockscope from its lockscope.jfc for one capture -->\n")
	enc := xml.NewEncoder(&b)
	enc.Indent("", "  ")
	if err := enc.Encode(c); err != nil {
		return nil, fmt.Errorf("writing settings: %w", err)
	}
	b.WriteByte('\n')
	return b.Bytes(), nil
}

func (e *jfcEvent) setting(name, value string) {
	for i := range e.Settings {
		if e.Settings[i].Name == name {
			e.Settings[i].Value = value
			return
		}
	}
	e.Settings = append(e.Settings, jfcSetting{Name: name, Value: value})
}

// jfrUnits formats d as a JFR timespan ("10 ms", "20 us", "0 ns").
func jfrUnits(d time.Duration) string {
	if d == 0 {
		return "0 ms"
	}
	u := units(d)
	i := strings.IndexFunc(u, func(r rune) bool { return r < '0' || r > '9' })
	return u[:i] + " " + u[i:]
}
