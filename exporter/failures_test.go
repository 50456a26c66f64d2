package exporter

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdklog "go.opentelemetry.io/otel/sdk/log"
)

// logSink records what diagnostics log.
type logSink struct {
	mu      sync.Mutex
	records []slog.Record
}

func (s *logSink) Enabled(context.Context, slog.Level) bool { return true }
func (s *logSink) WithAttrs([]slog.Attr) slog.Handler       { return s }
func (s *logSink) WithGroup(string) slog.Handler            { return s }
func (s *logSink) Handle(_ context.Context, r slog.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records = append(s.records, r.Clone())
	return nil
}

func (s *logSink) take() []slog.Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.records
	s.records = nil
	return out
}

func attrOf(r slog.Record, key string) (slog.Value, bool) {
	var v slog.Value
	var found bool
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == key {
			v, found = a.Value, true
			return false
		}
		return true
	})
	return v, found
}

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

// flakyExporter fails its first `fail` Export calls, then succeeds.
type flakyExporter struct {
	mu        sync.Mutex
	fail      int
	calls     int
	delivered int
}

var errUnreachable = errors.New("rpc error: code = Unavailable desc = connection refused")

func (f *flakyExporter) Export(_ context.Context, records []sdklog.Record) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.calls <= f.fail {
		return errUnreachable
	}
	f.delivered += len(records)
	return nil
}
func (f *flakyExporter) Shutdown(context.Context) error   { return nil }
func (f *flakyExporter) ForceFlush(context.Context) error { return nil }

func TestCountingExporter(t *testing.T) {
	sink := &logSink{}
	clock := &fakeClock{t: time.Date(2026, 11, 5, 10, 0, 0, 0, time.UTC)}
	diag := newDiagnostics(slog.New(sink), "http://localhost:4317", "http://localhost:4317")
	diag.now = clock.now
	fake := &flakyExporter{fail: 5}
	exp := &countingExporter{Exporter: fake, diag: diag}
	batch := make([]sdklog.Record, 10)
	ctx := context.Background()

	// Three failures within a minute: one warning.
	for i := range 3 {
		err := exp.Export(ctx, batch)
		if !errors.Is(err, errUnreachable) {
			t.Fatalf("Export %d: error %v, want %v", i, err, errUnreachable)
		}
		if !errors.As(err, new(reportedError)) {
			t.Errorf("Export %d: error is not marked as reported", i)
		}
		clock.advance(10 * time.Second)
	}
	if got := diag.undelivered.Load(); got != 30 {
		t.Errorf("undelivered = %d, want 30", got)
	}
	logs := sink.take()
	if len(logs) != 1 {
		t.Fatalf("logged %d messages for 3 failures in 30s, want 1: %v", len(logs), logs)
	}
	if logs[0].Level != slog.LevelWarn ||
		logs[0].Message != "cannot reach the collector at http://localhost:4317; will keep trying; events are being dropped" {
		t.Errorf("first message = %s %q", logs[0].Level, logs[0].Message)
	}
	if v, _ := attrOf(logs[0], "error"); !strings.Contains(v.String(), "connection refused") {
		t.Errorf("first message's error = %v, want the exporter's error", v)
	}

	// A minute after the first report, the next failure reports the counts
	// since then.
	clock.advance(31 * time.Second)
	_ = exp.Export(ctx, batch[:4])
	logs = sink.take()
	if len(logs) != 1 || logs[0].Level != slog.LevelWarn || !strings.HasPrefix(logs[0].Message, "still cannot reach the collector") {
		t.Fatalf("after a minute: %v, want one 'still cannot reach' warning", logs)
	}
	if v, _ := attrOf(logs[0], "failed_exports"); v.Uint64() != 3 {
		t.Errorf("failed_exports = %v, want 3", v)
	}
	if v, _ := attrOf(logs[0], "dropped_records"); v.Uint64() != 24 {
		t.Errorf("dropped_records = %v, want 24", v)
	}
	_ = exp.Export(ctx, batch[:1]) // fifth failure, soon after: silent
	if logs := sink.take(); len(logs) != 0 {
		t.Errorf("second failure within the minute logged %v", logs)
	}
	if got := diag.undelivered.Load(); got != 35 {
		t.Errorf("undelivered = %d, want 35", got)
	}

	// Recovery: one INFO with the outage's total, then silence.
	for range 3 {
		if err := exp.Export(ctx, batch); err != nil {
			t.Fatalf("Export after recovery: %v", err)
		}
	}
	logs = sink.take()
	if len(logs) != 1 || logs[0].Level != slog.LevelInfo || logs[0].Message != "exports to the collector at http://localhost:4317 succeed again" {
		t.Fatalf("recovery logged %v, want one INFO", logs)
	}
	if v, _ := attrOf(logs[0], "dropped_records"); v.Uint64() != 35 {
		t.Errorf("recovery dropped_records = %v, want 35", v)
	}
	if got := diag.undelivered.Load(); got != 35 {
		t.Errorf("undelivered after recovery = %d, want 35", got)
	}
	if fake.delivered != 30 {
		t.Errorf("delivered = %d, want 30", fake.delivered)
	}

	// A new outage warns at once again.
	fake.mu.Lock()
	fake.fail, fake.calls = 1, 0
	fake.mu.Unlock()
	_ = exp.Export(ctx, batch[:2])
	logs = sink.take()
	if len(logs) != 1 || !strings.HasPrefix(logs[0].Message, "cannot reach") {
		t.Errorf("new outage logged %v, want one 'cannot reach' warning", logs)
	}
	if v, _ := attrOf(logs[0], "dropped_records"); v.Uint64() != 2 {
		t.Errorf("new outage dropped_records = %v, want 2", v)
	}

	// Empty exports (flushes with nothing pending) say nothing.
	_ = exp.Export(ctx, nil)
	if logs := sink.take(); len(logs) != 0 {
		t.Errorf("an empty export logged %v", logs)
	}
}

func TestCollectorNameWithoutEndpoint(t *testing.T) {
	sink := &logSink{}
	d := newDiagnostics(slog.New(sink), "", "")
	d.exportFailed(1, errUnreachable)
	logs := sink.take()
	if len(logs) != 1 || logs[0].Message != "cannot reach the collector; will keep trying; events are being dropped" {
		t.Errorf("logged %v", logs)
	}
}

func TestSDKErrorsRateLimited(t *testing.T) {
	sink := &logSink{}
	clock := &fakeClock{t: time.Date(2026, 11, 5, 10, 0, 0, 0, time.UTC)}
	d := newDiagnostics(slog.New(sink), "", "")
	d.now = clock.now
	for range 100 {
		d.sdkError("OpenTelemetry SDK error", errors.New("failed to upload metrics"))
		clock.advance(time.Second)
	}
	logs := sink.take()
	if len(logs) != 2 {
		t.Fatalf("100 errors over 100s logged %d messages, want 2", len(logs))
	}
	if _, ok := attrOf(logs[0], "suppressed"); ok {
		t.Errorf("first message has a suppressed count")
	}
	if v, _ := attrOf(logs[1], "suppressed"); v.Uint64() != 59 {
		t.Errorf("second message suppressed = %v, want 59", v)
	}

	// While the collector is reported unreachable, SDK errors (metric
	// exports failing alike) add nothing to the outage's reports.
	clock.advance(time.Hour)
	d.exportFailed(1, errUnreachable)
	d.sdkError("OpenTelemetry SDK error", errors.New("failed to upload metrics"))
	if logs := sink.take(); len(logs) != 1 || !strings.HasPrefix(logs[0].Message, "cannot reach") {
		t.Errorf("during an outage: %v, want only the outage warning", logs)
	}
}

// TestGlobalHandlers checks the process-wide hooks: errors the counting
// exporter already reported are not reported twice, other SDK errors are
// rate-limited, and the batch processor's dropped records are counted as
// undelivered.
func TestGlobalHandlers(t *testing.T) {
	sink := &logSink{}
	d := newDiagnostics(slog.New(sink), "", "")
	installGlobalHandlers(d)
	t.Cleanup(func() { activeDiag.Store(nil) })

	otel.Handle(reportedError{errUnreachable})
	if logs := sink.take(); len(logs) != 0 {
		t.Errorf("a reported export error was logged again: %v", logs)
	}
	for range 5 {
		otel.Handle(errors.New("boom"))
	}
	if logs := sink.take(); len(logs) != 1 {
		t.Errorf("5 SDK errors logged %d messages, want 1", len(logs))
	}

	// Fill a batch processor whose exporter is stuck, so its queue
	// overflows; the processor reports the drops through the SDK's logger.
	release := make(chan struct{})
	stuck := &blockingExporter{release: release}
	bp := sdklog.NewBatchProcessor(&countingExporter{Exporter: stuck, diag: d},
		sdklog.WithMaxQueueSize(10), sdklog.WithExportMaxBatchSize(10), sdklog.WithExportInterval(time.Hour))
	lp := sdklog.NewLoggerProvider(sdklog.WithProcessor(bp))
	e, err := NewWithProviders(lp, noopMeterProvider(), nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	const events = 1000
	ev := sampleEvent()
	for range events {
		e.Handle(&ev)
	}
	close(release)
	if err := e.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	delivered := stuck.delivered()
	if delivered == events {
		t.Fatalf("queue never overflowed; test is not testing")
	}
	if got := d.undelivered.Load(); got+uint64(delivered) != events {
		t.Errorf("undelivered = %d, delivered %d: want them to add up to %d", got, delivered, events)
	}
	logs := sink.take()
	if len(logs) != 1 || !strings.HasPrefix(logs[0].Message, "the log export queue is full") {
		t.Errorf("queue overflow logged %v, want one warning", logs)
	}
}

type blockingExporter struct {
	release chan struct{}
	mu      sync.Mutex
	n       int
}

func (b *blockingExporter) Export(ctx context.Context, records []sdklog.Record) error {
	select {
	case <-b.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	b.mu.Lock()
	b.n += len(records)
	b.mu.Unlock()
	return nil
}
func (b *blockingExporter) Shutdown(context.Context) error   { return nil }
func (b *blockingExporter) ForceFlush(context.Context) error { return nil }
func (b *blockingExporter) delivered() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.n
}

func noopMeterProvider() metric.MeterProvider { return metricnoop.NewMeterProvider() }
