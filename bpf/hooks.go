package bpf

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// HookStatus says how one syscall is being watched: which kind of hook, at
// which kernel target, and why better kinds were not used.
type HookStatus struct {
	Syscall Syscall
	Probe   Probe
	// Target names what was attached to, e.g.
	// "syscalls:sys_enter_mlock2 + syscalls:sys_exit_mlock2".
	Target string
	// Err is nil when the hook is attached, else why it is not.
	Err error
	// Skipped lists the better kinds of hook that were tried first and
	// failed, each with the kernel's reason.
	Skipped []string
}

func (h HookStatus) String() string {
	var b strings.Builder
	what := h.Syscall.String()
	switch {
	case h.Syscall != SyscallUnknown:
	case h.Probe == ProbeUprobe:
		what = "libc"
	default:
		what = "kernel-fn"
	}
	fmt.Fprintf(&b, "%-10s %-10s %s: ", what, h.Probe, h.Target)
	if h.Err != nil {
		fmt.Fprintf(&b, "not attached: %v", h.Err)
	} else {
		b.WriteString("attached")
	}
	if len(h.Skipped) > 0 {
		fmt.Fprintf(&b, " (skipped %s)", strings.Join(h.Skipped, "; "))
	}
	return b.String()
}

// HookError reports a syscall that no allowed kind of hook could watch.
type HookError struct {
	Status HookStatus
}

func (e *HookError) Error() string {
	msg := fmt.Sprintf("cannot hook %s with %s: %s", e.Status.Syscall, e.Status.Probe, shortError(e.Status.Err))
	if len(e.Status.Skipped) > 0 {
		msg += " (also tried " + strings.Join(e.Status.Skipped, "; ") + ")"
	}
	return msg
}

func (e *HookError) Unwrap() error { return e.Status.Err }

// HookPreference is the order in which automatic planning tries hook kinds:
// fentry/fexit cost least and tax no other syscall; kprobes work without
// BPF trampolines; syscall tracepoints work wherever CONFIG_FTRACE_SYSCALLS
// is set, but send every syscall on the host through the slow path.
var HookPreference = []Probe{ProbeFentry, ProbeKprobe, ProbeTracepoint}

// ParseHook turns a configuration value ("auto", "fentry", "kprobe",
// "tracepoint") into the kinds to try, in order.
func ParseHook(s string) ([]Probe, error) {
	switch s {
	case "", "auto":
		return HookPreference, nil
	case "fentry":
		return []Probe{ProbeFentry}, nil
	case "kprobe":
		return []Probe{ProbeKprobe}, nil
	case "tracepoint":
		return []Probe{ProbeTracepoint}, nil
	}
	return nil, fmt.Errorf("unknown hook kind %q: want auto, fentry, kprobe or tracepoint", s)
}

// attacher loads and attaches the entry and exit programs of one kind of
// hook for one syscall. Every kind runs the same BPF code behind different
// entry points, so every kind yields the same records.
type attacher interface {
	probe() Probe
	// target describes where the hook goes, for logs and --check; exitOnly
	// when the entry hook is left out.
	target(s Syscall, exitOnly bool) string
	// programs names the entry and exit programs in the BPF object.
	programs(s Syscall) (enter, exit string)
	// prepare adjusts the programs' specs before loading (e.g. the
	// kernel function they attach to); enter is nil when exit-only.
	prepare(enter, exit *ebpf.ProgramSpec, s Syscall) error
	attachEnter(enter *ebpf.Program, s Syscall) (link.Link, error)
	attachExit(exit *ebpf.Program, s Syscall) (link.Link, error)
}

var attachers = map[Probe]attacher{
	ProbeTracepoint: tracepointAttacher{},
	ProbeKprobe:     kprobeAttacher{},
	ProbeFentry:     fentryAttacher{},
}

// syscallFunction returns the kernel function that implements a syscall
// on x86-64 (kernels since 4.17 wrap every syscall in __x64_sys_<name>),
// checked against the kernel's BTF when it is readable. Some kernels'
// BTF lists a function twice (Debian's 6.1 does); that is fine for kprobes,
// which attach by symbol, and btfdup.go makes it fine for fentry.
func syscallFunction(s Syscall) (string, error) {
	name := "__x64_sys_" + s.String()
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		return name, nil // kprobes work without BTF; let the attach decide
	}
	types, err := spec.AnyTypesByName(name)
	if err != nil {
		return "", fmt.Errorf("kernel function %s not found in BTF: %w", name, err)
	}
	for _, t := range types {
		if _, ok := t.(*btf.Func); ok {
			return name, nil
		}
	}
	return "", fmt.Errorf("%s in the kernel's BTF is not a function", name)
}

// attachBoth attaches the exit hook before the entry hook (enter nil:
// the exit hook alone): an entry recorded while its exit hook does not
// exist yet would be left behind and counted as missed.
func attachBoth(a attacher, enter, exit *ebpf.Program, s Syscall) ([]link.Link, error) {
	exitLink, err := a.attachExit(exit, s)
	if err != nil {
		return nil, err
	}
	if enter == nil {
		return []link.Link{exitLink}, nil
	}
	enterLink, err := a.attachEnter(enter, s)
	if err != nil {
		exitLink.Close()
		return nil, err
	}
	return []link.Link{enterLink, exitLink}, nil
}

// tracepointAttacher uses the syscall tracepoints syscalls:sys_{enter,exit}_*.
type tracepointAttacher struct{}

func (tracepointAttacher) probe() Probe { return ProbeTracepoint }

func (tracepointAttacher) target(s Syscall, exitOnly bool) string {
	if exitOnly {
		return fmt.Sprintf("syscalls:sys_exit_%s", s)
	}
	return fmt.Sprintf("syscalls:sys_enter_%s + syscalls:sys_exit_%s", s, s)
}

func (tracepointAttacher) programs(s Syscall) (string, string) {
	return "tp_enter_" + s.String(), "tp_exit_" + s.String()
}

func (tracepointAttacher) prepare(_, _ *ebpf.ProgramSpec, _ Syscall) error { return nil }

func (tracepointAttacher) attachEnter(enter *ebpf.Program, s Syscall) (link.Link, error) {
	l, err := link.Tracepoint("syscalls", "sys_enter_"+s.String(), enter, nil)
	if err != nil {
		return nil, fmt.Errorf("attach tracepoint syscalls:sys_enter_%s: %w", s, err)
	}
	return l, nil
}

func (tracepointAttacher) attachExit(exit *ebpf.Program, s Syscall) (link.Link, error) {
	l, err := link.Tracepoint("syscalls", "sys_exit_"+s.String(), exit, nil)
	if err != nil {
		return nil, fmt.Errorf("attach tracepoint syscalls:sys_exit_%s: %w", s, err)
	}
	return l, nil
}

// kprobeAttacher uses a kprobe and a kretprobe on the syscall's function.
type kprobeAttacher struct{}

func (kprobeAttacher) probe() Probe { return ProbeKprobe }

func (kprobeAttacher) target(s Syscall, exitOnly bool) string {
	if exitOnly {
		return "__x64_sys_" + s.String() + " (return)"
	}
	return "__x64_sys_" + s.String()
}

func (kprobeAttacher) programs(s Syscall) (string, string) {
	return "kp_enter_" + s.String(), "kp_exit_" + s.String()
}

func (kprobeAttacher) prepare(_, _ *ebpf.ProgramSpec, _ Syscall) error { return nil }

func (kprobeAttacher) attachEnter(enter *ebpf.Program, s Syscall) (link.Link, error) {
	fn, err := syscallFunction(s)
	if err != nil {
		return nil, err
	}
	l, err := link.Kprobe(fn, enter, nil)
	if err != nil {
		return nil, fmt.Errorf("attach kprobe %s: %w", fn, err)
	}
	return l, nil
}

func (kprobeAttacher) attachExit(exit *ebpf.Program, s Syscall) (link.Link, error) {
	fn, err := syscallFunction(s)
	if err != nil {
		return nil, err
	}
	l, err := link.Kretprobe(fn, exit, nil)
	if err != nil {
		return nil, fmt.Errorf("attach kretprobe %s: %w", fn, err)
	}
	return l, nil
}

// fentryAttacher uses fentry/fexit (BPF trampolines) on the syscall's
// function.
type fentryAttacher struct{}

func (fentryAttacher) probe() Probe { return ProbeFentry }

func (fentryAttacher) target(s Syscall, exitOnly bool) string {
	if exitOnly {
		return "__x64_sys_" + s.String() + " (fexit)"
	}
	return "__x64_sys_" + s.String()
}

func (fentryAttacher) programs(s Syscall) (string, string) {
	return "fe_enter_" + s.String(), "fe_exit_" + s.String()
}

func (fentryAttacher) prepare(enter, exit *ebpf.ProgramSpec, s Syscall) error {
	fn, err := syscallFunction(s)
	if err != nil {
		return err
	}
	exit.AttachTo = fn
	if enter != nil {
		enter.AttachTo = fn
	}
	return nil
}

func (fentryAttacher) attachEnter(enter *ebpf.Program, s Syscall) (link.Link, error) {
	l, err := link.AttachTracing(link.TracingOptions{Program: enter})
	if err != nil {
		return nil, fmt.Errorf("attach fentry __x64_sys_%s: %w", s, err)
	}
	return l, nil
}

func (fentryAttacher) attachExit(exit *ebpf.Program, s Syscall) (link.Link, error) {
	l, err := link.AttachTracing(link.TracingOptions{Program: exit})
	if err != nil {
		return nil, fmt.Errorf("attach fexit __x64_sys_%s: %w", s, err)
	}
	return l, nil
}

// shortError says in one line why a hook failed: verifier output and some
// kernel errors run to many lines, and a plan is printed one line per hook.
// The commonest refusals get a plain explanation instead of the raw chain.
func shortError(err error) string {
	var verr *ebpf.VerifierError
	switch {
	case errors.As(err, &verr):
		return "the verifier refused the program: " + strings.SplitN(verr.Error(), "\n", 2)[0]
	case errors.Is(err, os.ErrNotExist) && strings.Contains(err.Error(), "kprobe_events"):
		return "this kernel has no kprobes (no kprobe_events in tracefs: CONFIG_KPROBES is off)"
	case errors.Is(err, btf.ErrMultipleMatches):
		return "the kernel's BTF lists the function more than once and cilium/ebpf refuses ambiguous fentry targets"
	case errors.Is(err, unix.EPERM) && strings.Contains(err.Error(), "fentry"):
		// cilium/ebpf suggests raising RLIMIT_MEMLOCK, which Open already did.
		return "the kernel refused to load fentry programs (operation not permitted: no BPF trampolines here, or lockdown)"
	}
	return strings.SplitN(err.Error(), "\n", 2)[0]
}
