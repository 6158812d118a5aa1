package attach

import (
	"errors"
	"fmt"
)

// Errors returned (wrapped, with the cause and what to do) by Open and Exec.
// Callers test for them with errors.Is.
var (
	// ErrNoProcess: the pid names no running process.
	ErrNoProcess = errors.New("no such process")
	// ErrNotJVM: the process is not a HotSpot JVM, so it cannot be attached
	// to and must not be sent SIGQUIT.
	ErrNotJVM = errors.New("not a HotSpot JVM")
	// ErrAttachDisabled: the JVM runs with -XX:+DisableAttachMechanism.
	ErrAttachDisabled = errors.New("attach mechanism disabled")
	// ErrNoListener: the JVM did not open its attach socket in time.
	ErrNoListener = errors.New("attach listener not started")
	// ErrImpostor: the attach socket belongs to another user than the JVM.
	ErrImpostor = errors.New("attach socket not owned by the JVM's user")
	// ErrPermission: lockscope may not act as the JVM's user.
	ErrPermission = errors.New("permission denied")
)

// CommandError is a command the JVM received and refused: its result code is
// not zero. Output holds what the JVM wrote, usually the reason.
type CommandError struct {
	Command string // operation and arguments, as sent
	Code    int    // the JVM's result code
	Output  string // the JVM's output after the result code
}

func (e *CommandError) Error() string {
	msg := e.Output
	if len(msg) > 500 {
		msg = msg[:500] + "..."
	}
	if msg == "" {
		return fmt.Sprintf("jvm refused %q: result code %d", e.Command, e.Code)
	}
	return fmt.Sprintf("jvm refused %q: result code %d: %s", e.Command, e.Code, msg)
}
