//go:build linux

package e2e

import (
	"bytes"
	"fmt"
	"math"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/memlock-exporter/memlock-exporter/bpf"
	"github.com/memlock-exporter/memlock-exporter/internal/testutil"
)

// The daemon's defaults for folding (MEMLOCK_EXPORTER_FOLD_AFTER and
// MEMLOCK_EXPORTER_FOLD_WINDOW): a thread's identical consecutive calls
// beyond foldAfter within foldWindow become one record.
const (
	foldAfter  = 1000
	foldWindow = time.Second
)

// floodCalls is how many calls the flooder makes: enough to fill the
// kernel's ring buffer many times over if each were a record.
const floodCalls = 2_000_000

// TestFloodDoesNotCostOthersTheirRecords: one process making floodCalls
// identical failing calls of mlock2 as fast as it can (the workload's
// --flood, in a cgroup of its own) does not cost a bystander (the ordinary
// workload, run again and again in another cgroup until the flood is
// over) a single record: every call of the bystander arrives as its own
// log record with every field right, and its span. The flood itself is
// folded: past foldAfter calls in a foldWindow, the rest of the window is
// one record carrying memlock.repeat.count (how many calls it stands for)
// and memlock.repeat.first_time / last_time, stamped at the first of them.
// Every flood call is accounted for: the records without a count, the sum
// of the counts, and what memlock.events.lost counted meanwhile (the
// whole host's: another process's losses would make it larger) add up to
// at least floodCalls, the records alone to no more. memlock.calls counts
// every call: its (mlock2, EINVAL) series grew by at least floodCalls, and
// by no more than floodCalls plus the others' EINVAL calls of mlock2 (the
// records of other processes say how many; a noise process makes one every
// 2 ms during make test) and a margin.
//
// It runs with the default ring buffer, which the reader drains as fast as
// the flood fills it on this machine, and with one of 64 KiB, which the
// flood outruns: then the kernel's pressure valve (memlock.events.lost
// {repeat_shed}) must keep room for the bystander's records.
func TestFloodDoesNotCostOthersTheirRecords(t *testing.T) {
	testutil.RequireRoot(t)
	for _, tc := range []struct{ name, env string }{
		{"ring=default", "MEMLOCK_EXPORTER_RINGBUF_SIZE="},
		{"ring=64KiB", "MEMLOCK_EXPORTER_RINGBUF_SIZE=64KiB"},
	} {
		t.Run(tc.name, func(t *testing.T) { testFloodDoesNotCostOthers(t, tc.env) })
	}
}

func testFloodDoesNotCostOthers(t *testing.T, ringEnv string) {
	col := startCollector(t)
	bin := buildDaemon(t)
	workload := testutil.BuildWorkload(t)
	byCg, ok1 := testutil.NewCgroup(t)
	floodCg, ok2 := testutil.NewCgroup(t)
	inCgroup := ok1 && ok2

	d := startDaemon(t, bin,
		"OTEL_EXPORTER_OTLP_ENDPOINT="+col.Endpoint(),
		"OTEL_BLRP_SCHEDULE_DELAY=100",
		"OTEL_BSP_SCHEDULE_DELAY=100",
		"OTEL_METRIC_EXPORT_INTERVAL=250",
		"MEMLOCK_EXPORTER_FLUSH_INTERVAL=50ms",
		"MEMLOCK_EXPORTER_SHUTDOWN_TIMEOUT=10s",
		ringEnv,
	)

	// The counters before the flood (memlock.calls has no series before
	// the first call of its kind).
	col.WaitForMetrics(t, 20*time.Second, func(m pmetric.Metrics) bool {
		return len(finalPoints(m, "memlock.events.lost")["memlock.events.lost"].points) > 0
	})
	base := col.Metrics(t)
	einval := seriesKey{"mlock2", bpf.Errno(syscall.EINVAL).String()}
	baseCalls := finalPoints(base, "memlock.calls")["memlock.calls"].bySeries()[einval]
	baseAt := finalPoints(base, "memlock.events.lost")["memlock.events.lost"].at
	baseLost := lostByReason(base)

	// The bystander is at work before the flood starts.
	bystanderArgs := []string{"--repeat", "3", "--pause-ms", "100"}
	start := time.Now()
	var w *testutil.Workload
	if inCgroup {
		w = byCg.StartWorkload(t, workload, bystanderArgs...)
	} else {
		w = testutil.StartWorkload(t, workload, bystanderArgs...)
	}
	if _, ok := w.Next(t); !ok {
		t.Fatal("the bystander reported no call")
	}

	// The flood, in a goroutine of its own: the test's goroutine runs the
	// bystander meanwhile.
	type floodResult struct {
		out, stderr bytes.Buffer
		err         error
		start, end  time.Time
	}
	flooded := make(chan *floodResult, 1)
	go func() {
		r := &floodResult{}
		var cmd *exec.Cmd
		if inCgroup {
			cmd = floodCg.WorkloadCommand(workload, "--flood", strconv.Itoa(floodCalls))
		} else {
			cmd = exec.Command(workload, "--flood", strconv.Itoa(floodCalls))
		}
		cmd.Stdout, cmd.Stderr = &r.out, &r.stderr
		r.start = time.Now()
		r.err = cmd.Run()
		r.end = time.Now()
		flooded <- r
	}()
	bystander := w.Wait(t)
	var flood *floodResult
	for flood == nil {
		select {
		case flood = <-flooded:
		default:
			if inCgroup {
				bystander = append(bystander, byCg.RunWorkload(t, workload, bystanderArgs...)...)
			} else {
				bystander = append(bystander, testutil.RunWorkload(t, workload, bystanderArgs...)...)
			}
		}
	}
	end := time.Now()
	if flood.err != nil {
		t.Fatalf("workload --flood %d: %v\nstderr:\n%s", floodCalls, flood.err, flood.stderr.String())
	}
	lines, err := testutil.ParseWorkloadOutput(&flood.out)
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 1 || lines[0].Step != testutil.WorkloadFloodStep || lines[0].Calls() != floodCalls || lines[0].Ret != -int64(syscall.EINVAL) {
		t.Fatalf("workload --flood %d printed %+v, want one %s line for %d calls that failed with EINVAL",
			floodCalls, lines, testutil.WorkloadFloodStep, floodCalls)
	}
	fl := lines[0]
	took := flood.end.Sub(flood.start)
	t.Logf("flood: %d calls in %v, %.0f calls/s (pid %d); bystander: %d calls in %d runs of the script over %v",
		floodCalls, took.Round(time.Millisecond), floodCalls/took.Seconds(), fl.PID, len(bystander),
		len(bystander)/len(workloadScriptOf(bystander)), end.Sub(start).Round(time.Millisecond))

	ofBystander := workloadAttrs(bystander, byCg, inCgroup)
	ofFlood := func(attrs pcommon.Map) bool {
		pid, _ := intAttr(attrs, "process.pid")
		if pid != int64(fl.PID) {
			return false
		}
		if !inCgroup {
			return true
		}
		id, _ := intAttr(attrs, "memlock.cgroup.id")
		return id == int64(floodCg.ID)
	}

	// Until every call of both has its record, or no more come (what is
	// missing is then told below).
	waitStable(t, 30*time.Second, func() uint64 {
		l := col.Logs(t)
		a := accountFlood(recordsOf(l, ofFlood))
		return uint64(min(len(recordsOf(l, ofBystander)), len(bystander))) + min(a.individual+a.foldedCalls, floodCalls)
	}, uint64(len(bystander))+floodCalls)
	stopped := time.Now()
	d.stop(t)
	col.Stop(t)
	logs, traces, metrics := col.Logs(t), col.Traces(t), col.Metrics(t)

	// The bystander lost nothing, not even a span.
	records, _, _ := deliveredOnce(t, []collectorRun{{logs, traces}}, ofBystander, bystander, start, end,
		procOf(t, workload, byCg, inCgroup), true)
	during := 0
	for _, r := range records {
		if ts := r.record.Timestamp().AsTime(); !ts.Before(flood.start) && !ts.After(flood.end) {
			during++
		}
	}
	if during == 0 {
		t.Errorf("none of the bystander's %d calls was made while the flood ran (%v to %v): the test proves nothing", len(bystander), flood.start, flood.end)
	}
	t.Logf("bystander: %d calls, %d records arrived, %d of them of calls made during the flood", len(bystander), len(records), during)

	// The flood's records: its calls, folded.
	floodRecs := recordsOf(logs, ofFlood)
	a := accountFlood(floodRecs)
	for _, r := range floodRecs {
		for _, diff := range checkFloodRecord(r, fl, flood.start, flood.end) {
			if a.bad++; a.bad <= 20 {
				t.Errorf("flood record at %v: %s", r.record.Timestamp().AsTime(), diff)
			}
		}
	}
	if a.bad > 20 {
		t.Errorf("... %d problems with the flood's records in all", a.bad)
	}
	floodSpans := tracesSpansOf(traces, ofFlood)
	spanCalls := uint64(0)
	for _, s := range floodSpans {
		n, ok := intAttr(s.span.Attributes(), "memlock.repeat.count")
		if !ok {
			n = 1
		}
		spanCalls += uint64(n)
	}
	if len(floodSpans) != len(floodRecs) || spanCalls != a.individual+a.foldedCalls {
		t.Errorf("the flood has %d spans standing for %d calls, and %d records for %d: want one span per record",
			len(floodSpans), spanCalls, len(floodRecs), a.individual+a.foldedCalls)
	}

	// Folding happened, within its limits: per window, at most foldAfter
	// records of one call each and one folded record.
	windows := uint64(1)
	if a.last.After(a.first) {
		windows += uint64(a.last.Sub(a.first) / foldWindow)
	}
	if a.folded == 0 {
		t.Errorf("no folded record (with memlock.repeat.count) among the flood's %d records", len(floodRecs))
	}
	if a.individual > foldAfter*(windows+1) {
		t.Errorf("%d of the flood's records stand for one call each; over %d fold windows of %v, want at most %d per window",
			a.individual, windows, foldWindow, foldAfter)
	}
	if a.folded > windows+1 {
		t.Errorf("%d folded records over %d fold windows of %v, want at most one per window", a.folded, windows, foldWindow)
	}

	// Every flood call accounted for.
	lost := lostByReason(metrics)
	lostDelta := map[string]int64{}
	var lostTotal int64
	for reason, n := range lost {
		if dn := n - baseLost[reason]; dn != 0 {
			lostDelta[reason] = dn
			lostTotal += dn
		}
	}
	accounted := a.individual + a.foldedCalls
	t.Logf("flood: %d calls delivered individually, %d folded records for %d calls, %d lost during the test (by reason %v); %d of %d accounted for",
		a.individual, a.folded, a.foldedCalls, lostTotal, lostDelta, accounted+uint64(max(lostTotal, 0)), floodCalls)
	if accounted > floodCalls {
		t.Errorf("the flood's records stand for %d calls, but it made %d", accounted, floodCalls)
	}
	if accounted+uint64(max(lostTotal, 0)) < floodCalls {
		t.Errorf("the flood made %d calls; its records stand for %d and memlock.events.lost grew by %d: %d calls unaccounted for",
			floodCalls, accounted, lostTotal, floodCalls-accounted-uint64(max(lostTotal, 0)))
	}
	if excess := int64(accounted) + lostTotal - floodCalls; excess > 0 {
		t.Logf("memlock.events.lost grew by %d more than the flood's missing calls: other processes' losses", excess)
	}

	// memlock.calls counts every call, folded, lost or not.
	final := finalPoints(metrics, "memlock.calls")["memlock.calls"]
	if final.at.AsTime().Before(stopped) {
		t.Errorf("the newest memlock.calls was collected at %v, before the daemon was stopped (%v): its final export is missing", final.at.AsTime(), stopped)
	}
	grew := final.bySeries()[einval] - baseCalls
	others := othersCalls(logs, einval, baseAt, func(attrs pcommon.Map) bool { return !ofFlood(attrs) })
	interval := final.at.AsTime().Sub(baseAt.AsTime())
	margin := int64(10_000 + 2_000*interval.Seconds())
	limit := floodCalls + others + max(lostTotal, 0) + margin
	t.Logf("memlock.calls%s grew by %d over %v: the flood's %d, %d calls of others with records, margin %d (limit %d)",
		einval, grew, interval.Round(time.Millisecond), floodCalls, others, margin, limit)
	if grew < floodCalls {
		t.Errorf("memlock.calls%s grew by %d while the flood alone made %d such calls", einval, grew, floodCalls)
	}
	if grew > limit {
		t.Errorf("memlock.calls%s grew by %d: more than the flood's %d, the %d of others the records show, what was lost (%d) and a margin of %d",
			einval, grew, floodCalls, others, lostTotal, margin)
	}
}

// floodAccount adds up the flood's records.
type floodAccount struct {
	individual  uint64 // records without memlock.repeat.count: one call each
	folded      uint64 // records with it
	foldedCalls uint64 // the sum of their counts
	first, last time.Time
	bad         int
}

func accountFlood(recs []received) floodAccount {
	var a floodAccount
	for _, r := range recs {
		if n, ok := intAttr(r.record.Attributes(), "memlock.repeat.count"); ok {
			a.folded++
			a.foldedCalls += uint64(max(n, 0))
		} else {
			a.individual++
		}
		ts := r.record.Timestamp().AsTime()
		if a.first.IsZero() || ts.Before(a.first) {
			a.first = ts
		}
		if ts.After(a.last) {
			a.last = ts
		}
	}
	return a
}

// checkFloodRecord checks one record of the flood: the flood's call, and,
// when folded, a count and the times of the first and last calls it
// stands for, the first its timestamp.
func checkFloodRecord(r received, fl testutil.WorkloadCall, start, end time.Time) []string {
	var diffs []string
	attrs := r.record.Attributes()
	want := map[string]int64{
		"thread.id":            int64(fl.TID),
		"memlock.addr":         int64(fl.Addr),
		"memlock.len":          int64(fl.Len),
		"memlock.flags":        int64(fl.Flags),
		"memlock.return_value": fl.Ret,
	}
	for k, w := range want {
		if got, ok := intAttr(attrs, k); !ok || got != w {
			diffs = append(diffs, fmt.Sprintf("%s = %d (present %v), want %d", k, got, ok, w))
		}
	}
	if sys, _ := attrs.Get("memlock.syscall"); sys.Str() != "mlock2" {
		diffs = append(diffs, fmt.Sprintf("memlock.syscall %q, want mlock2", sys.Str()))
	}
	ts := r.record.Timestamp().AsTime()
	if ts.Before(start.Add(-50*time.Millisecond)) || ts.After(end.Add(50*time.Millisecond)) {
		diffs = append(diffs, fmt.Sprintf("timestamp %v outside the flood [%v, %v]", ts, start, end))
	}
	n, folded := intAttr(attrs, "memlock.repeat.count")
	_, hasFirst := attrs.Get("memlock.repeat.first_time")
	_, hasLast := attrs.Get("memlock.repeat.last_time")
	if !folded {
		if hasFirst || hasLast {
			diffs = append(diffs, "memlock.repeat.first_time or last_time without memlock.repeat.count")
		}
		return diffs
	}
	if n < 1 {
		diffs = append(diffs, fmt.Sprintf("memlock.repeat.count = %d, want a number of calls", n))
	}
	schema := schemaAttributes(r.record.EventName())
	for _, k := range []string{"memlock.repeat.count", "memlock.repeat.first_time", "memlock.repeat.last_time"} {
		if !schema[k] {
			diffs = append(diffs, fmt.Sprintf("attribute %s is not in the schema's %s event (semconv.Events)", k, r.record.EventName()))
		}
	}
	first, err1 := time.Parse(time.RFC3339Nano, str(attrs, "memlock.repeat.first_time"))
	last, err2 := time.Parse(time.RFC3339Nano, str(attrs, "memlock.repeat.last_time"))
	switch {
	case err1 != nil || err2 != nil:
		diffs = append(diffs, fmt.Sprintf("memlock.repeat.first_time %q, last_time %q: want RFC 3339 times (%v, %v)",
			str(attrs, "memlock.repeat.first_time"), str(attrs, "memlock.repeat.last_time"), err1, err2))
	case last.Before(first):
		diffs = append(diffs, fmt.Sprintf("memlock.repeat.last_time %v before first_time %v", last, first))
	case !first.Equal(ts):
		diffs = append(diffs, fmt.Sprintf("timestamp %v, want the first folded call's, memlock.repeat.first_time %v", ts, first))
	case n == 1 && !last.Equal(first):
		diffs = append(diffs, fmt.Sprintf("one call from %v to %v", first, last))
	}
	if err2 == nil && last.After(end.Add(50*time.Millisecond)) {
		diffs = append(diffs, fmt.Sprintf("memlock.repeat.last_time %v after the flood ended (%v)", last, end))
	}
	return diffs
}

// othersCalls counts the calls of the series k that the records keep
// accepts stand for (a folded record for its memlock.repeat.count),
// among those made after since.
func othersCalls(logs plog.Logs, k seriesKey, since pcommon.Timestamp, keep func(pcommon.Map) bool) int64 {
	var n int64
	for _, r := range recordsOf(logs, keep) {
		if seriesOf(r.record.Attributes()) != k || r.record.Timestamp() < since {
			continue
		}
		if c, ok := intAttr(r.record.Attributes(), "memlock.repeat.count"); ok {
			n += c
		} else {
			n++
		}
	}
	return n
}

// waitStable polls count until it reaches want, or has not changed for
// 1.5 s, or timeout has passed; reading the collector's files is not free,
// so it polls once a second.
func waitStable(t *testing.T, timeout time.Duration, count func() uint64, want uint64) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last, since := uint64(math.MaxUint64), time.Now()
	for {
		n := count()
		switch {
		case n >= want:
			return
		case n != last:
			last, since = n, time.Now()
		case time.Since(since) >= 1500*time.Millisecond:
			return
		}
		if time.Now().After(deadline) {
			t.Logf("still %d of %d after %v", n, want, timeout)
			return
		}
		time.Sleep(time.Second)
	}
}

// workloadScriptOf returns the calls of the first run of the script among
// calls: up to the second time its first step comes.
func workloadScriptOf(calls []testutil.WorkloadCall) []testutil.WorkloadCall {
	for i := 1; i < len(calls); i++ {
		if calls[i].Step == calls[0].Step && calls[i].TID == calls[0].TID {
			return calls[:i]
		}
	}
	return calls
}
