package bpf

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
)

// The kernel's table of lost calls (lost_calls in memlock.bpf.c): per CPU,
// one counter per (syscall, errno), slot (syscall-1)*lostErrnoSlots+errno.
const (
	lostErrnoSlots = 160 // ERRNO_SLOTS in memlock.h
	lostSyscalls   = int(SyscallMunlockall)
	lostCallSlots  = lostSyscalls * lostErrnoSlots // LOST_CALL_SLOTS
)

// LostErrnoOther is the Errno of the LostCalls that stand for every errno
// from LostErrnoOther up: the kernel's table counts them together, so which
// one is not known. Linux's errnos end at 133 (EHWPOISON); only codes that
// never reach user space (ERESTARTSYS, 512, and its kin, which an exit hook
// can see before the kernel restarts the call) land there.
const LostErrnoOther Errno = lostErrnoSlots - 1

// LostCalls counts calls of one syscall with one result whose records the
// kernel could not hand over: the ring buffer had no room
// (LossCounts.RingbufFull), the exit came without its entry
// (LossCounts.MissedEntry: a call under way when the hooks were attached,
// or whose entry could not be stored), or it was a long repeat shed under
// pressure (LossCounts.RepeatShed). The call happened and its result is
// known; its arguments, duration and process are not. Calls whose exit
// program did not run (LossCounts.ProgramBusy) are not among them: their
// result is not known.
type LostCalls struct {
	Syscall Syscall
	// Errno is the calls' error number, 0 for success; LostErrnoOther
	// stands for any errno from LostErrnoOther up.
	Errno Errno
	// Calls is how many since the tracer was opened.
	Calls uint64
}

// LostCalls returns the calls lost in the kernel whose syscall and result
// are known, summed over the CPUs: one entry per (Syscall, Errno) with at
// least one call, in that order. Each count only grows while the tracer is
// open. It is safe to call while Run runs.
func (r *Reader) LostCalls() ([]LostCalls, error) {
	if r.lostCalls == nil {
		return nil, nil
	}
	cpus, err := ebpf.PossibleCPU()
	if err != nil {
		return nil, fmt.Errorf("count possible CPUs: %w", err)
	}
	keys := make([]uint32, lostCallSlots)
	perCPU := make([]uint64, lostCallSlots*cpus)
	var cursor ebpf.MapBatchCursor
	n, err := r.lostCalls.BatchLookup(&cursor, keys, perCPU, nil)
	switch {
	case errors.Is(err, ebpf.ErrNotSupported):
		// Kernels before 5.6 have no batch lookup: one lookup per slot.
		return r.lostCallsOneByOne(cpus)
	case err != nil && !errors.Is(err, ebpf.ErrKeyNotExist):
		return nil, fmt.Errorf("read lost calls: %w", err)
	case n != lostCallSlots:
		return nil, fmt.Errorf("read lost calls: got %d of the %d slots", n, lostCallSlots)
	}
	return sumLostCalls(keys, perCPU, cpus), nil
}

func (r *Reader) lostCallsOneByOne(cpus int) ([]LostCalls, error) {
	keys := make([]uint32, lostCallSlots)
	perCPU := make([]uint64, 0, lostCallSlots*cpus)
	var values []uint64
	for i := range keys {
		keys[i] = uint32(i)
		if err := r.lostCalls.Lookup(keys[i], &values); err != nil {
			return nil, fmt.Errorf("read lost calls of slot %d: %w", i, err)
		}
		if len(values) != cpus {
			return nil, fmt.Errorf("read lost calls of slot %d: %d values for %d CPUs", i, len(values), cpus)
		}
		perCPU = append(perCPU, values...)
	}
	return sumLostCalls(keys, perCPU, cpus), nil
}

// sumLostCalls adds up each slot's per-CPU counts (cpus values per key, in
// the order of keys) and names the slots that counted any.
func sumLostCalls(keys []uint32, perCPU []uint64, cpus int) []LostCalls {
	var out []LostCalls
	for i, k := range keys {
		var n uint64
		for _, v := range perCPU[i*cpus : (i+1)*cpus] {
			n += v
		}
		if n == 0 || int(k) >= lostCallSlots {
			continue
		}
		out = append(out, LostCalls{
			Syscall: Syscall(k/lostErrnoSlots) + SyscallMlock,
			Errno:   Errno(k % lostErrnoSlots),
			Calls:   n,
		})
	}
	return out
}
