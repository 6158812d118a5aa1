package doctor

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/magiconair/properties"
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
	i := mainClassIndex(args)
	if i < 0 {
		return LogDirs{}, errors.New("not a kafka.Kafka command line")
	}
	args = args[i+1:]
	var file string
	overrides := map[string]string{}
	demo := map[string]string{}
	for j := 0; j < len(args); j++ {
		a := args[j]
		switch {
		case a == "--override" && j+1 < len(args):
			j++
			if k, v, ok := strings.Cut(args[j], "="); ok {
				overrides[strings.TrimSpace(k)] = strings.TrimSpace(v)
			}
		case strings.HasPrefix(a, "--override="):
			if k, v, ok := strings.Cut(strings.TrimPrefix(a, "--override="), "="); ok {
				overrides[strings.TrimSpace(k)] = strings.TrimSpace(v)
			}
		case strings.HasPrefix(a, "--"):
			// The demo broker's --name=value or --name value.
			name, v, ok := strings.Cut(a[2:], "=")
			if !ok && j+1 < len(args) && !strings.HasPrefix(args[j+1], "--") {
				j++
				v = args[j]
			}
			demo[name] = v
		case file == "":
			file = a
		}
	}
	abs := func(p string) string {
		if filepath.IsAbs(p) {
			return filepath.Clean(p)
		}
		return filepath.Join(cwd, p)
	}
	split := func(v string) []string {
		var dirs []string
		for _, d := range strings.Split(v, ",") {
			if d = strings.TrimSpace(d); d != "" {
				dirs = append(dirs, abs(d))
			}
		}
		return dirs
	}

	if file == "" {
		if v, ok := overrides["log.dirs"]; ok {
			return LogDirs{split(v), "--override log.dirs"}, nil
		}
		if v, ok := overrides["log.dir"]; ok {
			return LogDirs{split(v), "--override log.dir"}, nil
		}
		if v, ok := demo["log-dir"]; ok && v != "" {
			return LogDirs{split(v), "the demo broker's --log-dir"}, nil
		}
		return LogDirs{[]string{demoDefaultLogDir}, "the demo broker's default --log-dir"}, nil
	}

	path := abs(file)
	b, err := readFile(path)
	if err != nil {
		return LogDirs{}, fmt.Errorf("reading the broker's configuration %s: %w", path, err)
	}
	l := properties.Loader{Encoding: properties.UTF8, DisableExpansion: true}
	p, err := l.LoadBytes(b)
	if err != nil {
		return LogDirs{}, fmt.Errorf("parsing the broker's configuration %s: %w", path, err)
	}
	for _, key := range []string{"log.dirs", "log.dir"} {
		if v, ok := overrides[key]; ok {
			return LogDirs{split(v), "--override " + key}, nil
		}
		if v, ok := p.Get(key); ok && strings.TrimSpace(v) != "" {
			return LogDirs{split(v), key + " in " + path}, nil
		}
	}
	return LogDirs{[]string{kafkaDefaultLogDir}, "Kafka's default log.dir (" + path + " sets neither log.dirs nor log.dir)"}, nil
}
