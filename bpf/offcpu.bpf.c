// SPDX-License-Identifier: GPL-2.0
//
// Off-CPU intervals of the threads of a few target processes (JVMs).
//
// sched_switch keys a start timestamp per target thread when it leaves the
// CPU and, when the thread is switched back in after at least min_block_ns,
// emits one event with the interval and the kernel stack it waited in.
//
// The default ("lazy") capture takes that stack only at switch-in, from the
// incoming task (bpf_get_task_stack): the stack of a sleeping task does not
// change while it sleeps, and walking it only for intervals that pass the
// min_block filter is what makes this collector an order of magnitude cheaper
// than offcputime, which walks the stack at every switch-out.
//
// "Eager" capture (opt-in, sampled) walks the kernel and frame-pointer user
// stacks at switch-out instead, and the waker's kernel stack at sched_waking.
//
// Two flavours of every program are compiled: tp_btf (typed arguments,
// per-thread state in task storage) and raw_tp (untyped arguments read with
// CO-RE probe reads, per-thread state in LRU hashes) for kernels that refuse
// tp_btf. A raw_tp program cannot walk the stack of a task other than
// current, so that flavour always captures the kernel stack at switch-out.
//
// Timestamps (tp_btf): the scheduler has already read its clock for this
// switch (rq->clock, updated at the top of __schedule()), so the programs
// read that instead of calling bpf_ktime_get_ns(), which costs more than
// the rest of a program on a VM's kvm-clock. Start, the min_block test and
// the wait in the run queue (rq->clock minus the incoming task's
// sched_info.last_queued, its enqueue time) are differences in that clock;
// only an interval that is emitted reads CLOCK_MONOTONIC, once, and is
// placed by those differences back from it. sched_waking then reads no
// clock at all. Kernels without the fields (no CONFIG_FAIR_GROUP_SCHED or
// CONFIG_SCHED_INFO) and the raw_tp flavour read CLOCK_MONOTONIC at every
// switch and wakeup instead; CO-RE decides at load time.
//
// Everything that tunes the program (targets, thresholds, mode) is a
// read-only global set at load time; the verifier then prunes the branches
// that a configuration does not use.

#include <stdbool.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "offcpu.h"

char LICENSE[] SEC("license") = "GPL";

// Minimal kernel types, relocated against the running kernel's BTF (CO-RE).
struct rq {
	unsigned long long clock;
} __attribute__((preserve_access_index));

struct cfs_rq {
	struct rq *rq; // CONFIG_FAIR_GROUP_SCHED
} __attribute__((preserve_access_index));

struct sched_entity {
	struct cfs_rq *cfs_rq; // CONFIG_FAIR_GROUP_SCHED
} __attribute__((preserve_access_index));

struct sched_info {
	unsigned long long last_queued; // CONFIG_SCHED_INFO
} __attribute__((preserve_access_index));

struct task_struct {
	unsigned int __state;
	unsigned int flags;
	int pid;
	int tgid;
	struct sched_entity se;
	struct sched_info sched_info;
} __attribute__((preserve_access_index));

// Before 5.14 the task state field was called state.
struct task_struct___pre514 {
	long state;
} __attribute__((preserve_access_index));

#define PF_KTHREAD 0x00200000

// Load-time configuration (CollectionSpec.Variables).
const volatile __u32 targ_tgids[MAX_TARGETS] = {};
const volatile __u32 n_targets = 0;
const volatile __u32 self_tgid = 0;
const volatile __u64 min_block_ns = 1000000;
const volatile __u8 eager = 0;
// Eager mode captures stacks at one switch-out in eager_sample_every.
const volatile __u32 eager_sample_every = 1;
// The reader is woken only once this many bytes are waiting: a wakeup per
// event would put the collector on the CPU in the middle of the very
// intervals it measures.
const volatile __u64 wakeup_bytes = 65536;

// Per-thread state between switch-out and switch-in.
struct tstate {
	__u64 start_ns; // in the clock of the flavour: rq->clock or monotonic
	__u64 wake_ns;  // monotonic; only where the flavour reads it at wakeup
	__u32 waker_tid;
	__u8 state;
	__u8 flags; // EV_* of the stacks captured for this interval
	__u8 woken; // a sched_waking was seen during the interval
	__u8 pad;
};

// Stacks captured before switch-in: at switch-out (eager, raw_tp) and at
// sched_waking (eager). Kept apart from tstate so that lazy capture keeps
// only 24 bytes per thread.
struct tstacks {
	__s32 klen;
	__s32 ulen;
	__s32 wlen;
	__u32 pad;
	__u64 kstack[MAX_STACK];
	__u64 ustack[MAX_STACK];
	__u64 wstack[MAX_STACK];
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct tstate);
} tstate_task SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct tstacks);
} tstacks_task SEC(".maps");

// MaxEntries of the LRU maps are set at load time from the configuration.
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct tstate);
} tstate_lru SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct tstacks);
} tstacks_lru SEC(".maps");

// Where kernel-only events are built before their variable-length copy
// into the ring buffer.
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct event);
} scratch SEC(".maps");

// The source of new tstacks_lru entries (raw_tp only).
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tstacks);
} blank_tstacks SEC(".maps");

// Size set at load time.
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, COUNTER_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

// Force the enum and event types into BTF for bpf2go -type.
const enum counter *unused_counter __attribute__((unused));
const enum event_flag *unused_event_flag __attribute__((unused));
const struct event *unused_event __attribute__((unused));
const struct event_eager *unused_event_eager __attribute__((unused));

static __always_inline void count(__u32 c)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &c);
	if (v)
		*v += 1; // per-CPU slot, preemption is off in the tracepoint
}

static __always_inline bool is_target(__u32 tgid)
{
#pragma unroll
	for (int i = 0; i < MAX_TARGETS; i++) {
		if (i >= n_targets)
			return false;
		if (targ_tgids[i] == tgid)
			return tgid != self_tgid;
	}
	return false;
}

static __always_inline struct tstate *get_tstate(struct task_struct *task, __u32 tid, bool btf, bool create)
{
	if (btf)
		return bpf_task_storage_get(&tstate_task, task, 0,
					    create ? BPF_LOCAL_STORAGE_GET_F_CREATE : 0);
	struct tstate *ts = bpf_map_lookup_elem(&tstate_lru, &tid);
	if (ts || !create)
		return ts;
	struct tstate zero = {};
	bpf_map_update_elem(&tstate_lru, &tid, &zero, BPF_ANY);
	return bpf_map_lookup_elem(&tstate_lru, &tid);
}

static __always_inline struct tstacks *get_tstacks(struct task_struct *task, __u32 tid, bool btf, bool create)
{
	if (btf)
		return bpf_task_storage_get(&tstacks_task, task, 0,
					    create ? BPF_LOCAL_STORAGE_GET_F_CREATE : 0);
	struct tstacks *st = bpf_map_lookup_elem(&tstacks_lru, &tid);
	if (st || !create)
		return st;
	// A 3 KiB value does not fit on the 512-byte BPF stack: insert it
	// from a map value that is never written instead.
	__u32 zero = 0;
	struct tstacks *blank = bpf_map_lookup_elem(&blank_tstacks, &zero);
	if (!blank)
		return 0;
	bpf_map_update_elem(&tstacks_lru, &tid, blank, BPF_ANY);
	return bpf_map_lookup_elem(&tstacks_lru, &tid);
}

static __always_inline __u64 wakeup_flag(void)
{
	if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wakeup_bytes)
		return BPF_RB_FORCE_WAKEUP;
	return BPF_RB_NO_WAKEUP;
}

// rq_clock_usable is a load-time constant: whether the kernel has the fields
// that the rq->clock timestamps read (see the top of this file).
static __always_inline bool rq_clock_usable(void)
{
	return bpf_core_field_exists(((struct task_struct *)0)->se.cfs_rq) &&
	       bpf_core_field_exists(((struct cfs_rq *)0)->rq) &&
	       bpf_core_field_exists(((struct rq *)0)->clock) &&
	       bpf_core_field_exists(((struct task_struct *)0)->sched_info.last_queued);
}

// rq_clock is the clock of the run queue of task (on this CPU, the one
// switching), as of this __schedule(); 0 if it cannot be read.
static __always_inline __u64 rq_clock(struct task_struct *task)
{
	struct cfs_rq *cfs = task->se.cfs_rq;
	if (!cfs)
		return 0;
	struct rq *rq = cfs->rq;
	if (!rq)
		return 0;
	return rq->clock;
}

static __always_inline __u8 task_state(struct task_struct *prev, bool preempt, bool btf)
{
	// A preempted task stays runnable whatever __state says: it waits in
	// the run queue.
	if (preempt)
		return 0;
	if (bpf_core_field_exists(prev->__state)) {
		if (btf)
			return prev->__state & 0xff;
		return BPF_CORE_READ(prev, __state) & 0xff;
	}
	struct task_struct___pre514 *old = (void *)prev;
	return BPF_CORE_READ(old, state) & 0xff;
}

static __always_inline void switch_out(void *ctx, struct task_struct *prev, __u32 tid,
				       bool preempt, bool btf, __u64 now)
{
	struct tstate *ts = get_tstate(prev, tid, btf, true);
	if (!ts) {
		count(COUNTER_STATE_FAIL);
		return;
	}
	ts->start_ns = now;
	ts->wake_ns = 0;
	ts->waker_tid = 0;
	ts->flags = 0;
	ts->woken = 0;
	ts->state = task_state(prev, preempt, btf);

	// raw_tp cannot walk the incoming task's stack at switch-in, so it
	// walks current's now. Eager mode does so too, sampled, with the user
	// stack.
	bool capture = !btf;
	if (eager && (eager_sample_every <= 1 || bpf_get_prandom_u32() % eager_sample_every == 0))
		capture = true;
	if (!capture)
		return;
	struct tstacks *st = get_tstacks(prev, tid, btf, true);
	if (!st) {
		count(COUNTER_STATE_FAIL);
		return;
	}
	st->wlen = 0;
	st->klen = bpf_get_stack(ctx, st->kstack, sizeof(st->kstack), 0);
	ts->flags |= EV_KSTACK_OUT;
	if (eager) {
		st->ulen = bpf_get_stack(ctx, st->ustack, sizeof(st->ustack), BPF_F_USER_STACK);
		ts->flags |= EV_USTACK;
	} else {
		st->ulen = 0;
	}
}

// Monotonic times of an interval.
struct times {
	__u64 start, end, wake;
};

static __always_inline void fill(struct event *ev, struct tstate *ts, __u32 tid, __u32 tgid,
				 struct times *t)
{
	ev->start_ns = t->start;
	ev->end_ns = t->end;
	ev->wake_ns = t->wake;
	ev->tid = tid;
	ev->tgid = tgid;
	ev->waker_tid = ts->waker_tid;
	ev->cpu = bpf_get_smp_processor_id();
	ev->state = ts->state;
	ev->flags = ts->flags;
}

static __always_inline __s32 frames(__s32 len, __u32 counter)
{
	if (len < 0) {
		count(counter);
		return len;
	}
	return len / 8;
}

static __always_inline void switch_in(struct task_struct *next, __u32 tid, __u32 tgid, bool btf,
				      bool rqclk, __u64 now)
{
	struct tstate *ts = get_tstate(next, tid, btf, false);
	if (!ts || !ts->start_ns)
		return; // off the CPU since before the collector started
	__u64 start = ts->start_ns;
	ts->start_ns = 0;
	if (now - start < min_block_ns)
		return;

	struct times t = {.start = start, .end = now, .wake = ts->wake_ns};
	if (rqclk) {
		// The only clock read of the rq->clock flavour, for intervals
		// that are emitted: place them back from it.
		__u64 mono = bpf_ktime_get_ns();
		t.start = mono - (now - start);
		t.end = mono;
		t.wake = 0;
		// Woken, then queued at last_queued: waited for a CPU since.
		// A preempted task (state 0) has no wakeup.
		__u64 q = next->sched_info.last_queued;
		if (ts->woken && ts->state && q >= start && q <= now)
			t.wake = mono - (now - q);
	}

	struct tstacks *st = 0;
	if (ts->flags & EV_KSTACK_OUT) {
		st = get_tstacks(next, tid, btf, false);
		if (!st) {
			count(COUNTER_STATE_FAIL);
			return;
		}
	}
	if (!(ts->flags & (EV_USTACK | EV_WSTACK))) {
		// Kernel stack only: built in per-CPU scratch and copied into
		// the ring buffer with only the frames it has, which are usually
		// a tenth of MAX_STACK, so the ring holds ten times the events.
		__u32 zero = 0;
		struct event *ev = bpf_map_lookup_elem(&scratch, &zero);
		if (!ev)
			return;
		fill(ev, ts, tid, tgid, &t);
		long n = -1;
		if (st) {
			n = st->klen;
			if (n > 0 && bpf_probe_read_kernel(ev->kstack, sizeof(ev->kstack), st->kstack))
				n = -14; // -EFAULT
		} else if (btf) {
			// Lazy: the only stack walk of the default mode, and
			// only for intervals that passed the filter.
			n = bpf_get_task_stack(next, ev->kstack, sizeof(ev->kstack), 0);
		}
		ev->kstack_len = frames(n, COUNTER_KSTACK_FAIL);
		ev->ustack_len = 0;
		ev->wstack_len = 0;
		__u64 bytes = n > 0 ? n : 0;
		if (bytes > sizeof(ev->kstack))
			bytes = sizeof(ev->kstack);
		if (bpf_ringbuf_output(&events, ev, offsetof(struct event, kstack) + bytes, wakeup_flag())) {
			count(COUNTER_DROPS);
			return;
		}
		count(COUNTER_EVENTS);
		return;
	}
	if (!st)
		return;

	struct event_eager *ee = bpf_ringbuf_reserve(&events, sizeof(*ee), 0);
	if (!ee) {
		count(COUNTER_DROPS);
		return;
	}
	fill(&ee->ev, ts, tid, tgid, &t);
	ee->ev.kstack_len = frames(st->klen, COUNTER_KSTACK_FAIL);
	ee->ev.ustack_len = 0;
	ee->ev.wstack_len = 0;
	if (bpf_probe_read_kernel(ee->ev.kstack, sizeof(ee->ev.kstack), st->kstack))
		ee->ev.kstack_len = 0;
	if (ts->flags & EV_USTACK) {
		ee->ev.ustack_len = frames(st->ulen, COUNTER_USTACK_FAIL);
		if (bpf_probe_read_kernel(ee->ustack, sizeof(ee->ustack), st->ustack))
			ee->ev.ustack_len = 0;
	}
	if (ts->flags & EV_WSTACK) {
		ee->ev.wstack_len = frames(st->wlen, COUNTER_WSTACK_FAIL);
		if (bpf_probe_read_kernel(ee->wstack, sizeof(ee->wstack), st->wstack))
			ee->ev.wstack_len = 0;
	}
	count(COUNTER_EVENTS);
	bpf_ringbuf_submit(ee, wakeup_flag());
}

static __always_inline void waking(void *ctx, struct task_struct *p, __u32 tid, bool btf, bool rqclk)
{
	struct tstate *ts = get_tstate(p, tid, btf, false);
	if (!ts || !ts->start_ns)
		return;
	// The waker is current; from an interrupt that is whoever it hit
	// (often the idle task, tid 0).
	ts->waker_tid = (__u32)bpf_get_current_pid_tgid();
	ts->woken = 1;
	// Splits the interval into blocked (start to wakeup) and waiting
	// for a CPU (wakeup to switch-in). The rq->clock flavour takes the
	// time from the enqueue at switch-in instead.
	if (!rqclk)
		ts->wake_ns = bpf_ktime_get_ns();
	if (!eager || !(ts->flags & EV_USTACK))
		return;
	struct tstacks *st = get_tstacks(p, tid, btf, false);
	if (!st)
		return;
	st->wlen = bpf_get_stack(ctx, st->wstack, sizeof(st->wstack), 0);
	ts->flags |= EV_WSTACK;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(offcpu_switch_btf, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	// Filter before taking the time: almost every switch on the machine
	// is not ours and must cost as little as possible.
	__u32 prev_tgid = prev->tgid;
	__u32 next_tgid = next->tgid;
	bool out = is_target(prev_tgid) && !(prev->flags & PF_KTHREAD);
	bool in = is_target(next_tgid) && !(next->flags & PF_KTHREAD);
	if (!out && !in)
		return 0;
	bool rqclk = rq_clock_usable();
	__u64 now = rqclk ? rq_clock(out ? prev : next) : bpf_ktime_get_ns();
	if (!now) {
		count(COUNTER_STATE_FAIL);
		return 0;
	}
	if (out)
		switch_out(ctx, prev, prev->pid, preempt, true, now);
	if (in)
		switch_in(next, next->pid, next_tgid, true, rqclk, now);
	return 0;
}

SEC("tp_btf/sched_waking")
int BPF_PROG(offcpu_waking_btf, struct task_struct *p)
{
	if (!is_target(p->tgid))
		return 0;
	waking(ctx, p, p->pid, true, rq_clock_usable());
	return 0;
}

SEC("raw_tp/sched_switch")
int offcpu_switch_raw(struct bpf_raw_tracepoint_args *ctx)
{
	bool preempt = ctx->args[0];
	struct task_struct *prev = (void *)ctx->args[1];
	struct task_struct *next = (void *)ctx->args[2];
	__u32 prev_tgid = BPF_CORE_READ(prev, tgid);
	__u32 next_tgid = BPF_CORE_READ(next, tgid);
	bool out = is_target(prev_tgid) && !(BPF_CORE_READ(prev, flags) & PF_KTHREAD);
	bool in = is_target(next_tgid) && !(BPF_CORE_READ(next, flags) & PF_KTHREAD);
	if (!out && !in)
		return 0;
	__u64 now = bpf_ktime_get_ns();
	if (out)
		switch_out(ctx, prev, BPF_CORE_READ(prev, pid), preempt, false, now);
	if (in)
		switch_in(next, BPF_CORE_READ(next, pid), next_tgid, false, false, now);
	return 0;
}

SEC("raw_tp/sched_waking")
int offcpu_waking_raw(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *p = (void *)ctx->args[0];
	if (!is_target(BPF_CORE_READ(p, tgid)))
		return 0;
	waking(ctx, p, BPF_CORE_READ(p, pid), false, false);
	return 0;
}
