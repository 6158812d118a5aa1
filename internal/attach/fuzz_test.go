package attach

import "testing"

// The parsers read what a JVM (or an impostor) sends: any input gives a
// result or an error, never a panic.

func FuzzParseResponse(f *testing.F) {
	for _, s := range []string{"0\n", "0\nreturn code: 100\n", "-1\nerr\n", "0\n-5\n", "", "x\n", "0\nreturn code: \n"} {
		f.Add("load", s)
		f.Add("jcmd", s)
	}
	f.Fuzz(func(t *testing.T, op, resp string) {
		parseResponse(op, []string{"a"}, []byte(resp))
	})
}

func FuzzParseThreads(f *testing.F) {
	f.Add("\"main\" #1 prio=5 nid=0x4d2 runnable\n   java.lang.Thread.State: RUNNABLE\n")
	f.Add("\"\" nid=\n\"x\"  nid=12 a [b]\n")
	f.Fuzz(func(t *testing.T, dump string) {
		parseThreads(dump)
		parseFlags(dump)
		parseVersion(dump)
	})
}

func FuzzParseStatus(f *testing.F) {
	f.Add("Uid:\t1\t2\t3\t4\nGid:\t1\t2\t3\t4\nNStgid:\t5\t1\nSigCgt:\tffff\n")
	f.Fuzz(func(t *testing.T, status string) {
		parseStatus([]byte(status), 1)
		attachDisabled([]byte(status), []byte(status))
	})
}
