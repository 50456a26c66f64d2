package exporter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/log"
	"go.opentelemetry.io/otel/metric"

	"github.com/memlock-exporter/memlock-exporter/bpf"
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
}

// Exporter turns events into OpenTelemetry log records and metrics.
type Exporter struct {
	disabled bool
	logsOn   bool // false when logs go nowhere: skip building records
	ctx      context.Context
	logger   log.Logger
	inst     *instruments
	diag     *diagnostics
	losses   LossSource
	now      func() time.Time

	// invalid counts events Handle refused (unknown syscall); they are
	// reported as memlock.events.lost{memlock.reason=malformed}.
	invalid atomic.Uint64
	closed  atomic.Bool

	shutdownOnce sync.Once
	shutdownErr  error
	shutdowns    []func(context.Context) error

	mu    sync.Mutex // guards rb and attrs
	rb    recordBuilder
	attrs callAttrCache
}

// NewWithProviders returns an Exporter that emits into the given providers,
// for tests and embedding (in-memory exporters, a ManualReader). The
// Exporter takes them over: Shutdown shuts down each provider that has a
// Shutdown(context.Context) error method. With opts.Disabled the providers
// are ignored. Diagnostics are not hooked into the process-wide
// OpenTelemetry error handler and logger (so records a batch processor
// drops from a full queue are not counted); New does that.
func NewWithProviders(lp log.LoggerProvider, mp metric.MeterProvider, opts Options) (*Exporter, error) {
	if opts.Disabled {
		return &Exporter{disabled: true, diag: newDiagnostics(opts.Logger, opts.Endpoint)}, nil
	}
	e, err := newExporter(lp, mp, opts, newDiagnostics(opts.Logger, opts.Endpoint), true)
	if err != nil {
		return nil, err
	}
	for _, p := range []any{lp, mp} {
		if s, ok := p.(interface{ Shutdown(context.Context) error }); ok {
			e.shutdowns = append(e.shutdowns, s.Shutdown)
		}
	}
	return e, nil
}

func newExporter(lp log.LoggerProvider, mp metric.MeterProvider, opts Options, diag *diagnostics, logsOn bool) (*Exporter, error) {
	if lp == nil || mp == nil {
		return nil, errors.New("create exporter: nil provider")
	}
	e := &Exporter{
		logsOn: logsOn,
		ctx:    context.Background(),
		logger: lp.Logger(semconv.ScopeName,
			log.WithInstrumentationVersion(opts.ServiceVersion),
			log.WithSchemaURL(semconv.SchemaURL)),
		diag:   diag,
		losses: opts.Losses,
		now:    time.Now,
	}
	meter := mp.Meter(semconv.ScopeName,
		metric.WithInstrumentationVersion(opts.ServiceVersion),
		metric.WithSchemaURL(semconv.SchemaURL))
	inst, err := newInstruments(meter, e.observeLost)
	if err != nil {
		return nil, err
	}
	e.inst = inst
	return e, nil
}

// Handle exports one event: a log record and its metric measurements. It
// does not retain ev. It is meant to be called from the reader's goroutine
// but is safe for concurrent use. Events whose syscall is not valid are not
// exported; they are counted as malformed in memlock.events.lost. After
// Shutdown, Handle does nothing.
func (e *Exporter) Handle(ev *bpf.Event) {
	if e.disabled || e.closed.Load() {
		return
	}
	if !ev.Syscall.Valid() {
		e.invalid.Add(1)
		return
	}
	observed := e.now()

	e.mu.Lock()
	ca := e.attrs.get(ev.Syscall, ev.Errno())
	if !e.logsOn {
		e.mu.Unlock()
	} else {
		rec := e.rb.build(ev, ca.errName, observed)
		e.mu.Unlock()
		e.logger.Emit(e.ctx, rec)
	}

	e.inst.calls.Add(e.ctx, 1, ca.add...)
	e.inst.duration.Record(e.ctx, ev.Duration.Seconds(), ca.record...)
	if syscalls[ev.Syscall].hasRange {
		e.inst.size.Record(e.ctx, clampInt64(ev.Len), ca.record...)
	}
}

// ExportFailures returns how many log records could not be delivered: the
// records of failed export calls and those the batch processor dropped
// because its queue was full.
func (e *Exporter) ExportFailures() uint64 { return e.diag.undelivered.Load() }

// Shutdown flushes what is pending and shuts the providers down, logs
// first so that the final metric export includes the last export
// failures, giving up when ctx is done. Later calls return the first
// call's result.
func (e *Exporter) Shutdown(ctx context.Context) error {
	e.shutdownOnce.Do(func() {
		e.closed.Store(true)
		var errs []error
		for _, shutdown := range e.shutdowns {
			if err := shutdown(ctx); err != nil {
				errs = append(errs, err)
			}
		}
		if err := errors.Join(errs...); err != nil {
			e.shutdownErr = fmt.Errorf("shut down telemetry: %w", err)
		}
	})
	return e.shutdownErr
}
