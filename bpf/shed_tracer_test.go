package bpf_test

import (
	"context"
	"os"
	"runtime"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/memlock-exporter/memlock-exporter/bpf"
	"github.com/memlock-exporter/memlock-exporter/internal/testutil"
)

// repeatsKept is REPEATS_KEPT in memlock.bpf.c: a thread's first 15
// identical calls in a row are always written.
const repeatsKept = 16

// TestTracerShedsLongRepeatsUnderPressure floods one thread's identical
// calls into a ring buffer that nothing reads, then makes one different
// call. With task storage, the kernel stops writing the flood's records
// once the ring buffer is half full (counting every call it sheds by
// syscall and result), so the different call's record still finds room:
// a flood cannot take others' room. Without task storage the valve is off
// and the ring buffer simply fills.
func TestTracerShedsLongRepeatsUnderPressure(t *testing.T) {
	testutil.RequireRoot(t)
	for _, kind := range availableHooks(t) {
		for _, legacy := range []bool{false, true} {
			name := kind.String()
			if legacy {
				name += "/legacy task access"
			}
			t.Run(name, func(t *testing.T) {
				testShedsLongRepeats(t, bpf.Options{Hooks: []bpf.Probe{kind}, LegacyTaskAccess: legacy})
			})
		}
	}
}

func testShedsLongRepeats(t *testing.T, opts bpf.Options) {
	const ring = 64 << 10 // about 300 records: the flood overfills it sevenfold
	const flood = 2000
	opts.RingbufSize = ring
	opts.Syscalls = allSyscalls
	tr, err := bpf.Open(opts)
	if err != nil {
		t.Fatalf("open tracer: %v", err)
	}
	defer tr.Close()
	valve := tr.TaskAccess() == "task storage + BTF"
	r, err := tr.NewReader(bpf.ReaderOptions{
		OnMalformed: func(err error, _ []byte) { t.Errorf("malformed record: %v", err) },
	})
	if err != nil {
		t.Fatalf("open reader: %v", err)
	}
	defer r.Close()
	col := &collector{}
	drain := func(handle func(*bpf.Event)) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // Run hands over every record there, then returns
		if err := r.Run(ctx, handle); err != nil {
			t.Fatalf("drain the ring buffer: %v", err)
		}
	}
	drain(func(*bpf.Event) {})

	// munlock over a range that wraps around the address space fails
	// with EINVAL, a series nobody else here makes (see
	// testLostToFullRing). One OS thread: the streak is the thread's.
	page := uintptr(os.Getpagesize())
	wrap := ^uintptr(0) &^ (page - 1)
	runtime.LockOSThread()
	for i := range flood {
		if _, _, errno := unix.Syscall(unix.SYS_MUNLOCK, wrap, 2*page, 0); errno != unix.EINVAL {
			runtime.UnlockOSThread()
			t.Fatalf("call %d: munlock(%#x, %d) = %v, want EINVAL", i, wrap, 2*page, errno)
		}
	}
	// The call that matters, after the flood: same series, other length.
	_, _, errno := unix.Syscall(unix.SYS_MUNLOCK, wrap, 3*page, 0)
	runtime.UnlockOSThread()
	if errno != unix.EINVAL {
		t.Fatalf("munlock(%#x, %d) = %v, want EINVAL", wrap, 3*page, errno)
	}

	drain(col.add)
	losses, err := r.Losses()
	if err != nil {
		t.Fatalf("read loss counters: %v", err)
	}
	lost := lostByKey(t, r)
	self := uint32(os.Getpid())
	series := callKey{bpf.SyscallMunlock, bpf.Errno(syscall.EINVAL)}
	var floodRead, others uint64
	var last bool
	for _, ev := range col.snapshot() {
		switch {
		case callKey{ev.Syscall, ev.Errno()} != series:
		case ev.PID != self:
			others++
		case ev.Len == uint64(2*page):
			floodRead++
		case ev.Len == uint64(3*page):
			last = true
		}
	}
	t.Logf("%s: %d flood records read of %d calls, the last call's record read: %v; losses %+v; %d lost in the series",
		tr.TaskAccess(), floodRead, flood, last, losses, lost[series])

	made := uint64(flood + 1)
	switch got := floodRead + lost[series] + b2u(last); {
	case others > 0:
		t.Logf("%d records of other processes in the series: checking a lower bound only", others)
		if got+losses.ProgramBusy < made {
			t.Errorf("records read + lost calls = %d, fewer than the %d calls made", got, made)
		}
	case got > made || got+losses.ProgramBusy < made:
		t.Errorf("records read + lost calls = %d + %d, want the %d calls made (%d exits skipped)", got-lost[series], lost[series], made, losses.ProgramBusy)
	}
	if floodRead < repeatsKept-1 {
		t.Errorf("%d flood records read: the first %d calls of a repeat are always written", floodRead, repeatsKept-1)
	}
	if !valve {
		if losses.RepeatShed != 0 {
			t.Errorf("repeat_shed = %d without task storage, where the valve is off", losses.RepeatShed)
		}
		return
	}
	if losses.RepeatShed == 0 {
		t.Errorf("no call shed: %d identical calls overfill a %d-byte ring buffer", flood, ring)
	}
	if !last {
		t.Errorf("the call after the flood has no record: the flood took its room (losses %+v)", losses)
	}
	checkLostMatchesCounters(t, r)
}

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}
