package exporter

import (
	"context"
	"slices"
	"sort"
	"sync"
	"time"

	"go.opentelemetry.io/otel/sdk/instrumentation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/memlock-exporter/memlock-exporter/semconv"
)

// The SDK's synchronous histograms cost about 220 ns per Record (option
// parsing, attribute de-duplication, a map lookup and atomics), and every
// call records two: at 50 000 calls/s that alone was a fifth of the
// exporter's budget. Handle already holds a lock and has the call's
// callAttrs in hand, so it aggregates memlock.call.duration and
// memlock.call.size itself, the way the SDK's explicit-bucket aggregation
// does, and a HistogramProducer hands the result to the reader at each
// collection. The output is the SDK's, point for point
// (TestHistogramsMatchSDK).

// histogram is one series of an explicit-bucket histogram: the SDK's
// aggregation with min, max and sum, and no exemplars (Handle records
// without a span in its context, so the SDK would keep none either).
type histogram[N int64 | float64] struct {
	counts   []uint64 // len(bounds)+1; nil until the first value
	count    uint64
	sum      N
	min, max N
}

// record adds v. A value equal to a boundary falls in the bucket that
// boundary closes, as in the SDK (and the OpenTelemetry specification).
func (h *histogram[N]) record(v N, bounds []float64) {
	if h.counts == nil {
		h.counts = make([]uint64, len(bounds)+1)
	}
	h.counts[sort.SearchFloat64s(bounds, float64(v))]++
	if h.count == 0 || v < h.min {
		h.min = v
	}
	if h.count == 0 || v > h.max {
		h.max = v
	}
	h.count++
	h.sum += v
}

func (h *histogram[N]) reset() {
	clear(h.counts)
	h.count, h.sum, h.min, h.max = 0, 0, 0, 0
}

// point returns h as a data point. It copies what h may change later.
func (h *histogram[N]) point(ca *callAttrs, bounds []float64, start, now time.Time) metricdata.HistogramDataPoint[N] {
	return metricdata.HistogramDataPoint[N]{
		Attributes:   ca.set,
		StartTime:    start,
		Time:         now,
		Count:        h.count,
		Bounds:       bounds,
		BucketCounts: slices.Clone(h.counts),
		Min:          metricdata.NewExtrema(h.min),
		Max:          metricdata.NewExtrema(h.max),
		Sum:          h.sum,
	}
}

// Bucket boundaries, shared by every series (the SDK sorts its copy too).
var (
	durationBounds = sortedBounds(semconv.CallDurationBuckets())
	sizeBounds     = sortedBounds(semconv.CallSizeBuckets())
)

func sortedBounds(b []float64) []float64 {
	b = slices.Clone(b)
	slices.Sort(b)
	return b
}

// HistogramProducer is an sdkmetric.Producer of memlock.call.duration and
// memlock.call.size, aggregated by the Exporter it is given to (in
// Options.Histograms) instead of by the SDK. Attach it to the reader with
// sdkmetric.WithProducer; New does so when it builds the OTLP metric
// reader itself, and otherwise records into the SDK's own histograms.
type HistogramProducer struct {
	temporality metricdata.Temporality
	scope       instrumentation.Scope

	mu    sync.Mutex
	src   *Exporter // nil until an Exporter takes the producer
	start time.Time // of the current delta interval, or of the series
}

// NewHistogramProducer returns a producer that reports with the given
// temporality (what the reader's exporter asks for histograms) under the
// instrumentation scope of the Exporter's meter; serviceVersion is that
// scope's version.
func NewHistogramProducer(temporality metricdata.Temporality, serviceVersion string) *HistogramProducer {
	if temporality != metricdata.DeltaTemporality {
		temporality = metricdata.CumulativeTemporality
	}
	return &HistogramProducer{
		temporality: temporality,
		scope: instrumentation.Scope{
			Name:      semconv.ScopeName,
			Version:   serviceVersion,
			SchemaURL: semconv.SchemaURL,
		},
		start: time.Now(),
	}
}

var _ sdkmetric.Producer = (*HistogramProducer)(nil)

func (p *HistogramProducer) attach(e *Exporter) {
	p.mu.Lock()
	p.src = e
	p.mu.Unlock()
}

// Produce returns the histograms' data points: with cumulative temporality
// every series seen so far, with delta those that recorded something since
// the last call, which then start afresh.
func (p *HistogramProducer) Produce(context.Context) ([]metricdata.ScopeMetrics, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e := p.src
	if e == nil {
		return nil, nil
	}
	now := time.Now()
	duration := metricdata.Histogram[float64]{Temporality: p.temporality}
	size := metricdata.Histogram[int64]{Temporality: p.temporality}
	delta := p.temporality == metricdata.DeltaTemporality

	e.mu.Lock()
	e.attrs.each(func(ca *callAttrs) {
		if ca.duration.count > 0 {
			duration.DataPoints = append(duration.DataPoints, ca.duration.point(ca, durationBounds, p.start, now))
		}
		if ca.size.count > 0 {
			size.DataPoints = append(size.DataPoints, ca.size.point(ca, sizeBounds, p.start, now))
		}
		if delta {
			ca.duration.reset()
			ca.size.reset()
		}
	})
	e.mu.Unlock()
	if delta {
		p.start = now
	}

	var metrics []metricdata.Metrics
	if len(duration.DataPoints) > 0 {
		metrics = append(metrics, metricdata.Metrics{
			Name:        semconv.MetricCallDuration,
			Description: semconv.MetricCallDurationDescription,
			Unit:        semconv.MetricCallDurationUnit,
			Data:        duration,
		})
	}
	if len(size.DataPoints) > 0 {
		metrics = append(metrics, metricdata.Metrics{
			Name:        semconv.MetricCallSize,
			Description: semconv.MetricCallSizeDescription,
			Unit:        semconv.MetricCallSizeUnit,
			Data:        size,
		})
	}
	if len(metrics) == 0 {
		return nil, nil
	}
	return []metricdata.ScopeMetrics{{Scope: p.scope, Metrics: metrics}}, nil
}
