package exporter

import (
	"context"
	"math"
	"testing"
	"time"

	lognoop "go.opentelemetry.io/otel/log/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/memlock-exporter/memlock-exporter/bpf"
	"github.com/memlock-exporter/memlock-exporter/semconv"
)

// histogramEvents are calls whose durations and sizes hit bucket
// boundaries, both sides of them, zero and the overflow bucket, for every
// syscall, with and without errors.
func histogramEvents(round int) []bpf.Event {
	var evs []bpf.Event
	durations := []time.Duration{0, time.Microsecond, time.Microsecond + 1, 10 * time.Microsecond, 3 * time.Millisecond, 5 * time.Second}
	sizes := []uint64{0, 1, 4096, 4097, 1 << 30, math.MaxUint64}
	for i, sys := range []bpf.Syscall{bpf.SyscallMlock2, bpf.SyscallMlock, bpf.SyscallMunlock, bpf.SyscallMlockall, bpf.SyscallMunlockall} {
		for j, d := range durations {
			if (i+j+round)%4 == 0 {
				continue // not every series in every round, for delta
			}
			ev := sampleEvent()
			ev.Syscall, ev.Duration, ev.Len = sys, d+time.Duration(round), sizes[(j+round)%len(sizes)]
			switch (i + j) % 3 {
			case 1:
				ev.Ret = -12 // ENOMEM
			case 2:
				ev.Ret = -1 // EPERM
			}
			evs = append(evs, ev)
		}
	}
	return evs
}

// TestHistogramsMatchSDK feeds the same calls to an Exporter recording
// into the SDK's histograms and to one aggregating its own, collects both
// twice, with cumulative and with delta temporality, and wants the same
// memlock.call.duration and memlock.call.size but for timestamps.
func TestHistogramsMatchSDK(t *testing.T) {
	for _, temporality := range []metricdata.Temporality{metricdata.CumulativeTemporality, metricdata.DeltaTemporality} {
		t.Run(temporality.String(), func(t *testing.T) {
			selector := func(sdkmetric.InstrumentKind) metricdata.Temporality { return temporality }
			sdkReader := sdkmetric.NewManualReader(sdkmetric.WithTemporalitySelector(selector))
			sdkExp, err := NewWithProviders(lognoop.NewLoggerProvider(), sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkReader)), nil, Options{ServiceVersion: "1.2.3"})
			if err != nil {
				t.Fatal(err)
			}
			hp := NewHistogramProducer(temporality, "1.2.3")
			// The reader's selector applies to the SDK's instruments; the
			// producer was told the temporality when it was made.
			ownReader := sdkmetric.NewManualReader(sdkmetric.WithTemporalitySelector(selector), sdkmetric.WithProducer(hp))
			ownExp, err := NewWithProviders(lognoop.NewLoggerProvider(), sdkmetric.NewMeterProvider(sdkmetric.WithReader(ownReader)), nil, Options{ServiceVersion: "1.2.3", Histograms: hp})
			if err != nil {
				t.Fatal(err)
			}
			for round := range 3 {
				for _, ev := range histogramEvents(round) {
					sdkExp.Handle(&ev)
					ownExp.Handle(&ev)
				}
				want := histogramsOf(t, sdkReader)
				got := histogramsOf(t, ownReader)
				if len(want) != 2 {
					t.Fatalf("round %d: the SDK reported %d histograms, want 2", round, len(want))
				}
				for name, w := range want {
					g, ok := got[name]
					if !ok {
						t.Errorf("round %d: no %s", round, name)
						continue
					}
					metricdatatest.AssertEqual(t, w, g, metricdatatest.IgnoreTimestamp())
				}
				if len(got) != len(want) {
					t.Errorf("round %d: %d histograms, want %d", round, len(got), len(want))
				}
			}
		})
	}
}

// histogramsOf collects and returns the histograms by name, checking the
// scope they came under.
func histogramsOf(t *testing.T, r sdkmetric.Reader) map[string]metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != semconv.MetricCallDuration && m.Name != semconv.MetricCallSize {
				continue
			}
			if sm.Scope.Name != semconv.ScopeName || sm.Scope.Version != "1.2.3" || sm.Scope.SchemaURL != semconv.SchemaURL {
				t.Errorf("%s under scope %+v", m.Name, sm.Scope)
			}
			if _, dup := out[m.Name]; dup {
				t.Errorf("%s reported twice", m.Name)
			}
			out[m.Name] = m
		}
	}
	return out
}

// BenchmarkHistograms: what recording one call's two histograms costs,
// through the SDK and aggregated by the Exporter.
func BenchmarkHistograms(b *testing.B) {
	for _, tc := range []struct {
		name string
		hist *HistogramProducer
	}{{"sdk", nil}, {"own", NewHistogramProducer(metricdata.CumulativeTemporality, "")}} {
		b.Run(tc.name, func(b *testing.B) {
			reader := sdkmetric.NewManualReader()
			if tc.hist != nil {
				reader = sdkmetric.NewManualReader(sdkmetric.WithProducer(tc.hist))
			}
			// Metrics only: nothing else in Handle's way.
			e, err := NewWithProviders(lognoop.NewLoggerProvider(), sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)), nil, Options{Histograms: tc.hist})
			if err != nil {
				b.Fatal(err)
			}
			e.logsOn = false
			ev := sampleEvent()
			b.ReportAllocs()
			for b.Loop() {
				e.Handle(&ev)
			}
		})
	}
}
