package exporter

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/memlock-exporter/memlock-exporter/bpf"
	"github.com/memlock-exporter/memlock-exporter/semconv"
)

// instruments are the metric instruments of the schema.
type instruments struct {
	calls    metric.Int64ObservableCounter
	duration metric.Float64Histogram
	size     metric.Int64Histogram
	lost     metric.Int64ObservableCounter
}

// newInstruments creates the instruments. With ownHistograms the
// Exporter aggregates memlock.call.duration and memlock.call.size itself
// (a HistogramProducer reports them) and duration and size stay nil.
func newInstruments(m metric.Meter, observeCalls, observeLost metric.Int64Callback, ownHistograms bool) (*instruments, error) {
	var (
		in  instruments
		err error
	)
	// Observed rather than added to: Handle counts each call in its
	// callAttrs (it holds the lock anyway), which costs next to nothing,
	// where a synchronous counter's Add cost ~0.2 µs per call.
	in.calls, err = m.Int64ObservableCounter(semconv.MetricCalls,
		metric.WithUnit(semconv.MetricCallsUnit),
		metric.WithDescription(semconv.MetricCallsDescription),
		metric.WithInt64Callback(observeCalls))
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", semconv.MetricCalls, err)
	}
	in.lost, err = m.Int64ObservableCounter(semconv.MetricEventsLost,
		metric.WithUnit(semconv.MetricEventsLostUnit),
		metric.WithDescription(semconv.MetricEventsLostDescription),
		metric.WithInt64Callback(observeLost))
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", semconv.MetricEventsLost, err)
	}
	if ownHistograms {
		return &in, nil
	}
	in.duration, err = m.Float64Histogram(semconv.MetricCallDuration,
		metric.WithUnit(semconv.MetricCallDurationUnit),
		metric.WithDescription(semconv.MetricCallDurationDescription),
		metric.WithExplicitBucketBoundaries(semconv.CallDurationBuckets()...))
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", semconv.MetricCallDuration, err)
	}
	in.size, err = m.Int64Histogram(semconv.MetricCallSize,
		metric.WithUnit(semconv.MetricCallSizeUnit),
		metric.WithDescription(semconv.MetricCallSizeDescription),
		metric.WithExplicitBucketBoundaries(semconv.CallSizeBuckets()...))
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", semconv.MetricCallSize, err)
	}
	return &in, nil
}

// callAttrs are the metric attributes of one (syscall, errno) pair, built
// once and reused, so recording a call allocates nothing.
type callAttrs struct {
	errName string // errno name, "" on success
	set     attribute.Set
	observe []metric.ObserveOption
	// Guarded by Exporter.mu: calls so far, for memlock.calls, and, with
	// a HistogramProducer, the call's histogram series.
	calls    uint64
	duration histogram[float64]
	size     histogram[int64]
	record   []metric.RecordOption
}

type callKey struct {
	syscall bpf.Syscall
	errno   bpf.Errno
}

// callAttrCache holds the callAttrs seen so far. Errno values below
// smallErrno are looked up in a table, others in a map. Both stay small:
// Linux defines fewer than 140 errnos and a syscall returns at most 4095.
// Not safe for concurrent use.
type callAttrCache struct {
	small [numSyscalls][smallErrno]*callAttrs
	large map[callKey]*callAttrs
}

const smallErrno = 160

func (c *callAttrCache) get(s bpf.Syscall, errno bpf.Errno) *callAttrs {
	if errno < smallErrno {
		if ca := c.small[s][errno]; ca != nil {
			return ca
		}
		ca := newCallAttrs(s, errno)
		c.small[s][errno] = ca
		return ca
	}
	k := callKey{s, errno}
	if ca, ok := c.large[k]; ok {
		return ca
	}
	if c.large == nil {
		c.large = make(map[callKey]*callAttrs)
	}
	ca := newCallAttrs(s, errno)
	c.large[k] = ca
	return ca
}

func newCallAttrs(s bpf.Syscall, errno bpf.Errno) *callAttrs {
	kvs := []attribute.KeyValue{syscalls[s].attr}
	ca := &callAttrs{}
	if errno != 0 {
		ca.errName = errno.String()
		kvs = append(kvs, semconv.ErrorTypeKey.String(ca.errName))
	}
	ca.set = attribute.NewSet(kvs...)
	opt := metric.WithAttributeSet(ca.set)
	ca.observe = []metric.ObserveOption{opt}
	ca.record = []metric.RecordOption{opt}
	return ca
}

// each calls fn for every callAttrs made so far.
func (c *callAttrCache) each(fn func(*callAttrs)) {
	for s := range c.small {
		for _, ca := range c.small[s] {
			if ca != nil {
				fn(ca)
			}
		}
	}
	for _, ca := range c.large {
		fn(ca)
	}
}

// observeCalls reports memlock.calls: the calls Handle counted, per
// syscall and error.type.
func (e *Exporter) observeCalls(_ context.Context, o metric.Int64Observer) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.attrs.each(func(ca *callAttrs) {
		if ca.calls > 0 {
			o.Observe(clampInt64(ca.calls), ca.observe...)
		}
	})
	return nil
}

// lostReasons are the values of memlock.reason, in the order of lostOpts.
const (
	lostRingbufFull = iota
	lostMissedEntry
	lostEntryMapFull
	lostMalformed
	lostExportFailed
	numLostReasons
)

var lostOpts = func() (t [numLostReasons][]metric.ObserveOption) {
	for i, reason := range [numLostReasons]string{
		lostRingbufFull:  semconv.ReasonRingbufFull,
		lostMissedEntry:  semconv.ReasonMissedEntry,
		lostEntryMapFull: semconv.ReasonEntryMapFull,
		lostMalformed:    semconv.ReasonMalformed,
		lostExportFailed: semconv.ReasonExportFailed,
	} {
		t[i] = []metric.ObserveOption{metric.WithAttributeSet(attribute.NewSet(semconv.Reason(reason)))}
	}
	return t
}()

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
		}
		malformed += e.losses.Malformed()
	}
	o.Observe(clampInt64(malformed), lostOpts[lostMalformed]...)
	o.Observe(clampInt64(e.ExportFailures()), lostOpts[lostExportFailed]...)
	return err
}
