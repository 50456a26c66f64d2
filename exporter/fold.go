package exporter

import (
	"cmp"
	"slices"
	"strconv"
	"time"

	"github.com/memlock-exporter/memlock-exporter/bpf"
	"github.com/memlock-exporter/memlock-exporter/exporter/internal/otlpwire"
	"github.com/memlock-exporter/memlock-exporter/semconv"
)

// Folding keeps a flood from costing other processes their records. A
// thread that repeats one call (same process, syscall, arguments and
// result) more than FoldAfter times within FoldWindow has its further
// repeats in that window folded into one record and one span, which carry
// how many calls they stand for (memlock.repeat.count) and when the first
// and the last of them were made. Every call is still counted in the
// metrics. Measured on a 2-CPU machine, a thread flooding mlock2 flat out
// makes about a million calls a second; one record each would fill the
// export queues within milliseconds and drop everyone's records, while the
// reader keeps up with the flood when all it does per call is count it
// and fold it.
//
// Only consecutive calls of one thread fold: a program that locks and
// unlocks in turn, or locks different ranges, never folds, and the first
// FoldAfter calls of every window are exported one by one, so a burst
// keeps its detail.

// FoldOptions configure folding. A zero Window turns it off.
type FoldOptions struct {
	// Window is how long a run of repeats is followed before what was
	// folded is exported and the count starts again.
	Window time.Duration
	// After is how many calls of a run are exported one by one in each
	// window before the rest fold; at least 1.
	After int
}

// Defaults of MEMLOCK_EXPORTER_FOLD_WINDOW and MEMLOCK_EXPORTER_FOLD_AFTER.
const (
	DefaultFoldWindow = time.Second
	DefaultFoldAfter  = 1000
)

// maxFoldRuns bounds the threads followed; when it is reached, what they
// folded is exported and they are forgotten.
const maxFoldRuns = 4096

// runKey is what makes two calls the same call.
type runKey struct {
	pid, tid         uint32
	startNs          uint64
	syscall          bpf.Syscall
	addr, len, flags uint64
	ret              int64
}

func runKeyOf(ev *bpf.Event) runKey {
	return runKey{
		pid: ev.PID, tid: ev.TID, startNs: ev.StartNs, syscall: ev.Syscall,
		addr: ev.Addr, len: ev.Len, flags: ev.Flags, ret: ev.Ret,
	}
}

// run is one thread's latest call and what it has folded in the current
// window.
type run struct {
	key         runKey
	windowStart time.Time // the entry of the window's first call
	inWindow    int       // calls of the window exported one by one

	// The fold: calls held, the first of them (whose record the fold's
	// is), its errno's name, and the last one's entry and exit.
	folded    int
	first     bpf.Event
	errName   string
	lastStart time.Time
	lastEnd   time.Time
}

// fold is the folded calls of a run, taken out to be exported.
type fold struct {
	first     bpf.Event
	errName   string
	count     int
	lastStart time.Time
	lastEnd   time.Time
}

// folder follows each thread's run of repeated calls. It is not safe for
// concurrent use: the Exporter's mutex guards it.
type folder struct {
	opts FoldOptions
	runs map[uint32]*run // by thread id
}

func newFolder(opts FoldOptions) *folder {
	if opts.Window <= 0 {
		return nil
	}
	opts.After = max(1, opts.After)
	return &folder{opts: opts, runs: make(map[uint32]*run)}
}

// observe follows ev, whose errno is named errName, and says whether it is
// folded (held: its record is not made now). Folds that ev ends are
// passed to out, oldest first, before observe returns: their calls came
// before ev.
func (f *folder) observe(ev *bpf.Event, errName string, out func(*fold)) (held bool) {
	k := runKeyOf(ev)
	r := f.runs[ev.TID]
	if r == nil {
		if len(f.runs) >= maxFoldRuns {
			f.flushAll(out)
		}
		r = &run{}
		f.runs[ev.TID] = r
	} else if r.key == k && ev.Time.Sub(r.windowStart) < f.opts.Window {
		if r.inWindow < f.opts.After {
			r.inWindow++
			return false
		}
		if r.folded == 0 {
			r.first, r.errName = *ev, errName
		}
		r.folded++
		r.lastStart, r.lastEnd = ev.Time, ev.Time.Add(ev.Duration)
		return true
	}
	// Another call, or a new window: what was folded is complete.
	f.take(r, out)
	r.key, r.windowStart, r.inWindow = k, ev.Time, 1
	return false
}

// take passes r's fold, if any, to out.
func (f *folder) take(r *run, out func(*fold)) {
	if r.folded == 0 {
		return
	}
	fd := fold{first: r.first, errName: r.errName, count: r.folded, lastStart: r.lastStart, lastEnd: r.lastEnd}
	r.folded, r.first = 0, bpf.Event{}
	out(&fd)
}

// flushDue passes out the folds whose window has ended by now, so that a
// flood that stops is told within a window or two; the threads that have
// been quiet that long are forgotten.
func (f *folder) flushDue(now time.Time, out func(*fold)) {
	f.flush(func(r *run) bool { return now.Sub(r.windowStart) >= f.opts.Window }, out)
}

// flushAll passes out every fold and forgets every thread.
func (f *folder) flushAll(out func(*fold)) {
	f.flush(func(*run) bool { return true }, out)
}

// flush forgets the runs done says are over, passing out their folds in
// the order of their first calls.
func (f *folder) flush(done func(*run) bool, out func(*fold)) {
	var ended []*run
	for tid, r := range f.runs {
		if !done(r) {
			continue
		}
		if r.folded > 0 {
			ended = append(ended, r)
		}
		delete(f.runs, tid)
	}
	slices.SortFunc(ended, func(a, b *run) int {
		return cmp.Or(a.first.Time.Compare(b.first.Time), cmp.Compare(a.key.tid, b.key.tid))
	})
	for _, r := range ended {
		f.take(r, out)
	}
}

// appendRepeatAttrs appends the attributes of a fold's record.
func appendRepeatAttrs(dst []byte, fd *fold) []byte {
	dst = otlpwire.AppendIntAttr(dst, string(semconv.RepeatCountKey), int64(fd.count))
	dst = otlpwire.AppendStringAttr(dst, string(semconv.RepeatFirstTimeKey), fd.first.Time.UTC().Format(time.RFC3339Nano))
	dst = otlpwire.AppendStringAttr(dst, string(semconv.RepeatLastTimeKey), fd.lastStart.UTC().Format(time.RFC3339Nano))
	return dst
}

// appendRepeatBody appends to a fold's body, after the first call's
// strace-like line, how many calls it stands for.
func appendRepeatBody(dst []byte, fd *fold) []byte {
	dst = append(dst, " (×"...)
	dst = strconv.AppendInt(dst, int64(fd.count), 10)
	dst = append(dst, " in "...)
	dst = append(dst, fd.lastEnd.Sub(fd.first.Time).Round(time.Microsecond).String()...)
	return append(dst, ')')
}
