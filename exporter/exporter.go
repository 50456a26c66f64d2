package exporter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/memlock-exporter/memlock-exporter/bpf"
	"github.com/memlock-exporter/memlock-exporter/exporter/internal/otlpwire"
	"github.com/memlock-exporter/memlock-exporter/semconv"
)

// Options configure an Exporter. Every setting is given here: nothing is
// read from the environment.
type Options struct {
	// ServiceVersion is the resource's service.version and the
	// instrumentation scope's version.
	ServiceVersion string
	// Resource are the user's resource attributes (OTEL_RESOURCE_ATTRIBUTES,
	// then service.name from OTEL_SERVICE_NAME), which win over the
	// detected ones.
	Resource []attribute.KeyValue
	// Disabled is OTEL_SDK_DISABLED=true: nothing is built, nothing is
	// exported and Handle returns at once.
	Disabled bool
	// Logger receives the daemon's own diagnostics about telemetry
	// delivery. Nil discards them.
	Logger *slog.Logger

	// Logs and Spans say where each call's log record and span go.
	Logs, Spans Destination
	// Sampler decides which calls get a span (OTEL_TRACES_SAMPLER); every
	// span is a root. Nil means ParentBased(AlwaysSample).
	Sampler sdktrace.Sampler
	// Metrics say where the metrics go.
	Metrics MetricsOptions
	// Console is where console destinations write; nil means os.Stdout.
	Console io.Writer

	// Queue is the persistent export queue, if any.
	Queue QueueOptions

	// Fold folds a thread's floods of one repeated call into one record
	// and span (fold.go); a zero Window turns folding off.
	Fold FoldOptions

	// Losses, if set, feeds memlock.events.lost with the kernel's and the
	// reader's loss counts, and memlock.calls with the calls the kernel
	// counted without a record.
	Losses LossSource

	// Locked, if set, is read every metric interval for
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
	// WARN every metric interval. 0 < f <= 1; 0 means
	// DefaultLimitWarnFraction.
	LimitWarnFraction float64
}

// LossSource reports events lost before they reached the exporter: the
// kernel's counters and the reader's count of malformed records, and the
// calls behind the kernel's losses by syscall and errno, which keep
// memlock.calls exact. *bpf.Reader satisfies it.
type LossSource interface {
	Losses() (bpf.LossCounts, error)
	Malformed() uint64
	// LostCalls returns cumulative counts, each one only growing.
	LostCalls() ([]bpf.LostCalls, error)
}

// Exporter turns events into OpenTelemetry log records, spans and metrics.
type Exporter struct {
	disabled bool
	closed   atomic.Bool
	now      func() time.Time // replaceable in tests

	stats  *callStats
	locked *lockedWatcher // nil without Options.Locked
	sinks  []sink         // where events go; none: metrics only

	mu  sync.Mutex // guards enc, and the order of events in the sinks
	enc encoder

	diag   *diagnostics
	losses LossSource
	fold   *folder // guarded by mu; nil: no folding
	// invalid counts events Handle refused (unknown syscall); they are
	// reported as memlock.events.lost{memlock.reason=malformed}.
	invalid atomic.Uint64

	shutdownOnce sync.Once
	shutdownErr  error
	// shutdowns run in order; the functions of one step run concurrently.
	shutdowns [][]func(context.Context) error
}

// New builds an Exporter: the sinks of opts.Logs and opts.Spans, and the
// OpenTelemetry SDK's meter provider for opts.Metrics, sharing one resource
// and instrumentation scope. It also routes the SDK's process-wide error
// handler and internal logger to opts.Logger, rate-limited. New does not
// contact the collector: an unreachable collector is reported later, by
// diagnostics, and is never an error here.
func New(ctx context.Context, opts Options) (*Exporter, error) {
	diag := newDiagnostics(opts.Logger, opts.Logs.OTLP.Endpoint, opts.Spans.OTLP.Endpoint)
	if opts.Disabled {
		return &Exporter{disabled: true, diag: diag}, nil
	}
	lo, err := opts.lockedOptions()
	if err != nil {
		return nil, err
	}
	installGlobalHandlers(diag)
	res, err := newResource(ctx, opts.ServiceVersion, opts.Resource)
	if err != nil {
		if errors.Is(err, resource.ErrSchemaURLConflict) {
			return nil, err
		}
		// A detector failed (no /etc/machine-id): go on with what was found.
		diag.log.Warn("some resource attributes are missing", slog.Any("error", err))
	}
	console := opts.Console
	if console == nil {
		console = os.Stdout
	}
	// Every signal's console lines go through one lock, never interleaved.
	console = &lockedWriter{w: console}

	e := &Exporter{
		now:    time.Now,
		stats:  &callStats{losses: opts.Losses},
		diag:   diag,
		losses: opts.Losses,
	}
	scope := otlpwire.Scope{
		Name:      semconv.ScopeName,
		Version:   opts.ServiceVersion,
		SchemaURL: semconv.SchemaURL,
		// Records and spans are sent under their process's resource:
		// the host's attributes, then the process's identity.
		Resource:          withoutProcessIdentity(res.Attributes()),
		ResourceSchemaURL: res.SchemaURL(),
	}
	if e.sinks, err = newSinks(opts.Logs, opts.Spans, opts.Queue, scope, console, diag); err != nil {
		return nil, err
	}
	if opts.Spans.Kind != ToNone {
		e.enc.ids = newIDSource(opts.Sampler)
	}
	if len(e.sinks) > 0 {
		e.fold = newFolder(opts.Fold)
	}
	var first []func(context.Context) error
	for _, s := range e.sinks {
		first = append(first, s.shutdown)
	}
	fail := func(err error) (*Exporter, error) {
		_ = errors.Join(runConcurrently(ctx, first)...)
		return nil, err
	}

	meters, err := e.newMeterProvider(ctx, &opts.Metrics, res, console, opts.ServiceVersion)
	if err != nil {
		return fail(err)
	}
	var last []func(context.Context) error
	if meters != nil {
		last = append(last, meters.Shutdown)
	}
	meter := metric.Meter(metricnoop.Meter{})
	if meters != nil {
		meter = meters.Meter(semconv.ScopeName,
			metric.WithInstrumentationVersion(opts.ServiceVersion),
			metric.WithSchemaURL(semconv.SchemaURL))
	}
	if err := registerCallInstruments(meter, e.stats, e.observeLost); err != nil {
		return fail(err)
	}
	if lo.src != nil {
		var warn func(*event)
		if opts.Logs.Kind != ToNone {
			warn = e.emit
		}
		e.locked = newLockedWatcher(lo, warn, diag, e.nowFunc)
		if err := e.locked.registerInstruments(meter); err != nil {
			return fail(err)
		}
		interval := opts.Metrics.Interval
		if interval <= 0 {
			interval = defaultMetricInterval
		}
		e.locked.start(interval)
		// Stopped first: it emits into the sinks.
		e.shutdowns = append(e.shutdowns, []func(context.Context) error{e.locked.shutdown})
	}
	if e.fold != nil {
		// Stopped before the sinks, into which it emits what was folded.
		e.shutdowns = append(e.shutdowns, []func(context.Context) error{e.startFolding()})
	}
	e.shutdowns = append(e.shutdowns, first, last)
	return e, nil
}

// newMeterProvider returns the SDK's meter provider with the reader opts
// asks for, which also reports e's call histograms; nil when metrics go
// nowhere.
func (e *Exporter) newMeterProvider(ctx context.Context, opts *MetricsOptions, res *resource.Resource, console io.Writer, version string) (*sdkmetric.MeterProvider, error) {
	scope := instrumentation.Scope{Name: semconv.ScopeName, Version: version, SchemaURL: semconv.SchemaURL}
	newProducer := func(t metricdata.Temporality) sdkmetric.Producer {
		return newHistogramProducer(e.stats, t, scope)
	}
	reader, err := newMetricReader(ctx, opts, newProducer, console)
	if err != nil {
		return nil, fmt.Errorf("create metric reader: %w", err)
	}
	if reader == nil {
		return nil, nil
	}
	return sdkmetric.NewMeterProvider(sdkmetric.WithResource(res), sdkmetric.WithReader(reader)), nil
}

func (e *Exporter) nowFunc() time.Time { return e.now() }

// Handle exports one call: its measurements, its log record and its span
// (the span is a root named after the syscall, from the call's entry to its
// exit, with the record's attributes and an error status on failure; the
// log record carries its trace and span IDs). Handle does not retain ev.
// It is meant to be called from the reader's goroutine but is safe for
// concurrent use. Events whose syscall is not valid are not exported; they
// are counted as malformed in memlock.events.lost. After Shutdown, Handle
// does nothing.
func (e *Exporter) Handle(ev *bpf.Event) {
	if e.disabled || e.closed.Load() {
		return
	}
	if !ev.Syscall.Valid() {
		e.invalid.Add(1)
		return
	}
	calls := e.stats.record(ev)
	tracking := e.locked != nil && e.locked.tracking() && ev.PID != 0
	if len(e.sinks) == 0 {
		if tracking {
			e.locked.saw(ev.PID, ev.ExeName, ev.Comm, nil)
		}
		return
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	if e.fold != nil && e.fold.observe(ev, calls.errName, e.emitFold) {
		if tracking {
			e.locked.saw(ev.PID, ev.ExeName, ev.Comm, nil)
		}
		return
	}
	enc := e.enc.encode(ev, calls.errName, e.observed(ev))
	if tracking {
		// Its warnings go under the resource of its calls.
		e.locked.saw(ev.PID, ev.ExeName, ev.Comm, enc.resource)
	}
	e.emit(enc)
}

// observed is ev's ObservedTimestamp: when the reader read it, else now.
func (e *Exporter) observed(ev *bpf.Event) time.Time {
	if ev.ReadAt.IsZero() {
		return e.now()
	}
	return ev.ReadAt
}

// emitFold exports the record and span of the calls fd stands for: the
// first call's, with how many they were and when the first and last were
// made; the span lasts from the first call's entry to the last's exit.
// e.mu is held.
func (e *Exporter) emitFold(fd *fold) {
	enc := e.enc.encode(&fd.first, fd.errName, e.now())
	e.enc.attrs = appendRepeatAttrs(enc.attrs, fd)
	e.enc.body = appendRepeatBody(enc.body, fd)
	enc.attrs, enc.body = e.enc.attrs, e.enc.body
	enc.end = fd.lastEnd.UnixNano()
	e.emit(enc)
}

// startFolding starts exporting what the folder holds once its window
// has passed, and returns what stops it, exporting everything folded.
func (e *Exporter) startFolding() func(context.Context) error {
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(max(e.fold.opts.Window/2, 10*time.Millisecond))
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				e.mu.Lock()
				e.fold.flushDue(e.now(), e.emitFold)
				e.mu.Unlock()
			case <-stop:
				return
			}
		}
	}()
	return func(context.Context) error {
		close(stop)
		<-done
		e.mu.Lock()
		e.fold.flushAll(e.emitFold)
		e.mu.Unlock()
		return nil
	}
}

// emit hands ev to every sink.
func (e *Exporter) emit(ev *event) {
	for _, s := range e.sinks {
		s.emit(ev)
	}
}

// ExportFailures returns how many log records could not be delivered: the
// records of failed exports and those dropped because the queue was full.
func (e *Exporter) ExportFailures() uint64 { return e.diag.undelivered.Load() }

// SpanExportFailures returns the same of spans.
func (e *Exporter) SpanExportFailures() uint64 { return e.diag.spansUndelivered.Load() }

// observeLost reports memlock.events.lost. The kernel's reasons are
// reported only with a LossSource; when reading its counters fails they are
// left out of this collection and the error goes to the SDK's handler.
func (e *Exporter) observeLost(_ context.Context, o metric.Int64Observer) error {
	var err error
	malformed := e.invalid.Load()
	if e.losses != nil {
		if l, lerr := e.losses.Losses(); lerr != nil {
			err = fmt.Errorf("read kernel loss counters: %w", lerr)
		} else {
			o.Observe(clampInt64(l.RingbufFull), lostOpts[lostRingbufFull]...)
			o.Observe(clampInt64(l.MissedEntry), lostOpts[lostMissedEntry]...)
			o.Observe(clampInt64(l.EntryMapFull), lostOpts[lostEntryMapFull]...)
			o.Observe(clampInt64(l.ProgramBusy), lostOpts[lostProgramBusy]...)
			o.Observe(clampInt64(l.RepeatShed), lostOpts[lostRepeatShed]...)
		}
		malformed += e.losses.Malformed()
	}
	o.Observe(clampInt64(malformed), lostOpts[lostMalformed]...)
	queueFull := e.diag.queueFull.Load()
	o.Observe(clampInt64(e.ExportFailures()-queueFull), lostOpts[lostExportFailed]...)
	o.Observe(clampInt64(queueFull), lostOpts[lostQueueFull]...)
	return err
}

// Shutdown flushes what is pending and shuts everything down, giving up
// when ctx is done: the sinks first, concurrently, so that each has the
// whole deadline, then metrics, so that the final metric export includes
// the last export failures. Later calls return the first call's result.
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
