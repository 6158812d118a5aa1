// Package kafkaconf reads a Kafka broker's configuration from its command
// line, as the broker itself would: `kafka.Kafka server.properties
// [--override key=value]...`, the overrides winning over the file. The
// demo broker (scripts/demobroker) takes `--name=value` flags and no file;
// those are kept as Flags.
package kafkaconf

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/magiconair/properties"
)

// MainClass is the main class of a Kafka broker (and of the demo broker).
const MainClass = "kafka.Kafka"

// Config is a broker's configuration as its command line gives it.
type Config struct {
	// File is the properties file's absolute path ("" when none: the demo
	// broker, or a broker configured by overrides alone).
	File      string
	Overrides map[string]string
	// Flags are the demo broker's --name=value (or --name value) flags.
	Flags map[string]string
	props *properties.Properties
}

// MainIndex returns the index of kafka.Kafka in a java command line, or -1
// when args do not run it.
func MainIndex(args []string) int {
	if len(args) == 0 || !strings.HasPrefix(filepath.Base(args[0]), "java") {
		return -1
	}
	for i := 1; i < len(args); i++ {
		switch a := args[i]; {
		case a == "-cp" || a == "-classpath" || a == "--class-path" || a == "-p" || a == "--module-path" ||
			a == "--add-opens" || a == "--add-exports" || a == "--add-modules" || a == "--add-reads":
			i++
		case a == "-jar" || a == "-m" || a == "--module":
			return -1
		case strings.HasPrefix(a, "-"):
		case a == MainClass:
			return i
		default:
			return -1 // another main class
		}
	}
	return -1
}

// Read reads the configuration of the kafka.Kafka command line args.
// Relative paths are resolved against cwd, the JVM's working directory;
// readFile reads a file as the JVM sees it.
func Read(args []string, cwd string, readFile func(string) ([]byte, error)) (*Config, error) {
	i := MainIndex(args)
	if i < 0 {
		return nil, errors.New("not a " + MainClass + " command line")
	}
	args = args[i+1:]
	c := &Config{Overrides: map[string]string{}, Flags: map[string]string{}}
	var file string
	for j := 0; j < len(args); j++ {
		a := args[j]
		switch {
		case a == "--override" && j+1 < len(args):
			j++
			if k, v, ok := strings.Cut(args[j], "="); ok {
				c.Overrides[strings.TrimSpace(k)] = strings.TrimSpace(v)
			}
		case strings.HasPrefix(a, "--override="):
			if k, v, ok := strings.Cut(strings.TrimPrefix(a, "--override="), "="); ok {
				c.Overrides[strings.TrimSpace(k)] = strings.TrimSpace(v)
			}
		case strings.HasPrefix(a, "--"):
			name, v, ok := strings.Cut(a[2:], "=")
			if !ok && j+1 < len(args) && !strings.HasPrefix(args[j+1], "--") {
				j++
				v = args[j]
			}
			c.Flags[name] = v
		case file == "":
			file = a
		}
	}
	if file == "" {
		return c, nil
	}
	c.File = c.Abs(cwd, file)
	b, err := readFile(c.File)
	if err != nil {
		return nil, fmt.Errorf("reading the broker's configuration %s: %w", c.File, err)
	}
	l := properties.Loader{Encoding: properties.UTF8, DisableExpansion: true}
	if c.props, err = l.LoadBytes(b); err != nil {
		return nil, fmt.Errorf("parsing the broker's configuration %s: %w", c.File, err)
	}
	return c, nil
}

// ReadProcess reads the configuration of the running broker pid, its
// files as it sees them (through /proc/PID/root and its working
// directory).
func ReadProcess(pid int) (*Config, error) {
	proc := "/proc/" + strconv.Itoa(pid)
	b, err := os.ReadFile(proc + "/cmdline")
	if err != nil {
		return nil, err
	}
	cwd, err := os.Readlink(proc + "/cwd")
	if err != nil {
		cwd = "/"
	}
	args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
	return Read(args, cwd, func(path string) ([]byte, error) { return os.ReadFile(proc + "/root" + path) })
}

// Abs resolves a path of the configuration against cwd.
func (c *Config) Abs(cwd, p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(cwd, p)
}

// Get returns a key's value and where it came from: an override, or the
// file. ok is false when neither sets it (or sets it empty).
func (c *Config) Get(key string) (v, from string, ok bool) {
	if v, ok := c.Overrides[key]; ok {
		return v, "--override " + key, true
	}
	if c.props != nil {
		if v, ok := c.props.Get(key); ok && strings.TrimSpace(v) != "" {
			return strings.TrimSpace(v), key + " in " + c.File, true
		}
	}
	return "", "", false
}

// BrokerID is the broker's id: broker.id, or node.id under KRaft, or the
// demo broker's --broker-id. "" when none is set.
func (c *Config) BrokerID() string {
	for _, k := range []string{"broker.id", "node.id"} {
		if v, _, ok := c.Get(k); ok {
			return v
		}
	}
	return c.Flags["broker-id"]
}
