package exporter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	promexporter "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/exporters/stdout/stdoutmetric"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"google.golang.org/grpc/credentials"

	"github.com/memlock-exporter/memlock-exporter/exporter/internal/otlpsend"
	"github.com/memlock-exporter/memlock-exporter/semconv"
)

// MetricsOptions say where the metrics go and how often (OTEL_METRICS_EXPORTER,
// OTEL_METRIC_EXPORT_*, OTEL_EXPORTER_OTLP_METRICS_*). They go through the
// OpenTelemetry SDK's meter provider: they aggregate, so their cost per
// call is small.
type MetricsOptions struct {
	Kind MetricsKind
	// OTLP is the collector, for MetricsToOTLP.
	OTLP OTLPTarget
	// Interval is the time between two exports, Timeout bounds one: 60s
	// and 30s when zero, as in the specification.
	Interval, Timeout time.Duration
	// Temporality is the OTLP exporter's temporality preference.
	Temporality Temporality
	// PrometheusAddr is where MetricsToPrometheus serves /metrics
	// (host:port).
	PrometheusAddr string

	// newReader, if set, makes the reader instead (tests); it must attach
	// producer to it.
	newReader func(producer sdkmetric.Producer) sdkmetric.Reader
}

// MetricsKind is where the metrics go.
type MetricsKind uint8

const (
	MetricsToNone MetricsKind = iota
	MetricsToOTLP
	MetricsToConsole
	MetricsToPrometheus
)

// Temporality is OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE.
type Temporality uint8

const (
	TemporalityCumulative Temporality = iota
	TemporalityDelta
	TemporalityLowMemory
)

// selector returns the temporality of each instrument kind under the
// preference, as the specification defines the three.
func (t Temporality) selector() sdkmetric.TemporalitySelector {
	return func(k sdkmetric.InstrumentKind) metricdata.Temporality {
		switch {
		case t == TemporalityDelta && (k == sdkmetric.InstrumentKindCounter || k == sdkmetric.InstrumentKindHistogram ||
			k == sdkmetric.InstrumentKindObservableCounter):
			return metricdata.DeltaTemporality
		case t == TemporalityLowMemory && (k == sdkmetric.InstrumentKindCounter || k == sdkmetric.InstrumentKindHistogram):
			return metricdata.DeltaTemporality
		}
		return metricdata.CumulativeTemporality
	}
}

// Defaults of OTEL_METRIC_EXPORT_INTERVAL and OTEL_METRIC_EXPORT_TIMEOUT.
const (
	defaultMetricInterval = time.Minute
	defaultMetricTimeout  = 30 * time.Second
)

// newMetricReader returns the reader o asks for, reporting the histograms
// of producer too; nil for MetricsToNone.
func newMetricReader(ctx context.Context, o *MetricsOptions, newProducer func(metricdata.Temporality) sdkmetric.Producer, console io.Writer) (sdkmetric.Reader, error) {
	if o.newReader != nil {
		return o.newReader(newProducer(o.Temporality.selector()(sdkmetric.InstrumentKindHistogram))), nil
	}
	interval, timeout := o.Interval, o.Timeout
	if interval <= 0 {
		interval = defaultMetricInterval
	}
	if timeout <= 0 {
		timeout = defaultMetricTimeout
	}
	periodic := func(exp sdkmetric.Exporter, t metricdata.Temporality) sdkmetric.Reader {
		return sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(interval), sdkmetric.WithTimeout(timeout),
			sdkmetric.WithProducer(newProducer(t)))
	}
	selector := o.Temporality.selector()
	histograms := selector(sdkmetric.InstrumentKindHistogram)
	switch o.Kind {
	case MetricsToNone:
		return nil, nil
	case MetricsToOTLP:
		exp, err := newOTLPMetricExporter(ctx, o.OTLP, selector)
		if err != nil {
			return nil, err
		}
		return periodic(exp, histograms), nil
	case MetricsToConsole:
		exp, err := stdoutmetric.New(stdoutmetric.WithWriter(console), stdoutmetric.WithTemporalitySelector(selector))
		if err != nil {
			return nil, fmt.Errorf("create console metric exporter: %w", err)
		}
		return periodic(exp, histograms), nil
	case MetricsToPrometheus:
		return newPrometheusReader(o.PrometheusAddr, newProducer(metricdata.CumulativeTemporality))
	}
	return nil, fmt.Errorf("unknown metrics destination %d", o.Kind)
}

// newOTLPMetricExporter builds the SDK's OTLP metric exporter from t alone:
// every setting is given, so what the SDK would read from the environment
// itself never applies (config has read and checked it).
func newOTLPMetricExporter(ctx context.Context, t OTLPTarget, selector sdkmetric.TemporalitySelector) (sdkmetric.Exporter, error) {
	var tlsConfig = otlpsend.TLSConfig
	if strings.EqualFold(t.Protocol, otlpsend.ProtocolGRPC) {
		opts := []otlpmetricgrpc.Option{
			otlpmetricgrpc.WithEndpoint(hostPort(t.Endpoint)),
			otlpmetricgrpc.WithTemporalitySelector(selector),
			otlpmetricgrpc.WithHeaders(t.Headers),
		}
		if t.Timeout > 0 {
			opts = append(opts, otlpmetricgrpc.WithTimeout(t.Timeout))
		}
		if plaintext(t) {
			opts = append(opts, otlpmetricgrpc.WithInsecure())
		} else {
			tc, err := tlsConfig(t)
			if err != nil {
				return nil, err
			}
			opts = append(opts, otlpmetricgrpc.WithTLSCredentials(credentials.NewTLS(tc)))
		}
		if strings.EqualFold(t.Compression, "gzip") {
			opts = append(opts, otlpmetricgrpc.WithCompressor("gzip"))
		}
		exp, err := otlpmetricgrpc.New(ctx, opts...)
		if err != nil {
			return nil, fmt.Errorf("create OTLP/gRPC metric exporter: %w", err)
		}
		return exp, nil
	}
	opts := []otlpmetrichttp.Option{
		otlpmetrichttp.WithEndpointURL(t.Endpoint),
		otlpmetrichttp.WithTemporalitySelector(selector),
		otlpmetrichttp.WithHeaders(t.Headers),
	}
	if t.Timeout > 0 {
		opts = append(opts, otlpmetrichttp.WithTimeout(t.Timeout))
	}
	if !plaintext(t) {
		tc, err := tlsConfig(t)
		if err != nil {
			return nil, err
		}
		opts = append(opts, otlpmetrichttp.WithTLSClientConfig(tc))
	}
	if strings.EqualFold(t.Compression, "gzip") {
		opts = append(opts, otlpmetrichttp.WithCompression(otlpmetrichttp.GzipCompression))
	}
	exp, err := otlpmetrichttp.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("create OTLP/HTTP metric exporter: %w", err)
	}
	return exp, nil
}

// plaintext reports whether t's endpoint is reached without TLS: an
// http:// URL, or a host:port with Insecure.
func plaintext(t OTLPTarget) bool {
	if scheme, _, ok := strings.Cut(t.Endpoint, "://"); ok {
		return strings.EqualFold(scheme, "http")
	}
	return t.Insecure
}

// hostPort is the host:port of a gRPC endpoint given as a URL or as is.
func hostPort(endpoint string) string {
	if u, err := url.Parse(endpoint); err == nil && u.Host != "" && strings.Contains(endpoint, "://") {
		return u.Host
	}
	return endpoint
}

// prometheusReader is the Prometheus exporter's reader with the HTTP
// server that serves it; Shutdown stops both.
type prometheusReader struct {
	sdkmetric.Reader
	server *http.Server
}

func (r prometheusReader) Shutdown(ctx context.Context) error {
	return errors.Join(r.Reader.Shutdown(ctx), r.server.Shutdown(ctx))
}

// newPrometheusReader serves the metrics on addr/metrics from a registry of
// their own (not the process-wide one).
func newPrometheusReader(addr string, producer sdkmetric.Producer) (sdkmetric.Reader, error) {
	reg := prometheus.NewRegistry()
	reader, err := promexporter.New(promexporter.WithRegisterer(reg), promexporter.WithProducer(producer))
	if err != nil {
		return nil, fmt.Errorf("create Prometheus exporter: %w", err)
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		_ = reader.Shutdown(context.Background())
		return nil, fmt.Errorf("listen for Prometheus on %s: %w (set OTEL_EXPORTER_PROMETHEUS_HOST and _PORT)", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	srv := &http.Server{Handler: mux, ReadTimeout: 5 * time.Second, WriteTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	go func() { _ = srv.Serve(lis) }()
	return prometheusReader{Reader: reader, server: srv}, nil
}

// lostReasons are the values of memlock.reason, in the order of lostOpts.
const (
	lostRingbufFull = iota
	lostMissedEntry
	lostEntryMapFull
	lostProgramBusy
	lostMalformed
	lostExportFailed
	lostQueueFull
	lostRepeatShed
	numLostReasons
)

var lostOpts = func() (t [numLostReasons][]metric.ObserveOption) {
	for i, reason := range [numLostReasons]string{
		lostRingbufFull:  semconv.ReasonRingbufFull,
		lostMissedEntry:  semconv.ReasonMissedEntry,
		lostEntryMapFull: semconv.ReasonEntryMapFull,
		lostProgramBusy:  semconv.ReasonProgramBusy,
		lostMalformed:    semconv.ReasonMalformed,
		lostExportFailed: semconv.ReasonExportFailed,
		lostQueueFull:    semconv.ReasonQueueFull,
		lostRepeatShed:   semconv.ReasonRepeatShed,
	} {
		t[i] = []metric.ObserveOption{metric.WithAttributeSet(attribute.NewSet(semconv.Reason(reason)))}
	}
	return t
}()

// registerCallInstruments creates memlock.calls (observed from stats) and
// memlock.events.lost (observed by observeLost).
func registerCallInstruments(m metric.Meter, stats *callStats, observeLost metric.Int64Callback) error {
	if _, err := m.Int64ObservableCounter(semconv.MetricCalls,
		metric.WithUnit(semconv.MetricCallsUnit),
		metric.WithDescription(semconv.MetricCallsDescription),
		metric.WithInt64Callback(stats.observeCalls)); err != nil {
		return fmt.Errorf("create %s: %w", semconv.MetricCalls, err)
	}
	if _, err := m.Int64ObservableCounter(semconv.MetricEventsLost,
		metric.WithUnit(semconv.MetricEventsLostUnit),
		metric.WithDescription(semconv.MetricEventsLostDescription),
		metric.WithInt64Callback(observeLost)); err != nil {
		return fmt.Errorf("create %s: %w", semconv.MetricEventsLost, err)
	}
	return nil
}
