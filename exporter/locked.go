package exporter

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/memlock-exporter/memlock-exporter/exporter/internal/otlpwire"
	"github.com/memlock-exporter/memlock-exporter/procfs"
	"github.com/memlock-exporter/memlock-exporter/semconv"
)

// LockedMemory reads how much memory is locked, for memlock.system.locked,
// the process gauges and the limit warnings. Its methods have the
// signatures of procfs.ReadSystemLocked, procfs.ReadLocked and
// procfs.ReadMemlockLimit with the procfs root bound; a process whose
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

// lockedWatcher follows the processes seen calling the family and, every
// interval, reads how much memory the system and each of them hold locked.
// The gauges report its latest reading, so that a metric collection does
// no I/O; the memlock.limit_near warnings are emitted from its own
// goroutine, through the same sinks as the calls' records, whether or not
// metrics are exported.
type lockedWatcher struct {
	opts lockedOptions
	// warn emits a warning event; nil when no sink takes log records.
	warn func(*event)
	diag *diagnostics
	now  func() time.Time

	mu              sync.Mutex
	tracked         map[uint32]trackedProcess // the processes seen calling, by pid
	untracked       uint64                    // calls of processes not tracked: the most were
	untrackedLogged bool
	reading         lockedReading

	stop chan struct{}
	done chan struct{}
}

// lockedReading is one reading of the locked memory.
type lockedReading struct {
	system    uint64
	systemErr error
	procs     []processReading
}

// trackedProcess is a process seen calling.
type trackedProcess struct {
	name string
	// resource is the one of its calls, which its warnings share; nil
	// when log records go nowhere.
	resource *processResource
}

type processReading struct {
	pid         uint32
	name        string
	resource    *processResource
	locked      uint64
	limit       uint64
	limitKnown  bool // read, and not unlimited
	overWarning bool
}

func newLockedWatcher(opts lockedOptions, warn func(*event), diag *diagnostics, now func() time.Time) *lockedWatcher {
	return &lockedWatcher{opts: opts, warn: warn, diag: diag, now: now, tracked: make(map[uint32]trackedProcess)}
}

// tracking reports whether processes are followed at all: for the process
// gauges or for the warnings.
func (w *lockedWatcher) tracking() bool { return w.opts.perProcess || w.warn != nil }

// saw remembers that pid called the family, its calls sent under res,
// unless the most processes allowed are tracked already.
func (w *lockedWatcher) saw(pid uint32, exeName, comm string, res *processResource) {
	name := exeName
	if name == "" {
		name = comm
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	p := trackedProcess{name: name, resource: res}
	if cur, ok := w.tracked[pid]; ok {
		if cur != p { // the pid went to another program (or process)
			w.tracked[pid] = p
		}
		return
	}
	if len(w.tracked) >= w.opts.max {
		w.untracked++
		if !w.untrackedLogged {
			w.untrackedLogged = true
			w.diag.log.Warn("tracking the most processes allowed for memlock.process.* and memlock.limit_near; "+
				"calls of others are counted in memlock.process.untracked",
				"max", w.opts.max)
		}
		return
	}
	w.tracked[pid] = p
}

// start takes a reading now, so that the first metric export has one,
// then one every interval until shutdown.
func (w *lockedWatcher) start(interval time.Duration) {
	w.sample()
	w.stop, w.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(w.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				w.sample()
			case <-w.stop:
				return
			}
		}
	}()
}

func (w *lockedWatcher) shutdown(context.Context) error {
	if w.stop != nil {
		close(w.stop)
		<-w.done
	}
	return nil
}

// sample takes a reading, forgets the processes that exited, and warns of
// those holding more than the warning fraction of their limit.
func (w *lockedWatcher) sample() {
	src := w.opts.src
	var r lockedReading
	r.system, r.systemErr = src.SystemLocked()

	w.mu.Lock()
	procs := make([]processReading, 0, len(w.tracked))
	for pid, p := range w.tracked {
		procs = append(procs, processReading{pid: pid, name: p.name, resource: p.resource})
	}
	w.mu.Unlock()

	var gone []processReading
	for _, p := range procs {
		locked, err := src.ProcessLocked(p.pid)
		if err != nil {
			// Gone, a zombie (no VmLck), or unreadable: forget it; if it
			// calls again it is tracked again.
			if errors.Is(err, procfs.ErrNoProcess) || errors.Is(err, procfs.ErrFieldMissing) {
				gone = append(gone, p)
			}
			continue
		}
		p.locked = locked
		limit, unlimited, lerr := src.MemlockLimit(p.pid)
		if lerr == nil && !unlimited {
			p.limit, p.limitKnown = limit, true
			p.overWarning = float64(locked) > w.opts.warnFraction*float64(limit)
		}
		r.procs = append(r.procs, p)
	}

	w.mu.Lock()
	for _, p := range gone {
		// Unless a new process took the pid since the snapshot.
		if w.tracked[p.pid].resource == p.resource && w.tracked[p.pid].name == p.name {
			delete(w.tracked, p.pid)
		}
	}
	w.reading = r
	w.mu.Unlock()

	if w.warn == nil {
		return
	}
	for _, p := range r.procs {
		if p.overWarning {
			w.warn(limitNearEvent(p, w.now()))
		}
	}
}

// limitNearEvent is the memlock.limit_near warning of process p, at now.
func limitNearEvent(p processReading, now time.Time) *event {
	t := now.UnixNano()
	res := p.resource
	if res == nil {
		res = newProcessResource(p.pid, p.name, nil)
	}
	return &event{
		start:    t,
		end:      t,
		observed: t,
		severity: severityWarn,
		name:     semconv.EventLimitNear,
		body: []byte("pid " + strconv.FormatUint(uint64(p.pid), 10) + " (" + p.name + ") holds " +
			humanBytes(p.locked) + " locked of its " + humanBytes(p.limit) + " limit"),
		attrs:    otlpwire.AppendAttrs(nil, semconv.Locked(p.locked), semconv.Limit(p.limit)),
		resource: res,
	}
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

// registerInstruments creates the locked-memory gauges and
// memlock.process.untracked, observed from the latest reading.
func (w *lockedWatcher) registerInstruments(m metric.Meter) error {
	system, err := m.Int64ObservableGauge(semconv.MetricSystemLocked,
		metric.WithUnit(semconv.MetricSystemLockedUnit),
		metric.WithDescription(semconv.MetricSystemLockedDescription))
	if err != nil {
		return fmt.Errorf("create %s: %w", semconv.MetricSystemLocked, err)
	}
	untracked, err := m.Int64ObservableCounter(semconv.MetricProcessUntracked,
		metric.WithUnit(semconv.MetricProcessUntrackedUnit),
		metric.WithDescription(semconv.MetricProcessUntrackedDescription))
	if err != nil {
		return fmt.Errorf("create %s: %w", semconv.MetricProcessUntracked, err)
	}
	observed := []metric.Observable{system, untracked}
	var locked, limit metric.Int64ObservableGauge
	if w.opts.perProcess {
		locked, err = m.Int64ObservableGauge(semconv.MetricProcessLocked,
			metric.WithUnit(semconv.MetricProcessLockedUnit),
			metric.WithDescription(semconv.MetricProcessLockedDescription))
		if err != nil {
			return fmt.Errorf("create %s: %w", semconv.MetricProcessLocked, err)
		}
		limit, err = m.Int64ObservableGauge(semconv.MetricProcessLimit,
			metric.WithUnit(semconv.MetricProcessLimitUnit),
			metric.WithDescription(semconv.MetricProcessLimitDescription))
		if err != nil {
			return fmt.Errorf("create %s: %w", semconv.MetricProcessLimit, err)
		}
		observed = append(observed, locked, limit)
	}
	_, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		w.mu.Lock()
		r, n := w.reading, w.untracked
		w.mu.Unlock()
		if n > 0 {
			o.ObserveInt64(untracked, clampInt64(n))
		}
		var err error
		if r.systemErr != nil {
			err = fmt.Errorf("read %s: %w", semconv.MetricSystemLocked, r.systemErr)
		} else {
			o.ObserveInt64(system, clampInt64(r.system))
		}
		if !w.opts.perProcess {
			return err
		}
		for _, p := range r.procs {
			opt := metric.WithAttributeSet(attribute.NewSet(
				semconv.ProcessPIDKey.Int64(int64(p.pid)),
				semconv.ProcessExecutableNameKey.String(p.name)))
			o.ObserveInt64(locked, clampInt64(p.locked), opt)
			if p.limitKnown {
				o.ObserveInt64(limit, clampInt64(p.limit), opt)
			}
		}
		return err
	}, observed...)
	if err != nil {
		return fmt.Errorf("register locked-memory callback: %w", err)
	}
	return nil
}
