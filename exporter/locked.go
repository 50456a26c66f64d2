package exporter

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/log"
	"go.opentelemetry.io/otel/metric"

	"github.com/memlock-exporter/memlock-exporter/exporter/internal/otlpwire"
	"github.com/memlock-exporter/memlock-exporter/procfs"
	"github.com/memlock-exporter/memlock-exporter/semconv"
)

// LockedMemory reads how much memory is locked, on each metric collection,
// for memlock.system.locked, the process gauges and the limit warnings. Its
// methods have the signatures of procfs.ReadSystemLocked, procfs.ReadLocked
// and procfs.ReadMemlockLimit with the procfs root bound; a process whose
// ProcessLocked error wraps procfs.ErrNoProcess (exited) or
// procfs.ErrFieldMissing (a zombie, or a kernel thread) is forgotten.
type LockedMemory interface {
	// SystemLocked returns the bytes locked on the whole system.
	SystemLocked() (uint64, error)
	// ProcessLocked returns the bytes process pid holds locked.
	ProcessLocked(pid uint32) (uint64, error)
	// MemlockLimit returns the soft RLIMIT_MEMLOCK of process pid in
	// bytes, or unlimited.
	MemlockLimit(pid uint32) (soft uint64, unlimited bool, err error)
}

// Defaults of the locked-memory options.
const (
	DefaultProcessMetricsMax = 1000
	DefaultLimitWarnFraction = 0.9
)

// lockedOptions are the resolved locked-memory options of an Exporter.
type lockedOptions struct {
	src          LockedMemory // nil: no locked-memory gauges or warnings
	perProcess   bool         // memlock.process.locked and memlock.process.limit
	max          int          // most processes tracked
	warnFraction float64      // memlock.limit_near above this fraction of the limit
}

func (o *Options) lockedOptions() (lockedOptions, error) {
	lo := lockedOptions{
		src:          o.Locked,
		perProcess:   o.ProcessMetrics && o.Locked != nil,
		max:          o.ProcessMetricsMax,
		warnFraction: o.LimitWarnFraction,
	}
	if lo.max == 0 {
		lo.max = DefaultProcessMetricsMax
	}
	if lo.warnFraction == 0 {
		lo.warnFraction = DefaultLimitWarnFraction
	}
	if lo.max < 0 {
		return lo, fmt.Errorf("create exporter: process metrics maximum %d: must be positive", lo.max)
	}
	if !(lo.warnFraction > 0 && lo.warnFraction <= 1) {
		return lo, fmt.Errorf("create exporter: limit warning fraction %g: must be above 0 and at most 1", lo.warnFraction)
	}
	return lo, nil
}

// lockedInstruments are the locked-memory gauges and the count of events
// whose process was not tracked.
type lockedInstruments struct {
	system    metric.Int64ObservableGauge
	locked    metric.Int64ObservableGauge // nil unless per-process
	limit     metric.Int64ObservableGauge // nil unless per-process
	untracked metric.Int64Counter
}

// newLockedInstruments creates the locked-memory instruments: none without
// a LockedMemory.
func (e *Exporter) newLockedInstruments(m metric.Meter) error {
	if e.lockedOpts.src == nil {
		return nil
	}
	li := &e.locked
	var err error
	li.system, err = m.Int64ObservableGauge(semconv.MetricSystemLocked,
		metric.WithUnit(semconv.MetricSystemLockedUnit),
		metric.WithDescription(semconv.MetricSystemLockedDescription))
	if err != nil {
		return fmt.Errorf("create %s: %w", semconv.MetricSystemLocked, err)
	}
	observed := []metric.Observable{li.system}
	if e.lockedOpts.perProcess {
		li.locked, err = m.Int64ObservableGauge(semconv.MetricProcessLocked,
			metric.WithUnit(semconv.MetricProcessLockedUnit),
			metric.WithDescription(semconv.MetricProcessLockedDescription))
		if err != nil {
			return fmt.Errorf("create %s: %w", semconv.MetricProcessLocked, err)
		}
		li.limit, err = m.Int64ObservableGauge(semconv.MetricProcessLimit,
			metric.WithUnit(semconv.MetricProcessLimitUnit),
			metric.WithDescription(semconv.MetricProcessLimitDescription))
		if err != nil {
			return fmt.Errorf("create %s: %w", semconv.MetricProcessLimit, err)
		}
		observed = append(observed, li.locked, li.limit)
	}
	li.untracked, err = m.Int64Counter(semconv.MetricProcessUntracked,
		metric.WithUnit(semconv.MetricProcessUntrackedUnit),
		metric.WithDescription(semconv.MetricProcessUntrackedDescription))
	if err != nil {
		return fmt.Errorf("create %s: %w", semconv.MetricProcessUntracked, err)
	}
	if _, err := m.RegisterCallback(e.observeLocked, observed...); err != nil {
		return fmt.Errorf("register locked-memory callback: %w", err)
	}
	return nil
}

// trackedProcess is one process seen calling the family.
type trackedProcess struct {
	pid  uint32
	name string // process.executable.name, else the thread's comm
}

// track remembers that pid called the family, for the process gauges and
// the limit warnings, unless the most processes allowed are tracked
// already. e.mu is held.
func (e *Exporter) track(pid uint32, exeName, comm string) {
	name := exeName
	if name == "" {
		name = comm
	}
	if cur, ok := e.tracked[pid]; ok {
		if cur != name { // the pid went to another program
			e.tracked[pid] = name
		}
		return
	}
	if len(e.tracked) >= e.lockedOpts.max {
		e.locked.untracked.Add(e.ctx, 1)
		if !e.untrackedLogged {
			e.untrackedLogged = true
			e.diag.log.Warn("tracking the most processes allowed for memlock.process.* and memlock.limit_near; "+
				"calls of others are counted in memlock.process.untracked",
				"max", e.lockedOpts.max)
		}
		return
	}
	e.tracked[pid] = name
}

// observeLocked reports memlock.system.locked and, for each tracked
// process still alive, memlock.process.locked and memlock.process.limit
// (when per-process metrics are on), and emits memlock.limit_near for the
// processes above the warning fraction of their limit. Processes that
// exited are forgotten. The LockedMemory is read without e.mu held.
func (e *Exporter) observeLocked(_ context.Context, o metric.Observer) error {
	src := e.lockedOpts.src
	var err error
	if n, serr := src.SystemLocked(); serr != nil {
		err = serr
	} else {
		o.ObserveInt64(e.locked.system, clampInt64(n))
	}
	if !e.trackOn {
		return err
	}

	e.mu.Lock()
	procs := make([]trackedProcess, 0, len(e.tracked))
	for pid, name := range e.tracked {
		procs = append(procs, trackedProcess{pid, name})
	}
	e.mu.Unlock()

	var gone []trackedProcess
	for _, p := range procs {
		locked, lerr := src.ProcessLocked(p.pid)
		if lerr != nil {
			// Gone, a zombie (no VmLck), or unreadable: forget it; if it
			// calls again it is tracked again.
			if errors.Is(lerr, procfs.ErrNoProcess) || errors.Is(lerr, procfs.ErrFieldMissing) {
				gone = append(gone, p)
			}
			continue
		}
		limit, unlimited, limErr := src.MemlockLimit(p.pid)
		haveLimit := limErr == nil && !unlimited
		if e.lockedOpts.perProcess {
			opt := metric.WithAttributeSet(attribute.NewSet(
				semconv.ProcessPIDKey.Int64(int64(p.pid)),
				semconv.ProcessExecutableNameKey.String(p.name)))
			o.ObserveInt64(e.locked.locked, clampInt64(locked), opt)
			if haveLimit {
				o.ObserveInt64(e.locked.limit, clampInt64(limit), opt)
			}
		}
		if haveLimit && float64(locked) > e.lockedOpts.warnFraction*float64(limit) {
			e.warnLimitNear(p, locked, limit)
		}
	}

	if len(gone) > 0 {
		e.mu.Lock()
		for _, p := range gone {
			// Unless a new process took the pid since the snapshot.
			if e.tracked[p.pid] == p.name {
				delete(e.tracked, p.pid)
			}
		}
		e.mu.Unlock()
	}
	return err
}

// warnLimitNear emits the memlock.limit_near record of a process holding
// locked bytes of its limit.
func (e *Exporter) warnLimitNear(p trackedProcess, locked, limit uint64) {
	if !e.logsOn {
		return
	}
	now := e.now()
	if d := e.direct; d != nil && d.logs != nil {
		d.logs.appendLog(&otlpwire.LogRecord{
			Time:         now.UnixNano(),
			ObservedTime: now.UnixNano(),
			Severity:     severityWarn,
			EventName:    semconv.EventLimitNear,
			Body:         limitNearBody(p, locked, limit),
			Attributes:   limitNearAttrs(p, locked, limit),
		})
		return
	}
	var r log.Record
	r.SetEventName(semconv.EventLimitNear)
	r.SetTimestamp(now)
	r.SetObservedTimestamp(now)
	r.SetSeverity(log.SeverityWarn)
	r.SetBody(attribute.StringValue(limitNearBody(p, locked, limit)))
	r.AddAttributes(limitNearAttrs(p, locked, limit)...)
	e.logger.Emit(e.ctx, r)
}

func limitNearAttrs(p trackedProcess, locked, limit uint64) []attribute.KeyValue {
	return []attribute.KeyValue{
		semconv.ProcessPIDKey.Int64(int64(p.pid)),
		semconv.ProcessExecutableNameKey.String(p.name),
		semconv.Locked(locked),
		semconv.Limit(limit),
	}
}

// limitNearBody is "pid 123 (name) holds 900 KiB locked of its 1 MiB limit".
func limitNearBody(p trackedProcess, locked, limit uint64) string {
	return "pid " + strconv.FormatUint(uint64(p.pid), 10) + " (" + p.name + ") holds " +
		humanBytes(locked) + " locked of its " + humanBytes(limit) + " limit"
}

// humanBytes spells n with the largest binary unit it reaches: "900 KiB",
// "1 MiB", "1.5 GiB", "512 B".
func humanBytes(n uint64) string {
	for _, u := range [...]struct {
		size uint64
		name string
	}{{1 << 30, "GiB"}, {1 << 20, "MiB"}, {1 << 10, "KiB"}} {
		if n >= u.size {
			if n%u.size == 0 {
				return strconv.FormatUint(n/u.size, 10) + " " + u.name
			}
			return strconv.FormatFloat(float64(n)/float64(u.size), 'f', 1, 64) + " " + u.name
		}
	}
	return strconv.FormatUint(n, 10) + " B"
}
