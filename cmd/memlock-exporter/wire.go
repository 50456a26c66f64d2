package main

import (
	"io"
	"net"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	stdsemconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/memlock-exporter/memlock-exporter/config"
	"github.com/memlock-exporter/memlock-exporter/exporter"
)

// exporterOptions turns the configuration into the exporter's settings;
// console destinations write to console. Wiring only: config has checked
// every value.
func exporterOptions(cfg config.Config, console io.Writer) exporter.Options {
	t := &cfg.Telemetry
	return exporter.Options{
		Disabled:          t.Disabled,
		Resource:          resourceAttributes(t),
		Logs:              destination(t.LogsExporter, t.Logs, t.LogBatch),
		Spans:             destination(t.TracesExporter, t.Traces, t.SpanBatch),
		Sampler:           sampler(t.Sampler, t.SamplerRatio),
		Metrics:           metricsOptions(t),
		Console:           console,
		ProcessMetrics:    bool(cfg.ProcessMetrics),
		ProcessMetricsMax: cfg.ProcessMetricsMax,
		LimitWarnFraction: cfg.LimitWarnFraction,
		Fold:              exporter.FoldOptions{Window: cfg.FoldWindow, After: cfg.FoldAfter},
		Queue:             exporter.QueueOptions{Dir: string(cfg.QueueDir), MaxBytes: int64(cfg.QueueMaxBytes)},
	}
}

// resourceAttributes are OTEL_RESOURCE_ATTRIBUTES, then OTEL_SERVICE_NAME,
// which the specification lets win.
func resourceAttributes(t *config.Telemetry) []attribute.KeyValue {
	var kvs []attribute.KeyValue
	for _, a := range t.ResourceAttributes {
		kvs = append(kvs, attribute.String(a.Key, a.Value))
	}
	if t.ServiceName != "" {
		kvs = append(kvs, stdsemconv.ServiceName(t.ServiceName))
	}
	return kvs
}

func destination(kind config.Exporter, o config.OTLPExport, b config.Batch) exporter.Destination {
	d := exporter.Destination{OTLP: otlpTarget(o), Batch: exporter.BatchOptions{
		ScheduleDelay:  b.ScheduleDelay,
		ExportTimeout:  b.ExportTimeout,
		MaxQueueSize:   b.MaxQueueSize,
		MaxExportBatch: b.MaxExportBatch,
	}}
	switch kind {
	case config.ExporterOTLP:
		d.Kind = exporter.ToOTLP
	case config.ExporterConsole:
		d.Kind = exporter.ToConsole
	default:
		d.Kind = exporter.ToNone
	}
	return d
}

func otlpTarget(o config.OTLPExport) exporter.OTLPTarget {
	return exporter.OTLPTarget{
		Protocol:              o.Protocol.String(),
		Endpoint:              o.Endpoint,
		Insecure:              o.Insecure,
		Headers:               o.Headers,
		Compression:           o.Compression.String(),
		Timeout:               o.Timeout,
		CertificateFile:       o.Certificate,
		ClientCertificateFile: o.ClientCertificate,
		ClientKeyFile:         o.ClientKey,
	}
}

// sampler is the SDK's sampler of OTEL_TRACES_SAMPLER: every span is a
// root, so the parentbased_ forms decide as their root samplers.
func sampler(s config.Sampler, ratio float64) sdktrace.Sampler {
	switch s {
	case config.SamplerAlwaysOn:
		return sdktrace.AlwaysSample()
	case config.SamplerAlwaysOff:
		return sdktrace.NeverSample()
	case config.SamplerTraceIDRatio:
		return sdktrace.TraceIDRatioBased(ratio)
	case config.SamplerParentBasedAlwaysOff:
		return sdktrace.ParentBased(sdktrace.NeverSample())
	case config.SamplerParentBasedTraceIDRatio:
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))
	}
	return sdktrace.ParentBased(sdktrace.AlwaysSample())
}

func metricsOptions(t *config.Telemetry) exporter.MetricsOptions {
	m := exporter.MetricsOptions{
		OTLP:           otlpTarget(t.Metrics),
		Interval:       t.MetricInterval,
		Timeout:        t.MetricTimeout,
		PrometheusAddr: net.JoinHostPort(t.PrometheusHost, strconv.Itoa(t.PrometheusPort)),
	}
	switch t.MetricsExporter {
	case config.ExporterOTLP:
		m.Kind = exporter.MetricsToOTLP
	case config.ExporterConsole:
		m.Kind = exporter.MetricsToConsole
	case config.ExporterPrometheus:
		m.Kind = exporter.MetricsToPrometheus
	default:
		m.Kind = exporter.MetricsToNone
	}
	switch t.MetricTemporality {
	case config.TemporalityDelta:
		m.Temporality = exporter.TemporalityDelta
	case config.TemporalityLowMemory:
		m.Temporality = exporter.TemporalityLowMemory
	default:
		m.Temporality = exporter.TemporalityCumulative
	}
	return m
}
