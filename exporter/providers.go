package exporter

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"

	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/otel/log"
	lognoop "go.opentelemetry.io/otel/log/noop"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	stdsemconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sys/unix"

	"github.com/memlock-exporter/memlock-exporter/semconv"
)

// DefaultServiceName is the resource's service.name unless OTEL_SERVICE_NAME
// or OTEL_RESOURCE_ATTRIBUTES say otherwise.
const DefaultServiceName = "memlock-exporter"

// New builds the OpenTelemetry SDK providers and returns an Exporter that
// emits into them. The exporters come from autoexport, so the standard
// variables apply: OTEL_LOGS_EXPORTER, OTEL_METRICS_EXPORTER and
// OTEL_TRACES_EXPORTER (otlp|console|none, and prometheus for metrics),
// OTEL_EXPORTER_OTLP_*, OTEL_BLRP_*, OTEL_BSP_*, OTEL_METRIC_EXPORT_*, and
// the tracer provider reads OTEL_TRACES_SAMPLER(_ARG) itself. Log records
// and spans go through batch processors whose exporters count what they
// could not deliver. A signal whose exporter is "none" gets a no-op
// provider, or for traces none at all: Handle then makes no tracer call.
// The three providers share one resource. New also routes the SDK's
// process-wide error handler and internal logger to opts.Logger,
// rate-limited. With opts.Disabled nothing is built.
//
// New does not contact the collector: an unreachable collector is reported
// later, by diagnostics, and is never an error here.
func New(ctx context.Context, opts Options) (*Exporter, error) {
	if opts.Disabled {
		return NewWithProviders(nil, nil, nil, opts)
	}
	diag := opts.newDiagnostics()
	installGlobalHandlers(diag)

	res, err := newResource(ctx, opts.ServiceVersion)
	if err != nil {
		if errors.Is(err, resource.ErrSchemaURLConflict) {
			return nil, err
		}
		// A detector failed (no /etc/machine-id, a bad
		// OTEL_RESOURCE_ATTRIBUTES entry): go on with what was found.
		diag.log.Warn("some resource attributes are missing", slog.Any("error", err))
	}

	var (
		// Logs and traces shut down first, together; metrics last.
		first, last []func(context.Context) error
		lp          log.LoggerProvider
		mp          metric.MeterProvider
		tp          trace.TracerProvider // nil: no spans
		logsOn      bool
	)
	fail := func(err error) (*Exporter, error) {
		for _, s := range append(first, last...) {
			_ = s(ctx)
		}
		return nil, err
	}

	// The direct streams first: a bad endpoint or certificate stops
	// start-up before anything else is built.
	dir, err := newDirect(opts.Direct, res, opts.ServiceVersion, diag)
	if err != nil {
		return nil, err
	}
	if dir != nil {
		first = append(first, dir.shutdown)
	}
	directLogs := dir != nil && dir.logs != nil
	directSpans := dir != nil && dir.spans != nil

	var logExp sdklog.Exporter
	if !directLogs {
		if logExp, err = autoexport.NewLogExporter(ctx); err != nil {
			return fail(fmt.Errorf("create log exporter: %w", err))
		}
	}
	switch {
	case directLogs:
		lp, logsOn = lognoop.NewLoggerProvider(), true
	case autoexport.IsNoneLogExporter(logExp):
		lp = lognoop.NewLoggerProvider()
	default:
		sdkLP := sdklog.NewLoggerProvider(
			sdklog.WithResource(res),
			sdklog.WithProcessor(sdklog.NewBatchProcessor(&countingExporter{Exporter: logExp, diag: diag})),
			// Our records never repeat a key; skipping the SDK's
			// de-duplication saves a map pass per attribute.
			sdklog.WithAllowKeyDuplication(),
		)
		lp, logsOn = sdkLP, true
		first = append(first, sdkLP.Shutdown)
	}

	if !directSpans {
		spanExp, err := autoexport.NewSpanExporter(ctx)
		if err != nil {
			return fail(fmt.Errorf("create span exporter: %w", err))
		}
		if !autoexport.IsNoneSpanExporter(spanExp) {
			sdkTP := sdktrace.NewTracerProvider(
				sdktrace.WithResource(res),
				sdktrace.WithSpanProcessor(sdktrace.NewBatchSpanProcessor(&countingSpanExporter{SpanExporter: spanExp, diag: diag})),
			)
			tp = sdkTP
			first = append(first, sdkTP.Shutdown)
		}
	}

	reader, hist, err := newMetricReader(ctx, opts.ServiceVersion)
	if err != nil {
		return fail(fmt.Errorf("create metric reader: %w", err))
	}
	opts.Histograms = hist
	if autoexport.IsNoneMetricReader(reader) {
		mp = metricnoop.NewMeterProvider()
	} else {
		sdkMP := sdkmetric.NewMeterProvider(sdkmetric.WithResource(res), sdkmetric.WithReader(reader))
		mp = sdkMP
		last = append(last, sdkMP.Shutdown)
	}

	e, err := newExporter(lp, mp, tp, opts, diag, logsOn)
	if err != nil {
		return fail(err)
	}
	e.direct = dir
	e.shutdowns = [][]func(context.Context) error{first, last}
	return e, nil
}

// newResource describes this process: service.name (default
// DefaultServiceName), service.version, host.name, host.id, os.type,
// os.version (the kernel release) and telemetry.sdk.*, then whatever
// OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME say, which wins. On error
// the resource holds what could be detected.
func newResource(ctx context.Context, serviceVersion string) (*resource.Resource, error) {
	attrs := []resource.Option{
		resource.WithSchemaURL(semconv.SchemaURL),
		resource.WithAttributes(stdsemconv.ServiceName(DefaultServiceName)),
	}
	if serviceVersion != "" {
		attrs = append(attrs, resource.WithAttributes(stdsemconv.ServiceVersion(serviceVersion)))
	}
	attrs = append(attrs,
		resource.WithTelemetrySDK(),
		resource.WithHost(),
		resource.WithHostID(),
		resource.WithOSType(),
		resource.WithDetectors(osVersionDetector{}),
		// Last, so that the user's settings win.
		resource.WithFromEnv(),
	)
	res, err := resource.New(ctx, attrs...)
	if err != nil {
		return res, fmt.Errorf("build resource: %w", err)
	}
	return res, nil
}

// osVersionDetector sets os.version to the kernel's release (uname -r); the
// SDK's WithOS gives os.description, not os.version.
type osVersionDetector struct{}

func (osVersionDetector) Detect(context.Context) (*resource.Resource, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return nil, fmt.Errorf("uname: %w", err)
	}
	release, _, _ := bytes.Cut(u.Release[:], []byte{0})
	return resource.NewWithAttributes(semconv.SchemaURL, stdsemconv.OSVersion(string(release))), nil
}
