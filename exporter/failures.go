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
)

// reportEvery is the least time between two diagnostics about the same
// ongoing problem.
const reportEvery = time.Minute

// diagnostics counts the log records the SDK could not deliver and tells the
// operator about delivery problems through the daemon's own logger: once
// when a problem starts, then at most once per reportEvery with counts, and
// once when it ends. Its methods are safe for concurrent use and never block
// on anything but a short mutex.
type diagnostics struct {
	log      *slog.Logger
	endpoint string           // where the collector is, for messages only
	now      func() time.Time // replaceable in tests

	// undelivered counts log records that failed to export or were dropped
	// from the batch queue: ExportFailures.
	undelivered atomic.Uint64

	mu sync.Mutex
	// Export failures of log records (the collector is unreachable).
	down        bool
	downSince   time.Time
	downLast    time.Time // when the outage was last reported
	downCalls   uint64    // failed Export calls since downLast
	downRecords uint64    // records lost since downLast
	downTotal   uint64    // records lost in this outage
	downErr     error     // the latest error
	// Records the batch processor dropped because its queue was full while
	// exports succeeded (more events than the exporter can send).
	queueLast    time.Time
	queuePending uint64
	// Any other error the OpenTelemetry SDK reports.
	sdkLast       time.Time
	sdkSuppressed uint64
}

func newDiagnostics(logger *slog.Logger, endpoint string) *diagnostics {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &diagnostics{log: logger, endpoint: endpoint, now: time.Now}
}

func (d *diagnostics) collector() string {
	if d.endpoint == "" {
		return "the collector"
	}
	return "the collector at " + d.endpoint
}

// exportFailed records that an Export call of n log records failed.
func (d *diagnostics) exportFailed(n int, err error) {
	d.undelivered.Add(uint64(n))
	now := d.now()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.downCalls++
	d.downRecords += uint64(n)
	d.downTotal += uint64(n)
	d.downErr = err
	if !d.down {
		d.down, d.downSince = true, now
		d.reportDown(now, "cannot reach "+d.collector()+"; will keep trying; events are being dropped")
		return
	}
	if now.Sub(d.downLast) >= reportEvery {
		d.reportDown(now, "still cannot reach "+d.collector()+"; events are being dropped")
	}
}

// reportDown logs the outage with the counts since the last report.
// d.mu is held.
func (d *diagnostics) reportDown(now time.Time, msg string) {
	d.log.Warn(msg,
		slog.Uint64("failed_exports", d.downCalls),
		slog.Uint64("dropped_records", d.downRecords),
		slog.Duration("since", now.Sub(d.downSince).Round(time.Second)),
		slog.Any("error", d.downErr))
	d.downLast, d.downCalls, d.downRecords = now, 0, 0
}

// exportSucceeded records that an Export call delivered its records.
func (d *diagnostics) exportSucceeded() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.down {
		return
	}
	d.log.Info("exports to "+d.collector()+" succeed again",
		slog.Uint64("dropped_records", d.downTotal),
		slog.Duration("outage", d.now().Sub(d.downSince).Round(time.Second)))
	d.down, d.downCalls, d.downRecords, d.downTotal, d.downErr = false, 0, 0, 0, nil
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
	if d.down {
		// Part of the outage: counted there, reported with it.
		d.downRecords += n
		d.downTotal += n
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
// unsaid in between. While log exports fail, the outage's own reports
// stand for these too (a metric export to the same collector fails
// alike): they are only counted.
func (d *diagnostics) sdkError(msg string, err error) {
	now := d.now()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.down || (!d.sdkLast.IsZero() && now.Sub(d.sdkLast) < reportEvery) {
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
