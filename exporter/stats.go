package exporter

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sort"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/memlock-exporter/memlock-exporter/bpf"
	"github.com/memlock-exporter/memlock-exporter/semconv"
)

// The call metrics (memlock.calls, memlock.call.duration and
// memlock.call.size) are aggregated here, in Handle, rather than recorded
// into the SDK's instruments: a synchronous counter's Add and a histogram's
// Record cost about 0.2 µs each (option parsing, attribute de-duplication,
// a map lookup and atomics), three of them per call, while Handle already
// knows the call's series. memlock.calls reaches the SDK through an
// observable counter, the histograms through a metric Producer attached to
// the reader; both read callStats at collection time. The histograms are
// the SDK's explicit-bucket aggregation, point for point
// (TestHistogramsMatchSDK).
//
// memlock.calls also counts the calls whose records the kernel lost (ring
// buffer full, exit without entry) but counted by syscall and errno
// (bpf.Reader.LostCalls), read at each collection: it stays exact however
// many records are lost. The histograms cannot: a lost call's duration and
// length are not known.

// series is one (syscall, error.type) pair of the call metrics.
type series struct {
	errName string // errno name, "" on success; read-only after creation
	set     attribute.Set
	observe []metric.ObserveOption
	// Guarded by callStats.mu.
	calls    uint64 // events handled
	lost     uint64 // calls the kernel counted without a record, as last read
	duration histogram[float64]
	size     histogram[int64] // only for the calls that take a range
}

type callKey struct {
	syscall bpf.Syscall
	errno   bpf.Errno
}

// smallErrno bounds the errnos looked up in callStats' table; Linux
// defines fewer than 140, and others (a syscall returns at most 4095)
// go to a map.
const smallErrno = 160

// errorTypeOther is the semantic conventions' error.type for an error
// whose type is not known: that of the calls the kernel counted lost with
// an errno its table has no slot for (bpf.LostErrnoOther and up).
const errorTypeOther = "_OTHER"

// callStats holds every series seen so far. Its methods are safe for
// concurrent use.
type callStats struct {
	// losses, if set, counts the calls whose records never reached
	// Handle (LossSource.LostCalls).
	losses LossSource

	mu    sync.Mutex
	small [numSyscalls][smallErrno]*series
	large map[callKey]*series
	other [numSyscalls]*series // lost calls of errno bpf.LostErrnoOther and up
}

// record counts ev, whose syscall must be valid, and returns its series.
func (s *callStats) record(ev *bpf.Event) *series {
	s.mu.Lock()
	defer s.mu.Unlock()
	se := s.get(ev.Syscall, ev.Errno())
	se.calls++
	if !ev.Untimed { // seen at its exit only: no duration to count
		se.duration.record(ev.Duration.Seconds(), durationBounds)
	}
	if syscalls[ev.Syscall].hasRange {
		se.size.record(clampInt64(ev.Len), sizeBounds)
	}
	return se
}

// get returns the series of (sys, errno), creating it. s.mu is held.
func (s *callStats) get(sys bpf.Syscall, errno bpf.Errno) *series {
	if errno < smallErrno {
		if se := s.small[sys][errno]; se != nil {
			return se
		}
		se := newSeries(sys, errName(errno))
		s.small[sys][errno] = se
		return se
	}
	k := callKey{sys, errno}
	if se, ok := s.large[k]; ok {
		return se
	}
	if s.large == nil {
		s.large = make(map[callKey]*series)
	}
	se := newSeries(sys, errName(errno))
	s.large[k] = se
	return se
}

// getLost returns the series of calls the kernel counted lost as l,
// creating it; nil if l's syscall is not valid. s.mu is held.
func (s *callStats) getLost(l *bpf.LostCalls) *series {
	switch {
	case !l.Syscall.Valid():
		return nil
	case l.Errno < bpf.LostErrnoOther:
		return s.get(l.Syscall, l.Errno)
	}
	// Any errno from LostErrnoOther up: which one is not known, so it
	// cannot be named, nor added to the series of any errno.
	if s.other[l.Syscall] == nil {
		s.other[l.Syscall] = newSeries(l.Syscall, errorTypeOther)
	}
	return s.other[l.Syscall]
}

// errName is a series' error.type: the errno's name, "" on success.
func errName(errno bpf.Errno) string {
	if errno == 0 {
		return ""
	}
	return errno.String()
}

// newSeries returns the series of sys with error.type errName, none if "".
func newSeries(sys bpf.Syscall, errName string) *series {
	kvs := []attribute.KeyValue{semconv.Syscall(sys.String())}
	se := &series{errName: errName}
	if errName != "" {
		kvs = append(kvs, semconv.ErrorTypeKey.String(errName))
	}
	se.set = attribute.NewSet(kvs...)
	se.observe = []metric.ObserveOption{metric.WithAttributeSet(se.set)}
	return se
}

// each calls fn for every series, with s.mu held.
func (s *callStats) each(fn func(*series)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.eachLocked(fn)
}

func (s *callStats) eachLocked(fn func(*series)) {
	for sys := range s.small {
		for _, se := range s.small[sys] {
			if se != nil {
				fn(se)
			}
		}
	}
	for _, se := range s.large {
		fn(se)
	}
	for _, se := range s.other {
		if se != nil {
			fn(se)
		}
	}
}

// observeCalls reports memlock.calls: the calls handled, plus those the
// kernel counted without a record. When the kernel's counts cannot be
// read, the last ones read stand in, so that no series goes down, and the
// error goes to the SDK's handler.
func (s *callStats) observeCalls(_ context.Context, o metric.Int64Observer) error {
	var lost []bpf.LostCalls
	var err error
	if s.losses != nil {
		if lost, err = s.losses.LostCalls(); err != nil {
			lost, err = nil, fmt.Errorf("read calls lost in the kernel: %w", err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range lost {
		if se := s.getLost(&lost[i]); se != nil {
			se.lost = lost[i].Calls
		}
	}
	s.eachLocked(func(se *series) {
		if n := se.calls + se.lost; n > 0 {
			o.Observe(clampInt64(n), se.observe...)
		}
	})
	return err
}

// histogram is one series of an explicit-bucket histogram: the SDK's
// aggregation with min, max and sum, and no exemplars (the SDK would keep
// none either: no call is recorded within a sampled span's context).
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
func (h *histogram[N]) point(set attribute.Set, bounds []float64, start, now time.Time) metricdata.HistogramDataPoint[N] {
	return metricdata.HistogramDataPoint[N]{
		Attributes:   set,
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

// histogramProducer hands the call histograms of a callStats to a metric
// reader (sdkmetric.WithProducer) at each collection, under the meter's
// instrumentation scope.
type histogramProducer struct {
	stats       *callStats
	temporality metricdata.Temporality
	scope       instrumentation.Scope

	mu    sync.Mutex
	start time.Time // of the current delta interval, or of the series
}

var _ sdkmetric.Producer = (*histogramProducer)(nil)

func newHistogramProducer(stats *callStats, temporality metricdata.Temporality, scope instrumentation.Scope) *histogramProducer {
	if temporality != metricdata.DeltaTemporality {
		temporality = metricdata.CumulativeTemporality
	}
	return &histogramProducer{stats: stats, temporality: temporality, scope: scope, start: time.Now()}
}

// Produce returns the histograms' data points: with cumulative temporality
// every series seen so far, with delta those that recorded something since
// the last call, which then start afresh.
func (p *histogramProducer) Produce(context.Context) ([]metricdata.ScopeMetrics, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	duration := metricdata.Histogram[float64]{Temporality: p.temporality}
	size := metricdata.Histogram[int64]{Temporality: p.temporality}
	delta := p.temporality == metricdata.DeltaTemporality
	p.stats.each(func(se *series) {
		if se.duration.count > 0 {
			duration.DataPoints = append(duration.DataPoints, se.duration.point(se.set, durationBounds, p.start, now))
		}
		if se.size.count > 0 {
			size.DataPoints = append(size.DataPoints, se.size.point(se.set, sizeBounds, p.start, now))
		}
		if delta {
			se.duration.reset()
			se.size.reset()
		}
	})
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

// clampInt64 converts a count to int64, saturating.
func clampInt64(n uint64) int64 {
	if n > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(n)
}
