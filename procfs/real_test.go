package procfs

import (
	"errors"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// These tests read the real /proc of this machine and need no privilege.

// requireProc skips the test when /proc is not procfs.
func requireProc(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skipf("no procfs at /proc: %v", err)
	}
}

func TestRealLockedMemory(t *testing.T) {
	requireProc(t)
	pid := uint32(os.Getpid())
	page := os.Getpagesize()
	mem, err := unix.Mmap(-1, 0, page, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(mem)

	before, err := ReadLocked("/proc", pid)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Mlock(mem); err != nil {
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.ENOMEM) {
			t.Skipf("mlock of one page failed (RLIMIT_MEMLOCK too low and no CAP_IPC_LOCK): %v", err)
		}
		t.Fatal(err)
	}
	defer unix.Munlock(mem)

	after, err := ReadLocked("/proc", pid)
	if err != nil {
		t.Fatal(err)
	}
	if after < before+uint64(page) {
		t.Errorf("VmLck after locking one page = %d bytes, want at least %d + %d", after, before, page)
	}
	system, err := ReadSystemLocked("/proc")
	if err != nil {
		t.Fatal(err)
	}
	if system < uint64(page) {
		t.Errorf("Mlocked = %d bytes with a page locked, want at least %d", system, page)
	}
	t.Logf("VmLck %d -> %d bytes; system Mlocked %d bytes", before, after, system)

	unix.Munlock(mem)
	if unlocked, err := ReadLocked("/proc", pid); err != nil || unlocked != before {
		t.Errorf("VmLck after munlock = %d, %v; want %d", unlocked, err, before)
	}
}

func TestRealMemlockLimit(t *testing.T) {
	requireProc(t)
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_MEMLOCK, &rl); err != nil {
		t.Fatal(err)
	}
	soft, unlimited, err := ReadMemlockLimit("/proc", uint32(os.Getpid()))
	if err != nil {
		t.Fatal(err)
	}
	if soft != rl.Cur || unlimited != (rl.Cur == unix.RLIM_INFINITY) {
		t.Errorf("ReadMemlockLimit = %d, unlimited %v; getrlimit says %d", soft, unlimited, rl.Cur)
	}
}

func BenchmarkReadLocked(b *testing.B) {
	pid := uint32(os.Getpid())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ReadLocked("/proc", pid); err != nil {
			b.Fatal(err)
		}
	}
}
