package attach

import (
	"context"
	"testing"

	"github.com/lockscope/lockscope/internal/attach/jvmtest"
)

// BenchmarkJcmd measures one attach round trip (connect, VM.version,
// answer) to a JVM whose listener runs: the cost of every command a capture
// sends.
func BenchmarkJcmd(b *testing.B) {
	j := jvmtest.Start(b, jvmtest.Config{})
	vm, err := Open(j.PID, DefaultOptions())
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if _, err := vm.Jcmd(ctx, "VM.version"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := vm.Jcmd(ctx, "VM.version"); err != nil {
			b.Fatal(err)
		}
	}
}
