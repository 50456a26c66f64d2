package main

// -behind: what a traced call costs while the daemon's reader is behind.
//
// The kernel wakes the reader once MEMLOCK_EXPORTER_WAKEUP_BYTES of
// records wait in the ring buffer. A reader that is behind (a burst, a
// slow export) stays past that threshold for as long as it is behind, so
// the wake-up decision is made for every record then; this measures what
// that costs the calling program. The daemon runs with export off and a
// large ring buffer and is stopped (SIGSTOP) so that its reader reads
// nothing; one thread makes failing mlock2 calls that all differ (the
// pressure valve sheds repeats only), first with the ring buffer below the
// threshold, then past it. Each round starts a fresh daemon, and once it
// is continued it must report every call.

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/memlock-exporter/memlock-exporter/bpf"
)

const (
	behindRing   = 64 << 20 // MEMLOCK_EXPORTER_RINGBUF_SIZE for -behind
	behindWakeup = behindRing / 4
	// behindRecordBytes is what one call takes in the ring buffer: the
	// short record the kernel writes where it has task storage (5.11+; the
	// bench's hosts), and its header. On older kernels records are larger
	// and the "below" calls cross the threshold early.
	behindRecordBytes = bpf.CallRecordSize + 8
)

// behindPlan splits the calls of a -behind round for a ring buffer of
// ring bytes whose reader is woken past wakeup bytes, with records of
// recordBytes (header included): below are timed with the ring buffer
// under the threshold, skip carry it past the threshold untimed, and above
// are timed past it, short of the half full at which the pressure valve
// begins (it sheds repeats only, but keep clear of it).
func behindPlan(ring, wakeup, recordBytes int) (below, skip, above int) {
	underThreshold := wakeup / recordBytes
	below = underThreshold * 3 / 4
	skip = underThreshold - below + underThreshold/16
	above = (ring/2)/recordBytes - below - skip - underThreshold/16
	return below, skip, above
}

// behindCalls makes n failing mlock2 calls, each with another length than
// the call before it, from *k on, and returns the ns per call.
func behindCalls(n int, k *int) (float64, error) {
	page := uintptr(os.Getpagesize())
	start := time.Now()
	for range n {
		size := page * uintptr(*k%4096+1)
		*k++
		if _, _, errno := unix.RawSyscall6(unix.SYS_MLOCK2, 0, size, vsBadFlags, 0, 0, 0); errno != unix.EINVAL {
			return 0, fmt.Errorf("mlock2 with flags %#x: got errno %d (%v), want EINVAL", vsBadFlags, errno, errno)
		}
	}
	return float64(time.Since(start).Nanoseconds()) / float64(n), nil
}

type behindRound struct{ below, above float64 }

func behindOnce(exporter string) (behindRound, error) {
	below, skip, above := behindPlan(behindRing, behindWakeup, behindRecordBytes)
	d, err := startDaemon(exporter, []string{
		"OTEL_SDK_DISABLED=true",
		fmt.Sprintf("MEMLOCK_EXPORTER_RINGBUF_SIZE=%d", behindRing),
		fmt.Sprintf("MEMLOCK_EXPORTER_WAKEUP_BYTES=%d", behindWakeup),
	})
	if err != nil {
		return behindRound{}, err
	}
	defer d.kill()
	if err := d.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		return behindRound{}, fmt.Errorf("stop memlock-exporter: %w", err)
	}
	var r behindRound
	k := 0
	runtime.LockOSThread()
	r.below, err = behindCalls(below, &k)
	if err == nil {
		_, err = behindCalls(skip, &k)
	}
	if err == nil {
		r.above, err = behindCalls(above, &k)
	}
	runtime.UnlockOSThread()
	if cerr := d.cmd.Process.Signal(syscall.SIGCONT); cerr != nil {
		return behindRound{}, errors.Join(err, fmt.Errorf("continue memlock-exporter: %w", cerr))
	}
	if err != nil {
		return behindRound{}, err
	}
	time.Sleep(time.Second) // the reader drains what it missed
	if err := d.stop(); err != nil {
		return behindRound{}, err
	}
	c, err := d.counts()
	if err != nil {
		return behindRound{}, err
	}
	// Others' calls come on top; ours must all be there, none lost.
	if c.events < uint64(k) || c.lost() > 0 {
		return behindRound{}, fmt.Errorf("memlock-exporter reported %d events and %d lost for our %d calls: want every call, none lost", c.events, c.lost(), k)
	}
	return r, nil
}

func runBehind(exporter string, rounds int) error {
	below, skip, above := behindPlan(behindRing, behindWakeup, behindRecordBytes)
	fmt.Printf("memlock-bench -behind: kernel %s, %d rounds; ring buffer %d MiB, wake-up threshold %d MiB, reader stopped;\n"+
		"%d distinct failing mlock2 calls timed below the threshold, %d untimed, %d timed past it\n",
		kernelRelease(), rounds, behindRing>>20, behindWakeup>>20, below, skip, above)
	var belows, aboves, ratios []float64
	for i := range rounds {
		r, err := behindOnce(exporter)
		if err != nil {
			return fmt.Errorf("round %d: %w", i+1, err)
		}
		fmt.Printf("  round %d: %.1f ns per call below, %.1f past (%.2fx)\n", i+1, r.below, r.above, r.above/r.below)
		belows, aboves, ratios = append(belows, r.below), append(aboves, r.above), append(ratios, r.above/r.below)
	}
	fmt.Printf("BEHIND kernel=%s rounds=%d below_ns=%.1f past_ns=%.1f ratio=%.2f\n",
		kernelRelease(), rounds, median(belows), median(aboves), median(ratios))
	fmt.Println("(medians; ratio near 1: a reader that is behind costs the traced calls nothing more)")
	return nil
}
