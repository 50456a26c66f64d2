package bpf_test

import (
	"os"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/memlock-exporter/memlock-exporter/bpf"
	"github.com/memlock-exporter/memlock-exporter/internal/testutil"
)

// TestTracerSpacesForcedWakeups fills a ring buffer that nothing reads past
// its wake-up threshold with calls that all differ, and after each call
// asks the ring's descriptor whether the kernel woke its readers since the
// last call. The kernel must have woken them (the threshold was crossed),
// but at most once per bpf.ForcedWakeupGap of the time the calls took, not
// once per record: a reader that is behind does not need waking, and each
// wake-up costs the traced call an interrupt.
func TestTracerSpacesForcedWakeups(t *testing.T) {
	testutil.RequireRoot(t)
	for _, kind := range availableHooks(t) {
		t.Run(kind.String(), func(t *testing.T) {
			testSpacesForcedWakeups(t, kind)
		})
	}
}

func testSpacesForcedWakeups(t *testing.T, kind bpf.Probe) {
	const (
		ring      = 256 << 10
		threshold = 16 << 10
		calls     = 900 // 105 to 180 KiB of records (short or full): past the threshold, short of full
	)
	tr, err := bpf.Open(bpf.Options{
		Hooks: []bpf.Probe{kind}, Syscalls: allSyscalls, RingbufSize: ring, WakeupBytes: threshold,
	})
	if err != nil {
		t.Fatalf("open tracer: %v", err)
	}
	defer tr.Close()

	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		t.Fatalf("epoll_create1: %v", err)
	}
	defer unix.Close(ep)
	// Edge-triggered: each epoll_wait reports whether a wake-up came since
	// the one before.
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLET}
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, bpf.RingBufferFD(tr), &ev); err != nil {
		t.Fatalf("watch the ring buffer: %v", err)
	}
	woken := func(timeout time.Duration) bool {
		events := make([]unix.EpollEvent, 1)
		for {
			n, err := unix.EpollWait(ep, events, int(timeout.Milliseconds()))
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				t.Fatalf("epoll_wait: %v", err)
			}
			return n > 0
		}
	}

	// munlock over a range that wraps around the address space fails with
	// EINVAL at once; a different length each time keeps the calls from
	// being repeats, which the pressure valve could shed.
	page := uintptr(os.Getpagesize())
	wrap := ^uintptr(0) &^ (page - 1)
	call := func(i int) {
		length := uintptr(i+2) * page
		if _, _, errno := unix.Syscall(unix.SYS_MUNLOCK, wrap, length, 0); errno != unix.EINVAL {
			t.Fatalf("call %d: munlock(%#x, %d) = %v, want EINVAL", i, wrap, length, errno)
		}
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	// The process's identity goes first, into the empty ring buffer, which
	// wakes its readers: that wake-up is not the threshold's.
	call(0)
	woken(0)

	wakeups := 0
	start := time.Now()
	for i := 1; i <= calls; i++ {
		call(i)
		if woken(0) {
			wakeups++
		}
	}
	elapsed := time.Since(start)
	if wakeups == 0 && woken(time.Second) {
		wakeups++ // the kernel woke them later than the call returned
	}
	// One for the threshold's crossing, one per gap after it, and two to
	// spare.
	limit := int(elapsed/bpf.ForcedWakeupGap) + 3
	t.Logf("%d calls in %v: %d wake-ups (at most %d allowed)", calls, elapsed, wakeups, limit)
	if wakeups == 0 {
		t.Errorf("the kernel never woke the ring buffer's readers, though %d KiB of records or more passed the %d KiB threshold", calls*bpf.CallRecordSize>>10, threshold>>10)
	}
	if wakeups > limit {
		t.Errorf("%d wake-ups in %v, want at most %d: one per %v past the threshold, not one per record", wakeups, elapsed, limit, bpf.ForcedWakeupGap)
	}
}
