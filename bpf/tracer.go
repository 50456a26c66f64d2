package bpf

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/features"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
)

// DefaultSyscalls are the calls traced when Options.Syscalls is empty: the
// whole family, in the order of config's default (a test there keeps the
// two equal), so that a daemon and a test given no list trace the same.
// glibc's mlock2(addr, len, 0) issues the mlock syscall, so mlock2 is never
// traced without mlock.
var DefaultSyscalls = []Syscall{SyscallMlock, SyscallMlock2, SyscallMunlock, SyscallMlockall, SyscallMunlockall}

// Options configure a Tracer.
type Options struct {
	// RingbufSize is the ring buffer's size in bytes: a power of two and a
	// multiple of the page size. Zero means 1 MiB.
	RingbufSize int
	// WakeupBytes is the pending-data threshold above which the kernel
	// wakes the reader; below it records wait for the reader's deadline.
	// Zero wakes the reader on every record.
	WakeupBytes int
	// Syscalls to trace; empty means DefaultSyscalls.
	Syscalls []Syscall
	// Hooks are the kinds of hook to try for each syscall, best first;
	// empty means HookPreference (fentry, kprobe, tracepoint). The first
	// kind that loads and attaches is used.
	Hooks []Probe
	// LegacyTaskAccess makes the programs keep calls in flight in a hash
	// map and read the task with bpf_probe_read_kernel, as they must on
	// kernels before 5.11, even where the faster task-storage path works.
	// Tests use it to prove the fallback on a new kernel.
	LegacyTaskAccess bool
	// KernelFunctionHook adds fentry/fexit (else kprobe/kretprobe) on
	// do_mlock, the kernel function that locks the pages for mlock and
	// mlock2, to report the time spent there (Event.KernelDuration).
	// Where do_mlock cannot be hooked, tracing carries on without it.
	KernelFunctionHook bool
	// Uprobes adds uprobes on the C library's mlock, mlock2 and mlockall
	// (Event.LibcFunc, Event.CallerAddr) in every libc found on the host
	// and in LibcPaths. Processes that use another copy of libc (in a
	// container, statically linked, or calling syscall(2)) are not seen
	// this way; their syscalls still are.
	Uprobes   bool
	LibcPaths []string
	// CommandArgs puts each process's arguments (their first 512 bytes)
	// in its identity (Process.Args).
	CommandArgs bool
	// ExitOnly attaches each syscall's exit hook alone, which reads the
	// call's arguments from the thread's saved user registers: one hook
	// per call instead of two, and no store of the call in flight, so a
	// call costs less; but its duration is unknown (Event.Untimed) and
	// Event.Time is its exit's. Needs bpf_task_pt_regs (Linux 5.15+),
	// and rules out KernelFunctionHook, which adds to the call in flight.
	ExitOnly bool
}

// ErrExitOnlyUnsupported is returned by Open when Options.ExitOnly is set
// on a kernel without bpf_task_pt_regs and task BTF.
var ErrExitOnlyUnsupported = errors.New("exit-only tracing needs Linux 5.15 or later (bpf_task_pt_regs)")

// Tracer owns the loaded BPF objects and their links. Close releases all.
type Tracer struct {
	taskBTF  bool
	exitOnly bool
	spec     *ebpf.CollectionSpec
	maps     memlockMaps
	colls    []*ebpf.Collection
	links    []link.Link
	hooks    []HookStatus
	extras   []HookStatus // do_mlock and libc hooks
	// btfCache is the kernel BTF every load shares: parsed once, and with
	// ambiguous fentry targets made unique (btfdup.go).
	btfCache *btf.Cache
}

// forcedWakeupGap is the least time between two wake-ups of the reader
// that the kernel forces past the wake-up threshold (memlock.bpf.c,
// submit_flags): a tenth of a millisecond bounds them to 10 000 a second
// while the reader is behind, and a sleeping reader is woken by the first
// record past the threshold unless a wake-up came within it.
const forcedWakeupGap = 100 * time.Microsecond

// Open checks the host, loads the programs and attaches them, choosing for
// each syscall the first kind of hook in opts.Hooks that works here. If a
// syscall cannot be hooked at all, Open fails and releases everything: a
// tracer that silently misses a syscall would be worse than none.
func Open(opts Options) (*Tracer, error) {
	if err := Preflight(); err != nil {
		return nil, err
	}
	// Kernels before 5.11 charge BPF maps to RLIMIT_MEMLOCK.
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("raise RLIMIT_MEMLOCK for BPF maps: %w", err)
	}

	spec, err := loadMemlock()
	if err != nil {
		return nil, fmt.Errorf("load BPF object: %w", err)
	}
	size := opts.RingbufSize
	if size == 0 {
		size = 1 << 20
	}
	if size&(size-1) != 0 || size < os.Getpagesize() {
		return nil, fmt.Errorf("ring buffer size %d: must be a power of two and at least the page size %d", size, os.Getpagesize())
	}
	spec.Maps[memlockMapEvents].MaxEntries = uint32(size)
	if opts.WakeupBytes < 0 || opts.WakeupBytes >= size {
		return nil, fmt.Errorf("wake-up threshold %d: must be between 0 and the ring buffer size %d", opts.WakeupBytes, size)
	}
	if err := spec.Variables[memlockVarWakeupBytes].Set(uint64(opts.WakeupBytes)); err != nil {
		return nil, fmt.Errorf("set wakeup_bytes: %w", err)
	}
	if err := spec.Variables[memlockVarWakeupGapNs].Set(uint64(forcedWakeupGap.Nanoseconds())); err != nil {
		return nil, fmt.Errorf("set wakeup_gap_ns: %w", err)
	}
	useTaskBTF := !opts.LegacyTaskAccess && haveTaskBTF()
	if err := spec.Variables[memlockVarUseTaskBtf].Set(useTaskBTF); err != nil {
		return nil, fmt.Errorf("set use_task_btf: %w", err)
	}
	if useTaskBTF {
		// The pressure valve (memlock.bpf.c, shed_above_bytes) keeps the
		// repeat streak in task storage; without it the valve stays shut.
		if err := spec.Variables[memlockVarShedAboveBytes].Set(uint64(size / 2)); err != nil {
			return nil, fmt.Errorf("set shed_above_bytes: %w", err)
		}
	}
	if !useTaskBTF {
		// The task-storage map cannot be created on kernels without it;
		// the code that uses it is dead, so any small map stands in.
		spec.Maps[memlockMapTaskEntries] = &ebpf.MapSpec{
			Name: memlockMapTaskEntries, Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 1,
		}
	}

	if opts.ExitOnly {
		if opts.KernelFunctionHook {
			return nil, errors.New("the kernel-function hook adds do_mlock's time to the call in flight, which exit-only tracing does not keep: turn one of them off")
		}
		if !useTaskBTF || !haveTaskPtRegs() {
			return nil, ErrExitOnlyUnsupported
		}
		if err := spec.Variables[memlockVarExitOnly].Set(true); err != nil {
			return nil, fmt.Errorf("set exit_only: %w", err)
		}
	}
	if err := spec.Variables[memlockVarUseUprobes].Set(opts.Uprobes); err != nil {
		return nil, fmt.Errorf("set use_uprobes: %w", err)
	}
	if err := spec.Variables[memlockVarWithArgs].Set(opts.CommandArgs); err != nil {
		return nil, fmt.Errorf("set with_args: %w", err)
	}

	t := &Tracer{taskBTF: useTaskBTF, exitOnly: opts.ExitOnly, spec: spec, btfCache: btf.NewCache()}
	// The maps are created once and shared by every program loaded later.
	if err := spec.LoadAndAssign(&t.maps, nil); err != nil {
		return nil, fmt.Errorf("create BPF maps: %w", err)
	}

	syscalls := opts.Syscalls
	if len(syscalls) == 0 {
		syscalls = DefaultSyscalls
	}
	kinds := opts.Hooks
	if len(kinds) == 0 {
		kinds = HookPreference
	}
	// Before the syscalls' hooks: an exec must never go unseen while the
	// identities are being sent.
	if err := t.attachIdentity(); err != nil {
		t.Close()
		return nil, err
	}
	for _, s := range syscalls {
		status := t.hook(s, kinds)
		t.hooks = append(t.hooks, status)
		if status.Err != nil {
			t.Close()
			return nil, &HookError{Status: status}
		}
	}
	// The optional views never stop tracing: their status says what failed.
	if opts.KernelFunctionHook {
		t.extras = append(t.extras, t.hookDoMlock())
	}
	if opts.Uprobes {
		t.extras = append(t.extras, t.hookLibc(opts.LibcPaths)...)
	}
	// Every program is loaded: the object's spec and the kernel's BTF,
	// some MiB of heap that the daemon would otherwise carry for its whole
	// life, are not needed again.
	t.spec, t.btfCache = nil, nil
	return t, nil
}

// hook attaches the first kind of hook in kinds that works for s.
func (t *Tracer) hook(s Syscall, kinds []Probe) HookStatus {
	var skipped []string
	var lastErr error
	for i, kind := range kinds {
		a, ok := attachers[kind]
		if !ok {
			return HookStatus{Syscall: s, Probe: kind, Err: fmt.Errorf("no %s hook for syscalls", kind)}
		}
		status := HookStatus{Syscall: s, Probe: kind, Target: a.target(s, t.exitOnly), Skipped: skipped}
		err := t.attachWith(a, s)
		if err == nil {
			return status
		}
		lastErr = err
		if i == len(kinds)-1 {
			status.Err = err
			return status
		}
		skipped = append(skipped, fmt.Sprintf("%s: %s", kind, shortError(err)))
	}
	return HookStatus{Syscall: s, Err: lastErr}
}

// attachWith loads a's two programs for s (the exit program alone when
// exit-only), sharing the tracer's maps, and attaches them. On failure
// nothing stays loaded.
func (t *Tracer) attachWith(a attacher, s Syscall) error {
	enterName, exitName := a.programs(s)
	names := []string{enterName, exitName}
	if t.exitOnly {
		names = names[1:]
	}
	coll, err := t.loadPrograms(func(progs map[string]*ebpf.ProgramSpec) error {
		return a.prepare(progs[enterName], progs[exitName], s)
	}, names...)
	if err != nil {
		return fmt.Errorf("load %s programs: %w", a.probe(), err)
	}
	links, err := attachBoth(a, coll.Programs[enterName], coll.Programs[exitName], s)
	if err != nil {
		coll.Close()
		return err
	}
	t.keep(coll, links)
	return nil
}

// loadPrograms loads the named programs alone, sharing the tracer's maps,
// after prepare (if any) has adjusted their specs.
func (t *Tracer) loadPrograms(prepare func(map[string]*ebpf.ProgramSpec) error, names ...string) (*ebpf.Collection, error) {
	spec := t.spec.Copy()
	for name := range spec.Programs {
		if !slices.Contains(names, name) {
			delete(spec.Programs, name)
		}
	}
	for _, name := range names {
		if spec.Programs[name] == nil {
			return nil, fmt.Errorf("no program %s in the BPF object", name)
		}
	}
	if prepare != nil {
		if err := prepare(spec.Programs); err != nil {
			return nil, err
		}
	}
	if err := uniqueTracingTargets(t.btfCache, spec.Programs); err != nil {
		return nil, err
	}
	shared := map[string]*ebpf.Map{
		memlockMapEvents:        t.maps.Events,
		memlockMapEntries:       t.maps.Entries,
		memlockMapTaskEntries:   t.maps.TaskEntries,
		memlockMapLibcCalls:     t.maps.LibcCalls,
		memlockMapCounters:      t.maps.Counters,
		memlockMapLostCalls:     t.maps.LostCalls,
		memlockMapSeenProcesses: t.maps.SeenProcesses,
		memlockMapLastWakeup:    t.maps.LastWakeup,
	}
	// Only the read-only data is created anew; the other maps are shared.
	for name := range spec.Maps {
		if shared[name] == nil && !strings.HasPrefix(name, ".") {
			delete(spec.Maps, name)
		}
	}
	return ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{MapReplacements: shared, Cache: t.btfCache})
}

// keep takes ownership of a loaded collection and its links.
func (t *Tracer) keep(coll *ebpf.Collection, links []link.Link) {
	t.colls = append(t.colls, coll)
	t.links = append(t.links, links...)
}

// haveTaskBTF reports whether tracing programs may call
// bpf_get_current_task_btf and use task-local storage (Linux 5.11+).
func haveTaskBTF() bool {
	return features.HaveProgramHelper(ebpf.TracePoint, asm.FnGetCurrentTaskBtf) == nil &&
		features.HaveProgramHelper(ebpf.TracePoint, asm.FnTaskStorageGet) == nil &&
		features.HaveMapType(ebpf.TaskStorage) == nil
}

// haveTaskPtRegs reports whether tracing programs may call
// bpf_task_pt_regs (Linux 5.15+), which exit-only tracing reads the
// arguments with.
func haveTaskPtRegs() bool {
	return features.HaveProgramHelper(ebpf.TracePoint, asm.FnTaskPtRegs) == nil &&
		features.HaveProgramHelper(ebpf.Kprobe, asm.FnTaskPtRegs) == nil
}

// ExitOnly reports whether the tracer hooks each call at its exit alone
// (Options.ExitOnly): its events are untimed.
func (t *Tracer) ExitOnly() bool { return t.exitOnly }

// TaskAccess says how the programs find calls in flight and read the
// task: "task storage + BTF" (5.11+) or "hash map + probe reads".
func (t *Tracer) TaskAccess() string {
	if t.taskBTF {
		return "task storage + BTF"
	}
	return "hash map + probe reads"
}

// Hooks reports how each traced syscall is hooked.
func (t *Tracer) Hooks() []HookStatus { return append([]HookStatus(nil), t.hooks...) }

// Extras reports the optional hooks (do_mlock, libc uprobes): attached or
// why not.
func (t *Tracer) Extras() []HookStatus { return append([]HookStatus(nil), t.extras...) }

// Plan renders Hooks and Extras as one line per hook, for logs and --check.
func (t *Tracer) Plan() string {
	var b strings.Builder
	for _, h := range append(t.Hooks(), t.extras...) {
		b.WriteString(h.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// NewReader opens a reader on the tracer's ring buffer. See Reader.
func (t *Tracer) NewReader(opts ReaderOptions) (*Reader, error) {
	rb, err := ringbuf.NewReader(t.maps.Events)
	if err != nil {
		return nil, fmt.Errorf("open ring buffer reader: %w", err)
	}
	r, err := newReader(rb, t.maps.Events, t.maps.Counters, opts)
	if err != nil {
		return nil, err
	}
	r.lostCalls = t.maps.LostCalls
	r.busy = t.exitProgramMisses
	seen := t.maps.SeenProcesses
	r.ids.forget = func(pid uint32) { _ = seen.Delete(pid) }
	return r, nil
}

// identityPrograms are the raw tracepoints that keep the processes'
// identities right: an exec makes a process send its identity again, and
// the cgroups made or removed while the daemon runs are named.
var identityPrograms = []struct{ program, tracepoint string }{
	{"rtp_sched_process_exec", "sched_process_exec"},
	{"rtp_cgroup_mkdir", "cgroup_mkdir"},
	{"rtp_cgroup_rmdir", "cgroup_rmdir"},
}

// attachIdentity loads and attaches identityPrograms.
func (t *Tracer) attachIdentity() error {
	names := make([]string, len(identityPrograms))
	for i, p := range identityPrograms {
		names[i] = p.program
	}
	coll, err := t.loadPrograms(nil, names...)
	if err != nil {
		return fmt.Errorf("load the process identity programs: %w", err)
	}
	var links []link.Link
	for _, p := range identityPrograms {
		l, err := link.AttachRawTracepoint(link.RawTracepointOptions{Name: p.tracepoint, Program: coll.Programs[p.program]})
		if err != nil {
			for _, l := range links {
				l.Close()
			}
			coll.Close()
			return fmt.Errorf("attach raw tracepoint %s: %w", p.tracepoint, err)
		}
		links = append(links, l)
	}
	t.keep(coll, links)
	return nil
}

// exitProgramMisses sums the runs the kernel skipped of the programs that
// emit records (the syscalls' exit programs): each one is a call lost.
func (t *Tracer) exitProgramMisses() (uint64, error) {
	var n uint64
	for _, c := range t.colls {
		for name, prog := range c.Programs {
			if !strings.Contains(name, "_exit_") || strings.HasSuffix(name, "do_mlock") || strings.HasPrefix(name, "up_") {
				continue
			}
			st, err := prog.Stats()
			if err != nil {
				return 0, fmt.Errorf("read statistics of %s: %w", name, err)
			}
			n += st.RecursionMisses
		}
	}
	return n, nil
}

// Close detaches every hook and frees the BPF objects. It is safe to call
// more than once.
func (t *Tracer) Close() error {
	var errs []error
	for _, l := range t.links {
		if err := l.Close(); err != nil {
			errs = append(errs, fmt.Errorf("detach hook: %w", err))
		}
	}
	t.links = nil
	for _, c := range t.colls {
		c.Close()
	}
	t.colls = nil
	if err := t.maps.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close BPF maps: %w", err))
	}
	return errors.Join(errs...)
}
