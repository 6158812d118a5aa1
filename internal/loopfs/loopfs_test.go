package loopfs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMountExt4AndXFS(t *testing.T) {
	for _, o := range []Options{{}, {Mount: "data=writeback"}, {Type: "xfs"}} {
		mnt := Mount(t, o)
		if err := os.WriteFile(filepath.Join(mnt, "x"), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		got := MountOptions(t, mnt)
		want := o.Type
		if want == "" {
			want = "ext4"
		}
		if !strings.HasPrefix(got, want+" ") || (o.Mount != "" && !strings.Contains(got, o.Mount)) {
			t.Errorf("mounted %q, want %s with %q", got, want, o.Mount)
		}
	}
}
