//go:build linux

package e2e

import (
	"fmt"
	"math"
	"reflect"
	"sort"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/memlock-exporter/memlock-exporter/bpf"
	"github.com/memlock-exporter/memlock-exporter/internal/testutil"
)

// tracesSpan is one span as the collector stored it.
type tracesSpan struct {
	res   pcommon.Resource
	scope pcommon.InstrumentationScope
	span  ptrace.Span
}

// tracesIDs is a trace ID and a span ID: what links a log record to its
// span.
type tracesIDs struct {
	trace pcommon.TraceID
	span  pcommon.SpanID
}

func (id tracesIDs) String() string { return id.trace.String() + "/" + id.span.String() }

func tracesSpansOf(td ptrace.Traces, keep func(pcommon.Map) bool) []tracesSpan {
	var out []tracesSpan
	for _, rs := range td.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			for _, sp := range ss.Spans().All() {
				if keep(callAttrs(rs.Resource(), sp.Attributes())) {
					out = append(out, tracesSpan{rs.Resource(), ss.Scope(), sp})
				}
			}
		}
	}
	return out
}

// tracesWithin reports whether a and b are at most 1µs apart.
func tracesWithin(a, b time.Time) bool {
	d := a.Sub(b)
	return d >= -time.Microsecond && d <= time.Microsecond
}

// TestTracesOneSpanPerCall: with the default OTEL_TRACES_EXPORTER, every
// call the workload makes arrives at a real collector as exactly one root
// span named after the syscall, from the call's entry to its exit (the log
// record's timestamp and memlock.duration), with the log record's
// attributes and an error status exactly when the call failed; and every
// log record carries the trace and span IDs of its span, so a backend links
// them. Another process calls mlock2 all along; the test looks only at the
// workload's records and spans.
func TestTracesOneSpanPerCall(t *testing.T) {
	testutil.RequireRoot(t)
	col := startCollector(t)
	bin := buildDaemon(t)
	workload := testutil.BuildWorkload(t)
	noise := testutil.StartNoise(t, workload, 2*time.Millisecond)
	cg, inCgroup := testutil.NewCgroup(t)

	d := startDaemon(t, bin,
		"OTEL_EXPORTER_OTLP_ENDPOINT="+col.Endpoint(),
		"OTEL_EXPORTER_OTLP_PROTOCOL=",                 // unset: our default, gRPC
		"OTEL_LOGS_EXPORTER=", "OTEL_TRACES_EXPORTER=", // unset: the default, otlp
		"OTEL_METRICS_EXPORTER=none",
		"OTEL_TRACES_SAMPLER=", "OTEL_TRACES_SAMPLER_ARG=", // the default sampler
		"OTEL_BSP_SCHEDULE_DELAY=100",
		"OTEL_BLRP_SCHEDULE_DELAY=100",
		"OTEL_SERVICE_NAME=", "OTEL_RESOURCE_ATTRIBUTES=deployment.environment.name=e2e",
		"MEMLOCK_EXPORTER_FLUSH_INTERVAL=50ms",
	)

	calls := runWorkload(t, workload, cg, inCgroup, "--repeat", "2")
	ours := workloadAttrs(calls, cg, inCgroup)
	oursLog := ours

	col.WaitForLogs(t, 20*time.Second, func(l plog.Logs) bool { return len(recordsOf(l, oursLog)) >= len(calls) })
	col.WaitForTraces(t, 20*time.Second, func(td ptrace.Traces) bool { return len(tracesSpansOf(td, ours)) >= len(calls) })
	// The noise's records show that there were others' to leave out.
	col.WaitForLogs(t, 20*time.Second, func(l plog.Logs) bool { return len(recordsOf(l, ofPID(noise.PID()))) > 0 })
	// Once the daemon has exited and the collector has written out what it
	// received, a late duplicate would be in the files.
	d.stop(t)
	col.Stop(t)
	logs, traces := col.Logs(t), col.Traces(t)
	records := recordsOf(logs, oursLog)
	spans := tracesSpansOf(traces, ours)
	t.Logf("%d records and %d spans of the workload's processes; left out %d records and %d spans of others",
		len(records), len(spans), logs.LogRecordCount()-len(records), traces.SpanCount()-len(spans))
	if len(spans) != len(records) {
		t.Errorf("collector has %d spans and %d log records for the workload's processes, want one span per record",
			len(spans), len(records))
	}

	// Index the spans by their IDs; span IDs must be unique and each call
	// must be a trace of its own.
	byID := map[tracesIDs]tracesSpan{}
	traceIDs := map[pcommon.TraceID]bool{}
	for _, s := range spans {
		id := tracesIDs{s.span.TraceID(), s.span.SpanID()}
		if s.span.TraceID().IsEmpty() || s.span.SpanID().IsEmpty() {
			t.Errorf("span %q without IDs: %s", s.span.Name(), id)
		}
		if _, dup := byID[id]; dup {
			t.Errorf("span IDs %s received twice", id)
		}
		if traceIDs[id.trace] {
			t.Errorf("trace %s holds more than one span: each call must be its own trace", id.trace)
		}
		byID[id] = s
		traceIDs[id.trace] = true
	}

	// Every log record of the workload's processes (also of the calls the
	// workload does not report, such as the munlock that undoes a lock)
	// links to exactly one span, which matches it.
	spanOf := map[*received]tracesSpan{}
	linked := map[tracesIDs]bool{}
	for i := range records {
		r := &records[i]
		sys, _ := r.record.Attributes().Get("memlock.syscall")
		tid, _ := intAttr(r.record.Attributes(), "thread.id")
		id := tracesIDs{r.record.TraceID(), r.record.SpanID()}
		s, ok := byID[id]
		if !ok {
			t.Errorf("%s record (tid %d) carries trace/span %s, which no span the collector received has", sys.Str(), tid, id)
			continue
		}
		if linked[id] {
			t.Errorf("span %s is linked from two log records", id)
		}
		linked[id] = true
		spanOf[r] = s
		for _, d := range tracesCheckSpan(s, *r) {
			t.Errorf("%s record (tid %d), span %s: %s", sys.Str(), tid, id, d)
		}
		// The span's process is the record's.
		if got, want := s.res.Attributes().AsRaw(), r.res.Attributes().AsRaw(); !reflect.DeepEqual(got, want) {
			t.Errorf("%s record (tid %d), span %s: span resource %v differs from the record's %v", sys.Str(), tid, id, got, want)
		}
	}
	for id, s := range byID {
		if !linked[id] {
			t.Errorf("span %q %s: no workload log record links to it", s.span.Name(), id)
		}
	}

	// Every call the workload reports has its record, hence its span, with
	// an error status exactly when the call failed. Match calls to records
	// by thread, in order, among the syscalls the workload reports.
	reported := map[string]bool{}
	for _, c := range calls {
		reported[c.Syscall] = true
	}
	byTID := map[int64][]*received{}
	for i := range records {
		r := &records[i]
		if sys, _ := r.record.Attributes().Get("memlock.syscall"); !reported[sys.Str()] {
			continue
		}
		tid, _ := intAttr(r.record.Attributes(), "thread.id")
		byTID[tid] = append(byTID[tid], r)
	}
	for _, rs := range byTID {
		sort.SliceStable(rs, func(i, j int) bool { return rs[i].record.Timestamp() < rs[j].record.Timestamp() })
	}
	next := map[int64]int{}
	for _, c := range calls {
		tid := int64(c.TID)
		i := next[tid]
		next[tid]++
		if i >= len(byTID[tid]) {
			t.Errorf("step %s (tid %d): no log record", c.Step, tid)
			continue
		}
		r := byTID[tid][i]
		s, ok := spanOf[r]
		if !ok {
			t.Errorf("step %s (tid %d): no span", c.Step, tid)
			continue
		}
		for _, d := range tracesCheckCall(s, *r, c) {
			t.Errorf("step %s (tid %d): %s", c.Step, tid, d)
		}
	}
	for tid, rs := range byTID {
		if len(rs) > next[tid] {
			t.Errorf("tid %d: %d records, the workload reported %d calls", tid, len(rs), next[tid])
		}
	}

	if len(spans) > 0 && len(records) > 0 {
		checkResource(t, spans[0].res)
		if got, want := spans[0].scope.Name(), records[0].scope.Name(); got != want || got == "" {
			t.Errorf("span instrumentation scope %q, log records' %q", got, want)
		}
	}
}

// tracesCheckSpan compares the span s with its log record r.
func tracesCheckSpan(s tracesSpan, r received) []string {
	var diffs []string
	sp, lr := s.span, r.record
	sys, _ := lr.Attributes().Get("memlock.syscall")
	ret, _ := intAttr(lr.Attributes(), "memlock.return_value")

	if sp.Name() != sys.Str() {
		diffs = append(diffs, fmt.Sprintf("span name %q, want %q", sp.Name(), sys.Str()))
	}
	if sp.Kind() != ptrace.SpanKindInternal {
		diffs = append(diffs, fmt.Sprintf("span kind %v, want internal", sp.Kind()))
	}
	if !sp.ParentSpanID().IsEmpty() {
		diffs = append(diffs, fmt.Sprintf("span has parent %s, want a root span", sp.ParentSpanID()))
	}

	start, end := sp.StartTimestamp().AsTime(), sp.EndTimestamp().AsTime()
	ts := lr.Timestamp().AsTime()
	if !tracesWithin(start, ts) {
		diffs = append(diffs, fmt.Sprintf("span starts at %v, the log record's timestamp is %v", start, ts))
	}
	dur, ok := lr.Attributes().Get("memlock.duration")
	if !ok || dur.Type() != pcommon.ValueTypeDouble {
		diffs = append(diffs, "log record has no memlock.duration double")
	} else if wantEnd := ts.Add(time.Duration(math.Round(dur.Double() * 1e9))); !tracesWithin(end, wantEnd) {
		diffs = append(diffs, fmt.Sprintf("span ends at %v (after %v), want timestamp + memlock.duration = %v (after %gs)",
			end, end.Sub(start), wantEnd, dur.Double()))
	}

	var errType string
	v, hasErrType := sp.Attributes().Get("error.type")
	if hasErrType {
		errType = v.AsString()
	}
	switch st := sp.Status(); {
	case ret < 0:
		if st.Code() != ptrace.StatusCodeError || st.Message() != errType || errType == "" {
			diffs = append(diffs, fmt.Sprintf("failed call's span status %v %q, error.type %q: want Error with error.type as its message",
				st.Code(), st.Message(), errType))
		}
	default:
		if st.Code() != ptrace.StatusCodeUnset || st.Message() != "" {
			diffs = append(diffs, fmt.Sprintf("successful call's span status %v %q, want unset", st.Code(), st.Message()))
		}
		if hasErrType {
			diffs = append(diffs, fmt.Sprintf("successful call's span has error.type %q", errType))
		}
	}

	// The same attributes as the log record.
	if got, want := sp.Attributes().AsRaw(), lr.Attributes().AsRaw(); !reflect.DeepEqual(got, want) {
		diffs = append(diffs, fmt.Sprintf("span attributes %v differ from the log record's %v", got, want))
	}
	if n := sp.DroppedAttributesCount(); n != 0 {
		diffs = append(diffs, fmt.Sprintf("span dropped %d attributes", n))
	}
	if !lr.Flags().IsSampled() {
		diffs = append(diffs, "log record's trace flags are not sampled")
	}
	return diffs
}

// tracesCheckCall checks that the record r and its span s are those of the
// call c the workload reported: same syscall, same return, and an error
// status (with the errno's name) exactly when c failed.
func tracesCheckCall(s tracesSpan, r received, c testutil.WorkloadCall) []string {
	var diffs []string
	sp, lr := s.span, r.record
	if got, _ := lr.Attributes().Get("memlock.syscall"); got.Str() != c.Syscall {
		diffs = append(diffs, fmt.Sprintf("log record is of %s, the call was %s", got.Str(), c.Syscall))
	}
	if got, _ := intAttr(lr.Attributes(), "memlock.return_value"); got != c.Ret {
		diffs = append(diffs, fmt.Sprintf("log record's return value %d, the call returned %d", got, c.Ret))
	}
	if sp.Name() != c.Syscall {
		diffs = append(diffs, fmt.Sprintf("span name %q, want %q", sp.Name(), c.Syscall))
	}
	st := sp.Status()
	if c.Ret < 0 {
		if want := bpf.Errno(-c.Ret).String(); st.Code() != ptrace.StatusCodeError || st.Message() != want {
			diffs = append(diffs, fmt.Sprintf("failed call's span status %v %q, want Error %q", st.Code(), st.Message(), want))
		}
	} else if st.Code() != ptrace.StatusCodeUnset {
		diffs = append(diffs, fmt.Sprintf("successful call's span status %v %q, want unset", st.Code(), st.Message()))
	}
	return diffs
}
