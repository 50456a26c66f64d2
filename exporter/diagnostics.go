package exporter

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"go.opentelemetry.io/otel"
)

// reportEvery is the least time between two diagnostics about the same
// ongoing problem.
const reportEvery = time.Minute

// diagnostics counts the log records and spans that could not be delivered
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
	// from the export queue: ExportFailures.
	undelivered atomic.Uint64
	// spansUndelivered counts the same of spans: SpanExportFailures.
	spansUndelivered atomic.Uint64
	// queueFull counts the log records of undelivered that were dropped
	// because the export queue was full, rather than refused or cut
	// short at shutdown.
	queueFull atomic.Uint64

	mu sync.Mutex
	// Export failures of log records and of spans (the collector is
	// unreachable).
	logs, spans outage
	// Records dropped because the export queue was full while exports
	// succeeded (more events than the exporter can send).
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
	since   time.Time // the first failed attempt
	last    time.Time // when the outage was last reported
	calls   uint64    // failed attempts since last
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
			failMsg:    "cannot reach " + logs + "; will keep trying; records wait in the export queue, and are dropped only when it is full",
			stillMsg:   "still cannot reach " + logs + "; records wait in the export queue",
			okMsg:      "exports to " + logs + " succeed again",
			droppedKey: "dropped_records",
		},
		spans: outage{
			failMsg:    "cannot export spans to " + spans + "; will keep trying; spans wait in the export queue, and are dropped only when it is full",
			stillMsg:   "still cannot export spans to " + spans + "; spans wait in the export queue",
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

// exportRetrying records that an attempt to export log records failed
// and will be retried after wait: the records are kept.
func (d *diagnostics) exportRetrying(err error, _ time.Duration) { d.failed(&d.logs, 0, err) }

// spanExportRetrying is exportRetrying for spans.
func (d *diagnostics) spanExportRetrying(err error, _ time.Duration) { d.failed(&d.spans, 0, err) }

// exportFailed records that an export of n log records failed for good:
// the collector refused them, or shutdown cut the retries short.
func (d *diagnostics) exportFailed(n int, err error) {
	d.undelivered.Add(uint64(n))
	d.failed(&d.logs, n, err)
}

// spanExportFailed records that an export of n spans failed for good.
func (d *diagnostics) spanExportFailed(n int, err error) {
	d.spansUndelivered.Add(uint64(n))
	d.failed(&d.spans, n, err)
}

// failed records a failed attempt that lost n items (0: they are kept for
// the next attempt).
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
		slog.Uint64("failed_attempts", o.calls),
		slog.Uint64(o.droppedKey, o.dropped),
		slog.Duration("since", now.Sub(o.since).Round(time.Second)),
		slog.Any("error", o.err))
	o.last, o.calls, o.dropped = now, 0, 0
}

// exportSucceeded records that an Export call delivered its log records.
func (d *diagnostics) exportSucceeded() { d.succeeded(&d.logs) }

// spanExportSucceeded records that an Export call delivered its spans.
func (d *diagnostics) spanExportSucceeded() { d.succeeded(&d.spans) }

// spanQueueDropped records that n spans were dropped because the export
// queue was full. They are counted with the spans that failed to export,
// and told about with the outage if there is one: spans are the
// secondary view of a call, whose log record tells the same.
func (d *diagnostics) spanQueueDropped(n int) {
	if n <= 0 {
		return
	}
	d.spansUndelivered.Add(uint64(n))
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.spans.down {
		d.spans.dropped += uint64(n)
		d.spans.total += uint64(n)
	}
}

func (d *diagnostics) succeeded(o *outage) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !o.down {
		return
	}
	d.log.Info(o.okMsg,
		slog.Uint64(o.droppedKey, o.total),
		slog.Duration("outage", d.now().Sub(o.since).Round(time.Millisecond)))
	o.down, o.calls, o.dropped, o.total, o.err = false, 0, 0, 0, nil
}

// queueDropped records that n log records were dropped because the export
// queue was full.
func (d *diagnostics) queueDropped(n int) {
	if n <= 0 {
		return
	}
	d.undelivered.Add(uint64(n))
	d.queueFull.Add(uint64(n))
	now := d.now()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.logs.down {
		// Part of the outage: counted there, reported with it.
		d.logs.dropped += uint64(n)
		d.logs.total += uint64(n)
		return
	}
	d.queuePending += uint64(n)
	if d.queueLast.IsZero() || now.Sub(d.queueLast) >= reportEvery {
		d.log.Warn("the log export queue is full; events are being dropped (OTEL_BLRP_MAX_QUEUE_SIZE sets its size)",
			slog.Uint64("dropped_records", d.queuePending))
		d.queueLast, d.queuePending = now, 0
	}
}

// keptRecords tells that n log records were left in the persistent queue
// at path when the daemon stopped: they are sent at its next start.
func (d *diagnostics) keptRecords(n int64, path string) {
	d.log.Info("log records left in the persistent queue for the next start",
		slog.Int64("records", n), slog.String("file", path))
}

// keptSpans is keptRecords for spans.
func (d *diagnostics) keptSpans(n int64, path string) {
	d.log.Info("spans left in the persistent queue for the next start",
		slog.Int64("spans", n), slog.String("file", path))
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

// The OpenTelemetry SDK (our metrics go through it) reports its problems
// through process-wide hooks: otel.Handle for errors and a logr.Logger for
// warnings. New points both, once, at the diagnostics of the newest
// Exporter.
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
	if err == nil {
		return
	}
	if d := activeDiag.Load(); d != nil {
		d.sdkError("OpenTelemetry SDK error", err)
	}
}

// globalSink is the logr sink of the SDK's internal logging. It enables
// errors and warnings (logr verbosity up to 1) and sends them to
// diagnostics; the SDK's info and debug chatter is not wanted.
type globalSink struct{}

func (globalSink) Init(logr.RuntimeInfo)                 {}
func (globalSink) Enabled(level int) bool                { return level <= 1 }
func (s globalSink) WithValues(...any) logr.LogSink      { return s }
func (s globalSink) WithName(string) logr.LogSink        { return s }
func (globalSink) Error(err error, msg string, _ ...any) { sinkReport(msg, err) }

func (globalSink) Info(level int, msg string, _ ...any) {
	if level <= 1 {
		sinkReport(msg, nil)
	}
}

func sinkReport(msg string, err error) {
	if d := activeDiag.Load(); d != nil {
		d.sdkError("OpenTelemetry SDK: "+msg, err)
	}
}
