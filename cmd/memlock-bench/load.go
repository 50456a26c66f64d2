package main

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// pacerBatch is how much time's worth of calls the load generator makes
// back to back before it looks at the clock again: small enough that the
// exporter sees a steady stream rather than bursts, large enough that
// sleeping between batches is not all the generator does.
const pacerBatch = time.Millisecond

// steadyLoad calls mlock2(page, len, MLOCK_ONFAULT) at a steady rate per
// second from one locked OS thread, so every event carries the same pid
// and tid, until Stop is called. The page stays locked after the first
// call; later calls lock nothing new but still make one event each.
//
// len alternates between len(page) and len(page)-1 (the same page either
// way: the kernel locks whole pages), so that no two consecutive calls
// are the same call: the exporter folds a thread's run of identical calls
// into one record (exporter/fold.go), and the load must cost it one record
// per call, as a busy host's many programs would.
type steadyLoad struct {
	made atomic.Uint64 // calls made so far, updated after every batch
	stop chan struct{}
	done chan error
}

func startSteadyLoad(page []byte, rate int) *steadyLoad {
	l := &steadyLoad{stop: make(chan struct{}), done: make(chan error, 1)}
	go func() { l.done <- l.run(page, rate) }()
	return l
}

// Made returns the number of calls made so far.
func (l *steadyLoad) Made() uint64 { return l.made.Load() }

// Stop ends the load and returns the total number of calls made, or the
// error that ended it early.
func (l *steadyLoad) Stop() (uint64, error) {
	close(l.stop)
	err := <-l.done
	return l.made.Load(), err
}

// loadLen is the length of call n of a page of size bytes: size and
// size-1 in turn.
func loadLen(size uintptr, n uint64) uintptr { return size - uintptr(n&1) }

// run paces the calls against the monotonic clock: after each batch it
// works out how many calls are due since the start and makes up the
// difference, so a late wake-up is caught up on rather than lost, and the
// average rate stays exact whatever the sleeps' accuracy.
func (l *steadyLoad) run(page []byte, rate int) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	addr := uintptr(unsafePointer(page))
	size := uintptr(len(page))
	batch := max(1, uint64(rate)*uint64(pacerBatch)/uint64(time.Second))
	// Calls due by a time, and the time a call is due, in integers so that
	// any rate is kept exactly.
	dueBy := func(d time.Duration) uint64 { return uint64(d) * uint64(rate) / uint64(time.Second) }
	dueAt := func(n uint64) time.Duration { return time.Duration(n * uint64(time.Second) / uint64(rate)) }
	start := time.Now() // carries a monotonic reading
	var made uint64
	for {
		select {
		case <-l.stop:
			return nil
		default:
		}
		due := dueBy(time.Since(start))
		if made >= due {
			time.Sleep(time.Until(start.Add(dueAt(made + batch))))
			continue
		}
		for range min(due-made, batch) {
			if _, _, errno := unix.Syscall(unix.SYS_MLOCK2, addr, loadLen(size, made), unix.MLOCK_ONFAULT); errno != 0 {
				return fmt.Errorf("mlock2: %w", errno)
			}
			made++
		}
		l.made.Store(made)
	}
}
