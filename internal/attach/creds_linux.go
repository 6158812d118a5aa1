package attach

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// asUser runs fn on a locked OS thread whose effective uid and gid are those
// of the JVM, then restores the thread. The raw setres[ug]id system calls
// change the calling thread only; the wrappers in syscall and x/sys/unix
// would change every thread of lockscope (Go 1.16+), dropping root from the
// eBPF collector running beside it. If the thread cannot be restored it stays
// locked, and the runtime ends it when this goroutine returns.
//
// When lockscope already has the JVM's ids, fn runs as is.
func asUser(uid, gid uint32, fn func() error) error {
	euid, egid := uint32(unix.Geteuid()), uint32(unix.Getegid())
	if euid == uid && egid == gid {
		return fn()
	}
	if euid != 0 {
		return fmt.Errorf("acting as uid %d gid %d: %w: lockscope runs as uid %d; run it as root or as the JVM's user", uid, gid, ErrPermission, euid)
	}
	runtime.LockOSThread()
	restored := false
	defer func() {
		if restored {
			runtime.UnlockOSThread()
		}
	}()
	// gid first: after the uid changes the thread may no longer change it.
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, ^uintptr(0), uintptr(gid), ^uintptr(0)); e != 0 {
		restored = true
		return fmt.Errorf("setting effective gid %d: %w", gid, e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, ^uintptr(0), uintptr(uid), ^uintptr(0)); e != 0 {
		_, _, e2 := unix.RawSyscall(unix.SYS_SETRESGID, ^uintptr(0), uintptr(egid), ^uintptr(0))
		restored = e2 == 0
		return fmt.Errorf("setting effective uid %d: %w", uid, e)
	}
	err := fn()
	// The saved uid stayed 0, so the thread may take euid 0 back.
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, ^uintptr(0), uintptr(euid), ^uintptr(0)); e == 0 {
		_, _, e2 := unix.RawSyscall(unix.SYS_SETRESGID, ^uintptr(0), uintptr(egid), ^uintptr(0))
		restored = e2 == 0
	}
	return err
}
