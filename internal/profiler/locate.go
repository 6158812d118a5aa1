package profiler

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// EnvHome names the environment variable that says where async-profiler is
// installed.
const EnvHome = "ASYNC_PROFILER_HOME"

// ErrNoAsyncProfiler: async-profiler is not installed where lockscope looks.
var ErrNoAsyncProfiler = errors.New("async-profiler not found")

// Install is an async-profiler installation on the host.
type Install struct {
	Home    string // the directory it was found in
	Lib     string // absolute path of libasyncProfiler.so
	Asprof  string // absolute path of the asprof launcher, if present
	Version string // e.g. "4.5", from asprof --version; empty if unknown
	From    string // how it was found: "flag", EnvHome, "PATH" or "default directory"
}

// searchDirs are the install locations lockscope tries last: those of the
// release tarball's usual destinations and of distribution packages.
var searchDirs = []string{
	"/opt/async-profiler",
	"/usr/local/async-profiler",
	"/usr/lib/async-profiler",
	"/usr/share/async-profiler",
}

// libLayouts are where libasyncProfiler.so sits under a home: releases 2.x
// and later (lib/), 1.x releases (build/), a source build (build/lib/).
var libLayouts = []string{"lib/libasyncProfiler.so", "build/libasyncProfiler.so", "build/lib/libasyncProfiler.so"}

// Locate finds async-profiler: in home if given (the --async-profiler flag),
// else in $ASYNC_PROFILER_HOME, else next to asprof on PATH, else in the
// usual install directories. A home given explicitly must hold it: lockscope
// does not silently use another one.
func Locate(home string) (*Install, error) {
	if home != "" {
		return locateIn(home, "flag")
	}
	if env := os.Getenv(EnvHome); env != "" {
		in, err := locateIn(env, EnvHome)
		if err != nil {
			return nil, fmt.Errorf("%s=%s: %w", EnvHome, env, err)
		}
		return in, nil
	}
	if p, err := exec.LookPath("asprof"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			if in, err := locateIn(filepath.Dir(filepath.Dir(real)), "PATH"); err == nil {
				return in, nil
			}
		}
	}
	var globbed []string
	for _, pattern := range []string{"/opt/async-profiler-*", "/usr/local/async-profiler-*"} {
		m, _ := filepath.Glob(pattern)
		globbed = append(globbed, m...)
	}
	for _, dir := range append(append([]string(nil), searchDirs...), globbed...) {
		if in, err := locateIn(dir, "default directory"); err == nil {
			return in, nil
		}
	}
	return nil, fmt.Errorf("%w: looked in $%s, next to asprof on PATH and in %s; download a release from https://github.com/async-profiler/async-profiler/releases and pass its directory with --async-profiler or %s, or use --profiler jfr",
		ErrNoAsyncProfiler, EnvHome, strings.Join(searchDirs, ", "), EnvHome)
}

func locateIn(home, from string) (*Install, error) {
	home, err := filepath.Abs(home)
	if err != nil {
		return nil, err
	}
	for _, l := range libLayouts {
		lib := filepath.Join(home, l)
		st, err := os.Stat(lib)
		if err != nil || !st.Mode().IsRegular() {
			continue
		}
		in := &Install{Home: home, Lib: lib, From: from}
		for _, a := range []string{"bin/asprof", "build/bin/asprof", "profiler.sh"} {
			if st, err := os.Stat(filepath.Join(home, a)); err == nil && st.Mode()&0o111 != 0 {
				in.Asprof = filepath.Join(home, a)
				break
			}
		}
		in.Version = asprofVersion(in.Asprof)
		return in, nil
	}
	return nil, fmt.Errorf("%w: no libasyncProfiler.so under %s (looked for %s)", ErrNoAsyncProfiler, home, strings.Join(libLayouts, ", "))
}

// asprofVersion asks the launcher, which prints "Async-profiler 4.5 built
// on ...". An unknown version is not an error: the library is what runs.
func asprofVersion(asprof string) string {
	if asprof == "" || strings.HasSuffix(asprof, ".sh") {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, asprof, "--version").Output()
	if err != nil {
		return ""
	}
	f := strings.Fields(string(out))
	if len(f) >= 2 && strings.EqualFold(f[0], "async-profiler") {
		return f[1]
	}
	return ""
}
