// Package doctor checks whether a broker host is ready for lockscope and
// whether its broker's log directories sit on a filesystem that is known to
// stall produce requests, and says for each finding what to do.
//
// Run returns a Report of Checks, each PASS, INFO, WARN or FAIL with a detail
// and, where something can be done, a fix. It reads /proc, /sys and the
// sysctls; it loads lockscope's off-CPU BPF program for a moment (to learn
// whether it loads, not just whether it might) and closes it before
// returning; and, given a JVM, it attaches to it through package attach
// (which starts the JVM's attach listener the way jcmd does, and never
// signals a process that is not a HotSpot JVM with attach enabled) and runs
// only read-only diagnostic commands (VM.version, VM.flags -all,
// Thread.print and help). Thread.print brings the JVM to a safepoint for as
// long as a thread dump takes, milliseconds for a broker's few hundred
// threads; nothing is left running in the JVM. A JVM that refuses attach is
// judged from its options (command line and JAVA_TOOL_OPTIONS and kin).
//
// The broker's log directories come from the JVM's command line: Kafka's
// server.properties (the first argument after kafka.Kafka, read
// through /proc/PID/root so that a broker in a container is read in its own
// file system) with any --override log.dirs=..., or the demo broker's
// --log-dir. Each directory's filesystem is found by device number in the
// JVM's own mount table (/proc/PID/mountinfo). For ext4 the journal and its
// mode come from the kernel's own view (/sys/fs/ext4/DEV/journal_task,
// /proc/fs/ext4/DEV/options, /proc/fs/jbd2), the fast_commit feature from
// the superblock; for XFS the log's size from xfs_info.
//
// What was learnt of each filesystem is also kept as data (Report.Filesystems)
// for machines reading the JSON.
//
// The advice quotes the investigation that motivated lockscope (Allegro,
// 2024) and lockscope's own filesystem experiment: the JSON of `lockscope
// compare --format json`, by default where scripts/fs-experiment.sh writes
// it, whose run most like each log dir's filesystem is pointed out.
//
// Everything a Report holds is plain data, owned by the caller. The package
// is Linux-only.
package doctor
