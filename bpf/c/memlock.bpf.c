// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Traces the mlock family through the syscall tracepoints: the entry hook
 * remembers the arguments per thread, the exit hook joins them with the
 * return value and the process context and emits one struct event into a
 * ring buffer. Every record that cannot be emitted is counted, never lost
 * silently, and so is the call it stood for, by syscall and result, where
 * the exit saw them (lost_calls).
 */
#include "vmlinux_min.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "memlock.h"

char __license[] SEC("license") = "Dual BSD/GPL";

/*
 * Pending-bytes threshold for waking the reader, set by the loader. Below it
 * records are submitted without a wake-up, so a burst costs one wake-up
 * instead of one per call; the reader polls with a deadline so a lone record
 * still leaves in time. Zero wakes the reader on every record.
 */
const volatile __u64 wakeup_bytes = 0;

/*
 * The least time between two wake-ups forced by wakeup_bytes, set by the
 * loader (see submit_flags). The first record past the threshold after a
 * quiet gap wakes the reader at once, so the gap delays no wake-up that
 * a sleeping reader needs unless wakeup_bytes fill within it.
 */
const volatile __u64 wakeup_gap_ns = 0;

/* When submit_flags last forced a wake-up: one slot for every program. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} last_wakeup SEC(".maps");

/*
 * Set by the loader on kernels (5.11+) with bpf_get_current_task_btf and
 * task-local storage. Then calls in flight live in the task itself instead
 * of a locked hash map, and the task's fields are read with plain loads
 * instead of one bpf_probe_read_kernel call each: on the development VM
 * this halved the programs' run time. The verifier never visits the branch
 * a constant rules out, so older kernels load the fallback path only.
 */
const volatile bool use_task_btf = false;

/*
 * The pressure valve: while the ring buffer holds more than this many
 * unread bytes (half its size, set by the loader), a thread's call that
 * repeats its previous call exactly (syscall, arguments and result) for
 * the REPEATS_KEPT-th time or more is not written, only counted
 * (COUNTER_REPEAT_SHED and lost_calls). A flood of identical calls thus
 * fills half the ring at most, and the other half stays for everyone
 * else's records; the reader folds the repeats it does get. Zero turns the
 * valve off: so it is without task storage, which keeps the repeat streak.
 */
const volatile __u64 shed_above_bytes = 0;
#define REPEATS_KEPT 16

struct entry {
	__u64 entry_ns;
	__u64 addr;
	__u64 len;
	__u64 flags;
	__u64 kernel_start; /* do_mlock entry time, 0 outside do_mlock */
	__u64 kernel_ns;    /* time spent in do_mlock so far */
	__u32 syscall;
	__u32 reserved;
	/* The thread's previous call and how many times in a row it was
	 * made: kept across calls in task storage only (shed_above_bytes). */
	__u64 last_addr;
	__u64 last_len;
	__u64 last_flags;
	__s64 last_ret;
	__u32 last_syscall;
	__u32 streak;
};

/* A libc call in flight, seen by the uprobes, by thread id. */
struct libc_call {
	__u64 caller_addr;
	__u32 fn;
	__u32 reserved;
};

/*
 * Set by the loader for exit-only tracing (no duration): each syscall has
 * its exit hook alone, which reads the call's arguments from the thread's
 * saved user registers, where the syscall's entry put them and where they
 * stay until the return to user space. It saves the entry hook and the
 * store of the call in flight, at the price of the duration: the record's
 * duration_ns is DURATION_UNKNOWN and its entry_ns the exit's time. The
 * tracepoint and kprobe hooks find the registers with bpf_task_pt_regs
 * (5.15+); fexit has them as its argument.
 */
const volatile bool exit_only = false;

/* Set by the loader when the libc uprobes are attached. */
const volatile bool use_uprobes = false;

/* Set by the loader to put each process's arguments in its identity. */
const volatile bool with_args = false;

/*
 * The processes whose identity the reader has been given, by tgid: their
 * start time and cgroup v2, which with the pid name them. A process not in
 * it (new, evicted, or exec'd since) gets a process_record before its next
 * call's record. LRU: the dead go first.
 */
struct seen {
	__u64 start_ns;
	__u64 cgroup_id;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct seen);
} seen_processes SEC(".maps");

/* Only to put the ring buffer's other records in the object's BTF, for
 * bpf2go to generate their Go types (decode_test.go checks the layout). */
const struct process_record *unused_process_record __attribute__((unused));
const struct cgroup_record *unused_cgroup_record __attribute__((unused));
const struct call_record *unused_call_record __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20); /* resized by the loader */
	__type(value, struct event);
} events SEC(".maps");

/* Calls in flight, in each task's own storage (use_task_btf). */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct entry);
} task_entries SEC(".maps");

/* Calls in flight, by thread id, where task storage is missing: a thread
 * is in at most one syscall. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct entry);
} entries SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct libc_call);
} libc_calls SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, COUNTER_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

/* Only the paths that lose a record touch it: the fast path pays nothing. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, LOST_CALL_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} lost_calls SEC(".maps");

/* Layout of the syscall tracepoints' records (see the format files in tracefs). */
struct syscall_enter_ctx {
	__u64 common;
	__s32 syscall_nr;
	__u32 pad;
	__u64 args[6];
};

struct syscall_exit_ctx {
	__u64 common;
	__s32 syscall_nr;
	__u32 pad;
	__s64 ret;
};

static __always_inline void count(__u32 idx)
{
	__u64 *value = bpf_map_lookup_elem(&counters, &idx);

	if (value)
		*value += 1; /* per-CPU slot: no other writer */
}

/*
 * Counts a call that happened but whose record is lost, for the call
 * metrics; the reason is counted apart. syscall is a constant of the hook,
 * never SYSCALL_UNKNOWN.
 */
static __always_inline void count_lost_call(__u32 syscall, __s64 ret)
{
	/* Negated as unsigned: -ret overflows for the smallest __s64. */
	__u64 err = ret < 0 ? 0 - (__u64)ret : 0;
	__u32 idx;
	__u64 *value;

	if (err > ERRNO_SLOTS - 1)
		err = ERRNO_SLOTS - 1;
	idx = (syscall - 1) * ERRNO_SLOTS + (__u32)err;
	value = bpf_map_lookup_elem(&lost_calls, &idx);
	if (value)
		*value += 1;
}

/* A call whose record is lost, for reason (a COUNTER_*): both counts. */
static __always_inline void lose_record(__u32 reason, __u32 syscall, __s64 ret)
{
	count(reason);
	count_lost_call(syscall, ret);
}

static __always_inline void on_enter(__u32 syscall, __u64 addr, __u64 len, __u64 flags)
{
	struct entry *slot;
	struct entry e = {
		.entry_ns = bpf_ktime_get_boot_ns(),
		.addr = addr,
		.len = len,
		.flags = flags,
		.syscall = syscall,
	};

	if (use_task_btf) {
		slot = bpf_task_storage_get(&task_entries, bpf_get_current_task_btf(), 0,
					    BPF_LOCAL_STORAGE_GET_F_CREATE);
		if (!slot) {
			count(COUNTER_ENTRY_MAP_FULL);
			return;
		}
		/* Field by field: the previous call's fields stay. */
		slot->entry_ns = e.entry_ns;
		slot->addr = addr;
		slot->len = len;
		slot->flags = flags;
		slot->kernel_start = 0;
		slot->kernel_ns = 0;
		slot->syscall = syscall;
		return;
	}

	__u32 tid = (__u32)bpf_get_current_pid_tgid();

	if (bpf_map_update_elem(&entries, &tid, &e, BPF_ANY))
		count(COUNTER_ENTRY_MAP_FULL);
}

/* Finds this thread's call in flight and marks it taken, so that a later
 * exit without an entry is not joined to it. Copies it out because the
 * hash map's slot is freed right away. */
static __always_inline bool take_entry(__u32 syscall, __u32 tid, struct task_struct *task, struct entry *out,
				       struct entry **slot)
{
	struct entry *e;

	*slot = 0;
	if (use_task_btf) {
		e = bpf_task_storage_get(&task_entries, task, 0, 0);
		if (!e || e->syscall != syscall)
			return false;
		*out = *e;
		e->syscall = SYSCALL_UNKNOWN;
		*slot = e;
		return true;
	}
	e = bpf_map_lookup_elem(&entries, &tid);
	if (!e)
		return false;
	*out = *e;
	/* A mismatch means an entry from another call whose exit was lost. */
	bpf_map_delete_elem(&entries, &tid);
	return out->syscall == syscall;
}

/*
 * Process context through BTF pointers: plain loads the verifier guards.
 * A macro, for both kinds of call record.
 */
#define read_creds_btf(ev_, task_)                                  \
	do {                                                        \
		const struct cred *cred_ = (task_)->cred;           \
		(ev_)->ppid = (task_)->real_parent->tgid;           \
		(ev_)->uid = cred_->uid.val;                        \
		(ev_)->euid = cred_->euid.val;                      \
		(ev_)->gid = cred_->gid.val;                        \
		(ev_)->egid = cred_->egid.val;                      \
	} while (0)

/*
 * The executable's name when with_exe, which the reader otherwise takes
 * from the process's identity (one string read less per call: about 90 ns
 * of a 400 ns exit program on the development VM).
 */
static __always_inline void read_exe_btf(struct event *ev, struct task_struct *task, bool with_exe)
{
	struct mm_struct *mm = task->mm;
	const unsigned char *exe = 0;

	ev->exe_name[0] = '\0';
	if (!with_exe)
		return;
	if (mm && mm->exe_file)
		exe = mm->exe_file->f_path.dentry->d_name.name;
	if (!exe || bpf_probe_read_kernel_str(ev->exe_name, sizeof(ev->exe_name), exe) < 0)
		ev->exe_name[0] = '\0';
}

/* Process context through bpf_probe_read_kernel, for kernels before 5.11. */
static __always_inline void read_task_probe(struct event *ev, bool with_exe)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	const struct cred *cred = BPF_CORE_READ(task, cred);
	const unsigned char *exe;

	ev->ppid = BPF_CORE_READ(task, real_parent, tgid);
	ev->uid = BPF_CORE_READ(cred, uid.val);
	ev->euid = BPF_CORE_READ(cred, euid.val);
	ev->gid = BPF_CORE_READ(cred, gid.val);
	ev->egid = BPF_CORE_READ(cred, egid.val);
	ev->exe_name[0] = '\0';
	if (!with_exe)
		return;
	exe = BPF_CORE_READ(task, mm, exe_file, f_path.dentry, d_name.name);
	if (!exe || bpf_probe_read_kernel_str(ev->exe_name, sizeof(ev->exe_name), exe) < 0)
		ev->exe_name[0] = '\0';
}

/*
 * The process's identity, read once per process (see seen_processes):
 * every field through bpf_probe_read_kernel, which works on every kernel,
 * since its cost is paid only then.
 */

/* The executable's path within its mount, up from its dentry to the
 * mount's root, and the mount's id: the reader puts the mount point in
 * front. (Walking up through the mounts too made the verifier's work
 * explode, past its limit.) */
static __always_inline void read_exe_path(struct process_record *rec, struct task_struct *task)
{
	struct file *exe = BPF_CORE_READ(task, mm, exe_file);
	struct dentry *d, *parent, *root;
	struct vfsmount *vmnt;
	__u32 depth = 0;

	if (!exe) {
		rec->path_flags = PATH_NONE;
		return;
	}
	d = BPF_CORE_READ(exe, f_path.dentry);
	vmnt = BPF_CORE_READ(exe, f_path.mnt);
	root = BPF_CORE_READ(vmnt, mnt_root);
	bpf_probe_read_kernel(&rec->exe_mnt_id, sizeof(rec->exe_mnt_id),
			      (void *)vmnt - bpf_core_field_offset(struct mount, mnt) +
				      bpf_core_field_offset(struct mount, mnt_id));
	for (int i = 0; i < PATH_DEPTH; i++) {
		parent = BPF_CORE_READ(d, d_parent);
		if (d == root || d == parent)
			break;
		bpf_probe_read_kernel_str(rec->comps[i], PATH_NAME_LEN, BPF_CORE_READ(d, d_name.name));
		depth++;
		d = parent;
	}
	if (depth == PATH_DEPTH && d != root)
		rec->path_flags = PATH_TRUNCATED;
	rec->path_depth = depth;
}

/* Each cgroup v1 controller's cgroup, for the hierarchy that names a
 * container on hosts that still mount them (ids only: the reader has
 * their paths from the cgroup records and from cgroupfs). A controller
 * not compiled in reads as zeros: probe reads of a NULL pointer fail
 * cleanly. */
static __always_inline void read_v1_cgroups(struct process_record *rec, struct task_struct *task)
{
	void *subsys = (void *)BPF_CORE_READ(task, cgroups) + bpf_core_field_offset(struct css_set, subsys);
	__u32 count = bpf_core_enum_value(enum cgroup_subsys_id, CGROUP_SUBSYS_COUNT);
	struct cgroup_subsys_state *css;
	struct cgroup *cg;

	for (__u32 i = 0; i < CGROUP_SLOTS && i < count; i++) {
		css = 0;
		bpf_probe_read_kernel(&css, sizeof(css), subsys + i * sizeof(css));
		cg = BPF_CORE_READ(css, cgroup);
		rec->v1_hierarchy[i] = BPF_CORE_READ(cg, root, hierarchy_id);
		rec->v1_cgroup_id[i] = BPF_CORE_READ(cg, kn, id);
	}
}

static __always_inline void read_args(struct process_record *rec, struct task_struct *task)
{
	unsigned long start = BPF_CORE_READ(task, mm, arg_start);
	unsigned long end = BPF_CORE_READ(task, mm, arg_end);
	__u64 len = end - start;

	if (!start || end <= start)
		return;
	if (len > ARGS_LEN)
		len = ARGS_LEN;
	if (bpf_probe_read_user(rec->args, len, (void *)start) == 0)
		rec->args_len = len;
}

/*
 * Writes the calling process's identity into the ring buffer unless the
 * reader has it already. A record that finds no room is tried again at the
 * process's next call. A global function: the verifier checks it once, on
 * its own, rather than within every path of every program that calls it.
 * Returns 1 when the reader has the identity or will have it before the
 * call's record (it names the executable then), 0 when it was not sent.
 */
__noinline int note_process(__u32 pid, __u64 start_ns, __u64 cgroup_id)
{
	struct seen *known = bpf_map_lookup_elem(&seen_processes, &pid);
	struct seen now = { .start_ns = start_ns, .cgroup_id = cgroup_id };
	struct task_struct *task;
	struct process_record *rec;
	struct pid *tp;
	__u32 level;

	if (known && known->start_ns == start_ns && known->cgroup_id == cgroup_id)
		return 1;
	rec = bpf_ringbuf_reserve(&events, sizeof(*rec), 0);
	if (!rec)
		return 0;
	task = (struct task_struct *)bpf_get_current_task();
	rec->start_ns = start_ns;
	rec->cgroup_id = cgroup_id;
	rec->pid = pid;
	tp = BPF_CORE_READ(task, group_leader, thread_pid);
	level = BPF_CORE_READ(tp, level);
	rec->pid_level = level;
	rec->vpid = pid;
	bpf_probe_read_kernel(&rec->vpid, sizeof(rec->vpid),
			      (void *)tp + bpf_core_field_offset(struct pid, numbers) +
				      (level & 31) * bpf_core_type_size(struct upid) +
				      bpf_core_field_offset(struct upid, nr));
	rec->path_depth = 0;
	rec->path_flags = 0;
	rec->args_len = 0;
	rec->exe_mnt_id = 0;
	rec->reserved = 0;
	__builtin_memset(rec->v1_hierarchy, 0, sizeof(rec->v1_hierarchy));
	__builtin_memset(rec->v1_cgroup_id, 0, sizeof(rec->v1_cgroup_id));
	read_exe_path(rec, task);
	read_v1_cgroups(rec, task);
	if (with_args)
		read_args(rec, task);
	bpf_ringbuf_submit(rec, 0);
	bpf_map_update_elem(&seen_processes, &pid, &now, BPF_ANY);
	return 1;
}

/*
 * The wake-up of the reader for a record submitted at now (boot clock).
 * Past wakeup_bytes of unread data the reader is woken, but at most once
 * per wakeup_gap_ns: a reader that is behind (a burst, a slow export) has
 * all the data it can read, and waking it again for every record queued
 * an interrupt per record, which cost each traced call 4 µs on the
 * development VM, over three times the call itself.
 */
static __always_inline __u64 submit_flags(__u64 now)
{
	__u32 zero = 0;
	__u64 *last;

	if (!wakeup_bytes)
		return 0;
	if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) < wakeup_bytes)
		return BPF_RB_NO_WAKEUP;
	last = bpf_map_lookup_elem(&last_wakeup, &zero);
	if (!last)
		return BPF_RB_FORCE_WAKEUP;
	/* Signed: another CPU may have written a time just after ours. */
	if ((__s64)(now - *last) < (__s64)wakeup_gap_ns)
		return BPF_RB_NO_WAKEUP;
	*last = now;
	return BPF_RB_FORCE_WAKEUP;
}

/*
 * Notes the call in the thread's repeat streak and says whether to shed
 * its record: a long repeat while the ring buffer is more than half full
 * (see shed_above_bytes). The ring buffer is queried only for a long
 * repeat, so other calls pay two comparisons.
 */
static __always_inline bool shed_repeat(struct entry *slot, __u32 syscall, __s64 ret)
{
	if (!shed_above_bytes || !slot)
		return false;
	if (slot->last_syscall == syscall && slot->last_addr == slot->addr && slot->last_len == slot->len &&
	    slot->last_flags == slot->flags && slot->last_ret == ret) {
		if (slot->streak < REPEATS_KEPT)
			slot->streak++;
	} else {
		slot->last_syscall = syscall;
		slot->last_addr = slot->addr;
		slot->last_len = slot->len;
		slot->last_flags = slot->flags;
		slot->last_ret = ret;
		slot->streak = 1;
	}
	return slot->streak >= REPEATS_KEPT && bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) > shed_above_bytes;
}

/*
 * Fills the fields struct event and struct call_record share, the same by
 * name in both: a macro, because they sit at different offsets. Its
 * parameters end in _ so that none is a field's name, which the
 * preprocessor would replace after ->.
 */
#define FILL_CALL(ev_, e_, duration_, syscall_, probe_, ret_, pid_tgid_, cgroup_id_, start_ns_) \
	do {                                                                              \
		(ev_)->entry_ns = (e_)->entry_ns;                                         \
		(ev_)->duration_ns = (duration_);                                         \
		(ev_)->addr = (e_)->addr;                                                 \
		(ev_)->len = (e_)->len;                                                   \
		(ev_)->flags = (e_)->flags;                                               \
		(ev_)->ret = (ret_);                                                      \
		(ev_)->syscall = (syscall_);                                              \
		(ev_)->probe = (probe_);                                                  \
		(ev_)->pid = (pid_tgid_) >> 32;                                           \
		(ev_)->tid = (__u32)(pid_tgid_);                                          \
		(ev_)->cgroup_id = (cgroup_id_);                                          \
		(ev_)->start_ns = (start_ns_);                                            \
		bpf_get_current_comm((ev_)->comm, sizeof((ev_)->comm));                   \
	} while (0)

/*
 * Writes the call's record: e holds its entry time and arguments, and
 * duration is its duration or DURATION_UNKNOWN. task is the current task
 * when use_task_btf, else 0. The short struct call_record when it says it
 * all (see memlock.h), else the full struct event.
 */
static __always_inline void emit(__u32 syscall, __u32 probe, __s64 ret, __u64 pid_tgid, struct task_struct *task,
				 const struct entry *e, __u64 duration)
{
	__u32 tid = (__u32)pid_tgid;
	__u32 pid = pid_tgid >> 32;
	__u64 cgroup_id, start_ns, caller_addr = 0;
	__u32 libc_fn = LIBC_NONE;
	__u64 wakeup = duration == DURATION_UNKNOWN ? e->entry_ns : e->entry_ns + duration;
	struct call_record *cr;
	struct event *ev;
	int identity_sent;

	cgroup_id = bpf_get_current_cgroup_id();
	if (use_task_btf)
		start_ns = task->group_leader->start_boottime;
	else
		start_ns = BPF_CORE_READ((struct task_struct *)bpf_get_current_task(), group_leader, start_boottime);
	/* The identity goes first, so the reader has it for the call. */
	identity_sent = note_process(pid, start_ns, cgroup_id);

	if (use_uprobes) {
		struct libc_call *lc = bpf_map_lookup_elem(&libc_calls, &tid);

		if (lc) {
			caller_addr = lc->caller_addr;
			libc_fn = lc->fn;
		}
	}

	if (use_task_btf && identity_sent && !e->kernel_ns && libc_fn == LIBC_NONE) {
		cr = bpf_ringbuf_reserve(&events, sizeof(*cr), 0);
		if (!cr) {
			lose_record(COUNTER_RINGBUF_FULL, syscall, ret);
			return;
		}
		FILL_CALL(cr, e, duration, syscall, probe, ret, pid_tgid, cgroup_id, start_ns);
		cr->reserved = 0;
		read_creds_btf(cr, task);
		bpf_ringbuf_submit(cr, submit_flags(wakeup));
		return;
	}

	ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);
	if (!ev) {
		lose_record(COUNTER_RINGBUF_FULL, syscall, ret);
		return;
	}
	FILL_CALL(ev, e, duration, syscall, probe, ret, pid_tgid, cgroup_id, start_ns);
	ev->kernel_ns = e->kernel_ns;
	ev->caller_addr = caller_addr;
	ev->libc_fn = libc_fn;
	if (use_task_btf) {
		read_creds_btf(ev, task);
		read_exe_btf(ev, task, !identity_sent);
	} else {
		read_task_probe(ev, !identity_sent);
	}
	bpf_ringbuf_submit(ev, submit_flags(wakeup));
}

/* The exit of a call whose entry hook stored it (two hooks per call). */
static __always_inline void on_exit(__u32 syscall, __u32 probe, __s64 ret)
{
	__u64 now = bpf_ktime_get_boot_ns();
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct task_struct *task = 0;
	struct entry e, *slot;

	if (use_task_btf)
		task = bpf_get_current_task_btf();
	if (!take_entry(syscall, (__u32)pid_tgid, task, &e, &slot)) {
		/* Still a call: one under way when the hooks were attached,
		 * or whose entry could not be stored, skipped or overwritten.
		 * Its syscall and result are known, its arguments and
		 * duration are not. */
		lose_record(COUNTER_MISSED_ENTRY, syscall, ret);
		return;
	}
	if (shed_repeat(slot, syscall, ret)) {
		lose_record(COUNTER_REPEAT_SHED, syscall, ret);
		return;
	}
	emit(syscall, probe, ret, pid_tgid, task, &e, now - e.entry_ns);
}

/*
 * A call seen at its exit only (exit_only, which implies use_task_btf):
 * the arguments come from the hook. The repeat streak of the pressure
 * valve is kept only while the ring buffer is over its threshold, so that
 * the task-storage lookup is paid under pressure alone: a flood is shed
 * from its REPEATS_KEPT-th repeat after the pressure began.
 */
static __always_inline void on_exit_only(__u32 syscall, __u32 probe, __s64 ret, __u64 addr, __u64 len, __u64 flags)
{
	struct entry e = {
		.entry_ns = bpf_ktime_get_boot_ns(),
		.addr = addr,
		.len = len,
		.flags = flags,
	};
	struct task_struct *task = bpf_get_current_task_btf();
	struct entry *slot;

	if (shed_above_bytes && bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) > shed_above_bytes) {
		slot = bpf_task_storage_get(&task_entries, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
		if (slot) {
			slot->addr = addr;
			slot->len = len;
			slot->flags = flags;
			if (shed_repeat(slot, syscall, ret)) {
				lose_record(COUNTER_REPEAT_SHED, syscall, ret);
				return;
			}
		}
	}
	emit(syscall, probe, ret, bpf_get_current_pid_tgid(), task, &e, DURATION_UNKNOWN);
}

/*
 * The hooks. Every kind of hook runs the same on_enter/on_exit, so every
 * kind yields the same record; only how the arguments are fetched differs.
 * ARGS_<syscall>(A) lists (addr, len, flags) in terms of A(i), the i-th
 * syscall argument; calls without a range or flags report zeros.
 */
#define ARGS_mlock(A) A(0), A(1), 0
#define ARGS_mlock2(A) A(0), A(1), (__u32)A(2) /* flags is an int in the kernel */
#define ARGS_munlock(A) A(0), A(1), 0
#define ARGS_mlockall(A) 0, 0, (__u32)A(0)
#define ARGS_munlockall(A) 0, 0, 0


/*
 * kprobes and fentry on the syscall's kernel function (__x64_sys_<name>,
 * set by the loader): with syscall wrappers its one argument is the user's
 * saved registers, which hold the syscall's arguments.
 */
static __always_inline __u64 regs_arg_probe(const struct pt_regs *regs, int i)
{
	switch (i) {
	case 0:
		return BPF_CORE_READ(regs, di);
	case 1:
		return BPF_CORE_READ(regs, si);
	default:
		return BPF_CORE_READ(regs, dx);
	}
}

static __always_inline __u64 regs_arg_btf(const struct pt_regs *regs, int i)
{
	switch (i) {
	case 0:
		return regs->di;
	case 1:
		return regs->si;
	default:
		return regs->dx;
	}
}

/* The user registers saved at syscall entry, for exit_only (5.15+). */
static __always_inline const struct pt_regs *user_regs(void)
{
	return (const struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
}

#define REGS_ARG(i) regs_arg_btf(regs, i)

/* Syscall tracepoints: the arguments are in the entry's record. */
#define TP_ARG(i) ctx->args[i]
#define TRACEPOINT_HOOKS(name, id)                                            \
	SEC("tracepoint/syscalls/sys_enter_" #name)                           \
	int tp_enter_##name(struct syscall_enter_ctx *ctx)                    \
	{                                                                     \
		on_enter(id, ARGS_##name(TP_ARG));                            \
		return 0;                                                     \
	}                                                                     \
	SEC("tracepoint/syscalls/sys_exit_" #name)                            \
	int tp_exit_##name(struct syscall_exit_ctx *ctx)                      \
	{                                                                     \
		if (exit_only) {                                              \
			const struct pt_regs *regs __attribute__((unused)) =  \
				user_regs();                                  \
			on_exit_only(id, PROBE_TRACEPOINT, ctx->ret,          \
				     ARGS_##name(REGS_ARG));                  \
			return 0;                                             \
		}                                                             \
		on_exit(id, PROBE_TRACEPOINT, ctx->ret);                      \
		return 0;                                                     \
	}

#define KP_ARG(i) regs_arg_probe(regs, i)
#define KPROBE_HOOKS(name, id)                                            \
	SEC("kprobe")                                                     \
	int kp_enter_##name(struct pt_regs *ctx)                          \
	{                                                                 \
		const struct pt_regs *regs __attribute__((unused)) =      \
			(const struct pt_regs *)PT_REGS_PARM1(ctx);       \
		on_enter(id, ARGS_##name(KP_ARG));                        \
		return 0;                                                 \
	}                                                                 \
	SEC("kretprobe")                                                  \
	int kp_exit_##name(struct pt_regs *ctx)                           \
	{                                                                 \
		if (exit_only) {                                          \
			const struct pt_regs *regs __attribute__((unused)) = \
				user_regs();                                 \
			on_exit_only(id, PROBE_KPROBE,                    \
				     (long)PT_REGS_RC(ctx),               \
				     ARGS_##name(REGS_ARG));              \
			return 0;                                         \
		}                                                         \
		on_exit(id, PROBE_KPROBE, (long)PT_REGS_RC(ctx));         \
		return 0;                                                 \
	}

#define FE_ARG(i) regs_arg_btf(regs, i)
#define FENTRY_HOOKS(name, id)                                            \
	SEC("fentry/__x64_sys_" #name)                                    \
	int BPF_PROG(fe_enter_##name, const struct pt_regs *regs)         \
	{                                                                 \
		on_enter(id, ARGS_##name(FE_ARG));                        \
		return 0;                                                 \
	}                                                                 \
	SEC("fexit/__x64_sys_" #name)                                     \
	int BPF_PROG(fe_exit_##name, const struct pt_regs *regs, long ret) \
	{                                                                 \
		if (exit_only) {                                          \
			on_exit_only(id, PROBE_FENTRY, ret,               \
				     ARGS_##name(FE_ARG));                \
			return 0;                                         \
		}                                                         \
		on_exit(id, PROBE_FENTRY, ret);                           \
		return 0;                                                 \
	}

#define HOOKS(name, id)             \
	TRACEPOINT_HOOKS(name, id)  \
	KPROBE_HOOKS(name, id)      \
	FENTRY_HOOKS(name, id)

HOOKS(mlock, SYSCALL_MLOCK)
HOOKS(mlock2, SYSCALL_MLOCK2)
HOOKS(munlock, SYSCALL_MUNLOCK)
HOOKS(mlockall, SYSCALL_MLOCKALL)
HOOKS(munlockall, SYSCALL_MUNLOCKALL)

/*
 * The kernel-function view: do_mlock() does the locking for both mlock and
 * mlock2. Its time is added to the call in flight, which the syscall's exit
 * then reports. Nothing is emitted here.
 */
static __always_inline struct entry *entry_in_flight(void)
{
	if (use_task_btf)
		return bpf_task_storage_get(&task_entries, bpf_get_current_task_btf(), 0, 0);
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	return bpf_map_lookup_elem(&entries, &tid);
}

static __always_inline void do_mlock_enter(void)
{
	struct entry *e = entry_in_flight();

	if (e && (e->syscall == SYSCALL_MLOCK || e->syscall == SYSCALL_MLOCK2))
		e->kernel_start = bpf_ktime_get_boot_ns();
}

static __always_inline void do_mlock_exit(void)
{
	struct entry *e = entry_in_flight();

	if (e && e->kernel_start) {
		e->kernel_ns += bpf_ktime_get_boot_ns() - e->kernel_start;
		e->kernel_start = 0;
	}
}

SEC("fentry/do_mlock")
int BPF_PROG(fe_enter_do_mlock)
{
	do_mlock_enter();
	return 0;
}

SEC("fexit/do_mlock")
int BPF_PROG(fe_exit_do_mlock)
{
	do_mlock_exit();
	return 0;
}

SEC("kprobe/do_mlock")
int kp_enter_do_mlock(struct pt_regs *ctx)
{
	do_mlock_enter();
	return 0;
}

SEC("kretprobe/do_mlock")
int kp_exit_do_mlock(struct pt_regs *ctx)
{
	do_mlock_exit();
	return 0;
}

/*
 * The user-side view (opt-in): uprobes on libc's mlock, mlock2 and
 * mlockall note which function the call came through and its caller's
 * return address, which sits on top of the stack at function entry. The
 * syscall's exit copies both into its record, so one call stays one
 * record; the uretprobe forgets the call.
 */
static __always_inline void libc_enter(struct pt_regs *ctx, __u32 fn)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct libc_call lc = { .fn = fn };

	if (bpf_probe_read_user(&lc.caller_addr, sizeof(lc.caller_addr), (void *)PT_REGS_SP(ctx)))
		lc.caller_addr = 0;
	bpf_map_update_elem(&libc_calls, &tid, &lc, BPF_ANY);
}

static __always_inline void libc_exit(void)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();

	bpf_map_delete_elem(&libc_calls, &tid);
}

#define LIBC_HOOKS(name, fn)                                              \
	SEC("uprobe")                                                     \
	int up_enter_##name(struct pt_regs *ctx)                          \
	{                                                                 \
		libc_enter(ctx, fn);                                      \
		return 0;                                                 \
	}                                                                 \
	SEC("uretprobe")                                                  \
	int up_exit_##name(struct pt_regs *ctx)                           \
	{                                                                 \
		libc_exit();                                              \
		return 0;                                                 \
	}

LIBC_HOOKS(mlock, LIBC_MLOCK)
LIBC_HOOKS(mlock2, LIBC_MLOCK2)
LIBC_HOOKS(mlockall, LIBC_MLOCKALL)

/*
 * Identity upkeep. These are scheduler and cgroup tracepoints, not syscall
 * tracepoints: they put no tax on other syscalls.
 *
 * An exec keeps the pid and the start time but makes another program of
 * the process: forget it, so that its next call sends its new identity.
 */
SEC("raw_tracepoint/sched_process_exec")
int rtp_sched_process_exec(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *p = (struct task_struct *)ctx->args[0];
	__u32 pid = BPF_CORE_READ(p, tgid);

	bpf_map_delete_elem(&seen_processes, &pid);
	return 0;
}

/* A cgroup's path, for the reader to name the cgroup ids of identities by,
 * even after the cgroup is gone (a container runtime removes it as soon as
 * the container's processes exit). The path is the tracepoint's own. */
static __always_inline void note_cgroup(struct bpf_raw_tracepoint_args *ctx, __u32 op)
{
	struct cgroup *cg = (struct cgroup *)ctx->args[0];
	struct cgroup_record *rec = bpf_ringbuf_reserve(&events, sizeof(*rec), 0);

	/* No room: the reader finds the path in cgroupfs while the cgroup
	 * lasts. Not a call lost, so not counted as one. */
	if (!rec)
		return;
	rec->id = BPF_CORE_READ(cg, kn, id);
	rec->hierarchy = BPF_CORE_READ(cg, root, hierarchy_id);
	rec->op = op;
	if (bpf_probe_read_kernel_str(rec->path, sizeof(rec->path), (const char *)ctx->args[1]) < 0)
		rec->path[0] = '\0';
	bpf_ringbuf_submit(rec, 0);
}

SEC("raw_tracepoint/cgroup_mkdir")
int rtp_cgroup_mkdir(struct bpf_raw_tracepoint_args *ctx)
{
	note_cgroup(ctx, CGROUP_MKDIR);
	return 0;
}

SEC("raw_tracepoint/cgroup_rmdir")
int rtp_cgroup_rmdir(struct bpf_raw_tracepoint_args *ctx)
{
	note_cgroup(ctx, CGROUP_RMDIR);
	return 0;
}
