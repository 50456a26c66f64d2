package exporter

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"

	"github.com/memlock-exporter/memlock-exporter/exporter/internal/otlpsend"
	"github.com/memlock-exporter/memlock-exporter/exporter/internal/otlpwire"
)

type counts struct {
	mu                       sync.Mutex
	failed, dropped, success int
	errs                     []error
}

func (c *counts) counters() streamCounters {
	return streamCounters{
		failed: func(n int, err error) {
			c.mu.Lock()
			defer c.mu.Unlock()
			c.failed += n
			c.errs = append(c.errs, err)
		},
		succeeded: func() { c.mu.Lock(); c.success++; c.mu.Unlock() },
		dropped:   func(n int) { c.mu.Lock(); c.dropped += n; c.mu.Unlock() },
	}
}

func (c *counts) get() (failed, dropped, success int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.failed, c.dropped, c.success
}

func appendN(s *stream, from, n int) {
	for i := from; i < from+n; i++ {
		r := otlpwire.LogRecord{Body: []byte(fmt.Sprint(i)), Time: int64(i) + 1}
		s.add(nil, func(dst []byte) []byte { return otlpwire.AppendLogRecord(dst, &r) })
	}
}

// bodies returns each request's record bodies, in order.
func bodies(t *testing.T, f *fakeSender) [][]string {
	t.Helper()
	var out [][]string
	for _, req := range f.logRequests(t) {
		var bs []string
		for _, r := range logsOf([]*collogspb.ExportLogsServiceRequest{req}) {
			bs = append(bs, r.record.GetBody().GetStringValue())
		}
		out = append(out, bs)
	}
	return out
}

func TestStreamBatches(t *testing.T) {
	for _, tc := range []struct {
		name              string
		batch, queue, n   int
		maxBytes          int
		wantSizes         []int // sizes of the requests sent, in order
		wantFail, wantOK  int
		senderErr         error
		rejected          int64
		wantDropped       int
		block             bool // the sender is stuck until shutdown
		shutdownTimeout   time.Duration
		wantShutdownError bool
	}{
		{name: "full batches then the rest at shutdown", batch: 4, queue: 16, n: 10, wantSizes: []int{4, 4, 2}, wantOK: 3},
		{name: "one batch", batch: 512, queue: 2048, n: 3, wantSizes: []int{3}, wantOK: 1},
		// A record takes 16 bytes here: a batch ends at the first record
		// that takes it to 40 bytes or more.
		{name: "batches end at MaxBatchBytes", batch: 512, queue: 2048, n: 7, maxBytes: 40, wantSizes: []int{3, 3, 1}, wantOK: 3},
		{name: "failures are counted per record", batch: 4, queue: 16, n: 6, senderErr: errors.New("connection refused"), wantFail: 6, wantShutdownError: true},
		// Three records, short of a full batch: shutdown sends them, so
		// the loss is its error (a full batch could go before shutdown,
		// from the sending goroutine, whose errors are only counted).
		{name: "rejections are failures", batch: 4, queue: 16, n: 3, rejected: 1, wantSizes: []int{3}, wantFail: 1, wantShutdownError: true},
		// A partial success is delivered: only the rejected record is lost.
		{name: "partial success with a message", batch: 4, queue: 16, n: 3, senderErr: &otlpsend.PartialSuccessError{Rejected: 1, Message: "too old"}, wantFail: 1, wantShutdownError: true},
		{name: "partial success, nothing rejected", batch: 4, queue: 16, n: 4, senderErr: &otlpsend.PartialSuccessError{Message: "fyi"}, wantOK: 1},
		// The sender is stuck on the first full batch; the next twelve
		// records wait in the queue (16 records, the batch being sent
		// included) and the other 24 are dropped. Shutdown cannot send
		// the four batches in time.
		{name: "queue full drops the newest records", batch: 4, queue: 16, n: 40, block: true, wantDropped: 24,
			shutdownTimeout: 50 * time.Millisecond, wantFail: 16, wantShutdownError: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := &fakeSender{err: tc.senderErr, rejected: tc.rejected}
			if tc.block {
				fs.block = make(chan struct{})
			}
			var c counts
			s := newStream(otlpwire.Scope{Name: "test"}, otlpwire.AppendLogsGroupHead, fs,
				BatchOptions{ScheduleDelay: time.Hour, MaxExportBatch: tc.batch, MaxQueueSize: tc.queue, MaxBatchBytes: tc.maxBytes}, c.counters())
			if tc.block {
				// Let the sender take the first batch before the rest.
				appendN(s, 0, tc.batch)
				waitFor(t, func() bool { return len(s.queue) == 0 })
				appendN(s, tc.batch, tc.n-tc.batch)
			} else {
				appendN(s, 0, tc.n)
			}
			timeout := tc.shutdownTimeout
			if timeout == 0 {
				timeout = 5 * time.Second
			}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			err := s.shutdown(ctx)
			if (err != nil) != tc.wantShutdownError {
				t.Errorf("shutdown error = %v, want error %v", err, tc.wantShutdownError)
			}
			got := bodies(t, fs)
			var sizes []int
			next := 0
			for _, req := range got {
				sizes = append(sizes, len(req))
				for _, body := range req {
					if body != fmt.Sprint(next) {
						t.Errorf("record %q sent where %d was due", body, next)
					}
					next++
				}
			}
			if fmt.Sprint(sizes) != fmt.Sprint(tc.wantSizes) {
				t.Errorf("request sizes %v, want %v", sizes, tc.wantSizes)
			}
			failed, dropped, ok := c.get()
			if failed != tc.wantFail || dropped != tc.wantDropped || ok != tc.wantOK {
				t.Errorf("failed %d dropped %d succeeded %d, want %d %d %d", failed, dropped, ok, tc.wantFail, tc.wantDropped, tc.wantOK)
			}
			if !fs.closed {
				t.Error("shutdown did not close the sender")
			}
			// After shutdown, appending is a no-op and does not panic.
			appendN(s, 0, 1)
		})
	}
}

// TestStreamQueueCountsRecords: the queue's size bounds records, not
// batches: a batch of one record, taken by the schedule delay and stuck in
// the sender (the collector is down), leaves the rest of the queue to
// others, as many as MaxQueueSize says, and no more.
func TestStreamQueueCountsRecords(t *testing.T) {
	fs := &fakeSender{block: make(chan struct{})}
	var c counts
	s := newStream(otlpwire.Scope{}, otlpwire.AppendLogsGroupHead, fs,
		BatchOptions{ScheduleDelay: 10 * time.Millisecond, MaxExportBatch: 4, MaxQueueSize: 16}, c.counters())
	appendN(s, 0, 1)
	waitFor(t, func() bool { s.mu.Lock(); defer s.mu.Unlock(); return s.cur == nil })
	appendN(s, 1, 30)
	if _, dropped, _ := c.get(); dropped != 15 {
		t.Errorf("dropped %d of 30 records added behind 1 in flight, want 15 (a queue of 16)", dropped)
	}
	if held := s.held.Load(); held != 16 {
		t.Errorf("held %d records, want 16", held)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := s.shutdown(ctx); err == nil {
		t.Error("shutdown succeeded with the sender stuck")
	}
	if failed, _, _ := c.get(); failed != 16 {
		t.Errorf("%d records failed at shutdown, want the 16 held", failed)
	}
}

// TestStreamScheduleDelay: a batch that never fills is sent after the
// schedule delay, without waiting for shutdown.
func TestStreamScheduleDelay(t *testing.T) {
	fs := &fakeSender{}
	var c counts
	s := newStream(otlpwire.Scope{}, otlpwire.AppendLogsGroupHead, fs,
		BatchOptions{ScheduleDelay: 20 * time.Millisecond, MaxExportBatch: 512}, c.counters())
	defer s.shutdown(context.Background())
	appendN(s, 0, 3)
	waitFor(t, func() bool { _, _, ok := c.get(); return ok == 1 })
	if got := bodies(t, fs); len(got) != 1 || len(got[0]) != 3 {
		t.Errorf("sent %v, want one request of 3 records", got)
	}
}

// TestStreamAddAllocatesNothing: adding an item to a batch with room costs
// no allocation, closure included.
func TestStreamAddAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under the race detector")
	}
	var c counts
	s := newStream(otlpwire.Scope{}, otlpwire.AppendLogsGroupHead, &fakeSender{},
		BatchOptions{ScheduleDelay: time.Hour, MaxExportBatch: 1 << 20, MaxQueueSize: 1 << 20}, c.counters())
	defer s.shutdown(context.Background())
	r := otlpwire.LogRecord{Body: []byte("mlock(0x1000, 4096) = 0"), Time: 1}
	add := func() { s.add(nil, func(dst []byte) []byte { return otlpwire.AppendLogRecord(dst, &r) }) }
	for range 1000 {
		add()
	}
	if n := testing.AllocsPerRun(1000, add); n != 0 {
		t.Errorf("add allocates %.2f times", n)
	}
}
