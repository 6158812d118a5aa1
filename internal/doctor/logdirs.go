package doctor

import (
	"strings"

	"github.com/lockscope/lockscope/internal/kafkaconf"
)

// kafkaDefaultLogDir is Kafka's default log.dir, used when neither log.dirs
// nor log.dir is set.
const kafkaDefaultLogDir = "/tmp/kafka-logs"

// demoDefaultLogDir is the demo broker's default --log-dir
// (scripts/demobroker/src/kafka/server/KafkaConfig.java).
const demoDefaultLogDir = "/tmp/lockscope-demo-logs"

// LogDirs is where a broker keeps its partitions, and how that was learnt.
type LogDirs struct {
	Dirs []string
	// Source says where Dirs came from, e.g. "log.dirs in
	// /etc/kafka/server.properties".
	Source string
}

// brokerLogDirs reads the log directories from a kafka.Kafka command line.
// Relative paths are resolved against cwd, the JVM's working directory;
// readFile reads a file as the JVM sees it (through /proc/PID/root).
//
// Kafka's command line is `kafka.Kafka server.properties [--override k=v]...`,
// the overrides winning over the file, log.dirs over log.dir. The demo
// broker takes `--log-dir=DIR` (or `--log-dir DIR`) and no file.
func brokerLogDirs(args []string, cwd string, readFile func(string) ([]byte, error)) (LogDirs, error) {
	c, err := kafkaconf.Read(args, cwd, readFile)
	if err != nil {
		return LogDirs{}, err
	}
	split := func(v string) []string {
		var dirs []string
		for _, d := range strings.Split(v, ",") {
			if d = strings.TrimSpace(d); d != "" {
				dirs = append(dirs, c.Abs(cwd, d))
			}
		}
		return dirs
	}
	for _, key := range []string{"log.dirs", "log.dir"} {
		if v, from, ok := c.Get(key); ok {
			return LogDirs{split(v), from}, nil
		}
	}
	if c.File != "" {
		return LogDirs{[]string{kafkaDefaultLogDir}, "Kafka's default log.dir (" + c.File + " sets neither log.dirs nor log.dir)"}, nil
	}
	if v := c.Flags["log-dir"]; v != "" {
		return LogDirs{split(v), "the demo broker's --log-dir"}, nil
	}
	return LogDirs{[]string{demoDefaultLogDir}, "the demo broker's default --log-dir"}, nil
}
