package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lockscope/lockscope/internal/bundle"
	"github.com/lockscope/lockscope/internal/pprofui"
)

func TestResolveView(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "b")
	w, err := bundle.Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Finish(&bundle.Meta{}); err != nil {
		t.Fatal(err)
	}
	var o pprofui.Options
	if err := resolveView(&o, dir); err == nil || !strings.Contains(err.Error(), "lockscope merge") {
		t.Errorf("bundle without profiles: %v, want a hint to merge", err)
	}

	dir2 := filepath.Join(t.TempDir(), "b2")
	w, _ = bundle.Create(dir2)
	for _, name := range []string{bundle.SlowProfile, bundle.BaselineProfile, bundle.ReportFile} {
		os.WriteFile(w.Path(name), []byte("x"), 0o644)
	}
	if err := w.Finish(&bundle.Meta{}); err != nil {
		t.Fatal(err)
	}
	o = pprofui.Options{}
	if err := resolveView(&o, dir2); err != nil {
		t.Fatal(err)
	}
	if filepath.Base(o.Profile) != bundle.SlowProfile || filepath.Base(o.Base) != bundle.BaselineProfile || o.Extra["/report"] == nil {
		t.Errorf("resolved %+v", o)
	}

	o = pprofui.Options{}
	file := filepath.Join(dir2, bundle.SlowProfile)
	if err := resolveView(&o, file); err != nil || o.Profile != file || o.Base != "" {
		t.Errorf("file: %+v, %v", o, err)
	}
	if err := resolveView(&o, filepath.Join(dir2, "missing")); err == nil {
		t.Error("missing path: want an error")
	}
}
