/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The record shared by the BPF programs and the Go decoder (bpf/decode.go).
 * Changing it means changing both, and the layout test in decode_test.go
 * will say so. Little-endian, fixed size, and built with -Wpadded so the
 * compiler refuses any hole we did not write ourselves.
 */
#ifndef MEMLOCK_H
#define MEMLOCK_H

#define COMM_LEN 16
#define EXE_NAME_LEN 64

/* Our own numbering of the mlock family; mirrored by bpf.Syscall. */
enum memlock_syscall {
	SYSCALL_UNKNOWN = 0,
	SYSCALL_MLOCK = 1,
	SYSCALL_MLOCK2 = 2,
	SYSCALL_MUNLOCK = 3,
	SYSCALL_MLOCKALL = 4,
	SYSCALL_MUNLOCKALL = 5,
};

/* Which kind of hook produced a record; mirrored by bpf.Probe. */
enum memlock_probe {
	PROBE_UNKNOWN = 0,
	PROBE_TRACEPOINT = 1,
	PROBE_KPROBE = 2,
	PROBE_FENTRY = 3,
	PROBE_UPROBE = 4,
};

/* The libc function a uprobe saw the call come through; mirrored by bpf.LibcFunc. */
enum memlock_libc_fn {
	LIBC_NONE = 0,
	LIBC_MLOCK = 1,
	LIBC_MLOCK2 = 2,
	LIBC_MLOCKALL = 3,
};

/* Indexes of the per-CPU loss counters; mirrored by bpf.Counter*. */
enum memlock_counter {
	COUNTER_RINGBUF_FULL = 0,   /* bpf_ringbuf_reserve failed: record lost */
	COUNTER_MISSED_ENTRY = 1,   /* exit seen without its entry: record lost */
	COUNTER_ENTRY_MAP_FULL = 2, /* entry could not be stored: record lost */
	COUNTER_REPEAT_SHED = 3,    /* a long repeat, not written under pressure */
	COUNTER_MAX = 4,
};

/*
 * The calls whose record is lost although their syscall and result are
 * known (COUNTER_RINGBUF_FULL, COUNTER_MISSED_ENTRY, COUNTER_REPEAT_SHED),
 * counted per CPU by
 * (syscall, errno) so that the call counts stay exact: slot
 * (syscall - 1) * ERRNO_SLOTS + errno, errno 0 for success. Linux's errnos
 * end at 133; the last slot of each syscall takes every errno from
 * ERRNO_SLOTS - 1 up (a kernel-internal code such as ERESTARTSYS, 512, or a
 * kretprobe's odd return), which the reader cannot name. Mirrored by
 * bpf.lostErrnoSlots and bpf.LostErrnoOther.
 */
#define ERRNO_SLOTS 160
#define LOST_CALL_SLOTS (SYSCALL_MUNLOCKALL * ERRNO_SLOTS)

/* duration_ns of a call seen at its exit only (exit-only tracing). */
#define DURATION_UNKNOWN (~(__u64)0)

struct event {
	__u64 entry_ns;    /* bpf_ktime_get_boot_ns() at syscall entry (at exit when exit-only) */
	__u64 duration_ns; /* exit minus entry, or DURATION_UNKNOWN */
	__u64 addr;
	__u64 len;
	__u64 flags;
	__s64 ret; /* 0 or -errno */
	__u64 cgroup_id;
	__u64 kernel_ns;   /* time spent in do_mlock (kernel-function hook), 0 if not seen */
	__u64 caller_addr; /* return address into the caller of the libc function (uprobes), 0 if none */
	__u64 start_ns;    /* the process's start on the boot clock (its group leader's start_boottime) */
	__u32 pid;  /* tgid */
	__u32 tid;  /* kernel pid */
	__u32 ppid; /* real parent's tgid */
	__u32 uid;
	__u32 euid;
	__u32 gid;
	__u32 egid;
	__u32 syscall; /* enum memlock_syscall */
	__u32 probe;   /* enum memlock_probe */
	__u32 libc_fn; /* enum memlock_libc_fn */
	char comm[COMM_LEN];
	char exe_name[EXE_NAME_LEN];
};

/*
 * The record of a call in the common case, 112 bytes against struct
 * event's 200: no kernel-function or libc view (kernel_ns, caller_addr and
 * libc_fn would be zero) and no executable name, which the reader takes
 * from the process's identity it already has. Moving a record's cache
 * lines to the reader's CPU is most of what the ring buffer costs a call,
 * so the exit hook writes this one whenever it can. Told apart from the
 * other records by its size; flags is the kernel's int.
 */
struct call_record {
	__u64 entry_ns;
	__u64 duration_ns;
	__u64 addr;
	__u64 len;
	__s64 ret;
	__u64 cgroup_id;
	__u64 start_ns;
	__u32 flags;
	__u32 pid;
	__u32 tid;
	__u32 ppid;
	__u32 uid;
	__u32 euid;
	__u32 gid;
	__u32 egid;
	__u16 syscall;
	__u16 probe;
	__u32 reserved;
	char comm[COMM_LEN];
};

/*
 * A process's identity, written into the ring buffer just before the first
 * record of its calls, and again after an exec or a move to another cgroup
 * v2: the context that names the process even once it is gone. The three
 * kinds of record differ in size, which is how the reader tells them apart.
 */
#define PATH_DEPTH 16     /* components of the executable's path kept */
#define PATH_NAME_LEN 128 /* bytes of each, NUL included */
#define ARGS_LEN 512      /* bytes of the argument vector kept */
#define CGROUP_SLOTS 16   /* cgroup v1 controllers kept */

enum memlock_path_flags {
	PATH_TRUNCATED = 1, /* deeper than PATH_DEPTH, or a name cut short */
	PATH_NONE = 2,      /* no executable (a kernel thread) */
};

struct process_record {
	__u64 start_ns;   /* the group leader's start_boottime */
	__u64 cgroup_id;  /* cgroup v2 (default hierarchy) id */
	__u32 pid;        /* tgid */
	__u32 vpid;       /* the pid in the process's own PID namespace */
	__u32 pid_level;  /* that namespace's depth below the initial one */
	__u32 path_depth; /* components in comps, the executable's name first */
	__u32 path_flags; /* enum memlock_path_flags */
	__u32 args_len;   /* bytes of args, NUL-separated */
	/* The mount the executable is on: comps go up to its root, and the
	 * reader puts the mount point in front (mountinfo's first field). */
	__u32 exe_mnt_id;
	__u32 reserved;
	/* Each cgroup v1 controller's cgroup: its hierarchy id (0: the
	 * controller is on cgroup v2) and cgroup id, in controller order. */
	__u32 v1_hierarchy[CGROUP_SLOTS];
	__u64 v1_cgroup_id[CGROUP_SLOTS];
	char comps[PATH_DEPTH][PATH_NAME_LEN];
	char args[ARGS_LEN];
};

/* A cgroup made or removed in any hierarchy, with its path there. */
enum memlock_cgroup_op {
	CGROUP_MKDIR = 1,
	CGROUP_RMDIR = 2,
};

#define CGROUP_PATH_LEN 512

struct cgroup_record {
	__u64 id;        /* the cgroup's kernfs id: its directory's inode number */
	__u32 hierarchy; /* hierarchy id: 0 for cgroup v2 */
	__u32 op;        /* enum memlock_cgroup_op */
	char path[CGROUP_PATH_LEN];
};

#endif /* MEMLOCK_H */
