package exporter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/log"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/memlock-exporter/memlock-exporter/bpf"
	"github.com/memlock-exporter/memlock-exporter/procfs"
	"github.com/memlock-exporter/memlock-exporter/semconv"
)

// LossSource reports events lost before they reached the exporter: the
// kernel's counters and the reader's count of malformed records.
// *bpf.Reader satisfies it.
type LossSource interface {
	Losses() (bpf.LossCounts, error)
	Malformed() uint64
}

// Options configure an Exporter.
type Options struct {
	// ServiceVersion is the resource's service.version and the
	// instrumentation scope's version.
	ServiceVersion string
	// Disabled is OTEL_SDK_DISABLED=true: no provider or exporter is built,
	// nothing is exported and Handle returns at once.
	Disabled bool
	// Logger receives the daemon's own diagnostics about telemetry
	// delivery. Nil discards them.
	Logger *slog.Logger
	// Losses, if set, feeds memlock.events.lost with the kernel's and the
	// reader's loss counts.
	Losses LossSource
	// Endpoint names the collector in diagnostics ("cannot reach the
	// collector at <Endpoint>"); it does not configure anything (the SDK
	// reads OTEL_EXPORTER_OTLP_*_ENDPOINT itself). Empty says "the
	// collector".
	Endpoint string
	// TracesEndpoint is Endpoint for spans, when they go elsewhere (for
	// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT). Empty means Endpoint.
	TracesEndpoint string
	// Histograms, if set, reports memlock.call.duration and
	// memlock.call.size, aggregated by the Exporter instead of by the
	// SDK's histograms: much cheaper per call. It must be attached to the
	// meter provider's reader (sdkmetric.WithProducer); New does both
	// when it builds the OTLP metric reader.
	Histograms *HistogramProducer
	// Processes, if set, adds the calling process's context from procfs
	// (process.executable.path, process.command_args, process.linux.cgroup,
	// container.id, k8s.pod.uid, process.vpid) to every record and span.
	// Handle calls its Get once per event, before taking its lock.
	Processes Processes

	// Locked, if set, is read on each metric collection for
	// memlock.system.locked, the process gauges and the limit warnings;
	// without it there are none of these and no process is tracked.
	Locked LockedMemory
	// ProcessMetrics (with Locked) turns on memlock.process.locked and
	// memlock.process.limit (high-cardinality: one series per process).
	ProcessMetrics bool
	// ProcessMetricsMax bounds the processes tracked for the process
	// gauges and the limit warnings; calls of others are counted in
	// memlock.process.untracked. 0 means DefaultProcessMetricsMax.
	ProcessMetricsMax int
	// LimitWarnFraction: a tracked process holding more than this fraction
	// of its soft RLIMIT_MEMLOCK yields a memlock.limit_near log record at
	// WARN on each metric collection. 0 < f <= 1; 0 means
	// DefaultLimitWarnFraction.
	LimitWarnFraction float64

	// Direct, for New: which signals bypass the SDK's pipelines and are
	// encoded and sent by the exporter itself (see DirectOptions). Nil:
	// all go through the SDK.
	Direct *DirectOptions
}

func (o *Options) newDiagnostics() *diagnostics {
	traces := o.TracesEndpoint
	if traces == "" {
		traces = o.Endpoint
	}
	return newDiagnostics(o.Logger, o.Endpoint, traces)
}

// Exporter turns events into OpenTelemetry log records, metrics and spans.
type Exporter struct {
	disabled bool
	logsOn   bool // log records go somewhere, through the SDK or direct
	ctx      context.Context
	logger   log.Logger
	tracer   trace.Tracer // nil when spans go nowhere or go direct: no tracer calls at all
	direct   *direct      // nil unless log records or spans bypass the SDK
	inst     *instruments
	// ownHistograms: Handle aggregates the histograms for a
	// HistogramProducer instead of recording into the SDK's.
	ownHistograms bool
	diag          *diagnostics
	losses        LossSource
	procs         Processes // nil: no procfs context
	now           func() time.Time

	// invalid counts events Handle refused (unknown syscall); they are
	// reported as memlock.events.lost{memlock.reason=malformed}.
	invalid atomic.Uint64
	closed  atomic.Bool

	shutdownOnce sync.Once
	shutdownErr  error
	// shutdowns run in order; the functions of one step run concurrently.
	shutdowns [][]func(context.Context) error

	lockedOpts lockedOptions
	locked     lockedInstruments
	trackOn    bool // track processes: for the process gauges or the warnings

	mu              sync.Mutex // guards rb, attrs, spanOpts, tracked and untrackedLogged
	rb              recordBuilder
	attrs           callAttrCache
	spanOpts        spanOptions
	tracked         map[uint32]string // pid -> name, of the processes seen calling
	untrackedLogged bool
}

// NewWithProviders returns an Exporter that emits into the given providers,
// for tests and embedding (in-memory exporters, a ManualReader, a
// tracetest.SpanRecorder). tp may be nil: then no spans are made and no
// tracer is ever called. The Exporter takes the providers over: Shutdown
// shuts down each one that has a Shutdown(context.Context) error method,
// the tracer and logger providers first, together, then the meter
// provider. With opts.Disabled the providers are ignored. Diagnostics are
// not hooked into the process-wide OpenTelemetry error handler and logger
// (so records a batch processor drops from a full queue are not counted);
// New does that.
func NewWithProviders(lp log.LoggerProvider, mp metric.MeterProvider, tp trace.TracerProvider, opts Options) (*Exporter, error) {
	if opts.Disabled {
		return &Exporter{disabled: true, diag: opts.newDiagnostics()}, nil
	}
	e, err := newExporter(lp, mp, tp, opts, opts.newDiagnostics(), true)
	if err != nil {
		return nil, err
	}
	var first, last []func(context.Context) error
	for _, p := range []any{lp, tp} {
		if s, ok := p.(interface{ Shutdown(context.Context) error }); ok {
			first = append(first, s.Shutdown)
		}
	}
	if s, ok := mp.(interface{ Shutdown(context.Context) error }); ok {
		last = append(last, s.Shutdown)
	}
	e.shutdowns = [][]func(context.Context) error{first, last}
	return e, nil
}

// newExporter returns an Exporter emitting into the providers. tp may be
// nil (no spans); logsOn false means log records go nowhere.
func newExporter(lp log.LoggerProvider, mp metric.MeterProvider, tp trace.TracerProvider, opts Options, diag *diagnostics, logsOn bool) (*Exporter, error) {
	if lp == nil || mp == nil {
		return nil, errors.New("create exporter: nil provider")
	}
	lo, err := opts.lockedOptions()
	if err != nil {
		return nil, err
	}
	e := &Exporter{
		lockedOpts: lo,
		trackOn:    lo.src != nil && (lo.perProcess || logsOn),
		tracked:    make(map[uint32]string),
		logsOn:     logsOn,
		ctx:        context.Background(),
		logger: lp.Logger(semconv.ScopeName,
			log.WithInstrumentationVersion(opts.ServiceVersion),
			log.WithSchemaURL(semconv.SchemaURL)),
		diag:   diag,
		losses: opts.Losses,
		procs:  opts.Processes,
		now:    time.Now,
	}
	if tp != nil {
		e.tracer = tp.Tracer(semconv.ScopeName,
			trace.WithInstrumentationVersion(opts.ServiceVersion),
			trace.WithSchemaURL(semconv.SchemaURL))
	}
	meter := mp.Meter(semconv.ScopeName,
		metric.WithInstrumentationVersion(opts.ServiceVersion),
		metric.WithSchemaURL(semconv.SchemaURL))
	e.ownHistograms = opts.Histograms != nil
	inst, err := newInstruments(meter, e.observeCalls, e.observeLost, e.ownHistograms)
	if err != nil {
		return nil, err
	}
	e.inst = inst
	if opts.Histograms != nil {
		opts.Histograms.attach(e)
	}
	if err := e.newLockedInstruments(meter); err != nil {
		return nil, err
	}
	return e, nil
}

// Handle exports one event: a log record, its metric measurements and a
// span. The span is a root span named after the syscall (e.g. "mlock2"),
// from the call's entry to its exit, with the record's attributes and an
// error status on failure; the log record carries its trace and span IDs.
// Handle does not retain ev. It is meant to be called from the reader's
// goroutine but is safe for concurrent use. Events whose syscall is not
// valid are not exported; they are counted as malformed in
// memlock.events.lost. After Shutdown, Handle does nothing.
func (e *Exporter) Handle(ev *bpf.Event) {
	if e.disabled || e.closed.Load() {
		return
	}
	if !ev.Syscall.Valid() {
		e.invalid.Add(1)
		return
	}
	observed := e.now()
	emit := e.logsOn || e.tracer != nil || e.direct != nil

	// Look the process up before taking e.mu: a cache miss reads procfs.
	var (
		info  procfs.Info
		infoP *procfs.Info
	)
	if emit && e.procs != nil {
		if i, ok := e.procs.Get(ev.PID); ok {
			info, infoP = i, &info
		}
	}

	e.mu.Lock()
	ca := e.attrs.get(ev.Syscall, ev.Errno())
	ca.calls++
	if e.ownHistograms {
		ca.duration.record(ev.Duration.Seconds(), durationBounds)
		if syscalls[ev.Syscall].hasRange {
			ca.size.record(clampInt64(ev.Len), sizeBounds)
		}
	}
	if e.trackOn && ev.PID != 0 {
		e.track(ev.PID, ev.ExeName, ev.Comm)
	}
	if !emit {
		e.mu.Unlock()
	} else {
		var (
			attrs []attribute.KeyValue
			enc   encodedAttrs
		)
		if e.directOnly() {
			// Nothing goes through the SDK: the call's attributes are
			// encoded straight away, the thread's taken already encoded.
			d := e.direct
			thread := d.threads.get(&e.rb, ev, infoP, d.logs != nil, d.spans != nil)
			e.rb.logAttrs = e.rb.appendEncodedCallAttributes(e.rb.logAttrs[:0], ev, ca.errName)
			enc = encodedAttrs{call: e.rb.logAttrs, threadLog: thread.log, threadSpan: thread.span}
		} else {
			attrs = e.rb.attributes(ev, infoP, ca.errName)
		}
		ctx := e.ctx
		var ids spanIDs
		switch {
		case e.direct != nil && e.direct.spans != nil:
			ids = e.directSpan(ev, attrs, &enc, ca.errName)
			if e.sdkLogs() {
				ctx = trace.ContextWithSpanContext(ctx, ids.spanContext())
			}
		case e.tracer != nil:
			var span trace.Span
			ctx, span = e.startSpan(ev, attrs, ca.errName)
			e.endSpan(ev, span)
			ids = spanIDsOf(span.SpanContext())
		}
		var rec log.Record
		switch {
		case e.direct != nil && e.direct.logs != nil:
			e.directLog(ev, attrs, &enc, observed, &ids)
		case e.logsOn:
			rec = e.rb.record(ev, attrs, observed)
		}
		e.mu.Unlock()
		if e.sdkLogs() {
			// ctx holds the span: the SDK copies its trace and span
			// IDs into the record.
			e.logger.Emit(ctx, rec)
		}
	}

	if !e.ownHistograms {
		e.inst.duration.Record(e.ctx, ev.Duration.Seconds(), ca.record...)
		if syscalls[ev.Syscall].hasRange {
			e.inst.size.Record(e.ctx, clampInt64(ev.Len), ca.record...)
		}
	}
}

// ExportFailures returns how many log records could not be delivered: the
// records of failed export calls and those the batch processor dropped
// because its queue was full.
func (e *Exporter) ExportFailures() uint64 { return e.diag.undelivered.Load() }

// SpanExportFailures returns how many spans could not be delivered: the
// spans of failed export calls. (Spans the batch span processor drops from
// a full queue are not counted: the SDK does not report them.)
func (e *Exporter) SpanExportFailures() uint64 { return e.diag.spansUndelivered.Load() }

// Shutdown flushes what is pending and shuts the providers down, giving
// up when ctx is done: spans and logs first, concurrently, so that both
// have the whole deadline, then metrics, so that the final metric export
// includes the last export failures. Later calls return the first call's
// result.
func (e *Exporter) Shutdown(ctx context.Context) error {
	e.shutdownOnce.Do(func() {
		e.closed.Store(true)
		var errs []error
		for _, step := range e.shutdowns {
			errs = append(errs, runConcurrently(ctx, step)...)
		}
		if err := errors.Join(errs...); err != nil {
			e.shutdownErr = fmt.Errorf("shut down telemetry: %w", err)
		}
	})
	return e.shutdownErr
}

// runConcurrently calls every fn with ctx, each on its own goroutine but
// the first, and returns their errors once all have returned.
func runConcurrently(ctx context.Context, fns []func(context.Context) error) []error {
	errs := make([]error, len(fns))
	var wg sync.WaitGroup
	for i, fn := range fns {
		if i == 0 {
			continue
		}
		wg.Go(func() { errs[i] = fn(ctx) })
	}
	if len(fns) > 0 {
		errs[0] = fns[0](ctx)
	}
	wg.Wait()
	return errs
}
