// SPDX-License-Identifier: GPL-2.0
//
// File operations of a few target processes (Kafka brokers) and the
// journal activity of the filesystems under them.
//
// Kprobes and fentry are not available everywhere lockscope runs, so this
// uses classic tracepoints only: the syscalls' sys_enter_X/sys_exit_X for
// the file operations, jbd2, ext4 and xfs events for the journal.
//
// sys_enter_X of a target thread remembers (per thread) the operation, the
// fd, the file's device and inode read from the task's fd table (CO-RE), and
// the start time. sys_exit_X counts the operation in a log2 latency
// histogram per (file, operation) in a hash map, and emits a ring buffer
// event when it took at least min_ns. Operations on descriptors that are not
// regular files (sockets, pipes) are not followed: this is the filesystem
// lens.
//
// Every program filters on the target tgids (load-time constants) first, so
// a write() of any other process costs the tracepoint dispatch, one helper
// call and a few compares. Journal tracepoints are rare (one jbd2 commit
// per transaction) and are reported for every device; user space keeps the
// devices the targets use.
//
// Why per-syscall tracepoints rather than one raw sys_enter/sys_exit
// filtered by syscall number: both cost the same per write(), but the raw
// ones run a program at every system call of every process, so all the
// other system calls of the machine would pay too (scripts/bench-fs.sh
// measures both).
//
// A target's operation costs two clock reads, a task storage lookup at
// each end, the fd table walk (one probe read for the fd array slot, the
// rest plain BTF loads through bpf_rdonly_cast where the kernel has it) and
// a hash lookup with three atomic adds for the histogram.
//
// Everything that tunes the program is a read-only global set at load time.

#include <stdbool.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "fs.h"

char LICENSE[] SEC("license") = "GPL";

// Minimal kernel types, relocated against the running kernel's BTF (CO-RE).
struct super_block {
	unsigned int s_dev;
} __attribute__((preserve_access_index));

struct inode {
	unsigned short i_mode;
	unsigned long i_ino;
	struct super_block *i_sb;
} __attribute__((preserve_access_index));

struct file {
	struct inode *f_inode;
} __attribute__((preserve_access_index));

struct fdtable {
	unsigned int max_fds;
	struct file **fd;
} __attribute__((preserve_access_index));

struct files_struct {
	struct fdtable *fdt;
} __attribute__((preserve_access_index));

struct task_struct {
	struct files_struct *files;
} __attribute__((preserve_access_index));

// Tracepoint records. The syscall ones are the fixed layout perf hands to
// BPF (struct syscall_tp_t of kernel/trace/trace_syscalls.c); the others
// are the kernel's trace_event_raw_* types, relocated by CO-RE.
struct sys_enter_ctx {
	__u64 common;
	int nr;
	unsigned long args[6];
};

struct sys_exit_ctx {
	__u64 common;
	int nr;
	long ret;
};

struct trace_event_raw_jbd2_commit {
	unsigned int dev;
	char sync_commit;
	unsigned int transaction;
} __attribute__((preserve_access_index));

struct trace_event_raw_jbd2_end_commit {
	unsigned int dev;
	char sync_commit;
	unsigned int transaction;
} __attribute__((preserve_access_index));

struct trace_event_raw_jbd2_run_stats {
	unsigned int dev;
	unsigned int tid;
	unsigned long wait;
	unsigned long request_delay;
	unsigned long running;
	unsigned long locked;
	unsigned long flushing;
	unsigned long logging;
	__u32 handle_count;
	__u32 blocks;
	__u32 blocks_logged;
} __attribute__((preserve_access_index));

struct trace_event_raw_jbd2_handle_stats {
	unsigned int dev;
	unsigned int tid;
	unsigned int type;
	unsigned int line_no;
	int interval;
	int sync;
	int requested_blocks;
	int dirtied_blocks;
} __attribute__((preserve_access_index));

struct trace_event_raw_ext4_sync_file_enter {
	unsigned int dev;
	unsigned long ino;
	int datasync;
} __attribute__((preserve_access_index));

struct trace_event_raw_ext4_sync_file_exit {
	unsigned int dev;
	unsigned long ino;
	int ret;
} __attribute__((preserve_access_index));

struct trace_event_raw_ext4_fc_commit_start {
	unsigned int dev;
	unsigned int tid;
} __attribute__((preserve_access_index));

struct trace_event_raw_ext4_fc_commit_stop {
	unsigned int dev;
	int nblks;
	int reason;
	int num_fc;
	int num_fc_ineligible;
	unsigned int tid;
} __attribute__((preserve_access_index));

struct trace_event_raw_xfs_log_force {
	unsigned int dev;
	long long lsn;
} __attribute__((preserve_access_index));

struct trace_event_raw_xfs_inode_class {
	unsigned int dev;
	unsigned long long ino;
} __attribute__((preserve_access_index));

#define S_IFMT 00170000
#define S_IFREG 0100000

// Load-time configuration (CollectionSpec.Variables).
const volatile __u32 targ_tgids[FS_MAX_TARGETS] = {};
const volatile __u32 n_targets = 0;
const volatile __u64 min_ns = 1000000;
// The reader is woken only once this many bytes wait; below it polls.
const volatile __u64 wakeup_bytes = 65536;

// An operation in flight, per thread; start_ns 0 when there is none.
struct inflight {
	__u64 start_ns;
	__u64 dev;
	__u64 ino;
	__s32 fd;
	__u8 op;
	__u8 pad[3];
};

// Task storage: cheaper than a hash keyed by thread id (no hashing, no
// LRU bookkeeping, no delete per operation), and freed with the thread.
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct inflight);
} inflight SEC(".maps");

// MaxEntries of this map is set at load time.

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct fs_hist_key);
	__type(value, struct fs_hist);
} hists SEC(".maps");

// The source of new hists entries: a 352-byte value is better not built
// on the 512-byte BPF stack.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fs_hist);
} blank_hist SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FS_COUNTER_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

// Force the types into BTF for bpf2go -type.
const enum fs_op *unused_fs_op __attribute__((unused));
const enum fs_counter *unused_fs_counter __attribute__((unused));
const enum fs_rec *unused_fs_rec __attribute__((unused));
const struct fs_event *unused_fs_event __attribute__((unused));
const struct fs_journal *unused_fs_journal __attribute__((unused));

static __always_inline void count(__u32 c)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &c);
	if (v)
		*v += 1; // per-CPU slot
}

static __always_inline bool is_target(__u32 tgid)
{
#pragma unroll
	for (int i = 0; i < FS_MAX_TARGETS; i++) {
		if (i >= n_targets)
			return false;
		if (targ_tgids[i] == tgid)
			return true;
	}
	return false;
}

static __always_inline __u64 wakeup_flag(void)
{
	if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wakeup_bytes)
		return BPF_RB_FORCE_WAKEUP;
	return BPF_RB_NO_WAKEUP;
}

// fd_file returns the struct file behind fd in the fd table of task (a
// BTF pointer: the walk down to the table is plain loads, not helper
// calls), or 0.
static __always_inline struct file *fd_file(struct task_struct *task, __u64 fd)
{
	struct files_struct *files = task->files;
	if (!files)
		return 0;
	struct fdtable *fdt = files->fdt;
	if (!fdt || fd >= fdt->max_fds)
		return 0;
	struct file **fds = fdt->fd;
	struct file *f = 0;
	if (bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]))
		return 0;
	return f;
}

// bpf_rdonly_cast (Linux 6.2) turns the struct file read from the fd array
// into a BTF pointer, so that the inode's fields are plain loads rather than
// one probe-read helper call each; weak, so that the program still loads
// where the kernel lacks it.
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym __weak;

// file_id reads the device, inode and mode of file f; false if it cannot.
static __always_inline bool file_id(struct file *f, __u64 *dev, __u64 *ino, unsigned short *mode)
{
	if (bpf_rdonly_cast) {
		struct file *bf = bpf_rdonly_cast(f, bpf_core_type_id_kernel(struct file));
		struct inode *inode = bf->f_inode;
		if (!inode)
			return false;
		*mode = inode->i_mode;
		*ino = inode->i_ino;
		*dev = inode->i_sb->s_dev;
		return true;
	}
	struct inode *inode = BPF_CORE_READ(f, f_inode);
	if (!inode)
		return false;
	*mode = BPF_CORE_READ(inode, i_mode);
	*ino = BPF_CORE_READ(inode, i_ino);
	*dev = BPF_CORE_READ(inode, i_sb, s_dev);
	return true;
}

static __always_inline int enter(__u64 fd, __u8 op)
{
	__u64 id = bpf_get_current_pid_tgid();
	if (!is_target(id >> 32))
		return 0;
	// The call's start, before this program's own work (the fd walk, the
	// first operation's task storage): the caller waits for that too.
	__u64 start = bpf_ktime_get_ns();
	struct task_struct *task = bpf_get_current_task_btf();
	struct file *f = fd_file(task, fd);
	if (!f)
		return 0; // a bad fd: the call fails at once
	__u64 dev = 0, ino = 0;
	unsigned short mode = 0;
	if (!file_id(f, &dev, &ino, &mode))
		return 0;
	if ((mode & S_IFMT) != S_IFREG) {
		count(FS_COUNTER_NONFILE);
		return 0;
	}
	struct inflight *in = bpf_task_storage_get(&inflight, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!in) {
		count(FS_COUNTER_INFLIGHT_FAIL);
		return 0;
	}
	in->dev = dev;
	in->ino = ino;
	in->fd = (__s32)fd;
	in->op = op;
	in->start_ns = start;
	return 0;
}

static __always_inline __u32 log2_u64(__u64 v)
{
	__u32 r = 0;
	if (v >> 32) {
		v >>= 32;
		r += 32;
	}
	if (v >> 16) {
		v >>= 16;
		r += 16;
	}
	if (v >> 8) {
		v >>= 8;
		r += 8;
	}
	if (v >> 4) {
		v >>= 4;
		r += 4;
	}
	if (v >> 2) {
		v >>= 2;
		r += 2;
	}
	if (v >> 1)
		r += 1;
	return r;
}

static __always_inline void histogram(struct inflight *in, __u32 tgid, __u64 dur, long ret)
{
	struct fs_hist_key key = {.dev = in->dev, .ino = in->ino, .tgid = tgid, .op = in->op};
	struct fs_hist *h = bpf_map_lookup_elem(&hists, &key);
	if (!h) {
		__u32 zero = 0;
		struct fs_hist *blank = bpf_map_lookup_elem(&blank_hist, &zero);
		if (!blank)
			return;
		// Another CPU may insert the same key meanwhile: NOEXIST keeps
		// its counts, and the lookup below finds either.
		bpf_map_update_elem(&hists, &key, blank, BPF_NOEXIST);
		h = bpf_map_lookup_elem(&hists, &key);
		if (!h) {
			count(FS_COUNTER_HIST_OVERFLOW);
			return;
		}
	}
	__u32 b = log2_u64(dur);
	if (b >= FS_HIST_BUCKETS)
		b = FS_HIST_BUCKETS - 1;
	// Threads of the target on other CPUs update the same file's value.
	__sync_fetch_and_add(&h->count, 1);
	__sync_fetch_and_add(&h->sum_ns, dur);
	__sync_fetch_and_add(&h->buckets[b], 1);
	if (ret > 0)
		__sync_fetch_and_add(&h->bytes, ret);
	if (dur > h->max_ns)
		h->max_ns = dur;
}

static __always_inline int exit_op(long ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	if (!is_target(tgid))
		return 0;
	__u32 tid = (__u32)id;
	struct inflight *p = bpf_task_storage_get(&inflight, bpf_get_current_task_btf(), 0, 0);
	if (!p || !p->start_ns)
		return 0; // not a file, or started before the tracer
	__u64 now = bpf_ktime_get_ns();
	struct inflight in = *p;
	p->start_ns = 0;
	__u64 dur = now - in.start_ns;
	histogram(&in, tgid, dur, ret);
	if (dur < min_ns)
		return 0;
	struct fs_event *ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);
	if (!ev) {
		count(FS_COUNTER_DROPS);
		return 0;
	}
	ev->rec = FS_REC_OP;
	ev->tid = tid;
	ev->tgid = tgid;
	ev->fd = in.fd;
	ev->dev = in.dev;
	ev->ino = in.ino;
	ev->ret = ret;
	ev->start_ns = in.start_ns;
	ev->end_ns = now;
	ev->op = in.op;
	count(FS_COUNTER_EVENTS);
	bpf_ringbuf_submit(ev, wakeup_flag());
	return 0;
}

#define FS_ENTER(name, op)                                                  \
	SEC("tracepoint/syscalls/sys_enter_" #name)                         \
	int fs_enter_##name(struct sys_enter_ctx *ctx)                      \
	{                                                                   \
		return enter(ctx->args[0], op);                             \
	}

FS_ENTER(write, FS_OP_WRITE)
FS_ENTER(pwrite64, FS_OP_PWRITE64)
FS_ENTER(writev, FS_OP_WRITEV)
FS_ENTER(pwritev, FS_OP_PWRITEV)
FS_ENTER(pwritev2, FS_OP_PWRITEV2)
FS_ENTER(fsync, FS_OP_FSYNC)
FS_ENTER(fdatasync, FS_OP_FDATASYNC)
FS_ENTER(read, FS_OP_READ)
FS_ENTER(pread64, FS_OP_PREAD64)
FS_ENTER(readv, FS_OP_READV)

// One program for every sys_exit_X: the operation is in the in-flight
// state.
SEC("tracepoint/syscalls/sys_exit_write")
int fs_exit(struct sys_exit_ctx *ctx)
{
	return exit_op(ctx->ret);
}

// journal reserves a journal record, or counts a drop.
static __always_inline struct fs_journal *journal(__u32 rec, __u32 dev)
{
	struct fs_journal *j = bpf_ringbuf_reserve(&events, sizeof(*j), 0);
	if (!j) {
		count(FS_COUNTER_DROPS);
		return 0;
	}
	__builtin_memset(j, 0, sizeof(*j));
	__u64 id = bpf_get_current_pid_tgid();
	j->rec = rec;
	j->dev = dev;
	j->tid = (__u32)id;
	j->tgid = id >> 32;
	j->ts = bpf_ktime_get_ns();
	return j;
}

static __always_inline void submit(struct fs_journal *j)
{
	count(FS_COUNTER_JOURNAL);
	bpf_ringbuf_submit(j, wakeup_flag());
}

static __always_inline bool current_is_target(void)
{
	return is_target(bpf_get_current_pid_tgid() >> 32);
}

SEC("tracepoint/jbd2/jbd2_start_commit")
int fs_jbd2_start_commit(struct trace_event_raw_jbd2_commit *ctx)
{
	struct fs_journal *j = journal(FS_REC_JBD2_START, ctx->dev);
	if (!j)
		return 0;
	j->transaction = ctx->transaction;
	j->sync = ctx->sync_commit;
	submit(j);
	return 0;
}

SEC("tracepoint/jbd2/jbd2_end_commit")
int fs_jbd2_end_commit(struct trace_event_raw_jbd2_end_commit *ctx)
{
	struct fs_journal *j = journal(FS_REC_JBD2_END, ctx->dev);
	if (!j)
		return 0;
	j->transaction = ctx->transaction;
	j->sync = ctx->sync_commit;
	submit(j);
	return 0;
}

SEC("tracepoint/jbd2/jbd2_run_stats")
int fs_jbd2_run_stats(struct trace_event_raw_jbd2_run_stats *ctx)
{
	struct fs_journal *j = journal(FS_REC_JBD2_RUN_STATS, ctx->dev);
	if (!j)
		return 0;
	j->transaction = ctx->tid;
	j->jiffies[0] = ctx->wait;
	j->jiffies[1] = ctx->request_delay;
	j->jiffies[2] = ctx->running;
	j->jiffies[3] = ctx->locked;
	j->jiffies[4] = ctx->flushing;
	j->jiffies[5] = ctx->logging;
	j->n[0] = ctx->handle_count;
	j->n[1] = ctx->blocks;
	j->n[2] = ctx->blocks_logged;
	submit(j);
	return 0;
}

// A handle of a target thread held for at least a jiffy: the commit of
// its transaction waits for it (the "locked" phase). Shorter ones are the
// overwhelming majority and are not reported.
SEC("tracepoint/jbd2/jbd2_handle_stats")
int fs_jbd2_handle_stats(struct trace_event_raw_jbd2_handle_stats *ctx)
{
	if (ctx->interval < 1 || !current_is_target())
		return 0;
	struct fs_journal *j = journal(FS_REC_JBD2_HANDLE, ctx->dev);
	if (!j)
		return 0;
	j->transaction = ctx->tid;
	j->jiffies[0] = ctx->interval;
	j->sync = ctx->sync;
	j->n[0] = ctx->type;
	j->n[1] = ctx->line_no;
	j->n[2] = ctx->requested_blocks;
	j->n[3] = ctx->dirtied_blocks;
	submit(j);
	return 0;
}

SEC("tracepoint/ext4/ext4_sync_file_enter")
int fs_ext4_sync_file_enter(struct trace_event_raw_ext4_sync_file_enter *ctx)
{
	if (!current_is_target())
		return 0;
	struct fs_journal *j = journal(FS_REC_EXT4_SYNC_ENTER, ctx->dev);
	if (!j)
		return 0;
	j->ino = ctx->ino;
	j->sync = ctx->datasync;
	submit(j);
	return 0;
}

SEC("tracepoint/ext4/ext4_sync_file_exit")
int fs_ext4_sync_file_exit(struct trace_event_raw_ext4_sync_file_exit *ctx)
{
	if (!current_is_target())
		return 0;
	struct fs_journal *j = journal(FS_REC_EXT4_SYNC_EXIT, ctx->dev);
	if (!j)
		return 0;
	j->ino = ctx->ino;
	j->val = ctx->ret;
	submit(j);
	return 0;
}

// ext4 fast commits (mkfs/tune2fs -O fast_commit): an fsync writes only
// the changed inodes' deltas to the fast-commit area instead of waiting for
// a full jbd2 commit, unless the change is ineligible (then it falls back,
// reason 1). They run in the syncing thread, of any process: a neighbour's
// fast commit serializes with the broker's on the same journal.
SEC("tracepoint/ext4/ext4_fc_commit_start")
int fs_ext4_fc_commit_start(struct trace_event_raw_ext4_fc_commit_start *ctx)
{
	struct fs_journal *j = journal(FS_REC_EXT4_FC_START, ctx->dev);
	if (!j)
		return 0;
	j->transaction = ctx->tid;
	submit(j);
	return 0;
}

SEC("tracepoint/ext4/ext4_fc_commit_stop")
int fs_ext4_fc_commit_stop(struct trace_event_raw_ext4_fc_commit_stop *ctx)
{
	struct fs_journal *j = journal(FS_REC_EXT4_FC_STOP, ctx->dev);
	if (!j)
		return 0;
	j->transaction = ctx->tid;
	j->val = ctx->reason;
	j->n[0] = ctx->nblks;
	j->n[1] = ctx->num_fc;
	j->n[2] = ctx->num_fc_ineligible;
	submit(j);
	return 0;
}

// Log forces of every thread: background ones (xfsaild, log workers) are
// what a target's fsync may end up waiting on.
SEC("tracepoint/xfs/xfs_log_force")
int fs_xfs_log_force(struct trace_event_raw_xfs_log_force *ctx)
{
	struct fs_journal *j = journal(FS_REC_XFS_LOG_FORCE, ctx->dev);
	if (!j)
		return 0;
	j->val = ctx->lsn;
	submit(j);
	return 0;
}

SEC("tracepoint/xfs/xfs_file_fsync")
int fs_xfs_file_fsync(struct trace_event_raw_xfs_inode_class *ctx)
{
	if (!current_is_target())
		return 0;
	struct fs_journal *j = journal(FS_REC_XFS_FILE_FSYNC, ctx->dev);
	if (!j)
		return 0;
	j->ino = ctx->ino;
	submit(j);
	return 0;
}
