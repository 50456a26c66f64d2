package bpf

import (
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// HookStatus says how one syscall is being watched: which kind of hook,
// at which kernel target, and whether it attached.
type HookStatus struct {
	Syscall Syscall
	Probe   Probe
	// Target names what was attached to, e.g.
	// "syscalls:sys_enter_mlock2 + syscalls:sys_exit_mlock2".
	Target string
	// Err is nil when the hook is attached, else why it is not.
	Err error
}

func (h HookStatus) String() string {
	if h.Err != nil {
		return fmt.Sprintf("%-8s %-10s %s: not attached: %v", h.Syscall, h.Probe, h.Target, h.Err)
	}
	return fmt.Sprintf("%-8s %-10s %s: attached", h.Syscall, h.Probe, h.Target)
}

// attacher attaches the entry and exit programs of one kind of hook for one
// syscall. Adding a kind of hook (fentry, kprobe, uprobe) means adding an
// attacher; the reader and the record stay as they are.
type attacher interface {
	probe() Probe
	// target describes where the hook goes, for logs and --check.
	target(s Syscall) string
	attach(objs *memlockObjects, s Syscall) ([]link.Link, error)
}

// tracepointAttacher uses the syscall tracepoints syscalls:sys_{enter,exit}_*.
// They exist wherever CONFIG_FTRACE_SYSCALLS=y, at the price of sending every
// syscall on the host through the slower tracing path.
type tracepointAttacher struct{}

func (tracepointAttacher) probe() Probe { return ProbeTracepoint }

func (tracepointAttacher) target(s Syscall) string {
	return fmt.Sprintf("syscalls:sys_enter_%s + syscalls:sys_exit_%s", s, s)
}

func (tracepointAttacher) attach(objs *memlockObjects, s Syscall) ([]link.Link, error) {
	var enter, exit *ebpf.Program
	switch s {
	case SyscallMlock:
		enter, exit = objs.TpEnterMlock, objs.TpExitMlock
	case SyscallMlock2:
		enter, exit = objs.TpEnterMlock2, objs.TpExitMlock2
	default:
		return nil, fmt.Errorf("no tracepoint programs for %s", s)
	}
	// Exit first: an entry recorded before its exit hook exists would be
	// left behind in the entries map and counted as missed.
	exitLink, err := link.Tracepoint("syscalls", "sys_exit_"+s.String(), exit, nil)
	if err != nil {
		return nil, fmt.Errorf("attach tracepoint syscalls:sys_exit_%s: %w", s, err)
	}
	enterLink, err := link.Tracepoint("syscalls", "sys_enter_"+s.String(), enter, nil)
	if err != nil {
		exitLink.Close()
		return nil, fmt.Errorf("attach tracepoint syscalls:sys_enter_%s: %w", s, err)
	}
	return []link.Link{enterLink, exitLink}, nil
}
