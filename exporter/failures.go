package exporter

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"go.opentelemetry.io/otel"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// reportEvery is the least time between two diagnostics about the same
// ongoing problem.
const reportEvery = time.Minute

// diagnostics counts the log records and spans the SDK could not deliver
// and tells the operator about delivery problems through the daemon's own
// logger: once when a problem starts, then at most once per reportEvery
// with counts, and once when it ends. Log records and spans are followed
// apart (they may go to different collectors, or only one may fail). Its
// methods are safe for concurrent use and never block on anything but a
// short mutex.
type diagnostics struct {
	log *slog.Logger
	now func() time.Time // replaceable in tests

	// undelivered counts log records that failed to export or were dropped
	// from the batch queue: ExportFailures.
	undelivered atomic.Uint64
	// spansUndelivered counts spans that failed to export:
	// SpanExportFailures.
	spansUndelivered atomic.Uint64

	mu sync.Mutex
	// Export failures of log records and of spans (the collector is
	// unreachable).
	logs, spans outage
	// Records the batch processor dropped because its queue was full while
	// exports succeeded (more events than the exporter can send).
	queueLast    time.Time
	queuePending uint64
	// Any other error the OpenTelemetry SDK reports.
	sdkLast       time.Time
	sdkSuppressed uint64
}

// outage follows the export failures of one signal.
type outage struct {
	// What the messages say; see newDiagnostics.
	failMsg, stillMsg, okMsg string
	droppedKey               string // the count's key: "dropped_records", "dropped_spans"

	down    bool
	since   time.Time
	last    time.Time // when the outage was last reported
	calls   uint64    // failed Export calls since last
	dropped uint64    // items lost since last
	total   uint64    // items lost in this outage
	err     error     // the latest error
}

// newDiagnostics returns diagnostics that log to logger (nil discards) and
// name the collectors of log records and of spans by their endpoints in
// messages (empty: "the collector").
func newDiagnostics(logger *slog.Logger, endpoint, spanEndpoint string) *diagnostics {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logs, spans := collectorName(endpoint), collectorName(spanEndpoint)
	return &diagnostics{
		log: logger,
		now: time.Now,
		logs: outage{
			failMsg:    "cannot reach " + logs + "; will keep trying; events are being dropped",
			stillMsg:   "still cannot reach " + logs + "; events are being dropped",
			okMsg:      "exports to " + logs + " succeed again",
			droppedKey: "dropped_records",
		},
		spans: outage{
			failMsg:    "cannot export spans to " + spans + "; will keep trying; spans are being dropped",
			stillMsg:   "still cannot export spans to " + spans + "; spans are being dropped",
			okMsg:      "span exports to " + spans + " succeed again",
			droppedKey: "dropped_spans",
		},
	}
}

func collectorName(endpoint string) string {
	if endpoint == "" {
		return "the collector"
	}
	return "the collector at " + endpoint
}

// exportFailed records that an Export call of n log records failed.
func (d *diagnostics) exportFailed(n int, err error) {
	d.undelivered.Add(uint64(n))
	d.failed(&d.logs, n, err)
}

// spanExportFailed records that an Export call of n spans failed.
func (d *diagnostics) spanExportFailed(n int, err error) {
	d.spansUndelivered.Add(uint64(n))
	d.failed(&d.spans, n, err)
}

func (d *diagnostics) failed(o *outage, n int, err error) {
	now := d.now()
	d.mu.Lock()
	defer d.mu.Unlock()
	o.calls++
	o.dropped += uint64(n)
	o.total += uint64(n)
	o.err = err
	if !o.down {
		o.down, o.since = true, now
		d.reportDown(o, now, o.failMsg)
		return
	}
	if now.Sub(o.last) >= reportEvery {
		d.reportDown(o, now, o.stillMsg)
	}
}

// reportDown logs the outage with the counts since the last report.
// d.mu is held.
func (d *diagnostics) reportDown(o *outage, now time.Time, msg string) {
	d.log.Warn(msg,
		slog.Uint64("failed_exports", o.calls),
		slog.Uint64(o.droppedKey, o.dropped),
		slog.Duration("since", now.Sub(o.since).Round(time.Second)),
		slog.Any("error", o.err))
	o.last, o.calls, o.dropped = now, 0, 0
}

// exportSucceeded records that an Export call delivered its log records.
func (d *diagnostics) exportSucceeded() { d.succeeded(&d.logs) }

// spanExportSucceeded records that an Export call delivered its spans.
func (d *diagnostics) spanExportSucceeded() { d.succeeded(&d.spans) }

func (d *diagnostics) succeeded(o *outage) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !o.down {
		return
	}
	d.log.Info(o.okMsg,
		slog.Uint64(o.droppedKey, o.total),
		slog.Duration("outage", d.now().Sub(o.since).Round(time.Second)))
	o.down, o.calls, o.dropped, o.total, o.err = false, 0, 0, 0, nil
}

// queueDropped records that the batch processor dropped n records because
// its queue was full.
func (d *diagnostics) queueDropped(n uint64) {
	if n == 0 {
		return
	}
	d.undelivered.Add(n)
	now := d.now()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.logs.down {
		// Part of the outage: counted there, reported with it.
		d.logs.dropped += n
		d.logs.total += n
		return
	}
	d.queuePending += n
	if d.queueLast.IsZero() || now.Sub(d.queueLast) >= reportEvery {
		d.log.Warn("the log export queue is full; events are being dropped (OTEL_BLRP_MAX_QUEUE_SIZE sets its size)",
			slog.Uint64("dropped_records", d.queuePending))
		d.queueLast, d.queuePending = now, 0
	}
}

// sdkError reports any other problem the OpenTelemetry SDK signals: the
// first at once, then at most one per reportEvery with the number left
// unsaid in between. While log or span exports fail, the outage's own
// reports stand for these too (a metric export to the same collector fails
// alike): they are only counted.
func (d *diagnostics) sdkError(msg string, err error) {
	now := d.now()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.logs.down || d.spans.down || (!d.sdkLast.IsZero() && now.Sub(d.sdkLast) < reportEvery) {
		d.sdkSuppressed++
		return
	}
	attrs := []any{slog.Any("error", err)}
	if d.sdkSuppressed > 0 {
		attrs = append(attrs, slog.Uint64("suppressed", d.sdkSuppressed))
	}
	d.log.Warn(msg, attrs...)
	d.sdkLast, d.sdkSuppressed = now, 0
}

// reportedError wraps an export error the diagnostics already counted and
// reported, so that the SDK's error handler does not report it again.
type reportedError struct{ err error }

func (e reportedError) Error() string { return e.err.Error() }
func (e reportedError) Unwrap() error { return e.err }

// countingExporter decorates the log exporter: it counts the records of
// failed Export calls and tells diagnostics about failures and recoveries.
type countingExporter struct {
	sdklog.Exporter
	diag *diagnostics
}

func (c *countingExporter) Export(ctx context.Context, records []sdklog.Record) error {
	err := c.Exporter.Export(ctx, records)
	switch {
	case err != nil:
		c.diag.exportFailed(len(records), err)
		return reportedError{err}
	case len(records) > 0:
		c.diag.exportSucceeded()
	}
	return nil
}

// countingSpanExporter is countingExporter for spans: it counts the spans
// of failed ExportSpans calls and tells diagnostics about failures and
// recoveries.
type countingSpanExporter struct {
	sdktrace.SpanExporter
	diag *diagnostics
}

func (c *countingSpanExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	err := c.SpanExporter.ExportSpans(ctx, spans)
	switch {
	case err != nil:
		c.diag.spanExportFailed(len(spans), err)
		return reportedError{err}
	case len(spans) > 0:
		c.diag.spanExportSucceeded()
	}
	return nil
}

// The OpenTelemetry SDK reports its problems through process-wide hooks:
// otel.Handle for errors and a logr.Logger for warnings (among them the
// batch processor's "dropped log records"). New points both, once, at the
// diagnostics of the newest Exporter.
var (
	activeDiag  atomic.Pointer[diagnostics]
	installOnce sync.Once
)

func installGlobalHandlers(d *diagnostics) {
	activeDiag.Store(d)
	installOnce.Do(func() {
		otel.SetErrorHandler(globalErrorHandler{})
		otel.SetLogger(logr.New(globalSink{}))
	})
}

type globalErrorHandler struct{}

func (globalErrorHandler) Handle(err error) {
	if err == nil || errors.As(err, new(reportedError)) {
		return
	}
	if d := activeDiag.Load(); d != nil {
		d.sdkError("OpenTelemetry SDK error", err)
	}
}

// droppedRecordsMsg is what sdk/log's batch processor logs (as a warning,
// with the count under droppedRecordsKey) when its queue overflowed.
const (
	droppedRecordsMsg = "dropped log records"
	droppedRecordsKey = "dropped"
)

// globalSink is the logr sink of the SDK's internal logging. It enables
// errors and warnings (logr verbosity up to 1) and sends them to
// diagnostics; the SDK's info and debug chatter is not wanted.
type globalSink struct{}

func (globalSink) Init(logr.RuntimeInfo)                 {}
func (globalSink) Enabled(level int) bool                { return level <= 1 }
func (s globalSink) WithValues(...any) logr.LogSink      { return s }
func (s globalSink) WithName(string) logr.LogSink        { return s }
func (globalSink) Error(err error, msg string, _ ...any) { sinkReport(msg, err) }

func (globalSink) Info(level int, msg string, kv ...any) {
	if level > 1 {
		return
	}
	if msg == droppedRecordsMsg {
		if n, ok := uintValue(kv, droppedRecordsKey); ok {
			if d := activeDiag.Load(); d != nil {
				d.queueDropped(n)
			}
			return
		}
	}
	sinkReport(msg, nil)
}

func sinkReport(msg string, err error) {
	if d := activeDiag.Load(); d != nil {
		d.sdkError("OpenTelemetry SDK: "+msg, err)
	}
}

// uintValue finds key in a logr key/value list and returns its value if it
// is a non-negative integer.
func uintValue(kv []any, key string) (uint64, bool) {
	for i := 0; i+1 < len(kv); i += 2 {
		if k, ok := kv[i].(string); !ok || k != key {
			continue
		}
		switch v := kv[i+1].(type) {
		case uint64:
			return v, true
		case uint:
			return uint64(v), true
		case uint32:
			return uint64(v), true
		case int:
			return uint64(max(v, 0)), v >= 0
		case int64:
			return uint64(max(v, 0)), v >= 0
		}
	}
	return 0, false
}

// clampInt64 converts a count to int64, saturating.
func clampInt64(n uint64) int64 {
	if n > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(n)
}
