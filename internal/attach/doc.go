// Package attach speaks the HotSpot dynamic attach protocol (version 1), the
// channel jcmd and jattach use, so that lockscope can run diagnostic commands
// in a running JVM and load agents into it without a restart, without the
// JDK's tools on the host and from outside the JVM's container.
//
// Open inspects a process through /proc and never signals it: it refuses
// processes that are not HotSpot JVMs (a SIGQUIT would kill them) and JVMs
// whose attach mechanism is disabled. The first command sent through a VM
// starts the JVM's attach listener the way the JDK does: a .attach_pid<nspid>
// trigger file in the JVM's working directory (or its /tmp), one SIGQUIT, and
// a bounded, growing wait for the .java_pid<nspid> socket in the JVM's /tmp as
// seen through /proc/PID/root, so that a JVM in a container is reached from
// the host.
//
// Safety follows jattach and the JDK's own client: the socket is opened once
// with O_PATH, checked to belong to the JVM's effective user (otherwise it
// could be an impostor listening in a shared /tmp) and then connected through
// that very descriptor, so the check cannot race a swap of the file. When
// lockscope runs as root and the JVM as another user, only the thread that
// creates the trigger file and connects takes the JVM's effective uid and gid
// (HotSpot before JDK 11 accepts no other peer); the rest of the process keeps
// its credentials.
//
// A VM holds no descriptor between commands: HotSpot serves one operation per
// connection, so every Exec opens, uses and closes its own connection. A VM is
// safe for concurrent use. A command whose context has no deadline gets
// Options.CommandTimeout: a JVM that cannot reach a safepoint never answers.
//
// # JDK differences
//
//   - The load operation nests the agent's result: alone on the second line
//     (JDK 8), after "return code: " (JDK 9 to 20), or not at all with an
//     error message instead (JDK 21+). Thread dumps print nid in hexadecimal
//     up to JDK 18 and in decimal from JDK 19.
//   - HotSpot before JDK 11 (JDK-8197387) accepts only a peer with its own
//     euid and egid, not root, hence the credential switch.
//   - A socket deleted by a /tmp cleaner is recreated on the next SIGQUIT by
//     recent JDKs (tested on 17); older ones need a restart, which the
//     listener timeout's error says.
//   - JDK 21+ prints a warning in the JVM's log for every agent loaded at run
//     time unless it runs with -XX:+EnableDynamicAgentLoading.
//
// The package is Linux-only (/proc, O_PATH, per-thread credentials) and
// speaks HotSpot's protocol only; OpenJ9 is recognised and refused.
package attach
