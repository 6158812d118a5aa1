package attach

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

func TestParseStatus(t *testing.T) {
	const status = "Name:\tjava\nTgid:\t4242\nPid:\t4242\nUid:\t1001\t1002\t1002\t1002\nGid:\t2001\t2002\t2002\t2002\n" +
		"NStgid:\t4242\t17\t1\nNSpid:\t4242\t17\t1\nSigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\nSigCgt:\t2000000181005ccf\n"
	got, err := parseStatus([]byte(status), 4242)
	if err != nil {
		t.Fatal(err)
	}
	want := procInfo{uid: 1002, gid: 2002, nspid: 1, sigQuitCgt: true}
	if got != want {
		t.Errorf("parseStatus = %+v, want %+v", got, want)
	}
	// Old kernels: no NStgid; -Xrs: SIGQUIT (bit 2) not caught.
	old := strings.Replace(strings.Replace(status, "NStgid:\t4242\t17\t1\n", "", 1), "5ccf", "5ccb", 1)
	got, err = parseStatus([]byte(old), 4242)
	if err != nil {
		t.Fatal(err)
	}
	if got.nspid != 4242 || got.sigQuitCgt {
		t.Errorf("old kernel, -Xrs: got %+v, want nspid 4242 and SIGQUIT not caught", got)
	}
	if _, err := parseStatus([]byte("Name:\tjava\n"), 1); err == nil {
		t.Error("status without Uid: want an error")
	}
	if _, err := parseStatus([]byte("Uid:\t1\nGid:\tx y\n"), 1); err == nil {
		t.Error("malformed Gid: want an error")
	}
}

func TestAttachDisabled(t *testing.T) {
	env := func(kv ...string) []byte { return []byte(strings.Join(kv, "\x00")) }
	args := func(a ...string) []byte { return []byte(strings.Join(a, "\x00")) }
	tests := []struct {
		name         string
		cmdline, env []byte
		want         bool
	}{
		{"plain", args("java", "-cp", ".", "Main"), env("PATH=/bin"), false},
		{"command line", args("java", "-XX:+DisableAttachMechanism", "Main"), nil, true},
		{"tool options", args("java", "Main"), env("JAVA_TOOL_OPTIONS=-Xmx1g -XX:+DisableAttachMechanism"), true},
		{"command line overrides tool options", args("java", "-XX:-DisableAttachMechanism", "Main"), env("JAVA_TOOL_OPTIONS=-XX:+DisableAttachMechanism"), false},
		{"_JAVA_OPTIONS override the command line", args("java", "-XX:-DisableAttachMechanism"), env("_JAVA_OPTIONS=-XX:+DisableAttachMechanism"), true},
		{"program argument is not an option", args("java", "Main", "--XX:+DisableAttachMechanism"), nil, false},
	}
	for _, tt := range tests {
		if got := attachDisabled(tt.cmdline, tt.env); got != tt.want {
			t.Errorf("%s: attachDisabled = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestEncodeRequest(t *testing.T) {
	got, err := encodeRequest("jcmd", []string{"JFR.check"})
	if err != nil {
		t.Fatal(err)
	}
	if want := "1\x00jcmd\x00JFR.check\x00\x00\x00"; string(got) != want {
		t.Errorf("encodeRequest = %q, want %q", got, want)
	}
	for _, bad := range [][]string{{"a", "b", "c", "d"}, {strings.Repeat("x", 1025)}, {"a\x00b"}} {
		if _, err := encodeRequest("load", bad); err == nil {
			t.Errorf("encodeRequest(load, %.20q): want an error", bad)
		}
	}
	if _, err := encodeRequest("", nil); err == nil {
		t.Error("empty operation: want an error")
	}
}

func TestParseResponse(t *testing.T) {
	tests := []struct {
		name, op, resp string
		wantOut        string
		wantCode       int // 0: no error
		wantErr        bool
	}{
		{"jcmd ok", "jcmd", "0\nOpenJDK 64-Bit Server VM version 17\n", "OpenJDK 64-Bit Server VM version 17\n", 0, false},
		{"jcmd refused", "jcmd", "-1\njava.lang.IllegalArgumentException: Unknown diagnostic command\n", "", -1, true},
		{"jdk8 load ok", "load", "0\n0\n", "", 0, false},
		{"jdk8 load agent failed", "load", "0\n100\n", "", 100, true},
		{"jdk9 load ok", "load", "0\nreturn code: 0\n", "", 0, false},
		{"jdk9 load agent failed", "load", "0\nreturn code: 200\n", "", 200, true},
		{"jdk21 load ok", "load", "0\n", "", 0, false},
		{"jdk21 load failed", "load", "0\nFailed to load agent library\n", "", -1, true},
		{"load not found", "load", "-1\nlib.so was not loaded.\n", "", -1, true},
		{"empty", "jcmd", "", "", 0, true},
		{"garbage", "jcmd", "HTTP/1.1 400\n", "", 0, true},
	}
	for _, tt := range tests {
		out, err := parseResponse(tt.op, []string{"x"}, []byte(tt.resp))
		var ce *CommandError
		switch {
		case !tt.wantErr && err != nil:
			t.Errorf("%s: unexpected error %v", tt.name, err)
		case tt.wantErr && err == nil:
			t.Errorf("%s: want an error, got output %q", tt.name, out)
		case tt.wantCode != 0 && (!errors.As(err, &ce) || ce.Code != tt.wantCode):
			t.Errorf("%s: got %v, want a CommandError with code %d", tt.name, err, tt.wantCode)
		case !tt.wantErr && out != tt.wantOut:
			t.Errorf("%s: output %q, want %q", tt.name, out, tt.wantOut)
		}
	}
}

func TestParseVersion(t *testing.T) {
	for _, tt := range []struct {
		out     string
		feature int
	}{
		{"OpenJDK 64-Bit Server VM version 17.0.15+6-Debian-1deb12u1\nJDK 17.0.15\n", 17},
		{"OpenJDK 64-Bit Server VM version 21.0.2+13-58\nJDK 21.0.2\n", 21},
		{"OpenJDK 64-Bit Server VM version 25.402-b06\nJDK 8.0_402\n", 8},
		{"Java HotSpot(TM) 64-Bit Server VM version 25.402-b06\n", 8},
		{"OpenJDK 64-Bit Server VM version 11.0.22+7\nJDK 11.0.22\n", 11},
	} {
		if got := parseVersion(tt.out).Feature; got != tt.feature {
			t.Errorf("parseVersion(%q).Feature = %d, want %d", tt.out, got, tt.feature)
		}
	}
}

func TestParseFlags(t *testing.T) {
	const out = "[Global flags]\n" +
		"     bool PreserveFramePointer                     = false                                     {pd product} {default}\n" +
		"    ccstr OnError                                  =                                           {product} {default}\n" +
		"   size_t MaxHeapSize                              = 67108864                                  {product} {command line}\n" +
		"     bool DebugNonSafepoints                      := true                                {diagnostic}\n"
	got := parseFlags(out)
	want := map[string]Flag{
		"PreserveFramePointer": {Type: "bool", Value: "false", Origin: "default"},
		"OnError":              {Type: "ccstr", Value: "", Origin: "default"},
		"MaxHeapSize":          {Type: "size_t", Value: "67108864", Origin: "command line"},
		"DebugNonSafepoints":   {Type: "bool", Value: "true", Origin: "set"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("parseFlags (-want +got):\n%s", diff)
	}
}

func TestParseThreads(t *testing.T) {
	const jdk17 = `Full thread dump OpenJDK 64-Bit Server VM (17.0.15+6-Debian-1deb12u1 mixed mode, sharing):

"main" #1 prio=5 os_prio=0 cpu=61.41ms elapsed=1.02s tid=0x00007f8e68024800 nid=0x4d2 runnable  [0x00007f8e6f1fe000]
   java.lang.Thread.State: RUNNABLE
	at java.io.FileInputStream.readBytes(java.base@17.0.15/Native Method)

"request-handler-0 #1" #15 daemon prio=5 os_prio=0 cpu=3.10ms elapsed=0.90s tid=0x00007f8e681c1000 nid=0x4e0 waiting for monitor entry  [0x00007f8e4c5fe000]
   java.lang.Thread.State: BLOCKED (on object monitor)

"VM Thread" os_prio=0 cpu=2.21ms elapsed=1.01s tid=0x00007f8e680c0000 nid=0x4d8 runnable  
`
	const jdk21 = `"main" #1 [77] prio=5 os_prio=0 cpu=50.00ms elapsed=1.00s tid=0x00007f0000001000 nid=77 runnable  [0x00007f0000002000]
   java.lang.Thread.State: RUNNABLE
`
	want := []Thread{
		{Name: "main", JavaID: 1, NID: 0x4d2, State: "RUNNABLE"},
		{Name: "request-handler-0 #1", JavaID: 15, Daemon: true, NID: 0x4e0, State: "BLOCKED (on object monitor)"},
		{Name: "VM Thread", NID: 0x4d8, State: "runnable"},
		{Name: "main", JavaID: 1, NID: 77, State: "RUNNABLE"},
	}
	got := append(parseThreads(jdk17), parseThreads(jdk21)...)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("parseThreads (-want +got):\n%s", diff)
	}
}

// TestAsUser checks that only the calling thread changes credentials: the
// rest of lockscope (an eBPF collector, say) stays root meanwhile.
func TestAsUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("not root: cannot change credentials")
	}
	err := asUser(65534, 65534, func() error {
		if e := unix.Geteuid(); e != 65534 {
			t.Errorf("inside: thread euid %d, want 65534", e)
		}
		if g := unix.Getegid(); g != 65534 {
			t.Errorf("inside: thread egid %d, want 65534", g)
		}
		// Every other thread of lockscope keeps root's credentials.
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return err
		}
		for _, task := range tasks {
			b, err := os.ReadFile("/proc/self/task/" + task.Name() + "/status")
			if err != nil {
				continue
			}
			info, err := parseStatus(b, 0)
			if err != nil {
				return err
			}
			if self := task.Name() == strconv.Itoa(unix.Gettid()); self != (info.uid == 65534) {
				t.Errorf("inside: thread %s (self %v) has euid %d", task.Name(), self, info.uid)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if unix.Geteuid() != 0 || unix.Getegid() != 0 {
		t.Errorf("after: euid %d egid %d, want 0", unix.Geteuid(), unix.Getegid())
	}
}
