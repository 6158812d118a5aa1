// Package testdata locates the recordings shared by every lockscope checkout
// (../shared/testdata beside the repository root) for tests. Those files are
// made by tools nobody here wrote and are never copied into the project.
package testdata

import (
	"os"
	"path/filepath"
	"testing"
)

// EnvDir names an environment variable that overrides where the shared
// testdata directory is.
const EnvDir = "LOCKSCOPE_SHARED_TESTDATA"

// Dir returns the shared testdata directory, found from the environment or by
// walking up from the working directory to the module root and taking
// ../shared/testdata beside it. A missing directory fails the test: CI always
// has it, so a skip would hide a broken checkout.
func Dir(tb testing.TB) string {
	tb.Helper()
	if d := os.Getenv(EnvDir); d != "" {
		return d
	}
	wd, err := os.Getwd()
	if err != nil {
		tb.Fatalf("testdata: working directory: %v", err)
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			dir := filepath.Join(filepath.Dir(d), "shared", "testdata")
			if _, err := os.Stat(dir); err != nil {
				tb.Fatalf("testdata: shared testdata not found beside the repository (%v); set %s", err, EnvDir)
			}
			return dir
		}
		if filepath.Dir(d) == d {
			tb.Fatalf("testdata: no go.mod above %s; set %s", wd, EnvDir)
		}
	}
}

// JFR returns the path of a recording under the shared testdata's jfr/ folder.
func JFR(tb testing.TB, name string) string {
	tb.Helper()
	p := filepath.Join(Dir(tb), "jfr", name)
	if _, err := os.Stat(p); err != nil {
		tb.Fatalf("testdata: %v", err)
	}
	return p
}
