package exporter

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/memlock-exporter/memlock-exporter/bpf"
	"github.com/memlock-exporter/memlock-exporter/semconv"
)

// TestMetrics: every call is counted in memlock.calls and measured in the
// histograms under its syscall and error.type alone; losses are counted by
// reason.
func TestMetrics(t *testing.T) {
	losses := &fakeLosses{counts: bpf.LossCounts{RingbufFull: 7, MissedEntry: 2, EntryMapFull: 1, ProgramBusy: 4, RepeatShed: 6}, malformed: 3}
	rig := newRig(t, on(Options{Losses: losses}))

	type call struct {
		sys  bpf.Syscall
		ret  int64
		dur  time.Duration
		size uint64
		n    int
	}
	calls := []call{
		{bpf.SyscallMlock2, 0, 3 * time.Microsecond, 8192, 3},       // 2.5e-6 < d <= 5e-6; 4Ki < s <= 16Ki
		{bpf.SyscallMlock2, -12, 20 * time.Millisecond, 1 << 30, 2}, // 1e-2 < d <= 2.5e-2; s = 1Gi (<= 1Gi)
		{bpf.SyscallMlock, 0, 500 * time.Nanosecond, 4096, 4},       // d <= 1e-6; s = 4Ki (<= 4Ki)
		{bpf.SyscallMlock, -1, 2 * time.Second, 32 << 30, 1},        // d > 1; s > 16Gi
		{bpf.SyscallMunlock, 0, time.Microsecond, 100, 2},           // d = 1e-6; s <= 4Ki
		{bpf.SyscallMlockall, 0, 40 * time.Microsecond, 0, 1},       // no size
		{bpf.SyscallMunlockall, 0, 10 * time.Microsecond, 0, 1},     // no size
		{bpf.SyscallMlockall, -11, 10 * time.Microsecond, 0, 1},     // EAGAIN
		{bpf.SyscallUnknown, 0, time.Microsecond, 4096, 5},          // refused: malformed
	}
	for _, c := range calls {
		for i := 0; i < c.n; i++ {
			ev := sampleEvent()
			// Vary what must not reach metrics.
			ev.PID, ev.TID, ev.Comm, ev.Addr = uint32(100+i), uint32(200+i), "c"+string(rune('a'+i)), uint64(i)<<12
			ev.Syscall, ev.Ret, ev.Duration, ev.Len = c.sys, c.ret, c.dur, c.size
			rig.exp.Handle(&ev)
		}
	}
	rig.exp.diag.exportFailed(5, errors.New("collector down"))

	ms := collect(t, rig)

	// memlock.calls
	m, ok := ms[semconv.MetricCalls]
	if !ok {
		t.Fatalf("no %s", semconv.MetricCalls)
	}
	if m.Unit != semconv.MetricCallsUnit || m.Description != semconv.MetricCallsDescription {
		t.Errorf("%s unit/description = %q/%q", m.Name, m.Unit, m.Description)
	}
	sum, ok := m.Data.(metricdata.Sum[int64])
	if !ok || !sum.IsMonotonic || sum.Temporality != metricdata.CumulativeTemporality {
		t.Fatalf("%s is %T (%+v), want a monotonic cumulative int64 sum", m.Name, m.Data, m.Data)
	}
	gotCalls := map[string]int64{}
	for _, dp := range sum.DataPoints {
		gotCalls[attrKey(dp.Attributes)] += dp.Value
	}
	wantCalls := map[string]int64{
		"mlock2": 3, "mlock2/ENOMEM": 2, "mlock": 4, "mlock/EPERM": 1,
		"munlock": 2, "mlockall": 1, "munlockall": 1, "mlockall/EAGAIN": 1,
	}
	if !mapsEqual(gotCalls, wantCalls) {
		t.Errorf("%s = %v, want %v", m.Name, gotCalls, wantCalls)
	}

	// memlock.call.duration
	durBounds := semconv.CallDurationBuckets()
	checkHistogram(t, ms, semconv.MetricCallDuration, semconv.MetricCallDurationUnit, durBounds, map[string]histWant{
		"mlock2":          {3, 3 * 3e-6, bucketOf(durBounds, 3e-6), 3},
		"mlock2/ENOMEM":   {2, 2 * 0.02, bucketOf(durBounds, 0.02), 2},
		"mlock":           {4, 4 * 5e-7, 0, 4},
		"mlock/EPERM":     {1, 2, len(durBounds), 1},
		"munlock":         {2, 2e-6, 0, 2},
		"mlockall":        {1, 4e-5, bucketOf(durBounds, 4e-5), 1},
		"munlockall":      {1, 1e-5, bucketOf(durBounds, 1e-5), 1},
		"mlockall/EAGAIN": {1, 1e-5, bucketOf(durBounds, 1e-5), 1},
	})
	if got := bucketOf(durBounds, 1e-5); durBounds[got] != 1e-5 {
		t.Fatalf("test assumes 1e-5 is a duration bound")
	}

	// memlock.call.size: only for calls with a range.
	sizeBounds := semconv.CallSizeBuckets()
	checkHistogram(t, ms, semconv.MetricCallSize, semconv.MetricCallSizeUnit, sizeBounds, map[string]histWant{
		"mlock2":        {3, 3 * 8192, 1, 3},
		"mlock2/ENOMEM": {2, 2 << 30, bucketOf(sizeBounds, 1<<30), 2},
		"mlock":         {4, 4 * 4096, 0, 4},
		"mlock/EPERM":   {1, 32 << 30, len(sizeBounds), 1},
		"munlock":       {2, 200, 0, 2},
	})

	// memlock.events.lost
	m, ok = ms[semconv.MetricEventsLost]
	if !ok {
		t.Fatalf("no %s", semconv.MetricEventsLost)
	}
	if m.Unit != semconv.MetricEventsLostUnit {
		t.Errorf("%s unit = %q", m.Name, m.Unit)
	}
	lost, ok := m.Data.(metricdata.Sum[int64])
	if !ok || !lost.IsMonotonic {
		t.Fatalf("%s is %T, want a monotonic int64 sum", m.Name, m.Data)
	}
	gotLost := map[string]int64{}
	for _, dp := range lost.DataPoints {
		r, _ := dp.Attributes.Value(semconv.ReasonKey)
		gotLost[r.AsString()] = dp.Value
	}
	wantLost := map[string]int64{
		semconv.ReasonRingbufFull: 7, semconv.ReasonMissedEntry: 2, semconv.ReasonEntryMapFull: 1, semconv.ReasonProgramBusy: 4, semconv.ReasonRepeatShed: 6,
		semconv.ReasonMalformed: 3 + 5, semconv.ReasonExportFailed: 5, semconv.ReasonQueueFull: 0,
	}
	if !mapsEqual(gotLost, wantLost) {
		t.Errorf("%s = %v, want %v", m.Name, gotLost, wantLost)
	}

	// Only the schema's low-cardinality attributes, on every metric.
	allowed := map[string][]attribute.Key{}
	for _, d := range semconv.Metrics {
		allowed[d.Name] = d.Attributes
	}
	for name, m := range ms {
		keys, ok := allowed[name]
		if !ok {
			t.Errorf("metric %s is not in semconv.Metrics", name)
			continue
		}
		for _, set := range attributeSets(m) {
			for _, kv := range set.ToSlice() {
				if !slices.Contains(keys, kv.Key) {
					t.Errorf("%s carries %s=%s", name, kv.Key, kv.Value.Emit())
				}
			}
		}
	}
}

func TestLostWithoutSourceAndOnError(t *testing.T) {
	t.Run("no source", func(t *testing.T) {
		rig := newRig(t, Options{})
		got := lostByReason(t, rig, false)
		want := map[string]int64{semconv.ReasonMalformed: 0, semconv.ReasonExportFailed: 0, semconv.ReasonQueueFull: 0}
		if !mapsEqual(got, want) {
			t.Errorf("lost = %v, want %v", got, want)
		}
	})
	t.Run("kernel counters unreadable", func(t *testing.T) {
		rig := newRig(t, Options{Losses: &fakeLosses{err: errors.New("map gone"), malformed: 4}})
		got := lostByReason(t, rig, true)
		want := map[string]int64{semconv.ReasonMalformed: 4, semconv.ReasonExportFailed: 0, semconv.ReasonQueueFull: 0}
		if !mapsEqual(got, want) {
			t.Errorf("lost = %v, want %v", got, want)
		}
	})
}

func lostByReason(t *testing.T, rig *testRig, wantErr bool) map[string]int64 {
	t.Helper()
	ms, err := collectErr(t, rig)
	if (err != nil) != wantErr {
		t.Errorf("collect: error %v, want error: %v", err, wantErr)
	}
	m, ok := ms[semconv.MetricEventsLost]
	if !ok {
		t.Fatalf("no %s", semconv.MetricEventsLost)
	}
	got := map[string]int64{}
	for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
		r, _ := dp.Attributes.Value(semconv.ReasonKey)
		got[r.AsString()] = dp.Value
	}
	return got
}

type histWant struct {
	count  uint64
	sum    float64
	bucket int    // index of the bucket that holds every value
	inBkt  uint64 // how many values it holds
}

func bucketOf(bounds []float64, v float64) int {
	i, _ := slices.BinarySearch(bounds, v)
	return i
}

func checkHistogram(t *testing.T, ms map[string]metricdata.Metrics, name, unit string, bounds []float64, want map[string]histWant) {
	t.Helper()
	m, ok := ms[name]
	if !ok {
		t.Errorf("no %s", name)
		return
	}
	if m.Unit != unit {
		t.Errorf("%s unit = %q, want %q", name, m.Unit, unit)
	}
	var dps []struct {
		attrs  attribute.Set
		count  uint64
		sum    float64
		bounds []float64
		counts []uint64
	}
	switch h := m.Data.(type) {
	case metricdata.Histogram[float64]:
		for _, dp := range h.DataPoints {
			dps = append(dps, struct {
				attrs  attribute.Set
				count  uint64
				sum    float64
				bounds []float64
				counts []uint64
			}{dp.Attributes, dp.Count, dp.Sum, dp.Bounds, dp.BucketCounts})
		}
	case metricdata.Histogram[int64]:
		for _, dp := range h.DataPoints {
			dps = append(dps, struct {
				attrs  attribute.Set
				count  uint64
				sum    float64
				bounds []float64
				counts []uint64
			}{dp.Attributes, dp.Count, float64(dp.Sum), dp.Bounds, dp.BucketCounts})
		}
	default:
		t.Errorf("%s is %T, want a histogram", name, m.Data)
		return
	}
	seen := map[string]bool{}
	for _, dp := range dps {
		key := attrKey(dp.attrs)
		seen[key] = true
		w, ok := want[key]
		if !ok {
			t.Errorf("%s has unexpected series %s", name, key)
			continue
		}
		if !slices.Equal(dp.bounds, bounds) {
			t.Errorf("%s{%s} bounds = %v, want %v", name, key, dp.bounds, bounds)
		}
		if dp.count != w.count {
			t.Errorf("%s{%s} count = %d, want %d", name, key, dp.count, w.count)
		}
		if diff := dp.sum - w.sum; diff > 1e-9*max(1, w.sum) || diff < -1e-9*max(1, w.sum) {
			t.Errorf("%s{%s} sum = %g, want %g", name, key, dp.sum, w.sum)
		}
		wantCounts := make([]uint64, len(bounds)+1)
		wantCounts[w.bucket] = w.inBkt
		if !slices.Equal(dp.counts, wantCounts) {
			t.Errorf("%s{%s} bucket counts = %v, want %v", name, key, dp.counts, wantCounts)
		}
	}
	for key := range want {
		if !seen[key] {
			t.Errorf("%s has no series %s", name, key)
		}
	}
}

func attributeSets(m metricdata.Metrics) []attribute.Set {
	var out []attribute.Set
	switch d := m.Data.(type) {
	case metricdata.Sum[int64]:
		for _, dp := range d.DataPoints {
			out = append(out, dp.Attributes)
		}
	case metricdata.Histogram[float64]:
		for _, dp := range d.DataPoints {
			out = append(out, dp.Attributes)
		}
	case metricdata.Histogram[int64]:
		for _, dp := range d.DataPoints {
			out = append(out, dp.Attributes)
		}
	}
	return out
}

func mapsEqual[K comparable, V comparable](a, b map[K]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

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

// TestHistogramsMatchSDK records the same calls into the SDK's own
// explicit-bucket histograms and into an Exporter, collects both three
// times, with each temporality preference, and wants the same
// memlock.call.duration and memlock.call.size but for timestamps.
func TestHistogramsMatchSDK(t *testing.T) {
	for _, pref := range []Temporality{TemporalityCumulative, TemporalityDelta, TemporalityLowMemory} {
		t.Run(fmt.Sprint(pref), func(t *testing.T) {
			sdkReader := sdkmetric.NewManualReader(sdkmetric.WithTemporalitySelector(pref.selector()))
			meter := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkReader)).Meter(semconv.ScopeName,
				metric.WithInstrumentationVersion("1.2.3"), metric.WithSchemaURL(semconv.SchemaURL))
			duration, err := meter.Float64Histogram(semconv.MetricCallDuration,
				metric.WithUnit(semconv.MetricCallDurationUnit),
				metric.WithDescription(semconv.MetricCallDurationDescription),
				metric.WithExplicitBucketBoundaries(semconv.CallDurationBuckets()...))
			if err != nil {
				t.Fatal(err)
			}
			size, err := meter.Int64Histogram(semconv.MetricCallSize,
				metric.WithUnit(semconv.MetricCallSizeUnit),
				metric.WithDescription(semconv.MetricCallSizeDescription),
				metric.WithExplicitBucketBoundaries(semconv.CallSizeBuckets()...))
			if err != nil {
				t.Fatal(err)
			}
			rig := newRig(t, Options{ServiceVersion: "1.2.3", Metrics: MetricsOptions{Temporality: pref}})
			for round := range 3 {
				for _, ev := range histogramEvents(round) {
					rig.exp.Handle(&ev)
					kvs := []attribute.KeyValue{semconv.Syscall(ev.Syscall.String())}
					if ev.Ret < 0 {
						kvs = append(kvs, semconv.ErrorTypeKey.String(ev.Errno().String()))
					}
					opt := metric.WithAttributes(kvs...)
					duration.Record(context.Background(), ev.Duration.Seconds(), opt)
					if ev.Syscall == bpf.SyscallMlock || ev.Syscall == bpf.SyscallMlock2 || ev.Syscall == bpf.SyscallMunlock {
						size.Record(context.Background(), clampInt64(ev.Len), opt)
					}
				}
				want := histogramsOf(t, sdkReader)
				got := histogramsOf(t, rig.reader)
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

// TestTemporalitySelector: the three preferences of the specification.
func TestTemporalitySelector(t *testing.T) {
	d, c := metricdata.DeltaTemporality, metricdata.CumulativeTemporality
	kinds := []sdkmetric.InstrumentKind{
		sdkmetric.InstrumentKindCounter, sdkmetric.InstrumentKindHistogram, sdkmetric.InstrumentKindObservableCounter,
		sdkmetric.InstrumentKindUpDownCounter, sdkmetric.InstrumentKindObservableUpDownCounter, sdkmetric.InstrumentKindObservableGauge,
	}
	for pref, want := range map[Temporality][]metricdata.Temporality{
		TemporalityCumulative: {c, c, c, c, c, c},
		TemporalityDelta:      {d, d, d, c, c, c},
		TemporalityLowMemory:  {d, d, c, c, c, c},
	} {
		sel := pref.selector()
		for i, k := range kinds {
			if got := sel(k); got != want[i] {
				t.Errorf("preference %d, %v: %v, want %v", pref, k, got, want[i])
			}
		}
	}
}

// TestCallStatsLargeErrno: errnos beyond the table get series of their own.
func TestCallStatsLargeErrno(t *testing.T) {
	var s callStats
	ev := sampleEvent()
	ev.Ret = -4000
	a, b := s.record(&ev), s.record(&ev)
	if a != b || a.calls != 2 || a.errName != "errno 4000" {
		t.Errorf("series %p %p, %d calls, error %q", a, b, a.calls, a.errName)
	}
	_ = math.MaxInt64
	_ = time.Second
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

var _ LossSource = (*bpf.Reader)(nil)

// callsBySeries collects and returns memlock.calls by "syscall/error.type",
// its temporality, every metric collected and the collection's error.
func callsBySeries(t *testing.T, rig *testRig) (map[string]int64, metricdata.Temporality, map[string]metricdata.Metrics, error) {
	t.Helper()
	ms, err := collectErr(t, rig)
	m, ok := ms[semconv.MetricCalls]
	if !ok {
		t.Fatalf("no %s", semconv.MetricCalls)
	}
	sum := m.Data.(metricdata.Sum[int64])
	got := map[string]int64{}
	for _, dp := range sum.DataPoints {
		if _, dup := got[attrKey(dp.Attributes)]; dup {
			t.Errorf("%s: series %s twice", m.Name, attrKey(dp.Attributes))
		}
		got[attrKey(dp.Attributes)] = dp.Value
	}
	return got, sum.Temporality, ms, err
}

// TestCallsCountLostCalls: memlock.calls counts, in each series, the calls
// handled and those whose records the kernel lost but counted by syscall
// and errno; the histograms only the calls handled.
func TestCallsCountLostCalls(t *testing.T) {
	enomem, eperm := bpf.Errno(12), bpf.Errno(1)
	losses := &fakeLosses{lost: []bpf.LostCalls{
		{Syscall: bpf.SyscallMlock2, Errno: 0, Calls: 5},                 // beside 3 handled
		{Syscall: bpf.SyscallMlock2, Errno: enomem, Calls: 1},            // beside 2 handled
		{Syscall: bpf.SyscallMunlock, Errno: 0, Calls: 4},                // lost only
		{Syscall: bpf.SyscallMlockall, Errno: eperm, Calls: 2},           // lost only, failed
		{Syscall: bpf.SyscallMlock, Errno: bpf.LostErrnoOther, Calls: 6}, // errno 159 or more
		{Syscall: bpf.SyscallUnknown, Errno: 0, Calls: 9},                // not a series: left out
	}}
	for name, temporality := range map[string]Temporality{"cumulative": TemporalityCumulative, "delta": TemporalityDelta} {
		t.Run(name, func(t *testing.T) {
			losses := &fakeLosses{lost: slices.Clone(losses.lost)}
			opts := Options{Losses: losses}
			opts.Metrics.Temporality = temporality
			rig := newRig(t, opts)
			handle := func(sys bpf.Syscall, ret int64, n int) {
				for range n {
					ev := sampleEvent()
					ev.Syscall, ev.Ret = sys, ret
					rig.exp.Handle(&ev)
				}
			}
			handle(bpf.SyscallMlock2, 0, 3)
			handle(bpf.SyscallMlock2, -12, 2)
			// An event of errno 200 is named; the lost calls of errno 159
			// and up are not, and stay apart from it.
			handle(bpf.SyscallMlock, -200, 1)

			got, _, ms, err := callsBySeries(t, rig)
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]int64{
				"mlock2": 3 + 5, "mlock2/ENOMEM": 2 + 1, "munlock": 4, "mlockall/EPERM": 2,
				"mlock/_OTHER": 6, "mlock/errno 200": 1,
			}
			if !mapsEqual(got, want) {
				t.Errorf("%s = %v, want %v", semconv.MetricCalls, got, want)
			}
			// The histograms count what was handled, only.
			checkHistogramCounts(t, ms[semconv.MetricCallDuration], map[string]uint64{
				"mlock2": 3, "mlock2/ENOMEM": 2, "mlock/errno 200": 1,
			})

			// The kernel loses more; then its counters cannot be read.
			losses.lost[0].Calls += 10
			handle(bpf.SyscallMunlock, 0, 1)
			got, gotTemporality, _, err := callsBySeries(t, rig)
			if err != nil {
				t.Fatal(err)
			}
			if temporality == TemporalityDelta {
				want = map[string]int64{"mlock2": 10, "munlock": 1, "mlock2/ENOMEM": 0, "mlockall/EPERM": 0, "mlock/_OTHER": 0, "mlock/errno 200": 0}
			} else {
				want["mlock2"] += 10
				want["munlock"]++
			}
			if !mapsEqual(got, want) || gotTemporality != temporality.selector()(sdkmetric.InstrumentKindObservableCounter) {
				t.Errorf("%s after more losses = %v (%v), want %v", semconv.MetricCalls, got, gotTemporality, want)
			}

			losses.lostErr = errors.New("map gone")
			handle(bpf.SyscallMlock2, 0, 1)
			got, _, _, err = callsBySeries(t, rig)
			if err == nil {
				t.Error("collection with unreadable lost calls: no error")
			}
			// The last counts read stand: no series goes down.
			if temporality == TemporalityDelta {
				want = map[string]int64{"mlock2": 1, "munlock": 0, "mlock2/ENOMEM": 0, "mlockall/EPERM": 0, "mlock/_OTHER": 0, "mlock/errno 200": 0}
			} else {
				want["mlock2"]++
			}
			if !mapsEqual(got, want) {
				t.Errorf("%s with unreadable lost calls = %v, want %v", semconv.MetricCalls, got, want)
			}
		})
	}
}

// checkHistogramCounts checks each series' count of a histogram.
func checkHistogramCounts(t *testing.T, m metricdata.Metrics, want map[string]uint64) {
	t.Helper()
	h, ok := m.Data.(metricdata.Histogram[float64])
	if !ok {
		t.Fatalf("%s is %T, want a float64 histogram", m.Name, m.Data)
	}
	got := map[string]uint64{}
	for _, dp := range h.DataPoints {
		got[attrKey(dp.Attributes)] = dp.Count
	}
	if !mapsEqual(got, want) {
		t.Errorf("%s counts = %v, want %v", m.Name, got, want)
	}
}

// TestUntimedCallsMetrics: calls seen at their exit only are counted and
// sized like any other, but have no duration to put in the histogram;
// with no timed call at all the duration histogram is left out.
func TestUntimedCallsMetrics(t *testing.T) {
	rig := newRig(t, on(Options{}))
	for i := 0; i < 3; i++ {
		ev := sampleEvent()
		ev.Duration, ev.Untimed = 0, true
		rig.exp.Handle(&ev)
	}
	ms := collect(t, rig)
	sum, ok := ms[semconv.MetricCalls].Data.(metricdata.Sum[int64])
	if !ok || len(sum.DataPoints) != 1 || sum.DataPoints[0].Value != 3 {
		t.Errorf("%s = %+v, want 3 calls in one series", semconv.MetricCalls, ms[semconv.MetricCalls].Data)
	}
	if m, ok := ms[semconv.MetricCallDuration]; ok {
		t.Errorf("%s reported for untimed calls: %+v", semconv.MetricCallDuration, m.Data)
	}
	sizeBounds := semconv.CallSizeBuckets()
	checkHistogram(t, ms, semconv.MetricCallSize, semconv.MetricCallSizeUnit, sizeBounds, map[string]histWant{
		"mlock2": {3, 3 * 8192, 1, 3},
	})

	// A timed call among them: only it is in the duration histogram.
	ev := sampleEvent()
	rig.exp.Handle(&ev)
	ms = collect(t, rig)
	durBounds := semconv.CallDurationBuckets()
	d := ev.Duration.Seconds()
	checkHistogram(t, ms, semconv.MetricCallDuration, semconv.MetricCallDurationUnit, durBounds, map[string]histWant{
		"mlock2": {1, d, bucketOf(durBounds, d), 1},
	})
}
