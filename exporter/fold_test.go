package exporter

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/memlock-exporter/memlock-exporter/bpf"
	"github.com/memlock-exporter/memlock-exporter/semconv"
)

// call is one event of a fold test: the sample call, changed.
type call struct {
	tid     uint32
	syscall bpf.Syscall
	ret     int64
	at      time.Duration // after the first call
}

func (c call) event() bpf.Event {
	ev := sampleEvent()
	ev.TID = c.tid
	if ev.TID == 0 {
		ev.TID = ev.PID
	}
	if c.syscall != 0 {
		ev.Syscall = c.syscall
	}
	ev.Ret = c.ret
	ev.Time = ev.Time.Add(c.at)
	return ev
}

// flood is n identical calls of thread tid, 1 µs apart from start.
func flood(tid uint32, n int, start time.Duration) []call {
	cs := make([]call, n)
	for i := range cs {
		cs[i] = call{tid: tid, ret: -22, at: start + time.Duration(i)*time.Microsecond}
	}
	return cs
}

// TestFolding: a thread's run of identical calls beyond After in a window
// becomes one record and one span that say how many calls they stand for
// and when the first and the last were made; other calls, other threads'
// calls and calls in a new window are exported one by one; the metrics
// count every call.
func TestFolding(t *testing.T) {
	const after = 3
	type fold struct {
		tid         uint32
		count       int
		first, last time.Duration
	}
	tests := []struct {
		name   string
		window time.Duration
		calls  []call
		// want is the records in order: a plain record is "tid", a fold
		// is "tid×count".
		want  []string
		folds []fold
	}{
		{
			name:   "flood folds after the first calls",
			window: time.Hour,
			calls:  flood(1, 10, 0),
			want:   []string{"1", "1", "1", "1×7"},
			folds:  []fold{{1, 7, 3 * time.Microsecond, 9 * time.Microsecond}},
		},
		{
			name:   "off",
			window: 0,
			calls:  flood(1, 5, 0),
			want:   []string{"1", "1", "1", "1", "1"},
		},
		{
			name:   "alternating calls never fold",
			window: time.Hour,
			calls: func() (cs []call) {
				for i := range 8 {
					cs = append(cs, call{tid: 1, syscall: bpf.SyscallMlock2 + bpf.Syscall(i%2), at: time.Duration(i) * time.Microsecond})
				}
				return cs
			}(),
			want: []string{"1", "1", "1", "1", "1", "1", "1", "1"},
		},
		{
			name:   "another call ends the fold, which comes first",
			window: time.Hour,
			calls:  append(flood(1, 5, 0), call{tid: 1, ret: 0, at: time.Millisecond}),
			want:   []string{"1", "1", "1", "1×2", "1"},
			folds:  []fold{{1, 2, 3 * time.Microsecond, 4 * time.Microsecond}},
		},
		{
			name:   "a new window starts the count again",
			window: time.Millisecond,
			calls:  append(flood(1, 5, 0), flood(1, 5, 2*time.Millisecond)...),
			want:   []string{"1", "1", "1", "1×2", "1", "1", "1", "1×2"},
			folds: []fold{
				{1, 2, 3 * time.Microsecond, 4 * time.Microsecond},
				{1, 2, 2*time.Millisecond + 3*time.Microsecond, 2*time.Millisecond + 4*time.Microsecond},
			},
		},
		{
			name:   "threads fold apart",
			window: time.Hour,
			calls: func() (cs []call) {
				a, b := flood(1, 6, 0), flood(2, 5, 0)
				for i := range a {
					cs = append(cs, a[i])
					if i < len(b) {
						cs = append(cs, b[i])
					}
				}
				return cs
			}(),
			want:  []string{"1", "2", "1", "2", "1", "2", "1×3", "2×2"},
			folds: []fold{{1, 3, 3 * time.Microsecond, 5 * time.Microsecond}, {2, 2, 3 * time.Microsecond, 4 * time.Microsecond}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rig := newRig(t, on(Options{Fold: FoldOptions{Window: tt.window, After: after}}))
			for _, c := range tt.calls {
				ev := c.event()
				rig.exp.Handle(&ev)
			}
			if f := rig.exp.fold; f != nil {
				rig.exp.mu.Lock()
				f.flushAll(rig.exp.emitFold)
				rig.exp.mu.Unlock()
			}
			start := sampleEvent().Time

			records := rig.records(t)
			var got []string
			var folds []fold
			for _, r := range records {
				a := attrsOf(t, r.record.GetAttributes())
				tid := a[semconv.ThreadIDKey].AsInt64()
				n, folded := a[semconv.RepeatCountKey]
				if !folded {
					got = append(got, fmt.Sprint(tid))
					continue
				}
				got = append(got, fmt.Sprintf("%d×%d", tid, n.AsInt64()))
				first, _ := time.Parse(time.RFC3339Nano, a[semconv.RepeatFirstTimeKey].AsString())
				last, _ := time.Parse(time.RFC3339Nano, a[semconv.RepeatLastTimeKey].AsString())
				folds = append(folds, fold{uint32(tid), int(n.AsInt64()), first.Sub(start), last.Sub(start)})
				if ts := time.Unix(0, int64(r.record.GetTimeUnixNano())); !ts.Equal(first) {
					t.Errorf("fold record's time %v, want its first call's %v", ts, first)
				}
				if body := r.record.GetBody().GetStringValue(); !strings.Contains(body, fmt.Sprintf("(×%d in ", n.AsInt64())) {
					t.Errorf("fold record's body %q does not say how many calls it stands for", body)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("records %v, want %v", got, tt.want)
			}
			if fmt.Sprint(folds) != fmt.Sprint(tt.folds) {
				t.Errorf("folds %v, want %v", folds, tt.folds)
			}

			// One span per record, a fold's from its first call's entry to
			// its last call's exit.
			spans := rig.sentSpans(t)
			if len(spans) != len(records) {
				t.Fatalf("%d spans for %d records", len(spans), len(records))
			}
			fi := 0
			for _, s := range spans {
				a := attrsOf(t, s.span.GetAttributes())
				if _, folded := a[semconv.RepeatCountKey]; !folded {
					continue
				}
				f := tt.folds[fi]
				fi++
				wantStart := start.Add(f.first)
				wantEnd := start.Add(f.last + sampleEvent().Duration)
				if got := time.Unix(0, int64(s.span.GetStartTimeUnixNano())); !got.Equal(wantStart) {
					t.Errorf("fold span starts %v, want %v", got, wantStart)
				}
				if got := time.Unix(0, int64(s.span.GetEndTimeUnixNano())); !got.Equal(wantEnd) {
					t.Errorf("fold span ends %v, want %v", got, wantEnd)
				}
			}

			// Metrics count every call.
			sum := collect(t, rig)[semconv.MetricCalls].Data.(metricdata.Sum[int64])
			var calls int64
			for _, dp := range sum.DataPoints {
				calls += dp.Value
			}
			if calls != int64(len(tt.calls)) {
				t.Errorf("memlock.calls = %d, want %d", calls, len(tt.calls))
			}
		})
	}
}

// TestFoldFlushedWhenDue: a flood that stops is told within its window,
// without another call to end it, and at shutdown at the latest.
func TestFoldFlushedWhenDue(t *testing.T) {
	f := newFolder(FoldOptions{Window: time.Second, After: 1})
	var out []int
	collectFold := func(fd *fold) { out = append(out, fd.count) }
	for _, c := range flood(7, 4, 0) {
		ev := c.event()
		f.observe(&ev, "EINVAL", collectFold)
	}
	start := sampleEvent().Time
	f.flushDue(start.Add(500*time.Millisecond), collectFold)
	if len(out) != 0 {
		t.Fatalf("folds %v told before the window ended", out)
	}
	f.flushDue(start.Add(time.Second), collectFold)
	if fmt.Sprint(out) != "[3]" {
		t.Fatalf("folds %v once the window ended, want [3]", out)
	}
	if len(f.runs) != 0 {
		t.Errorf("%d runs still followed after their window", len(f.runs))
	}
	for _, c := range flood(8, 3, 0) {
		ev := c.event()
		f.observe(&ev, "EINVAL", collectFold)
	}
	f.flushAll(collectFold)
	if fmt.Sprint(out) != "[3 2]" {
		t.Errorf("folds %v after flushAll, want [3 2]", out)
	}
}

// TestFoldRunsBounded: the threads followed are bounded; reaching the
// bound tells what they folded rather than losing it.
func TestFoldRunsBounded(t *testing.T) {
	f := newFolder(FoldOptions{Window: time.Hour, After: 1})
	var folded int
	collectFold := func(fd *fold) { folded += fd.count }
	for tid := range uint32(maxFoldRuns + 10) {
		for _, c := range flood(tid+1, 2, 0) {
			ev := c.event()
			f.observe(&ev, "EINVAL", collectFold)
		}
	}
	if len(f.runs) > maxFoldRuns {
		t.Errorf("%d runs followed, bound %d", len(f.runs), maxFoldRuns)
	}
	f.flushAll(collectFold)
	if folded != maxFoldRuns+10 {
		t.Errorf("%d calls folded and told, want %d (one per thread)", folded, maxFoldRuns+10)
	}
}
