package bpf

import (
	"context"
	"testing"
	"time"
)

// LastPoll is the reader's progress signal for a health check: it must
// advance on a host that makes no calls at all, and stop when Run is stuck.

// TestLastPollZeroBeforeRun: a reader that has not started reports the zero
// Time, so that a health check can tell "not started" from "stalled".
func TestLastPollZeroBeforeRun(t *testing.T) {
	reader, err := newReaderFrom(newFakeRing(), nil, &BootClock{}, ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := reader.LastPoll(); !got.IsZero() {
		t.Errorf("LastPoll() = %v before Run, want the zero Time", got)
	}
}

// TestLastPollAdvancesWhenIdle: with no record at all, each wait's deadline
// (the flush interval) wakes Run, and LastPoll follows.
func TestLastPollAdvancesWhenIdle(t *testing.T) {
	const flush = 10 * time.Millisecond
	before := time.Now()
	r := startRunner(t, ReaderOptions{FlushInterval: flush, ClockRefresh: time.Hour})
	r.ring.awaitState(t, "parked", parked)
	first := r.reader.LastPoll()
	if first.Before(before) {
		t.Fatalf("LastPoll() = %v once Run waits, want at or after its start %v", first, before)
	}
	r.ring.mu.Lock()
	base := r.ring.timeouts
	r.ring.mu.Unlock()
	r.ring.awaitState(t, "5 waits ended by the deadline", func(f *fakeRing) bool { return f.timeouts >= base+5 })
	r.ring.awaitState(t, "parked again", parked)
	if got := r.reader.LastPoll(); !got.After(first) {
		t.Errorf("LastPoll() = %v after 5 idle flush intervals, still %v", got, first)
	}
	if n := r.reader.Events(); n != 0 {
		t.Errorf("Events() = %d, want 0 on an idle ring", n)
	}
}

// TestLastPollStopsWhileHandlerBlocks: a handler that does not return stops
// Run, and LastPoll with it: that is what a stall looks like.
func TestLastPollStopsWhileHandlerBlocks(t *testing.T) {
	const flush = 5 * time.Millisecond
	ring := newFakeRing()
	reader, err := newReaderFrom(ring, nil, &BootClock{}, ReaderOptions{FlushInterval: flush, ClockRefresh: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		done <- reader.Run(ctx, func(*Event) {
			close(entered)
			<-release
		})
	}()
	ring.awaitState(t, "parked", parked)
	ring.push(recordWith(1), true)
	<-entered
	stuck := reader.LastPoll()
	time.Sleep(20 * flush)
	if got := reader.LastPoll(); !got.Equal(stuck) {
		t.Errorf("LastPoll() moved from %v to %v while the handler blocked", stuck, got)
	}
	close(release)
	ring.awaitState(t, "parked after the handler returned", parked)
	if got := reader.LastPoll(); !got.After(stuck) {
		t.Errorf("LastPoll() = %v after the handler returned, still %v", got, stuck)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10s of ctx's end")
	}
}

// TestLastPollAdvancesWhileDraining: a flood that keeps drain from finding
// the ring buffer empty is progress, not a stall: LastPoll moves every
// pollEvery records.
func TestLastPollAdvancesWhileDraining(t *testing.T) {
	ring := newFakeRing()
	reader, err := newReaderFrom(ring, nil, &BootClock{}, ReaderOptions{FlushInterval: time.Hour, ClockRefresh: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	const n = 2 * pollEvery
	var seen int
	atEnd, release := make(chan time.Time), make(chan struct{})
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		done <- reader.Run(ctx, func(*Event) {
			if seen++; seen == n {
				atEnd <- reader.LastPoll()
				<-release
			}
		})
	}()
	ring.awaitState(t, "parked", parked)
	parkedAt := reader.LastPoll()
	time.Sleep(time.Millisecond) // so that a later clock read differs
	pushed := time.Now()
	for i := range n {
		ring.push(recordWith(uint32(i)), i == n-1)
	}
	var got time.Time
	select {
	case got = <-atEnd:
	case <-time.After(10 * time.Second):
		t.Fatal("the flood was not handed over within 10s")
	}
	close(release)
	if got.Before(pushed) || !got.After(parkedAt) {
		t.Errorf("LastPoll() = %v after %d records of one drain pushed at %v, want it moved on from %v", got, n, pushed, parkedAt)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10s of ctx's end")
	}
}
