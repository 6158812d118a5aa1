package bundle

import (
	"path/filepath"
	"strconv"
	"strings"
)

// Name says which process was captured, for titles: the JVM's main class
// (or jar, or module) and its pid, e.g. "kafka.Kafka (pid 4242)". Without
// a readable java command line it falls back to the command's base name.
func (t Target) Name() string {
	name := mainOf(t.Command)
	if name == "" && len(t.Command) > 0 {
		name = filepath.Base(t.Command[0])
	}
	if t.PID == 0 {
		return name
	}
	pid := "pid " + strconv.Itoa(t.PID)
	if name == "" {
		return pid
	}
	return name + " (" + pid + ")"
}

// mainOf returns what a java command line runs: its main class, the base
// name of its -jar, or its -m module; "" when args is not a java command.
// Options that take a separate value are skipped with their value.
func mainOf(args []string) string {
	if len(args) == 0 || !strings.HasPrefix(filepath.Base(args[0]), "java") {
		return ""
	}
	for i := 1; i < len(args); i++ {
		switch a := args[i]; {
		case a == "-cp" || a == "-classpath" || a == "--class-path" || a == "-p" || a == "--module-path" ||
			a == "--add-opens" || a == "--add-exports" || a == "--add-modules" || a == "--add-reads" ||
			a == "--upgrade-module-path" || a == "--patch-module" || a == "--limit-modules":
			i++
		case a == "-jar" || a == "-m" || a == "--module":
			if i+1 < len(args) {
				return filepath.Base(args[i+1])
			}
			return ""
		case strings.HasPrefix(a, "-"):
		default:
			return a
		}
	}
	return ""
}
