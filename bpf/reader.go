package bpf

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"
)

// ReaderOptions configure a Reader.
type ReaderOptions struct {
	// FlushInterval bounds how long a record may wait in the ring buffer
	// when the kernel did not wake the reader (batched wake-ups). Zero
	// means 200ms.
	FlushInterval time.Duration
	// ClockRefresh is how often the boot-to-wall clock offset is measured
	// again. Zero means 10s.
	ClockRefresh time.Duration
	// OnMalformed, if set, is called for each record that fails to decode,
	// after it has been counted. raw is only valid during the call.
	OnMalformed func(err error, raw []byte)
	// Processes bounds the identities kept (Event.Process), least recently
	// used evicted first; the kernel sends an evicted one again at the
	// process's next call. Zero means 4096.
	Processes int
	// ProcRoot is where procfs is mounted, for the daemon's own cgroups
	// and mounts (the cgroup hierarchies to read). Empty means /proc.
	ProcRoot string
}

// LossCounts are the kernel's counts of calls it saw but could not report.
// The calls behind RingbufFull, MissedEntry and RepeatShed are also
// counted by syscall and result: see Reader.LostCalls.
type LossCounts struct {
	RingbufFull  uint64 // the ring buffer had no room
	MissedEntry  uint64 // an exit arrived without its entry (e.g. attached mid-call)
	EntryMapFull uint64 // too many calls in flight to remember one
	// RepeatShed counts the calls not written because the ring buffer
	// was more than half full and the call was at least the 16th in a
	// row of its thread's identical calls: a flood's, whose first records
	// the reader has, so that it cannot fill the ring buffer for others.
	// Zero where the kernel lacks task storage (before 5.11).
	RepeatShed uint64
	// ProgramBusy counts the calls whose exit program the kernel did not
	// run because another run of it was under way on the same CPU: an
	// fentry program can be preempted on a preemptible kernel, and the
	// next task to hit it there is skipped. (A skipped entry program shows
	// up as MissedEntry.) Zero before Linux 5.12, which does not count them.
	ProgramBusy uint64
}

// Total is the number of calls lost in the kernel for any reason.
func (l LossCounts) Total() uint64 {
	return l.RingbufFull + l.MissedEntry + l.EntryMapFull + l.ProgramBusy + l.RepeatShed
}

// Reader drains the ring buffer and hands each decoded Event to a handler.
type Reader struct {
	src      ringSource
	closed   atomic.Bool
	counters *ebpf.Map
	busy     func() (uint64, error) // LossCounts.ProgramBusy; nil: none counted
	clock    *BootClock
	dec      *Decoder
	ids      *identities // the processes' identities and the cgroups' paths
	opts     ReaderOptions

	// lostCalls counts the calls behind RingbufFull and MissedEntry by
	// syscall and errno (LostCalls); nil: none counted.
	lostCalls *ebpf.Map

	events    atomic.Uint64
	malformed atomic.Uint64
	// lastPoll is when Run last made progress (LastPoll), as nanoseconds
	// after epoch, plus one so that 0 means "not yet"; an atomic so that a
	// health check may read it from any goroutine without slowing Run
	// down. Measured from epoch on the monotonic clock, so that a step of
	// the wall clock neither fakes a stall nor hides one.
	lastPoll atomic.Int64
	epoch    time.Time
}

// ringSource is the ring buffer as Run sees it: the seam between Run's
// batching and deadline logic and the kernel's ring buffer (ringbufSource),
// which the unit tests replace with a fake.
type ringSource interface {
	// read copies the next record into rec, reusing rec.RawSample, without
	// waiting. It returns errRingEmpty when there is none, and an error
	// wrapping ringbuf.ErrClosed once the source is closed.
	read(rec *ringbuf.Record) error
	// available returns how many bytes wait to be read.
	available() int
	// setWaitDeadline sets when wait gives up, also for a wait under way:
	// a past deadline makes it return at once. It may be called from any
	// goroutine.
	setWaitDeadline(t time.Time) error
	// wait returns nil at once if available() > 0; else it parks until the
	// kernel wakes the ring buffer's readers and available() > 0, until the
	// deadline (os.ErrDeadlineExceeded), or until the source is closed (an
	// error wrapping os.ErrClosed). Records the kernel submits without a
	// wake-up (BPF_RB_NO_WAKEUP) do not end a wait.
	wait() error
	// close releases the source and ends a wait under way.
	close() error
}

// errRingEmpty is ringSource.read's answer when no record is there.
var errRingEmpty = errors.New("ring buffer empty")

func newReader(rb *ringbuf.Reader, events, counters *ebpf.Map, opts ReaderOptions) (*Reader, error) {
	clock, err := NewBootClock()
	if err != nil {
		rb.Close()
		return nil, fmt.Errorf("read boot clock: %w", err)
	}
	src, err := newRingbufSource(rb, events)
	if err != nil {
		rb.Close()
		return nil, err
	}
	r, err := newReaderFrom(src, counters, clock, opts)
	if err != nil {
		src.close()
		return nil, err
	}
	procRoot := opts.ProcRoot
	if procRoot == "" {
		procRoot = "/proc"
	}
	mountinfo, err := readMountinfo(procRoot)
	if err != nil {
		src.close()
		return nil, err
	}
	if err := seedCgroups(r.ids.cgroups, procRoot, mountinfo); err != nil {
		src.close()
		return nil, err
	}
	r.ids.mounts = newMountTable(mountinfo, func() []byte {
		b, _ := readMountinfo(procRoot)
		return b
	})
	return r, nil
}

// newReaderFrom returns a Reader of src whose events' times are converted
// with clock (and which Run refreshes).
func newReaderFrom(src ringSource, counters *ebpf.Map, clock *BootClock, opts ReaderOptions) (*Reader, error) {
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = 200 * time.Millisecond
	}
	if opts.ClockRefresh <= 0 {
		opts.ClockRefresh = 10 * time.Second
	}
	if opts.Processes <= 0 {
		opts.Processes = 4096
	}
	ids, err := newIdentities(opts.Processes, newCgroupIndex(), nil, clock)
	if err != nil {
		return nil, fmt.Errorf("create process table: %w", err)
	}
	return &Reader{src: src, counters: counters, clock: clock, dec: NewDecoder(clock), ids: ids, opts: opts, epoch: time.Now()}, nil
}

// IdentityStats returns what the reader did with processes' identities.
// Call it only when Run is not running: the reader's goroutine owns them.
func (r *Reader) IdentityStats() IdentityStats {
	st := r.ids.stats
	st.Cgroups = len(r.ids.cgroups.paths)
	return st
}

// ringbufSource is the kernel's ring buffer: records are read with
// cilium/ebpf's ringbuf.Reader, and waits park in the Go runtime's
// netpoller on a second, non-blocking descriptor of the map.
type ringbufSource struct {
	rb       *ringbuf.Reader
	wake     *os.File // the map's descriptor, reopened by pollableFile
	wakeConn syscall.RawConn
	readable func(uintptr) bool // wait's test, made once
}

func newRingbufSource(rb *ringbuf.Reader, events *ebpf.Map) (*ringbufSource, error) {
	wake, wakeConn, err := pollableFile(events)
	if err != nil {
		return nil, err
	}
	// ReadInto never blocks: Run waits in wait.
	rb.SetDeadline(pastDeadline)
	return &ringbufSource{
		rb: rb, wake: wake, wakeConn: wakeConn,
		readable: func(uintptr) bool { return rb.AvailableBytes() > 0 },
	}, nil
}

func (s *ringbufSource) read(rec *ringbuf.Record) error {
	err := s.rb.ReadInto(rec)
	if err != nil && (errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, ringbuf.ErrFlushed)) {
		return errRingEmpty
	}
	return err
}

func (s *ringbufSource) available() int { return s.rb.AvailableBytes() }

func (s *ringbufSource) setWaitDeadline(t time.Time) error { return s.wake.SetReadDeadline(t) }

// wait parks the goroutine in the Go runtime's netpoller rather than in a
// blocking epoll_wait: a thread blocked in a system call for milliseconds
// has the runtime's monitor thread take its P away and then poll every
// 20 µs for a while, which at tens of thousands of events per second cost
// more CPU than reading them.
func (s *ringbufSource) wait() error { return s.wakeConn.Read(s.readable) }

func (s *ringbufSource) close() error { return errors.Join(s.wake.Close(), s.rb.Close()) }

// pollableFile reopens m's descriptor, non-blocking, as a file the Go
// runtime's netpoller watches: the ring buffer's descriptor is readable
// when the kernel wakes its readers.
func pollableFile(m *ebpf.Map) (*os.File, syscall.RawConn, error) {
	fd, err := unix.FcntlInt(uintptr(m.FD()), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("duplicate ring buffer descriptor: %w", err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, nil, fmt.Errorf("make ring buffer descriptor non-blocking: %w", err)
	}
	f := os.NewFile(uintptr(fd), "ring buffer")
	// A deadline can only be set on a file the netpoller watches.
	if err := f.SetReadDeadline(time.Time{}); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("watch ring buffer in the netpoller: %w", err)
	}
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("watch ring buffer in the netpoller: %w", err)
	}
	return f, rc, nil
}

// Run reads until ctx is done or the reader is closed, calling handle for
// every event in the order the kernel committed them. The *Event passed to
// handle is reused: copy what must outlive the call. handle runs on Run's
// goroutine; a slow handler lets the ring buffer fill, which the kernel
// counts as loss. When ctx is done, Run first hands over every record
// already in the ring buffer, then returns nil.
func (r *Reader) Run(ctx context.Context, handle func(*Event)) error {
	// Wake a waiting Run at once: its deadline is now past.
	stop := context.AfterFunc(ctx, func() { _ = r.src.setWaitDeadline(pastDeadline) })
	defer stop()

	start := time.Now()
	r.markPoll(start)
	var (
		rec         ringbuf.Record
		ev          Event
		nextRefresh = start.Add(r.opts.ClockRefresh)
	)
	for {
		// Read before draining: what was in the ring buffer when ctx
		// ended is handed over, and then Run returns.
		done := ctx.Err() != nil
		if err := r.drain(&rec, &ev, handle); err != nil {
			if errors.Is(err, ringbuf.ErrClosed) {
				return nil
			}
			return err
		}
		if done {
			return nil
		}
		now := time.Now()
		r.markPoll(now)
		if now.After(nextRefresh) {
			if err := r.clock.Refresh(); err != nil {
				return fmt.Errorf("refresh boot clock: %w", err)
			}
			nextRefresh = now.Add(r.opts.ClockRefresh)
		}
		if err := r.waitForData(ctx, now.Add(r.opts.FlushInterval)); err != nil {
			if r.closed.Load() || errors.Is(err, os.ErrClosed) {
				return nil
			}
			return err
		}
	}
}

// pastDeadline is a deadline that has passed: reads with it return at once.
var pastDeadline = time.Unix(1, 0)

// pollEvery is how many records drain reads between two updates of
// LastPoll: under a flood it may not find the ring buffer empty for a long
// time, which is progress and not a stall; a clock read per this many
// records costs nothing next to decoding them.
const pollEvery = 1024

// readAtEvery is how many records in a row at most share one clock
// reading for Event.ReadAt: a few hundred microseconds apart under a flood.
const readAtEvery = 64

// drain hands over every record in the ring buffer without waiting.
func (r *Reader) drain(rec *ringbuf.Record, ev *Event, handle func(*Event)) error {
	var readAt time.Time
	shared := readAtEvery // how many records readAt stamped: none yet, so read the clock first
	for n := 1; ; n++ {
		if n%pollEvery == 0 {
			r.markPoll(time.Now())
		}
		switch err := r.src.read(rec); {
		case err == nil:
		case err == errRingEmpty:
			return nil
		case errors.Is(err, ringbuf.ErrClosed):
			return err
		default:
			return fmt.Errorf("read ring buffer: %w", err)
		}
		var derr error
		switch raw := rec.RawSample; len(raw) {
		case RecordSize, CallRecordSize:
			if derr = r.dec.Decode(raw, ev); derr == nil {
				ev.Process = r.ids.lookup(ev)
				if ev.ExeName == "" && ev.Process != nil {
					// The kernel leaves it out once it has sent the identity.
					ev.ExeName = ev.Process.ExeName
				}
				// The kernel writes records while we read: one whose
				// call ended after the reading was written after it.
				if shared >= readAtEvery || readAt.Before(ev.End()) {
					readAt, shared = time.Now(), 0
				}
				shared++
				ev.ReadAt = readAt
				r.events.Add(1)
				handle(ev)
				continue
			}
		case ProcessRecordSize:
			var p processRecord
			if p, derr = decodeProcess(raw); derr == nil {
				r.ids.addProcess(&p)
				continue
			}
		case CgroupRecordSize:
			var c cgroupRecord
			if c, derr = decodeCgroup(raw); derr == nil {
				r.ids.cgroups.apply(&c)
				continue
			}
		default:
			derr = ErrRecordSize
		}
		r.malformed.Add(1)
		if r.opts.OnMalformed != nil {
			r.opts.OnMalformed(derr, rec.RawSample)
		}
	}
}

// waitForData returns when the kernel wakes the ring buffer's readers (it
// does so past MEMLOCK_EXPORTER_WAKEUP_BYTES), at deadline, when ctx ends,
// or at once if data is already there.
func (r *Reader) waitForData(ctx context.Context, deadline time.Time) error {
	if err := r.src.setWaitDeadline(deadline); err != nil {
		return fmt.Errorf("wait for ring buffer: %w", err)
	}
	// Checked after the deadline is set: had ctx ended before, this
	// deadline has just replaced its AfterFunc's past one, and Run must
	// not wait; if it ends after, the AfterFunc ends the wait.
	if ctx.Err() != nil {
		return nil // Run drains once more and returns
	}
	if err := r.src.wait(); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("wait for ring buffer: %w", err)
	}
	return nil
}

// LastPoll returns when Run last made progress: when it started, each
// time it woke (for data, or at the latest one flush interval after it
// began to wait, so even on a host that makes no calls at all), and every
// 1024 records read while it drains. It is the zero Time before Run starts.
// It may be called from any goroutine; a LastPoll far behind the flush
// interval means Run is stuck, e.g. in a handler that does not return.
func (r *Reader) LastPoll() time.Time {
	d := r.lastPoll.Load()
	if d == 0 {
		return time.Time{}
	}
	// epoch carries a monotonic reading, and so does the sum.
	return r.epoch.Add(time.Duration(d - 1))
}

// markPoll records now, a time.Now reading, for LastPoll.
func (r *Reader) markPoll(now time.Time) { r.lastPoll.Store(int64(now.Sub(r.epoch)) + 1) }

// Events returns how many records were decoded and handed over.
func (r *Reader) Events() uint64 { return r.events.Load() }

// Malformed returns how many records were counted and skipped because they
// did not decode.
func (r *Reader) Malformed() uint64 { return r.malformed.Load() }

// Losses sums the kernel's per-CPU loss counters and the exit programs'
// skipped runs.
func (r *Reader) Losses() (LossCounts, error) {
	var out LossCounts
	if r.busy != nil {
		n, err := r.busy()
		if err != nil {
			return LossCounts{}, err
		}
		out.ProgramBusy = n
	}
	for idx, dst := range []*uint64{&out.RingbufFull, &out.MissedEntry, &out.EntryMapFull, &out.RepeatShed} {
		var perCPU []uint64
		if err := r.counters.Lookup(uint32(idx), &perCPU); err != nil {
			return LossCounts{}, fmt.Errorf("read loss counter %d: %w", idx, err)
		}
		for _, v := range perCPU {
			*dst += v
		}
	}
	return out, nil
}

// Close stops Run and releases the reader. It does not detach the hooks.
func (r *Reader) Close() error {
	r.closed.Store(true)
	return r.src.close()
}
