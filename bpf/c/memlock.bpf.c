// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Traces the mlock family through the syscall tracepoints: the entry hook
 * remembers the arguments per thread, the exit hook joins them with the
 * return value and the process context and emits one struct event into a
 * ring buffer. Every record that cannot be emitted is counted, never lost
 * silently.
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
 * Set by the loader on kernels (5.11+) with bpf_get_current_task_btf and
 * task-local storage. Then calls in flight live in the task itself instead
 * of a locked hash map, and the task's fields are read with plain loads
 * instead of one bpf_probe_read_kernel call each: on the development VM
 * this halved the programs' run time. The verifier never visits the branch
 * a constant rules out, so older kernels load the fallback path only.
 */
const volatile bool use_task_btf = false;

struct entry {
	__u64 entry_ns;
	__u64 addr;
	__u64 len;
	__u64 flags;
	__u64 kernel_start; /* do_mlock entry time, 0 outside do_mlock */
	__u64 kernel_ns;    /* time spent in do_mlock so far */
	__u32 syscall;
	__u32 reserved;
};

/* A libc call in flight, seen by the uprobes, by thread id. */
struct libc_call {
	__u64 caller_addr;
	__u32 fn;
	__u32 reserved;
};

/* Set by the loader when the libc uprobes are attached. */
const volatile bool use_uprobes = false;

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
		*slot = e;
		return;
	}

	__u32 tid = (__u32)bpf_get_current_pid_tgid();

	if (bpf_map_update_elem(&entries, &tid, &e, BPF_ANY))
		count(COUNTER_ENTRY_MAP_FULL);
}

/* Finds this thread's call in flight and marks it taken, so that a later
 * exit without an entry is not joined to it. Copies it out because the
 * hash map's slot is freed right away. */
static __always_inline bool take_entry(__u32 syscall, __u32 tid, struct task_struct *task, struct entry *out)
{
	struct entry *e;

	if (use_task_btf) {
		e = bpf_task_storage_get(&task_entries, task, 0, 0);
		if (!e || e->syscall != syscall)
			return false;
		*out = *e;
		e->syscall = SYSCALL_UNKNOWN;
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

/* Process context through BTF pointers: plain loads the verifier guards. */
static __always_inline void read_task_btf(struct event *ev, struct task_struct *task)
{
	const struct cred *cred = task->cred;
	struct mm_struct *mm = task->mm;
	const unsigned char *exe = 0;

	ev->ppid = task->real_parent->tgid;
	ev->uid = cred->uid.val;
	ev->euid = cred->euid.val;
	ev->gid = cred->gid.val;
	ev->egid = cred->egid.val;
	if (mm && mm->exe_file)
		exe = mm->exe_file->f_path.dentry->d_name.name;
	if (!exe || bpf_probe_read_kernel_str(ev->exe_name, sizeof(ev->exe_name), exe) < 0)
		ev->exe_name[0] = '\0';
}

/* Process context through bpf_probe_read_kernel, for kernels before 5.11. */
static __always_inline void read_task_probe(struct event *ev)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	const struct cred *cred = BPF_CORE_READ(task, cred);
	const unsigned char *exe;

	ev->ppid = BPF_CORE_READ(task, real_parent, tgid);
	ev->uid = BPF_CORE_READ(cred, uid.val);
	ev->euid = BPF_CORE_READ(cred, euid.val);
	ev->gid = BPF_CORE_READ(cred, gid.val);
	ev->egid = BPF_CORE_READ(cred, egid.val);
	exe = BPF_CORE_READ(task, mm, exe_file, f_path.dentry, d_name.name);
	if (!exe || bpf_probe_read_kernel_str(ev->exe_name, sizeof(ev->exe_name), exe) < 0)
		ev->exe_name[0] = '\0';
}

static __always_inline __u64 submit_flags(void)
{
	if (!wakeup_bytes)
		return 0;
	if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wakeup_bytes)
		return BPF_RB_FORCE_WAKEUP;
	return BPF_RB_NO_WAKEUP;
}

static __always_inline void on_exit(__u32 syscall, __u32 probe, __s64 ret)
{
	__u64 now = bpf_ktime_get_boot_ns();
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)pid_tgid;
	struct task_struct *task = 0;
	struct entry e;
	struct event *ev;

	if (use_task_btf)
		task = bpf_get_current_task_btf();
	if (!take_entry(syscall, tid, task, &e)) {
		count(COUNTER_MISSED_ENTRY);
		return;
	}

	ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);
	if (!ev) {
		count(COUNTER_RINGBUF_FULL);
		return;
	}

	ev->entry_ns = e.entry_ns;
	ev->duration_ns = now - e.entry_ns;
	ev->addr = e.addr;
	ev->len = e.len;
	ev->flags = e.flags;
	ev->ret = ret;
	ev->syscall = syscall;
	ev->probe = probe;
	ev->kernel_ns = e.kernel_ns;
	ev->caller_addr = 0;
	ev->libc_fn = LIBC_NONE;
	if (use_uprobes) {
		struct libc_call *lc = bpf_map_lookup_elem(&libc_calls, &tid);

		if (lc) {
			ev->caller_addr = lc->caller_addr;
			ev->libc_fn = lc->fn;
		}
	}

	ev->pid = pid_tgid >> 32;
	ev->tid = tid;
	ev->cgroup_id = bpf_get_current_cgroup_id();
	bpf_get_current_comm(ev->comm, sizeof(ev->comm));

	if (use_task_btf)
		read_task_btf(ev, task);
	else
		read_task_probe(ev);

	bpf_ringbuf_submit(ev, submit_flags());
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

/* Syscall tracepoints: the arguments are in the record. */
#define TP_ARG(i) ctx->args[i]
#define TRACEPOINT_HOOKS(name, id)                                        \
	SEC("tracepoint/syscalls/sys_enter_" #name)                       \
	int tp_enter_##name(struct syscall_enter_ctx *ctx)                \
	{                                                                 \
		on_enter(id, ARGS_##name(TP_ARG));                        \
		return 0;                                                 \
	}                                                                 \
	SEC("tracepoint/syscalls/sys_exit_" #name)                        \
	int tp_exit_##name(struct syscall_exit_ctx *ctx)                  \
	{                                                                 \
		on_exit(id, PROBE_TRACEPOINT, ctx->ret);                  \
		return 0;                                                 \
	}

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
