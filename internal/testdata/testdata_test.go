package testdata

import (
	"path/filepath"
	"testing"
)

func TestJFRFound(t *testing.T) {
	p := JFR(t, "asprof-wall-lock.jfr")
	if filepath.Base(p) != "asprof-wall-lock.jfr" {
		t.Fatalf("JFR: got %s", p)
	}
}
