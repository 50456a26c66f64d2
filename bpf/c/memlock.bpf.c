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
	__u32 syscall;
	__u32 reserved;
};

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
	ev->reserved = 0;

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

SEC("tracepoint/syscalls/sys_enter_mlock")
int tp_enter_mlock(struct syscall_enter_ctx *ctx)
{
	on_enter(SYSCALL_MLOCK, ctx->args[0], ctx->args[1], 0);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_mlock")
int tp_exit_mlock(struct syscall_exit_ctx *ctx)
{
	on_exit(SYSCALL_MLOCK, PROBE_TRACEPOINT, ctx->ret);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_mlock2")
int tp_enter_mlock2(struct syscall_enter_ctx *ctx)
{
	/* The kernel's flags parameter is an int: only the low 32 bits count. */
	on_enter(SYSCALL_MLOCK2, ctx->args[0], ctx->args[1], (__u32)ctx->args[2]);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_mlock2")
int tp_exit_mlock2(struct syscall_exit_ctx *ctx)
{
	on_exit(SYSCALL_MLOCK2, PROBE_TRACEPOINT, ctx->ret);
	return 0;
}
