package bpf_test

import (
	"context"
	"encoding/binary"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/memlock-exporter/memlock-exporter/bpf"
	"github.com/memlock-exporter/memlock-exporter/internal/testutil"
)

// callKey is a series of the call metrics: a syscall and its errno.
type callKey struct {
	syscall bpf.Syscall
	errno   bpf.Errno
}

func lostByKey(t *testing.T, r *bpf.Reader) map[callKey]uint64 {
	t.Helper()
	lost, err := r.LostCalls()
	if err != nil {
		t.Fatalf("read lost calls: %v", err)
	}
	m := map[callKey]uint64{}
	for _, l := range lost {
		k := callKey{l.Syscall, l.Errno}
		if _, dup := m[k]; dup || l.Calls == 0 {
			t.Errorf("LostCalls lists %+v twice or with no call: %+v", k, lost)
		}
		m[k] = l.Calls
	}
	return m
}

func sumLost(m map[callKey]uint64) (n uint64) {
	for _, v := range m {
		n += v
	}
	return n
}

// TestTracerLostCallsExact checks that the calls whose records the kernel
// could not hand over are still counted by syscall and errno (what keeps
// memlock.calls exact), for every kind of hook this kernel supports. The
// two ways of finding the call in flight differ only before the loss
// paths, so only the exit without entry, which follows from that lookup,
// is tried with both.
func TestTracerLostCallsExact(t *testing.T) {
	testutil.RequireRoot(t)
	bin := testutil.BuildWorkload(t)
	testutil.StartNoise(t, bin, 2*time.Millisecond)
	for _, kind := range availableHooks(t) {
		t.Run(kind.String()+"/ring buffer full", func(t *testing.T) {
			testLostToFullRing(t, bin, bpf.Options{Hooks: []bpf.Probe{kind}})
		})
		for _, legacy := range []bool{false, true} {
			name := kind.String() + "/exit without entry"
			if legacy {
				name += ", legacy task access"
			}
			t.Run(name, func(t *testing.T) {
				testExitWithoutEntry(t, bpf.Options{Hooks: []bpf.Probe{kind}, LegacyTaskAccess: legacy})
			})
		}
	}
}

// floodCalls is how many calls the test makes itself while nothing reads
// the ring buffer: about 25 times what a 4 KiB ring buffer holds.
const floodCalls = 500

// testLostToFullRing fills the smallest ring buffer while nothing reads
// it, then reads what it holds and compares events plus lost calls with
// the calls made.
//
// The kernel's counters are the host's, not a process's: the noise and
// whatever else runs here lose calls too. The exact check is therefore on
// a series no other process makes: the test's own munlock calls over a
// range that wraps around the address space, which fail with EINVAL (the
// noise's munlocks succeed; the workload's failing one fails with ENOMEM).
// For the workload's series, which the noise and other tests' workloads
// share, lost calls are only a lower bound: they must cover every call of
// the workload that has no event.
func testLostToFullRing(t *testing.T, bin string, opts bpf.Options) {
	cg, inCgroup := testutil.NewCgroup(t)
	page := os.Getpagesize()
	opts.RingbufSize = page // the smallest there is
	opts.Syscalls = allSyscalls
	tr, err := bpf.Open(opts)
	if err != nil {
		t.Fatalf("open tracer: %v", err)
	}
	defer tr.Close()
	t.Logf("task access: %s; plan:\n%s", tr.TaskAccess(), tr.Plan())
	r, err := tr.NewReader(bpf.ReaderOptions{
		OnMalformed: func(err error, _ []byte) { t.Errorf("malformed record: %v", err) },
	})
	if err != nil {
		t.Fatalf("open reader: %v", err)
	}
	defer r.Close()

	// Empty the ring buffer (the noise filled it already), so that the
	// first calls' records find room; then nothing reads it, and it
	// fills within a few calls.
	drain := func(handle func(*bpf.Event)) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // Run hands over every record there, then returns
		if err := r.Run(ctx, handle); err != nil {
			t.Fatalf("drain the ring buffer: %v", err)
		}
	}
	col := &collector{}
	drain(func(*bpf.Event) {})
	wrap := ^uintptr(0) &^ uintptr(page-1) // the last page: the range wraps
	for i := range floodCalls {
		if _, _, errno := unix.Syscall(unix.SYS_MUNLOCK, wrap, uintptr(2*page), 0); errno != unix.EINVAL {
			t.Fatalf("call %d: munlock(%#x, %d) = %v, want EINVAL", i, wrap, 2*page, errno)
		}
	}
	var calls []testutil.WorkloadCall
	if inCgroup {
		calls = cg.RunWorkload(t, bin)
	} else {
		calls = testutil.RunWorkload(t, bin)
	}
	pids := map[uint32]bool{}
	for _, c := range calls {
		pids[c.PID] = true
	}
	workload := func(ev *bpf.Event) bool {
		if inCgroup {
			return ev.CgroupID == cg.ID
		}
		return pids[ev.PID] || ev.PPID == calls[0].PID
	}

	drain(col.add)
	lost := lostByKey(t, r)
	losses, err := r.Losses()
	if err != nil {
		t.Fatalf("read loss counters: %v", err)
	}
	t.Logf("%d events read; losses %+v; lost calls by series: %v", len(col.snapshot()), losses, lost)

	self := uint32(os.Getpid())
	flood := callKey{bpf.SyscallMunlock, bpf.Errno(syscall.EINVAL)}
	var own, others uint64
	read := map[callKey]uint64{}
	for _, ev := range col.snapshot() {
		k := callKey{ev.Syscall, ev.Errno()}
		switch {
		case ev.PID == self && k == flood:
			own++
		case k == flood:
			others++
		case workload(&ev):
			read[k]++
		}
	}

	// A call whose exit program the kernel skipped (program_busy: a
	// preempted program on the same CPU) is lost uncounted by series; the
	// test tolerates as many as the kernel counted.
	busy := losses.ProgramBusy
	t.Logf("own %s calls: %d made, %d events read, %d counted lost (%d exits skipped on the host)",
		"munlock EINVAL", floodCalls, own, lost[flood], busy)
	if lost[flood] == 0 {
		t.Errorf("no munlock EINVAL call counted lost: the %d-byte ring buffer cannot hold %d records", page, floodCalls)
	}
	switch got := own + lost[flood]; {
	case others > 0:
		// Not ours alone after all: only the lower bound holds.
		t.Logf("%d munlock EINVAL events of other processes: checking a lower bound only", others)
		if got+busy < floodCalls {
			t.Errorf("events read + lost = %d + %d, fewer than the %d calls made", own, lost[flood], floodCalls)
		}
	case got > floodCalls:
		t.Errorf("events read + lost = %d + %d = %d, more than the %d calls made", own, lost[flood], got, floodCalls)
	case got+busy < floodCalls:
		t.Errorf("events read + lost = %d + %d = %d, want %d (%d exits skipped)", own, lost[flood], got, floodCalls, busy)
	}

	made := map[callKey]uint64{}
	for _, c := range calls {
		s, err := bpf.ParseSyscall(c.Syscall)
		if err != nil {
			t.Fatal(err)
		}
		var errno bpf.Errno
		if c.Ret < 0 {
			errno = bpf.Errno(-c.Ret)
		}
		made[callKey{s, errno}]++
	}
	missing := uint64(0)
	for k, n := range made {
		switch {
		case read[k] > n:
			t.Errorf("%s %s: %d events of the workload, which made %d calls", k.syscall, k.errno, read[k], n)
		case read[k]+lost[k]+busy < n:
			t.Errorf("%s %s: %d calls made, %d events read and only %d counted lost", k.syscall, k.errno, n, read[k], lost[k])
		}
		missing += n - min(n, read[k])
	}
	for k, n := range read {
		if made[k] == 0 {
			t.Errorf("%d events of series %s %s, which the workload did not make", n, k.syscall, k.errno)
		}
	}
	t.Logf("workload: %d calls made, %d without an event, all counted lost", len(calls), missing)
	checkLostMatchesCounters(t, r)
}

// checkLostMatchesCounters checks that every call counted as ringbuf_full
// or missed_entry is counted by series too, and no other. The counters
// keep moving (the noise's calls), so the loss counters are read between
// two readings of the lost calls; the kernel counts the reason first, so
// the reason's count lies between the two sums.
func checkLostMatchesCounters(t *testing.T, r *bpf.Reader) {
	t.Helper()
	var before, after uint64
	var counted uint64
	for range 20 {
		before = sumLost(lostByKey(t, r))
		losses, err := r.Losses()
		if err != nil {
			t.Fatalf("read loss counters: %v", err)
		}
		counted = losses.RingbufFull + losses.MissedEntry + losses.RepeatShed
		after = sumLost(lostByKey(t, r))
		if before <= counted && counted <= after {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Errorf("ringbuf_full + missed_entry + repeat_shed = %d, lost calls by series %d then %d", counted, before, after)
}

// Userfaultfd's interface (linux/userfaultfd.h), which x/sys/unix lacks.
const (
	uffdAPI               = 0xaa
	uffdioAPI             = 0xc018aa3f // _IOWR(0xaa, 0x3f, struct uffdio_api)
	uffdioRegister        = 0xc020aa00 // _IOWR(0xaa, 0x00, struct uffdio_register)
	uffdRegisterMissing   = 1
	uffdEventPagefault    = 0x12
	uffdMsgSize           = 32
	uffdMsgPagefaultAddr  = 16 // offset of arg.pagefault.address
	uffdioRegisterSize    = 32
	uffdioAPIStructSize   = 24
	uffdioRegisterModeOff = 16
)

// testExitWithoutEntry makes an mlock call that is under way when the
// hooks are attached: its exit comes without an entry, and the call must
// still be counted, as an mlock that succeeded. The call waits in the
// kernel on a page fault that a userfaultfd holds until the tracer is
// ready. Only the syscall tracepoint sees such an exit: kretprobes and
// fexit hook a call at its entry, so one under way when they are attached
// is not seen at all, neither reported nor counted.
func testExitWithoutEntry(t *testing.T, opts bpf.Options) {
	if kind := opts.Hooks[0]; kind != bpf.ProbeTracepoint {
		t.Logf("%s hooks a call at its entry: one under way when attached is not seen; nothing to check", kind)
		return
	}
	page := os.Getpagesize()
	uffd, _, errno := unix.Syscall(unix.SYS_USERFAULTFD, unix.O_CLOEXEC, 0, 0)
	if errno != 0 {
		t.Fatalf("userfaultfd: %v (the kernels of the matrix have CONFIG_USERFAULTFD)", errno)
	}
	fd := int(uffd)
	closed := false
	defer func() {
		if !closed {
			unix.Close(fd)
		}
	}()
	var api [uffdioAPIStructSize]byte
	binary.LittleEndian.PutUint64(api[0:], uffdAPI)
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uffdioAPI, uintptr(unsafe.Pointer(&api[0]))); errno != 0 {
		t.Fatalf("UFFDIO_API: %v", errno)
	}
	mem, err := unix.Mmap(-1, 0, page, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatalf("mmap: %v", err)
	}
	defer unix.Munmap(mem)
	addr := uintptr(unsafe.Pointer(&mem[0]))
	var reg [uffdioRegisterSize]byte
	binary.LittleEndian.PutUint64(reg[0:], uint64(addr))
	binary.LittleEndian.PutUint64(reg[8:], uint64(page))
	binary.LittleEndian.PutUint64(reg[uffdioRegisterModeOff:], uffdRegisterMissing)
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uffdioRegister, uintptr(unsafe.Pointer(&reg[0]))); errno != 0 {
		t.Fatalf("UFFDIO_REGISTER: %v", errno)
	}

	// mlock faults the page in, and the fault waits for the userfaultfd.
	done := make(chan syscall.Errno, 1)
	go func() {
		runtime.LockOSThread()
		_, _, errno := unix.Syscall(unix.SYS_MLOCK, addr, uintptr(page), 0)
		done <- errno
	}()
	var msg [uffdMsgSize]byte
	if n, err := unix.Read(fd, msg[:]); err != nil || n != uffdMsgSize || msg[0] != uffdEventPagefault {
		t.Fatalf("read userfaultfd: %d bytes %x, %v; want a page fault", n, msg[:n], err)
	}
	if got := binary.LittleEndian.Uint64(msg[uffdMsgPagefaultAddr:]); got&^uint64(page-1) != uint64(addr) {
		t.Fatalf("page fault at %#x, want %#x", got, addr)
	}

	opts.Syscalls = []bpf.Syscall{bpf.SyscallMlock}
	tr, r, col, stop := startTracer(t, opts)
	t.Logf("task access: %s", tr.TaskAccess())
	// Closing the userfaultfd lets the fault be retried, without it.
	closed = true
	if err := unix.Close(fd); err != nil {
		t.Fatalf("close userfaultfd: %v", err)
	}
	select {
	case errno := <-done:
		if errno != 0 {
			t.Fatalf("mlock: %v", errno)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("mlock did not return within 10s of the userfaultfd's close")
	}
	unix.Munlock(mem)
	stop()

	self := uint32(os.Getpid())
	for _, ev := range col.snapshot() {
		if ev.PID == self {
			t.Errorf("an event for the call under way when the hooks were attached: %+v", ev)
		}
	}
	losses, err := r.Losses()
	if err != nil {
		t.Fatal(err)
	}
	lost := lostByKey(t, r)
	ok := callKey{bpf.SyscallMlock, 0}
	t.Logf("losses %+v; lost calls %v", losses, lost)
	// Other processes' calls under way at the attach count too: at least.
	if losses.MissedEntry == 0 || lost[ok] == 0 {
		t.Errorf("mlock under way at the attach: missed_entry %d, lost successful mlock calls %d; want both at least 1", losses.MissedEntry, lost[ok])
	}
	checkLostMatchesCounters(t, r)
}
