package bpf

import (
	"reflect"
	"testing"

	"github.com/cilium/ebpf"
)

// TestLostCallsMapMatchesCompiledObject ties lostcalls.go's slot numbering
// to the map the compiled object declares (memlock.h's ERRNO_SLOTS and
// LOST_CALL_SLOTS).
func TestLostCallsMapMatchesCompiledObject(t *testing.T) {
	spec, err := loadMemlock()
	if err != nil {
		t.Fatal(err)
	}
	m := spec.Maps[memlockMapLostCalls]
	if m == nil {
		t.Fatalf("no map %s in the BPF object", memlockMapLostCalls)
	}
	if m.Type != ebpf.PerCPUArray || m.KeySize != 4 || m.ValueSize != 8 {
		t.Errorf("map %s is %v with %d-byte keys and %d-byte values, want a per-CPU array of u32 to u64", m.Name, m.Type, m.KeySize, m.ValueSize)
	}
	if int(m.MaxEntries) != lostCallSlots {
		t.Errorf("map %s has %d slots, the reader expects %d syscalls of %d errno slots", m.Name, m.MaxEntries, lostSyscalls, lostErrnoSlots)
	}
}

func TestSumLostCalls(t *testing.T) {
	const cpus = 3
	keys := make([]uint32, lostCallSlots)
	perCPU := make([]uint64, lostCallSlots*cpus)
	for i := range keys {
		keys[i] = uint32(i)
	}
	set := func(s Syscall, errno Errno, counts ...uint64) {
		slot := (int(s)-1)*lostErrnoSlots + int(errno)
		copy(perCPU[slot*cpus:], counts)
	}
	set(SyscallMlock, 0, 1, 0, 2)
	set(SyscallMlock2, 22, 0, 5, 0)    // EINVAL
	set(SyscallMunlockall, 0, 0, 0, 7) // the last syscall's first slot
	set(SyscallMlockall, LostErrnoOther, 1, 1, 1)
	set(SyscallMunlock, 12, 0, 0, 0) // ENOMEM, but none: left out

	got := sumLostCalls(keys, perCPU, cpus)
	want := []LostCalls{
		{SyscallMlock, 0, 3},
		{SyscallMlock2, 22, 5},
		{SyscallMlockall, LostErrnoOther, 3},
		{SyscallMunlockall, 0, 7},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("sumLostCalls = %+v, want %+v", got, want)
	}
}
