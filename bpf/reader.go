package bpf

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"
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
}

// LossCounts are the kernel's counts of calls it saw but could not report.
type LossCounts struct {
	RingbufFull  uint64 // the ring buffer had no room
	MissedEntry  uint64 // an exit arrived without its entry (e.g. attached mid-call)
	EntryMapFull uint64 // too many calls in flight to remember one
}

// Total is the number of calls lost in the kernel for any reason.
func (l LossCounts) Total() uint64 { return l.RingbufFull + l.MissedEntry + l.EntryMapFull }

// Reader drains the ring buffer and hands each decoded Event to a handler.
type Reader struct {
	rb       *ringbuf.Reader
	counters *ebpf.Map
	clock    *BootClock
	dec      *Decoder
	opts     ReaderOptions

	events    atomic.Uint64
	malformed atomic.Uint64
}

func newReader(rb *ringbuf.Reader, counters *ebpf.Map, opts ReaderOptions) (*Reader, error) {
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = 200 * time.Millisecond
	}
	if opts.ClockRefresh <= 0 {
		opts.ClockRefresh = 10 * time.Second
	}
	clock, err := NewBootClock()
	if err != nil {
		rb.Close()
		return nil, fmt.Errorf("read boot clock: %w", err)
	}
	return &Reader{rb: rb, counters: counters, clock: clock, dec: NewDecoder(clock), opts: opts}, nil
}

// Run reads until ctx is done or the reader is closed, calling handle for
// every event in the order the kernel committed them. The *Event passed to
// handle is reused: copy what must outlive the call. handle runs on Run's
// goroutine; a slow handler lets the ring buffer fill, which the kernel
// counts as loss. When ctx is done, Run first hands over every record
// already in the ring buffer, then returns nil.
func (r *Reader) Run(ctx context.Context, handle func(*Event)) error {
	stop := context.AfterFunc(ctx, func() { _ = r.rb.Flush() })
	defer stop()

	var (
		rec         ringbuf.Record
		ev          Event
		nextRefresh = time.Now().Add(r.opts.ClockRefresh)
	)
	r.rb.SetDeadline(time.Now().Add(r.opts.FlushInterval))
	for {
		err := r.rb.ReadInto(&rec)
		if err == nil {
			if derr := r.dec.Decode(rec.RawSample, &ev); derr != nil {
				r.malformed.Add(1)
				if r.opts.OnMalformed != nil {
					r.opts.OnMalformed(derr, rec.RawSample)
				}
				continue
			}
			r.events.Add(1)
			handle(&ev)
			continue
		}
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			// The ring buffer is empty: everything submitted without a
			// wake-up up to now has been handed over.
		case errors.Is(err, ringbuf.ErrFlushed):
		case errors.Is(err, ringbuf.ErrClosed):
			return nil
		default:
			return fmt.Errorf("read ring buffer: %w", err)
		}
		if ctx.Err() != nil {
			return nil
		}
		now := time.Now()
		if now.After(nextRefresh) {
			if err := r.clock.Refresh(); err != nil {
				return fmt.Errorf("refresh boot clock: %w", err)
			}
			nextRefresh = now.Add(r.opts.ClockRefresh)
		}
		r.rb.SetDeadline(now.Add(r.opts.FlushInterval))
	}
}

// Events returns how many records were decoded and handed over.
func (r *Reader) Events() uint64 { return r.events.Load() }

// Malformed returns how many records were counted and skipped because they
// did not decode.
func (r *Reader) Malformed() uint64 { return r.malformed.Load() }

// Losses sums the kernel's per-CPU loss counters.
func (r *Reader) Losses() (LossCounts, error) {
	var out LossCounts
	for idx, dst := range []*uint64{&out.RingbufFull, &out.MissedEntry, &out.EntryMapFull} {
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
func (r *Reader) Close() error { return r.rb.Close() }
