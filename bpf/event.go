package bpf

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Syscall identifies which call of the mlock family an event describes. The
// numbering is shared with the BPF programs (enum memlock_syscall in
// c/memlock.h); it is ours, not the kernel's syscall number.
type Syscall uint32

const (
	SyscallUnknown Syscall = iota
	SyscallMlock
	SyscallMlock2
	SyscallMunlock
	SyscallMlockall
	SyscallMunlockall
)

var syscallNames = [...]string{
	SyscallUnknown:    "unknown",
	SyscallMlock:      "mlock",
	SyscallMlock2:     "mlock2",
	SyscallMunlock:    "munlock",
	SyscallMlockall:   "mlockall",
	SyscallMunlockall: "munlockall",
}

// String returns the syscall's name as the kernel spells it ("mlock2").
func (s Syscall) String() string {
	if int(s) < len(syscallNames) {
		return syscallNames[s]
	}
	return "syscall(" + strconv.FormatUint(uint64(s), 10) + ")"
}

// ParseSyscall returns the syscall named name ("mlock2").
func ParseSyscall(name string) (Syscall, error) {
	for s := SyscallMlock; s.Valid(); s++ {
		if s.String() == name {
			return s, nil
		}
	}
	return SyscallUnknown, fmt.Errorf("unknown syscall %q: want mlock, mlock2, munlock, mlockall or munlockall", name)
}

// Valid reports whether s names a known syscall.
func (s Syscall) Valid() bool { return s > SyscallUnknown && int(s) < len(syscallNames) }

// UnmarshalText sets s from a syscall's name in any case, surrounding
// spaces ignored, so that configuration can list syscalls as people type
// them ("mlock, MLOCK2").
func (s *Syscall) UnmarshalText(text []byte) error {
	v, err := ParseSyscall(strings.ToLower(strings.TrimSpace(string(text))))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// Probe says which kind of hook observed a call. Numbering shared with the
// BPF programs (enum memlock_probe in c/memlock.h).
type Probe uint32

const (
	ProbeUnknown Probe = iota
	ProbeTracepoint
	ProbeKprobe
	ProbeFentry
	ProbeUprobe
)

var probeNames = [...]string{
	ProbeUnknown:    "unknown",
	ProbeTracepoint: "tracepoint",
	ProbeKprobe:     "kprobe",
	ProbeFentry:     "fentry",
	ProbeUprobe:     "uprobe",
}

// String returns the hook kind's name ("tracepoint").
func (p Probe) String() string {
	if int(p) < len(probeNames) {
		return probeNames[p]
	}
	return "probe(" + strconv.FormatUint(uint64(p), 10) + ")"
}

// Valid reports whether p names a known hook kind.
func (p Probe) Valid() bool { return p > ProbeUnknown && int(p) < len(probeNames) }

// LibcFunc is the C library function a call came through, when the libc
// uprobes saw it. Numbering shared with the BPF programs (enum
// memlock_libc_fn in c/memlock.h).
type LibcFunc uint32

const (
	LibcNone LibcFunc = iota
	LibcMlock
	LibcMlock2
	LibcMlockall
)

var libcNames = [...]string{LibcNone: "", LibcMlock: "mlock", LibcMlock2: "mlock2", LibcMlockall: "mlockall"}

// String returns the function's name, or "" for LibcNone.
func (f LibcFunc) String() string {
	if int(f) < len(libcNames) {
		return libcNames[f]
	}
	return "libc(" + strconv.FormatUint(uint64(f), 10) + ")"
}

// Event is one completed call of the mlock family, decoded from the kernel's
// record. Process identifiers are as seen from the initial PID namespace.
type Event struct {
	// Time is the wall-clock time at which the syscall was entered.
	Time time.Time
	// BootNs is the raw entry time on the kernel's boot clock, kept for
	// ordering and for joining with other kernel-side timestamps.
	BootNs uint64
	// Duration is the time from syscall entry to syscall exit; zero when
	// Untimed.
	Duration time.Duration
	// Untimed says the call was seen at its exit only (exit-only tracing,
	// Options.ExitOnly): its duration is unknown, and Time and BootNs are
	// its exit's.
	Untimed bool
	// ReadAt is when the reader took the record from the ring buffer, for
	// the log record's ObservedTimestamp; zero for an Event no Reader
	// handed over. Records read in a row share one clock reading, up to
	// readAtEvery of them, for a clock read costs 55 ns on a kvm-clock
	// guest; but a record whose call ended after the reading gets a new
	// one, so ReadAt is never before the call's end.
	ReadAt time.Time

	Syscall Syscall
	Probe   Probe

	PID uint32 // thread-group id, what user space calls the pid
	// StartNs is the process's start on the boot clock (its main
	// thread's): with PID it names the process, whose pid a later process
	// may reuse.
	StartNs uint64
	// Process is the process's identity as the kernel read it at its
	// first call (and after an exec or a move to another cgroup): the
	// executable's path, its cgroups, and so on, however briefly the
	// process lived. Shared by the events of the process, read-only; nil
	// when the reader does not know it (its record was lost).
	Process *Process
	TID     uint32 // kernel thread id
	PPID    uint32 // thread-group id of the real parent
	UID     uint32 // real user id
	EUID    uint32 // effective user id
	GID     uint32 // real group id
	EGID    uint32 // effective group id

	// Comm is the thread's name (task->comm, at most 15 bytes).
	Comm string
	// ExeName is the basename of the process's executable file
	// (mm->exe_file), truncated to ExeNameMax-1 bytes; empty for kernel
	// threads or when it is unknown. The kernel reads it at a call only
	// when it could not send the process's identity; otherwise the reader
	// takes it from Process.ExeName.
	ExeName string
	// CgroupID is the id of the thread's cgroup v2 (the inode number of its
	// directory in cgroupfs).
	CgroupID uint64

	// Addr, Len and Flags are the syscall's arguments as passed. Flags is
	// zero for calls that take none (mlock, munlock, munlockall).
	Addr  uint64
	Len   uint64
	Flags uint64
	// Ret is the syscall's return value: zero on success, -errno on failure.
	Ret int64

	// KernelDuration is the time the kernel spent in do_mlock, the
	// function that locks the pages, when the kernel-function hook is on
	// and saw the call (mlock and mlock2 only); zero otherwise.
	KernelDuration time.Duration
	// LibcFunc and CallerAddr are the user-side view, when the libc
	// uprobes saw the call: the libc function called (glibc's
	// mlock2(addr, len, 0) issues the mlock syscall, so the two can
	// differ) and the return address into its caller.
	LibcFunc   LibcFunc
	CallerAddr uint64
}

// Failed reports whether the call returned an error.
func (e *Event) Failed() bool { return e.Ret < 0 }

// End is the wall-clock time at which the call returned: Time, plus the
// Duration when the call was timed.
func (e *Event) End() time.Time { return e.Time.Add(e.Duration) }

// Errno returns the error number of a failed call, or 0 on success.
func (e *Event) Errno() Errno {
	if e.Ret < 0 {
		return Errno(-e.Ret)
	}
	return 0
}

// Pages returns how many pages the kernel covers for the call's range.
func (e *Event) Pages() uint64 { return PagesCovered(e.Addr, e.Len, PageSize) }

// FlagNames returns the names of the flag bits set in Flags for this syscall.
func (e *Event) FlagNames() []string { return FlagNames(e.Syscall, e.Flags) }
