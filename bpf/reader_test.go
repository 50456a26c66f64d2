package bpf

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/cilium/ebpf/ringbuf"
)

// These tests drive Reader.Run with a fake ring buffer: its batching and
// deadline logic needs neither root nor BPF. tracer_test.go runs it on the
// kernel's ring buffer.

// fakeRing is a ringSource whose records and wake-ups a test controls, with
// the real one's semantics (ringbufSource): wait returns at once while data
// is there, else only for a wake-up that finds data, the deadline or close.
type fakeRing struct {
	mu       sync.Mutex
	records  [][]byte
	closed   bool
	deadline time.Time
	woken    bool          // a wake-up not yet seen by wait
	changed  chan struct{} // closed, and replaced, when any of the above changes
	waiting  bool          // a wait is under way
	waits    int           // waits begun
	timeouts int           // waits ended by the deadline
	readErr  error         // returned by read instead of a record, if set
}

func newFakeRing() *fakeRing { return &fakeRing{changed: make(chan struct{})} }

// notify wakes the goroutines watching f; f.mu is held.
func (f *fakeRing) notify() {
	close(f.changed)
	f.changed = make(chan struct{})
}

// push appends a record; with wake, the kernel also wakes the readers
// (as past the wake-up threshold); without, it submits with
// BPF_RB_NO_WAKEUP.
func (f *fakeRing) push(raw []byte, wake bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.records = append(f.records, raw)
	if wake {
		f.woken = true
	}
	f.notify()
}

func (f *fakeRing) read(rec *ringbuf.Record) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.closed:
		return fmt.Errorf("ringbuffer: %w", ringbuf.ErrClosed)
	case f.readErr != nil:
		return f.readErr
	case len(f.records) == 0:
		return errRingEmpty
	}
	rec.RawSample = append(rec.RawSample[:0], f.records[0]...)
	f.records = f.records[1:]
	return nil
}

func (f *fakeRing) availableLocked() int {
	n := 0
	for _, r := range f.records {
		n += 8 + (len(r)+7)&^7 // header, data padded to 8 bytes
	}
	return n
}

func (f *fakeRing) available() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.availableLocked()
}

func (f *fakeRing) setWaitDeadline(t time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return os.ErrClosed
	}
	f.deadline = t
	f.notify()
	return nil
}

func (f *fakeRing) wait() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.waits++
	f.waiting = true
	f.notify()
	defer func() { f.waiting = false; f.notify() }()
	for {
		switch {
		case f.closed:
			return os.ErrClosed
		case !f.deadline.IsZero() && !time.Now().Before(f.deadline):
			f.timeouts++
			return os.ErrDeadlineExceeded
		case f.availableLocked() > 0:
			return nil // there at once, or after a wake-up
		}
		// Park until a wake-up finds data (checked above), or the
		// deadline, or close.
		f.woken = false
		for !f.woken && !f.closed && (f.deadline.IsZero() || time.Now().Before(f.deadline)) {
			ch := f.changed
			var timer <-chan time.Time
			if !f.deadline.IsZero() {
				timer = time.After(time.Until(f.deadline))
			}
			f.mu.Unlock()
			select {
			case <-ch:
			case <-timer:
			}
			f.mu.Lock()
		}
		// A wake-up for data already read: the loop waits on.
	}
}

func (f *fakeRing) close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	f.notify()
	return nil
}

// awaitState waits until cond holds of f (read under its lock), and fails
// the test naming what it waited for if it does not within 10s.
func (f *fakeRing) awaitState(t *testing.T, what string, cond func(*fakeRing) bool) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		f.mu.Lock()
		ok, ch := cond(f), f.changed
		f.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-timeout:
			t.Fatalf("reader did not reach state %q within 10s", what)
		}
	}
}

// parked: Run waits for data, with nothing left to read.
func parked(f *fakeRing) bool { return f.waiting && len(f.records) == 0 }

// runner runs Reader.Run on a fake ring in the background and passes on
// the events it hands over.
type runner struct {
	ring     *fakeRing
	reader   *Reader
	clock    *BootClock
	events   chan Event
	finished chan struct{} // closed when Run has returned err
	err      error
}

func startRunner(t *testing.T, opts ReaderOptions) *runner {
	t.Helper()
	clock, err := NewBootClock()
	if err != nil {
		t.Fatal(err)
	}
	r := &runner{ring: newFakeRing(), clock: clock, events: make(chan Event, 100), finished: make(chan struct{})}
	reader, err := newReaderFrom(r.ring, nil, clock, opts)
	if err != nil {
		t.Fatal(err)
	}
	r.reader = reader
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		r.err = r.reader.Run(ctx, func(ev *Event) { r.events <- *ev })
		close(r.finished)
	}()
	t.Cleanup(func() {
		cancel()
		r.reader.Close()
		<-r.finished
	})
	return r
}

// next returns the next event handed over, failing the test after timeout.
func (r *runner) next(t *testing.T, timeout time.Duration) Event {
	t.Helper()
	select {
	case ev := <-r.events:
		return ev
	case <-r.finished:
		t.Fatalf("Run returned %v before handing over an event", r.err)
	case <-time.After(timeout):
		t.Fatalf("no event handed over within %v", timeout)
	}
	return Event{}
}

// result returns Run's result, failing the test if it does not return
// within 10s.
func (r *runner) result(t *testing.T) error {
	t.Helper()
	select {
	case <-r.finished:
		return r.err
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10s")
		return nil
	}
}

// recordWith returns sampleRecord with pid.
func recordWith(pid uint32) []byte {
	rec := sampleRecord
	rec.pid = pid
	return rec.bytes()
}

// TestReaderLoneRecordLeavesByDeadline: a record the kernel submitted
// without waking the reader is handed over when the flush interval's
// deadline ends the wait, not before and not later.
func TestReaderLoneRecordLeavesByDeadline(t *testing.T) {
	const flush = 50 * time.Millisecond
	r := startRunner(t, ReaderOptions{FlushInterval: flush, ClockRefresh: time.Hour})
	r.ring.awaitState(t, "parked", parked)
	pushed := time.Now()
	r.ring.push(recordWith(7), false)
	ev := r.next(t, 10*time.Second)
	took := time.Since(pushed)
	if ev.PID != 7 {
		t.Errorf("handed over pid %d, want 7", ev.PID)
	}
	r.ring.awaitState(t, "parked again", parked)
	r.ring.mu.Lock()
	timeouts, deadline := r.ring.timeouts, r.ring.deadline
	r.ring.mu.Unlock()
	if timeouts == 0 {
		t.Error("the record was handed over before any wait's deadline, without a wake-up")
	}
	// The next wait ends one flush interval after Run woke.
	if ahead := time.Until(deadline); ahead > flush || ahead < flush-time.Second {
		t.Errorf("next wait's deadline is %v away, want about the flush interval %v", ahead, flush)
	}
	// A loaded host may run Run late, but not by seconds.
	if took > flush+2*time.Second {
		t.Errorf("handed over %v after it was submitted, flush interval %v", took, flush)
	}
	t.Logf("handed over %v after it was submitted (flush interval %v)", took, flush)
}

// TestReaderWakeUpHandsOverAtOnce: when the kernel wakes the reader (past
// the wake-up threshold), what is there is handed over at once, not at the
// flush interval's end.
func TestReaderWakeUpHandsOverAtOnce(t *testing.T) {
	r := startRunner(t, ReaderOptions{FlushInterval: time.Hour, ClockRefresh: time.Hour})
	r.ring.awaitState(t, "parked", parked)
	r.ring.push(recordWith(1), false) // waits for the next wake-up
	r.ring.push(recordWith(2), true)
	for _, want := range []uint32{1, 2} {
		if ev := r.next(t, 10*time.Second); ev.PID != want {
			t.Errorf("handed over pid %d, want %d", ev.PID, want)
		}
	}
	if n := r.reader.Events(); n != 2 {
		t.Errorf("Events() = %d, want 2", n)
	}
}

// TestReaderReadAt: each event carries when it was read, never before the
// record was there nor after it was handed over; records in a row share a
// clock reading, readAtEvery at most; and a record whose call ended after
// the reading (the kernel wrote it while the reader was at work) gets a
// reading of its own, so that its ObservedTimestamp is not before its call.
func TestReaderReadAt(t *testing.T) {
	r := startRunner(t, ReaderOptions{FlushInterval: time.Hour, ClockRefresh: time.Hour})
	r.ring.awaitState(t, "parked", parked)
	const n = 3*readAtEvery + 1
	late := 2*readAtEvery - 10 // its call ends in an hour: after any reading
	r.ring.mu.Lock()
	for i := range n {
		rec := sampleRecord // its call ended long ago (5 s after boot)
		rec.pid = uint32(i + 1)
		if i == late {
			rec.entryNs = monotonicBootNs(t) + uint64(time.Hour)
		}
		r.ring.records = append(r.ring.records, rec.bytes())
	}
	r.ring.mu.Unlock()
	pushed := time.Now()
	r.ring.push(recordWith(n+1), true) // one pass reads them all
	var got []Event
	for range n + 1 {
		got = append(got, r.next(t, 10*time.Second))
	}
	handed := time.Now()
	run := 0 // records sharing the current reading
	for i, ev := range got {
		if ev.ReadAt.Before(pushed) || ev.ReadAt.After(handed) {
			t.Fatalf("record %d: ReadAt %v outside [%v, %v]", i, ev.ReadAt, pushed, handed)
		}
		fresh := i == 0 || !ev.ReadAt.Equal(got[i-1].ReadAt)
		if fresh {
			run = 0
		}
		run++
		switch {
		case i == late && !fresh:
			t.Errorf("record %d, whose call ends after the reading: ReadAt %v shared with the record before", i, ev.ReadAt)
		case run > readAtEvery:
			t.Errorf("record %d: %d records share the reading %v, want at most %d", i, run, ev.ReadAt, readAtEvery)
		case i < late && fresh != (i%readAtEvery == 0):
			t.Errorf("record %d: fresh reading %t, want one per %d records", i, fresh, readAtEvery)
		}
	}
}

// TestReaderDrainsWhenContextEnds: records in the ring buffer when ctx ends
// are all handed over, in order, before Run returns nil; none is left
// behind by a wait.
func TestReaderDrainsWhenContextEnds(t *testing.T) {
	for _, tc := range []struct {
		name   string
		before bool // cancel before Run starts
	}{{"while waiting", false}, {"before Run", true}} {
		t.Run(tc.name, func(t *testing.T) {
			ring := newFakeRing()
			clock, err := NewBootClock()
			if err != nil {
				t.Fatal(err)
			}
			reader, err := newReaderFrom(ring, nil, clock, ReaderOptions{FlushInterval: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			var got []uint32
			done := make(chan error, 1)
			const n = 50
			if tc.before {
				for pid := range uint32(n) {
					ring.push(recordWith(pid), false)
				}
				cancel()
				go func() { done <- reader.Run(ctx, func(ev *Event) { got = append(got, ev.PID) }) }()
			} else {
				go func() { done <- reader.Run(ctx, func(ev *Event) { got = append(got, ev.PID) }) }()
				ring.awaitState(t, "parked", parked)
				for pid := range uint32(n) {
					ring.push(recordWith(pid), false)
				}
				cancel()
			}
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run returned %v, want nil", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Run did not return within 10s of ctx's end (flush interval 1h)")
			}
			if len(got) != n {
				t.Fatalf("handed over %d records, want the %d in the ring buffer", len(got), n)
			}
			for i, pid := range got {
				if pid != uint32(i) {
					t.Fatalf("record %d handed over is pid %d, want them in order: %v", i, pid, got)
				}
			}
			if left := ring.available(); left != 0 {
				t.Errorf("%d bytes left in the ring buffer", left)
			}
		})
	}
}

// TestReaderCloseEndsRun: Close ends a waiting Run, which returns nil.
func TestReaderCloseEndsRun(t *testing.T) {
	r := startRunner(t, ReaderOptions{FlushInterval: time.Hour})
	r.ring.awaitState(t, "parked", parked)
	if err := r.reader.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := r.result(t); err != nil {
		t.Errorf("Run returned %v after Close, want nil", err)
	}
}

// TestReaderReadError: a failing read ends Run with that error.
func TestReaderReadError(t *testing.T) {
	boom := errors.New("boom")
	r := startRunner(t, ReaderOptions{FlushInterval: time.Hour})
	r.ring.awaitState(t, "parked", parked)
	r.ring.mu.Lock()
	r.ring.readErr = boom
	r.ring.mu.Unlock()
	r.ring.push(recordWith(1), true)
	if err := r.result(t); !errors.Is(err, boom) {
		t.Errorf("Run returned %v, want an error wrapping %v", err, boom)
	}
}

// TestReaderMalformedRecords: a record that does not decode is counted,
// reported through OnMalformed with its bytes, and skipped; the next one
// is handed over.
func TestReaderMalformedRecords(t *testing.T) {
	type report struct {
		err error
		raw []byte
	}
	reports := make(chan report, 10)
	r := startRunner(t, ReaderOptions{
		FlushInterval: time.Hour,
		OnMalformed:   func(err error, raw []byte) { reports <- report{err, bytes.Clone(raw)} },
	})
	short := []byte("too short")
	badSyscall := sampleRecord
	badSyscall.syscall = 99
	r.ring.push(short, false)
	r.ring.push(badSyscall.bytes(), false)
	r.ring.push(recordWith(5), true)
	if ev := r.next(t, 10*time.Second); ev.PID != 5 {
		t.Errorf("handed over pid %d, want 5", ev.PID)
	}
	for _, want := range []report{{ErrRecordSize, short}, {ErrUnknownSyscall, badSyscall.bytes()}} {
		select {
		case got := <-reports:
			if !errors.Is(got.err, want.err) || !bytes.Equal(got.raw, want.raw) {
				t.Errorf("OnMalformed(%v, %d bytes), want (%v, %d bytes)", got.err, len(got.raw), want.err, len(want.raw))
			}
		default:
			t.Errorf("OnMalformed not called for %v", want.err)
		}
	}
	if m, e := r.reader.Malformed(), r.reader.Events(); m != 2 || e != 1 {
		t.Errorf("Malformed() = %d, Events() = %d; want 2 and 1", m, e)
	}
	select {
	case ev := <-r.events:
		t.Errorf("a malformed record was handed over: %+v", ev)
	default:
	}
}

// TestReaderRefreshesClock: Run measures the boot-to-wall offset again
// every ClockRefresh, and not more often.
func TestReaderRefreshesClock(t *testing.T) {
	const bogus = -time.Hour // no real offset: boot time is long after 1970
	t.Run("every ClockRefresh", func(t *testing.T) {
		r := startRunner(t, ReaderOptions{FlushInterval: 5 * time.Millisecond, ClockRefresh: 30 * time.Millisecond})
		r.clock.SetOffset(bogus)
		start := time.Now()
		deadline := start.Add(10 * time.Second)
		for r.clock.Offset() == bogus {
			if time.Now().After(deadline) {
				t.Fatal("clock offset not refreshed within 10s, ClockRefresh 30ms")
			}
			time.Sleep(time.Millisecond)
		}
		t.Logf("refreshed %v after the offset was spoilt", time.Since(start))
		// Events read now carry the wall time of their boot timestamp.
		rec := sampleRecord
		rec.entryNs = monotonicBootNs(t)
		r.ring.push(rec.bytes(), true)
		if ev := r.next(t, 10*time.Second); time.Since(ev.Time).Abs() > time.Minute {
			t.Errorf("event time %v after the refresh, want about now", ev.Time)
		}
	})
	t.Run("not before", func(t *testing.T) {
		r := startRunner(t, ReaderOptions{FlushInterval: time.Millisecond, ClockRefresh: time.Hour})
		r.clock.SetOffset(bogus)
		// Many rounds of Run's loop, each of which checks the clock's age.
		r.ring.mu.Lock()
		base := r.ring.waits
		r.ring.mu.Unlock()
		r.ring.awaitState(t, "20 waits more", func(f *fakeRing) bool { return f.waits >= base+20 })
		if got := r.clock.Offset(); got != bogus {
			t.Errorf("clock offset %v refreshed within the hour of ClockRefresh", got)
		}
	})
}

// TestReaderDrainAllocatesNothing: handing over records of a process seen
// before allocates nothing per record.
func TestReaderDrainAllocatesNothing(t *testing.T) {
	ring := newFakeRing()
	reader, err := newReaderFrom(ring, nil, &BootClock{}, ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	batch := make([][]byte, 1000)
	for i := range batch {
		batch[i] = sampleRecord.bytes()
	}
	var (
		rec  ringbuf.Record
		ev   Event
		seen int
	)
	handle := func(*Event) { seen++ }
	allocs := testing.AllocsPerRun(20, func() {
		ring.records = batch
		if err := reader.drain(&rec, &ev, handle); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("drain of %d records allocated %v times", len(batch), allocs)
	}
	if seen != 21*len(batch) {
		t.Errorf("handed over %d records, want %d", seen, 21*len(batch))
	}
}
