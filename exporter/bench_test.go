package exporter

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"

	"go.opentelemetry.io/otel/log"
	lognoop "go.opentelemetry.io/otel/log/noop"
	"go.opentelemetry.io/otel/metric"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/memlock-exporter/memlock-exporter/exporter/internal/otlpwire"
)

type discardProcessor struct{}

func (discardProcessor) Enabled(context.Context, sdklog.EnabledParameters) bool { return true }
func (discardProcessor) OnEmit(context.Context, *sdklog.Record) error           { return nil }
func (discardProcessor) Shutdown(context.Context) error                         { return nil }
func (discardProcessor) ForceFlush(context.Context) error                       { return nil }

type discardExporter struct{}

func (discardExporter) Export(context.Context, []sdklog.Record) error { return nil }
func (discardExporter) Shutdown(context.Context) error                { return nil }
func (discardExporter) ForceFlush(context.Context) error              { return nil }

// BenchmarkRecord measures the conversion of one event to a log record.
func BenchmarkRecord(b *testing.B) {
	var rb recordBuilder
	ev := sampleEvent()
	b.ReportAllocs()
	for b.Loop() {
		_ = rb.build(&ev, nil, "", observedAt)
	}
}

type discardSpanExporter struct{}

func (discardSpanExporter) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discardSpanExporter) Shutdown(context.Context) error                             { return nil }

// batchSpans is the tracer provider New builds: a batch span processor
// whose (here discarding) exporter counts what it could not deliver.
func batchSpans() trace.TracerProvider {
	bsp := sdktrace.NewBatchSpanProcessor(&countingSpanExporter{SpanExporter: discardSpanExporter{}, diag: newDiagnostics(nil, "", "")})
	return sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(bsp))
}

// BenchmarkHandle measures Handle end to end up to the SDK's processors:
// conversion, the SDK's Emit, the three metric measurements into a real
// sdk/metric provider and, in the "+spans" cases, the span of the call
// through a batch span processor (as New builds it when
// OTEL_TRACES_EXPORTER is not none). The other cases have no tracer
// provider, as with OTEL_TRACES_EXPORTER=none.
func BenchmarkHandle(b *testing.B) {
	diag := func() *diagnostics { return newDiagnostics(nil, "", "") }
	for _, bc := range []struct {
		name string
		lp   func() log.LoggerProvider
		tp   func() trace.TracerProvider
		off  bool
	}{
		{name: "discard-processor", lp: func() log.LoggerProvider {
			return sdklog.NewLoggerProvider(sdklog.WithProcessor(discardProcessor{}), sdklog.WithAllowKeyDuplication())
		}},
		{name: "batch-processor", lp: func() log.LoggerProvider {
			bp := sdklog.NewBatchProcessor(&countingExporter{Exporter: discardExporter{}, diag: diag()})
			return sdklog.NewLoggerProvider(sdklog.WithProcessor(bp), sdklog.WithAllowKeyDuplication())
		}},
		{name: "batch-processor+spans", tp: batchSpans, lp: func() log.LoggerProvider {
			bp := sdklog.NewBatchProcessor(&countingExporter{Exporter: discardExporter{}, diag: diag()})
			return sdklog.NewLoggerProvider(sdklog.WithProcessor(bp), sdklog.WithAllowKeyDuplication())
		}},
		{name: "discard-processor+spans", tp: batchSpans, lp: func() log.LoggerProvider {
			return sdklog.NewLoggerProvider(sdklog.WithProcessor(discardProcessor{}), sdklog.WithAllowKeyDuplication())
		}},
		{name: "batch-processor-sdk-dedup", lp: func() log.LoggerProvider {
			bp := sdklog.NewBatchProcessor(&countingExporter{Exporter: discardExporter{}, diag: diag()})
			return sdklog.NewLoggerProvider(sdklog.WithProcessor(bp))
		}},
		{name: "metrics-only", lp: func() log.LoggerProvider {
			return sdklog.NewLoggerProvider()
		}},
		{name: "metrics-only+spans", tp: batchSpans, lp: func() log.LoggerProvider {
			return sdklog.NewLoggerProvider()
		}},
		{name: "disabled", off: true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var e *Exporter
			if bc.off {
				var err error
				if e, err = NewWithProviders(nil, nil, nil, Options{Disabled: true}); err != nil {
					b.Fatal(err)
				}
			} else {
				var mp metric.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
				var tp trace.TracerProvider
				if bc.tp != nil {
					tp = bc.tp()
				}
				var err error
				if e, err = NewWithProviders(bc.lp(), mp, tp, Options{}); err != nil {
					b.Fatal(err)
				}
				if strings.HasPrefix(bc.name, "metrics-only") {
					e.logsOn = false
				}
			}
			b.Cleanup(func() { _ = e.Shutdown(context.Background()) })
			ev := sampleEvent()
			b.ReportAllocs()
			for b.Loop() {
				e.Handle(&ev)
			}
		})
	}
}

// BenchmarkSDKEmit is the baseline of what the SDK alone costs: emitting an
// already built record of the same shape into the same pipelines (batch
// processor, discarding exporter) without any conversion.
func BenchmarkSDKEmit(b *testing.B) {
	bp := sdklog.NewBatchProcessor(discardExporter{})
	lp := sdklog.NewLoggerProvider(sdklog.WithProcessor(bp), sdklog.WithAllowKeyDuplication())
	b.Cleanup(func() { _ = lp.Shutdown(context.Background()) })
	logger := lp.Logger("bench")
	var rb recordBuilder
	ev := sampleEvent()
	rec := rb.build(&ev, nil, "", observedAt)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		logger.Emit(ctx, rec)
	}
}

// discardSender stands in for the OTLP client: it drops every request
// (after it was encoded), so that the benchmark measures our side only.
// It counts the bytes it was given.
type discardSender struct{ bytes *atomic.Int64 }

func (d discardSender) Send(_ context.Context, body []byte) (int64, error) {
	if d.bytes != nil {
		d.bytes.Add(int64(len(body)))
	}
	return 0, nil
}
func (discardSender) Close() error { return nil }

// BenchmarkHandleDirect measures Handle with the direct pipeline: the
// conversion, the encoding of the log record (and, in "+spans", of the
// span) into batches, the request encoding, and the three metric
// measurements into a real sdk/metric provider. Compare with
// BenchmarkHandle's batch-processor cases, the same work through the SDK.
func BenchmarkHandleDirect(b *testing.B) {
	for _, bc := range []struct {
		name        string
		logs, spans bool
	}{
		{"logs", true, false},
		{"logs+spans", true, true},
		{"spans", false, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			// As New builds it for OTLP: the Exporter aggregates the
			// histograms.
			hist := NewHistogramProducer(metricdata.CumulativeTemporality, "")
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader(sdkmetric.WithProducer(hist))))
			e, err := NewWithProviders(lognoop.NewLoggerProvider(), mp, nil, Options{Histograms: hist})
			if err != nil {
				b.Fatal(err)
			}
			sample, _ := newSampler("", 0)
			d := &direct{ids: newIDGenerator(), sample: sample}
			var c counts
			var sent atomic.Int64
			if bc.logs {
				d.logs = newStream(otlpwire.Scope{Name: "bench"}, otlpwire.FrameLogsRequest, discardSender{&sent}, BatchOptions{}, c.counters())
			}
			if bc.spans {
				d.spans = newStream(otlpwire.Scope{Name: "bench"}, otlpwire.FrameTracesRequest, discardSender{&sent}, BatchOptions{}, c.counters())
			}
			e.direct, e.logsOn = d, bc.logs
			ev := sampleEvent()
			b.ReportAllocs()
			for b.Loop() {
				e.Handle(&ev)
			}
			b.StopTimer()
			_ = d.shutdown(context.Background()) // sends the last batch
			b.ReportMetric(float64(sent.Load())/float64(b.N), "B/event")
			if _, dropped, _ := c.get(); dropped > 0 {
				b.Logf("%d items dropped from a full queue", dropped)
			}
		})
	}
}
