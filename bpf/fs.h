// SPDX-License-Identifier: GPL-2.0
//
// Types shared between fs.bpf.c and Go: bpf2go generates the Go side of
// every type named with -type in internal/offcpu/fs_gen.go.
#ifndef LOCKSCOPE_FS_H
#define LOCKSCOPE_FS_H

// Target processes per tracer (MaxTargets in Go, as in offcpu.h).
#define FS_MAX_TARGETS 8

// Log2 latency buckets: bucket i counts [2^i, 2^(i+1)) ns; the last one
// everything longer.
#define FS_HIST_BUCKETS 40

// enum fs_op is the system call of an operation (offcpu.FSOp).
enum fs_op {
	FS_OP_WRITE = 1,
	FS_OP_PWRITE64 = 2,
	FS_OP_WRITEV = 3,
	FS_OP_PWRITEV = 4,
	FS_OP_PWRITEV2 = 5,
	FS_OP_FSYNC = 6,
	FS_OP_FDATASYNC = 7,
	FS_OP_READ = 8,
	FS_OP_PREAD64 = 9,
	FS_OP_READV = 10,
};

// enum fs_counter indexes the per-CPU counters map.
enum fs_counter {
	FS_COUNTER_EVENTS = 0,        // operation events submitted
	FS_COUNTER_JOURNAL = 1,       // journal records submitted
	FS_COUNTER_DROPS = 2,         // records lost: ring buffer full
	FS_COUNTER_HIST_OVERFLOW = 3, // operations in no histogram: map full
	FS_COUNTER_INFLIGHT_FAIL = 4, // operation starts that could not be stored
	FS_COUNTER_NONFILE = 5,       // target operations on sockets, pipes...
	FS_COUNTER_MAX = 6,
};

// enum fs_rec is the first word of every ring buffer record.
enum fs_rec {
	FS_REC_OP = 1,
	FS_REC_JBD2_START = 2,
	FS_REC_JBD2_END = 3,
	FS_REC_JBD2_RUN_STATS = 4,
	FS_REC_JBD2_HANDLE = 5,
	FS_REC_EXT4_SYNC_ENTER = 6,
	FS_REC_EXT4_SYNC_EXIT = 7,
	FS_REC_XFS_LOG_FORCE = 8,
	FS_REC_XFS_FILE_FSYNC = 9,
	FS_REC_EXT4_FC_START = 10,
	FS_REC_EXT4_FC_STOP = 11,
};

// struct fs_event is one operation of a target thread at least min_ns
// long.
struct fs_event {
	__u32 rec; // FS_REC_OP
	__u32 tid;
	__u32 tgid;
	__s32 fd;
	__u64 dev; // kernel dev_t of the file's superblock
	__u64 ino;
	__s64 ret;
	__u64 start_ns; // CLOCK_MONOTONIC
	__u64 end_ns;
	__u8 op; // enum fs_op
	__u8 pad[7];
};

// struct fs_journal is one journal tracepoint hit. Which fields are set
// depends on rec:
//   JBD2_START/END: dev, transaction, sync (sync_commit), ts.
//   JBD2_RUN_STATS: dev, transaction, jiffies[0..5] = wait, request_delay,
//     running, locked, flushing, logging; n[0..2] = handle_count, blocks,
//     blocks_logged.
//   JBD2_HANDLE: dev, transaction, jiffies[0] = interval, sync,
//     n[0..3] = type, line_no, requested, dirtied.
//   EXT4_SYNC_ENTER: dev, ino, sync (datasync). EXT4_SYNC_EXIT: dev, ino, val (ret).
//   XFS_LOG_FORCE: dev, val (lsn). XFS_FILE_FSYNC: dev, ino.
//   EXT4_FC_START: dev, transaction. EXT4_FC_STOP: dev, transaction,
//     val (reason: 0 committed, 1 ineligible, 2 skipped, 3 failed),
//     n[0..2] = nblks, num_fc, num_fc_ineligible.
struct fs_journal {
	__u32 rec;
	__u32 dev; // kernel dev_t
	__u32 transaction;
	__u32 tid; // current thread
	__u32 tgid;
	__u32 sync;
	__u64 ts; // CLOCK_MONOTONIC
	__u64 ino;
	__s64 val;
	__u64 jiffies[6];
	__u32 n[4];
};

// Histogram key and value: every operation of a target on a file.
struct fs_hist_key {
	__u64 dev;
	__u64 ino;
	__u32 tgid;
	__u8 op;
	__u8 pad[3];
};

struct fs_hist {
	__u64 count;
	__u64 sum_ns;
	__u64 max_ns; // racy between CPUs, off by at most a concurrent op
	__u64 bytes;  // sum of the positive results

	__u64 buckets[FS_HIST_BUCKETS];
};

#endif
