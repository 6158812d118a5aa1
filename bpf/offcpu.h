// SPDX-License-Identifier: GPL-2.0
//
// Types shared between offcpu.bpf.c and Go: bpf2go generates the Go side of
// every type named with -type in internal/offcpu/gen.go, so nothing here is
// mirrored by hand.
#ifndef LOCKSCOPE_OFFCPU_H
#define LOCKSCOPE_OFFCPU_H

// Target processes per collector. A constant bound keeps the filter loop
// unrolled; the unused tail is pruned by the verifier.
#define MAX_TARGETS 8

// perf_event_max_stack's default; deeper kernel stacks are truncated.
#define MAX_STACK 127

// enum counter indexes the per-CPU counters map.
enum counter {
	COUNTER_EVENTS = 0,      // events submitted
	COUNTER_DROPS = 1,       // events lost: ring buffer full
	COUNTER_KSTACK_FAIL = 2, // kernel stack walks that failed
	COUNTER_USTACK_FAIL = 3, // user stack walks that failed (eager)
	COUNTER_WSTACK_FAIL = 4, // waker stack walks that failed (eager)
	COUNTER_STATE_FAIL = 5,  // per-thread state that could not be stored
	COUNTER_MAX = 6,
};

// Event flags: which stacks an event carries and where they were taken.
enum event_flag {
	EV_KSTACK_OUT = 1, // kernel stack taken at switch-out, not switch-in
	EV_USTACK = 2,     // user stack present (event_eager)
	EV_WSTACK = 4,     // waker kernel stack present (event_eager)
};

// struct event is one off-CPU interval of one thread (lazy records).
struct event {
	__u64 start_ns;   // CLOCK_MONOTONIC, switch-out
	__u64 end_ns;     // CLOCK_MONOTONIC, switch-in
	__u64 wake_ns;    // CLOCK_MONOTONIC, last sched_waking; 0 if none
	__u32 tid;        // host thread id
	__u32 tgid;       // host process id
	__u32 waker_tid;  // last sched_waking of this interval by; 0 if none
	__u32 cpu;        // CPU it was switched in on
	__u8 state;       // prev_state & 0xff: 0 run queue, 1 sleep, 2 disk
	__u8 flags;       // enum event_flag
	__u16 pad;
	__s32 kstack_len; // frames, or a negative errno of the stack walk
	__s32 ustack_len;
	__s32 wstack_len;
	__u64 kstack[MAX_STACK];
};

// struct event_eager adds the user stack taken at switch-out and the waker's
// kernel stack (eager records).
struct event_eager {
	struct event ev;
	__u64 ustack[MAX_STACK];
	__u64 wstack[MAX_STACK];
};

#endif
