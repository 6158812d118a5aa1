package doctor

import (
	"path/filepath"
	"strings"
	"testing"
)

// FuzzBrokerLogDirs: any command line and configuration file give log
// dirs that are absolute, or an error; never a panic.
func FuzzBrokerLogDirs(f *testing.F) {
	f.Add("java\x00-cp\x00x\x00kafka.Kafka\x00server.properties\x00--override\x00log.dirs=/a,b", "log.dirs=/x\nlog.dir=/y\n")
	f.Add("java\x00kafka.Kafka\x00--log-dir\x00", "")
	f.Add("java\x00kafka.Kafka\x00--override", "log.dirs=\\\n")
	f.Add("java\x00kafka.Kafka\x00p\x00--override=log.dir", "a=${b}\n\\u12")
	f.Fuzz(func(t *testing.T, cmdline, props string) {
		dirs, err := brokerLogDirs(strings.Split(cmdline, "\x00"), "/cwd", func(string) ([]byte, error) { return []byte(props), nil })
		if err != nil {
			return
		}
		if dirs.Source == "" {
			t.Errorf("log dirs %v without a source", dirs.Dirs)
		}
		for _, d := range dirs.Dirs {
			if !filepath.IsAbs(d) {
				t.Errorf("relative log dir %q from %q", d, cmdline)
			}
		}
	})
}

// FuzzKernelFiles: the parsers of superblocks, jbd2 and fast-commit
// statistics and xfs_info never panic.
func FuzzKernelFiles(f *testing.F) {
	sb := make([]byte, 1024)
	sb[offMagic], sb[offMagic+1] = 0x53, 0xEF
	f.Add(sb)
	f.Add([]byte("1 transactions (1 requested), each up to 1365 blocks\n  1883us average transaction commit time\n"))
	f.Add([]byte("fc stats:\n12 commits\n3 ineligible\n"))
	f.Add([]byte("log      =internal log           bsize=4096   blocks=16384, version=2\n"))
	f.Add([]byte("log      =internal log           bsize=99999999999   blocks=99999999999, version=2\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		parseExt4Super(b)
		parseJBD2Info(b)
		parseFCInfo(b)
		if l, err := parseXFSInfo(b); err == nil && l.Bytes < 0 {
			t.Errorf("negative log size %d", l.Bytes)
		}
		procOptions(b)
		parseSize(string(b))
	})
}
