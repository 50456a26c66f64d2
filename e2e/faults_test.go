//go:build linux

package e2e

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/memlock-exporter/memlock-exporter/internal/testutil"
)

// Helpers of the fault tests (restart_test.go, flood_test.go,
// shutdown_test.go, outage_test.go): a collector that dies and comes back
// on the same ports, the daemon's outage reports, and the check that every
// call of a workload was delivered once however often the collector went
// away.

// syncFileWrites makes the test collector's file exporters write each
// request through to its file before the receiver answers it. Without a
// rotation section the file exporter buffers its writes and flushes them
// every flush_interval, so a collector killed with SIGKILL loses up to
// 100 ms of requests it has already acknowledged: losses no exporter could
// prevent. With one (timberjack, sized never to rotate here) every write
// goes to the file at once.
var syncFileWrites = []string{
	"--set=exporters::file/logs::rotation::max_megabytes=1024",
	"--set=exporters::file/metrics::rotation::max_megabytes=1024",
	"--set=exporters::file/traces::rotation::max_megabytes=1024",
}

// outageQueues are export queues that hold every record and span the
// daemon makes while the fault tests keep the collector away. The daemon
// traces the whole host, so its queues fill with everyone's calls: the
// noise process of make test alone makes 2500 calls a second, which fill
// the default queue of 8192 in some 3 s, and the other packages' tests run
// beside. With room for any of these outages, a record dropped is one the
// exporter lost although it had room for it.
var outageQueues = []string{"OTEL_BLRP_MAX_QUEUE_SIZE=262144", "OTEL_BSP_MAX_QUEUE_SIZE=262144"}

// restartableCollector is one collector endpoint whose process a test
// takes down and brings back: each run is a test collector process on the
// same two ports, writing into a directory of its own, so that what a run
// killed in mid-write left behind (a last line without its newline, which
// readLines leaves out) never runs into what the next run writes. What the
// endpoint received is the runs' files read in order.
type restartableCollector struct {
	t                  testing.TB
	bin, config        string
	args               []string
	grpcAddr, httpAddr string

	mu   sync.Mutex
	runs []*collector
}

// startRestartableCollector starts the first run, on free ports, with
// syncFileWrites and args.
func startRestartableCollector(t *testing.T, args ...string) *restartableCollector {
	t.Helper()
	args = append(slices.Clone(syncFileWrites), args...)
	first := startCollector(t, args...)
	config, err := filepath.Abs(filepath.Join(collectorModule, "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return &restartableCollector{
		t: t, bin: buildCollector(t), config: config, args: args,
		grpcAddr: first.grpcAddr, httpAddr: first.httpAddr,
		runs: []*collector{first},
	}
}

// Endpoint is the OTLP/gRPC endpoint every run listens on.
func (r *restartableCollector) Endpoint() string { return "http://" + r.grpcAddr }

// current is the newest run, up or down.
func (r *restartableCollector) current() *collector {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.runs[len(r.runs)-1]
}

// allRuns are the runs so far, oldest first.
func (r *restartableCollector) allRuns() []*collector {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.runs)
}

// kill ends the current run with SIGKILL, as an OOM killer or a crash
// would: no flush, no goodbye to its clients. It returns once the process
// is gone. Safe to call from any goroutine.
func (r *restartableCollector) kill() error {
	c := r.current()
	var err error
	c.stopOnce.Do(func() {
		select {
		case <-c.exited:
			err = fmt.Errorf("collector exited before it was killed (%v):\n%s", c.waitErr, c.output())
			return
		default:
		}
		if err = c.cmd.Process.Kill(); err == nil {
			<-c.exited
		}
	})
	return err
}

// stop ends the current run with SIGTERM, as an orderly restart would
// (collector.Stop). Safe to call from any goroutine.
func (r *restartableCollector) stop() { r.current().Stop(r.t) }

// restart starts a new run on the same ports, writing into dir (made by
// the test's goroutine: t.TempDir may not fail elsewhere). A port may stay
// busy for a moment after the old process is gone; restart tries again for
// up to 5 s. Safe to call from any goroutine.
func (r *restartableCollector) restart(dir string) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := startCollectorOn(r.t, r.bin, r.config, r.args, r.grpcAddr, r.httpAddr, dir)
		if err == nil {
			r.mu.Lock()
			r.runs = append(r.runs, c)
			r.mu.Unlock()
			return nil
		}
		if !strings.Contains(err.Error(), "address already in use") || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Logs returns the log records every run received, in order.
func (r *restartableCollector) Logs(t testing.TB) plog.Logs {
	all := plog.NewLogs()
	for _, c := range r.allRuns() {
		c.Logs(t).ResourceLogs().MoveAndAppendTo(all.ResourceLogs())
	}
	return all
}

// Traces returns the spans every run received, in order.
func (r *restartableCollector) Traces(t testing.TB) ptrace.Traces {
	all := ptrace.NewTraces()
	for _, c := range r.allRuns() {
		c.Traces(t).ResourceSpans().MoveAndAppendTo(all.ResourceSpans())
	}
	return all
}

// Metrics returns the metrics every run received, in order.
func (r *restartableCollector) Metrics(t testing.TB) pmetric.Metrics {
	all := pmetric.NewMetrics()
	for _, c := range r.allRuns() {
		c.Metrics(t).ResourceMetrics().MoveAndAppendTo(all.ResourceMetrics())
	}
	return all
}

// WaitForLogs is collector.WaitForLogs over every run; the current one must
// be up.
func (r *restartableCollector) WaitForLogs(t testing.TB, timeout time.Duration, ok func(plog.Logs) bool) plog.Logs {
	t.Helper()
	return waitFor(t, r.current(), timeout, "logs", r.Logs, ok, func(ld plog.Logs) string {
		return fmt.Sprintf("%d log records", ld.LogRecordCount())
	})
}

// WaitForTraces is collector.WaitForTraces over every run.
func (r *restartableCollector) WaitForTraces(t testing.TB, timeout time.Duration, ok func(ptrace.Traces) bool) ptrace.Traces {
	t.Helper()
	return waitFor(t, r.current(), timeout, "traces", r.Traces, ok, func(td ptrace.Traces) string {
		return fmt.Sprintf("%d spans", td.SpanCount())
	})
}

// collectorOutage is one planned time without a collector.
type collectorOutage struct {
	at   time.Duration // after the plan starts
	down time.Duration // from the process's end to the new run's start
	kill bool          // SIGKILL; else SIGTERM
}

// happenedOutage is one outage as it happened.
type happenedOutage struct {
	collectorOutage
	gone       time.Time // the old process had exited
	restarting time.Time // the new run was about to be started: none could answer before
	back       time.Time // the new run accepted connections
}

// Length is how long no collector listened.
func (o happenedOutage) Length() time.Duration { return o.back.Sub(o.gone) }

// runOutages takes the collector down and up again as plan says, in a
// goroutine of its own (the test's goroutine reads the workload meanwhile),
// counting from start. The channel yields the outages as they happened and
// the first error, once the plan is done or has failed. A test that ends
// before (failing) cuts the plan short.
func (r *restartableCollector) runOutages(t *testing.T, start time.Time, plan []collectorOutage) <-chan outagesResult {
	t.Helper()
	dirs := make([]string, len(plan))
	for i := range dirs {
		dirs[i] = t.TempDir()
	}
	done := make(chan outagesResult, 1)
	quit, finished := make(chan struct{}), make(chan struct{})
	t.Cleanup(func() {
		close(quit)
		<-finished
	})
	sleep := func(d time.Duration) bool {
		select {
		case <-time.After(d):
			return true
		case <-quit:
			return false
		}
	}
	go func() {
		defer close(finished)
		var res outagesResult
		defer func() { done <- res }()
		for i, o := range plan {
			if !sleep(time.Until(start.Add(o.at))) {
				res.err = errors.New("the test ended first")
				return
			}
			h := happenedOutage{collectorOutage: o}
			if o.kill {
				if err := r.kill(); err != nil {
					res.err = fmt.Errorf("outage %d: kill the collector: %w", i+1, err)
					return
				}
			} else {
				r.stop()
			}
			h.gone = time.Now()
			if !sleep(o.down) {
				res.err = errors.New("the test ended first")
				return
			}
			h.restarting = time.Now()
			if err := r.restart(dirs[i]); err != nil {
				res.err = fmt.Errorf("outage %d: restart the collector on %s: %w", i+1, r.grpcAddr, err)
				return
			}
			h.back = time.Now()
			res.outages = append(res.outages, h)
		}
	}()
	return done
}

type outagesResult struct {
	outages []happenedOutage
	err     error
}

// outageReport is one line of the daemon's saying that exports to a
// collector succeed again.
type outageReport struct {
	at      time.Time     // when the daemon said so
	spans   bool          // the span exports' line; else the log records'
	dropped int64         // dropped_records or dropped_spans
	length  time.Duration // outage=
	line    string
}

var (
	outageEndRE    = regexp.MustCompile(`^time=(\S+) .*msg="(span )?exports to (.+?) succeed again"(.*)`)
	outageLengthRE = regexp.MustCompile(`\boutage=(\S+)`)
	outageDropRE   = regexp.MustCompile(`\bdropped_(?:records|spans)=(\d+)`)
)

// outagesEnded returns the daemon's reports of outages of the collector at
// endpoint that ended, in order, log records' and spans' apart.
func outagesEnded(t *testing.T, stderr, endpoint string) (logs, spans []outageReport) {
	t.Helper()
	for line := range strings.Lines(stderr) {
		m := outageEndRE.FindStringSubmatch(line)
		if m == nil || m[3] != "the collector at "+endpoint {
			continue
		}
		rep := outageReport{spans: m[2] != "", line: strings.TrimSpace(line), length: -1, dropped: -1}
		var err error
		if rep.at, err = time.Parse(time.RFC3339Nano, m[1]); err != nil {
			t.Errorf("time=%s in %q: %v", m[1], rep.line, err)
		}
		if l := outageLengthRE.FindStringSubmatch(m[4]); l != nil {
			d, err := time.ParseDuration(l[1])
			if err != nil {
				t.Errorf("outage=%s in %q: %v", l[1], rep.line, err)
			}
			rep.length = d
		}
		if d := outageDropRE.FindStringSubmatch(m[4]); d != nil {
			rep.dropped, _ = strconv.ParseInt(d[1], 10, 64)
		}
		if rep.spans {
			spans = append(spans, rep)
		} else {
			logs = append(logs, rep)
		}
	}
	return logs, spans
}

// checkOutagesReported: the daemon said that each outage ended, for log
// records and for spans, with nothing dropped and an outage= at least as
// long as the collector was away, minus slack (the first failed attempt
// comes up to a batch's delay after the collector is gone). A report ends
// the outages the collector began to come back from before it: usually
// one, but when the collector was back only briefly and no attempt fell
// in that time (the retries back off), the daemon saw two as one, which is
// logged; then its outage= must cover both and the time in between.
func checkOutagesReported(t *testing.T, d *daemon, endpoint string, happened []happenedOutage, slack time.Duration) {
	t.Helper()
	logs, spans := outagesEnded(t, d.stderr.String(), endpoint)
	for _, sig := range []struct {
		what    string
		reports []outageReport
	}{{"log record", logs}, {"span", spans}} {
		next := 0 // the first outage no report has ended yet
		for _, rep := range sig.reports {
			first := next
			for next < len(happened) && happened[next].restarting.Before(rep.at) {
				next++
			}
			covered := happened[first:next]
			if len(covered) == 0 {
				t.Errorf("the daemon says %s exports succeed again, but the collector had not been away since its last such report: %s", sig.what, rep.line)
				continue
			}
			away := covered[len(covered)-1].restarting.Sub(covered[0].gone)
			t.Logf("outage %d of %s exports: the collector was away %v; the daemon says: %s",
				first+1, sig.what, covered[0].Length().Round(time.Millisecond), rep.line)
			if len(covered) > 1 {
				t.Logf("the daemon saw outages %d to %d of %s exports as one: the collector was back for %v only, and no attempt fell in that time",
					first+1, next, sig.what, covered[1].gone.Sub(covered[0].back).Round(time.Millisecond))
			}
			switch {
			case rep.length < 0:
				t.Errorf("%s exports: no outage= duration in %q", sig.what, rep.line)
			case rep.length < away-slack:
				t.Errorf("%s exports report outage=%v, but the collector was away %v (allowing %v): %s",
					sig.what, rep.length, away.Round(time.Millisecond), slack, rep.line)
			}
			if rep.dropped != 0 {
				t.Errorf("%s exports dropped %d items in an outage (want 0): %s", sig.what, rep.dropped, rep.line)
			}
		}
		if next < len(happened) {
			t.Errorf("the daemon never said that %s exports succeed again after outage %d (of %d)", sig.what, next+1, len(happened))
		}
	}
}

// shutdownSummary returns the key=value numbers of the daemon's
// "memlock-exporter stopped" line; ok is false without one.
func shutdownSummary(stderr string) (fields map[string]int64, line string, ok bool) {
	i := strings.Index(stderr, `msg="memlock-exporter stopped"`)
	if i < 0 {
		return nil, "", false
	}
	line, _, _ = strings.Cut(stderr[i:], "\n")
	fields = map[string]int64{}
	for _, m := range regexp.MustCompile(`\b(\w+)=(\d+)\b`).FindAllStringSubmatch(line, -1) {
		fields[m[1]], _ = strconv.ParseInt(m[2], 10, 64)
	}
	return fields, line, true
}

// checkExportLosses: the exporter lost nothing: the final
// memlock.events.lost is 0 for export_failed and queue_full (both points
// present: the exporter counts its drops there), and the shutdown summary
// counts no failed export of records or spans. The kernel-side reasons
// count other processes' calls too (the daemon traces the whole host) and
// are only logged; had the workload's records been among them, they would
// be missing.
func checkExportLosses(t *testing.T, d *daemon, final pmetric.Metrics) {
	t.Helper()
	lost := lostByReason(final)
	for _, reason := range []string{"export_failed", "queue_full"} {
		n, ok := lost[reason]
		switch {
		case !ok:
			t.Errorf("final memlock.events.lost has no memlock.reason=%s point: %v", reason, lost)
		case n != 0:
			t.Errorf("memlock.events.lost{memlock.reason=%s} = %d, want 0", reason, n)
		}
	}
	t.Logf("final memlock.events.lost by reason (the whole host's): %v", lost)
	if n := lost["ringbuf_full"]; n > 0 {
		t.Logf("the kernel's ring buffer was full for %d calls (of any process: another one flooding the host?); if a record is missing above, it may be among them", n)
	}
	fields, line, ok := shutdownSummary(d.stderr.String())
	if !ok {
		t.Errorf("no shutdown summary:\n%s", d.stderr)
		return
	}
	for _, k := range []string{"export_failures", "span_export_failures"} {
		if n, ok := fields[k]; !ok || n != 0 {
			t.Errorf("shutdown summary: %s=%d (present %v), want 0: %s", k, n, ok, line)
		}
	}
}

// collectorRun is what one run of a collector received.
type collectorRun struct {
	logs   plog.Logs
	traces ptrace.Traces
}

// runsOf reads what each run of r received.
func runsOf(t *testing.T, r *restartableCollector) []collectorRun {
	var out []collectorRun
	for _, c := range r.allRuns() {
		out = append(out, collectorRun{c.Logs(t), c.Traces(t)})
	}
	return out
}

// recordKey names one call's record: no thread makes two calls in the same
// nanosecond.
type recordKey struct {
	pid, tid int64
	ts       pcommon.Timestamp
	syscall  string
}

func keyOf(r received) recordKey {
	pid, _ := intAttr(r.attrs, "process.pid")
	tid, _ := intAttr(r.attrs, "thread.id")
	sys, _ := r.attrs.Get("memlock.syscall")
	return recordKey{pid, tid, r.record.Timestamp(), sys.Str()}
}

// deliveredOnce checks that each call in calls (those of the processes
// keep accepts) arrived as exactly one log record with every field right
// (checkRecord, calls matched to records by thread in order) and, with
// spans, one span that the record links to (tracesCheckSpan), across the
// runs of a collector. A record or span that a run wrote and a later run
// wrote again is a request retried because the first run died before its
// answer reached the daemon: at-least-once delivery cannot avoid that when
// the kill lands between the collector's write and its answer. Such
// duplicates are counted and returned, each copy in a run of its own; two
// copies in one run are an error.
func deliveredOnce(t *testing.T, runs []collectorRun, keep func(pcommon.Map) bool, calls []testutil.WorkloadCall,
	start, end time.Time, proc procView, spans bool,
) (records []received, dupRecords, dupSpans int) {
	t.Helper()
	// First copies, in order of arrival.
	seenIn := map[recordKey]int{}
	for i, run := range runs {
		for _, r := range recordsOf(run.logs, keep) {
			k := keyOf(r)
			if prev, ok := seenIn[k]; ok {
				dupRecords++
				if prev == i {
					t.Errorf("collector run %d received the record of %s (tid %d, %v) twice", i+1, k.syscall, k.tid, k.ts.AsTime())
				}
				seenIn[k] = i
				continue
			}
			seenIn[k] = i
			records = append(records, r)
		}
	}
	if len(records) != len(calls) {
		t.Errorf("the collector received %d distinct records of the workload's processes, want %d (one per call)", len(records), len(calls))
	}

	// Match calls to records by thread, in order. A call whose thread's
	// next record is not of the same call (syscall, arguments, result) has
	// none: the record is left for the next call, so that records missing
	// are told as that, not as every later call of the thread being wrong.
	byTID := map[int64][]received{}
	for _, r := range records {
		tid, _ := intAttr(r.attrs, "thread.id")
		byTID[tid] = append(byTID[tid], r)
	}
	for _, rs := range byTID {
		sort.SliceStable(rs, func(i, j int) bool { return rs[i].record.Timestamp() < rs[j].record.Timestamp() })
	}
	next := map[int64]int{}
	bad, missed := 0, 0
	report := func(format string, args ...any) {
		if bad++; bad <= 20 {
			t.Errorf(format, args...)
		}
	}
	for _, c := range calls {
		tid := int64(c.TID)
		rs := byTID[tid]
		k := next[tid]
		if k == len(rs) || !sameCall(rs[k], c) {
			missed++
			report("step %s (pid %d, tid %d): no log record", c.Step, c.PID, tid)
			continue
		}
		next[tid] = k + 1
		for _, d := range checkRecord(rs[k], c, start, end, proc) {
			report("step %s (pid %d, tid %d): %s", c.Step, c.PID, tid, d)
		}
	}
	for tid, rs := range byTID {
		for _, r := range rs[next[tid]:] {
			report("tid %d: a record of %s (%v) that no call of the workload's matches", tid, r.record.Body().Str(), r.record.Timestamp().AsTime())
		}
	}
	if bad > 20 {
		t.Errorf("... %d problems in all, %d calls without a record", bad, missed)
	}
	if !spans {
		return records, dupRecords, 0
	}

	spanIn := map[tracesIDs]int{}
	byID := map[tracesIDs]tracesSpan{}
	for i, run := range runs {
		for _, s := range tracesSpansOf(run.traces, keep) {
			id := tracesIDs{s.span.TraceID(), s.span.SpanID()}
			if prev, ok := spanIn[id]; ok {
				dupSpans++
				if prev == i {
					t.Errorf("collector run %d received span %s twice", i+1, id)
				}
			} else {
				byID[id] = s
			}
			spanIn[id] = i
		}
	}
	if len(byID) != len(records) {
		t.Errorf("the collector received %d distinct spans of the workload's processes and %d records, want one span per record", len(byID), len(records))
	}
	missing := 0
	for _, r := range records {
		id := tracesIDs{r.record.TraceID(), r.record.SpanID()}
		s, ok := byID[id]
		if !ok {
			if missing++; missing <= 20 {
				tid, _ := intAttr(r.attrs, "thread.id")
				t.Errorf("the record of %s (tid %d, %v) links to span %s, which the collector never received",
					r.record.EventName(), tid, r.record.Timestamp().AsTime(), id)
			}
			continue
		}
		for _, d := range tracesCheckSpan(s, r) {
			t.Errorf("span %s: %s", id, d)
		}
	}
	if missing > 20 {
		t.Errorf("... %d records without their span in all", missing)
	}
	return records, dupRecords, dupSpans
}

// sameCall tells whether r is a record of a call like c: same syscall,
// result, and the arguments the syscall takes.
func sameCall(r received, c testutil.WorkloadCall) bool {
	attrs := r.record.Attributes()
	sys, _ := attrs.Get("memlock.syscall")
	ret, _ := intAttr(attrs, "memlock.return_value")
	if sys.Str() != c.Syscall || ret != c.Ret {
		return false
	}
	if hasRange[c.Syscall] {
		addr, _ := intAttr(attrs, "memlock.addr")
		n, _ := intAttr(attrs, "memlock.len")
		if uint64(addr) != c.Addr || uint64(n) != c.Len {
			return false
		}
	}
	if c.Syscall == "mlock2" || c.Syscall == "mlockall" {
		flags, _ := intAttr(attrs, "memlock.flags")
		if uint64(flags) != c.Flags {
			return false
		}
	}
	return true
}

// waitUntil polls ok every 250 ms until it holds or timeout has passed,
// and tells which; unlike the collector's WaitFor methods it fails
// nothing, so that the checks after it tell exactly what is missing.
func waitUntil(timeout time.Duration, ok func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(250 * time.Millisecond)
	}
	return true
}

// procOf is what the kernel must have read of the workload's processes:
// its binary, and the cgroup they ran in (when they did).
func procOf(t *testing.T, workload string, cg *testutil.Cgroup, inCgroup bool) procView {
	t.Helper()
	proc := procView{exePath: workload}
	if resolved, err := filepath.EvalSymlinks(workload); err == nil {
		proc.exePath = resolved
	}
	if inCgroup {
		proc.cgroup = cgroupFileOf(t, cg.HierarchyPath)
	}
	return proc
}

// bpfObjects are the BPF programs, maps and links a process holds, by ID.
type bpfObjects struct {
	progs []ebpf.ProgramID
	maps  []ebpf.MapID
	links []link.ID
}

// bpfObjectsOf reads the BPF objects process pid holds open from
// /proc/<pid>/fdinfo (prog_id, map_id and link_id lines): what the daemon
// loaded and attached, told apart from every other tracer on the host.
func bpfObjectsOf(t *testing.T, pid int) bpfObjects {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fdinfo", pid)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("list the daemon's descriptors: %v", err)
	}
	progs, maps, links := map[uint64]bool{}, map[uint64]bool{}, map[uint64]bool{}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue // closed meanwhile
		}
		for line := range strings.Lines(string(data)) {
			key, val, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			id, err := strconv.ParseUint(strings.TrimSpace(val), 10, 32)
			if err != nil {
				continue
			}
			switch key {
			case "prog_id":
				// A link's descriptor names its program too; the
				// program is the same either way.
				progs[id] = true
			case "map_id":
				maps[id] = true
			case "link_id":
				links[id] = true
			}
		}
	}
	var o bpfObjects
	for id := range progs {
		o.progs = append(o.progs, ebpf.ProgramID(id))
	}
	for id := range maps {
		o.maps = append(o.maps, ebpf.MapID(id))
	}
	for id := range links {
		o.links = append(o.links, link.ID(id))
	}
	return o
}

func (o bpfObjects) String() string {
	return fmt.Sprintf("%d programs %v, %d maps, %d links %v", len(o.progs), o.progs, len(o.maps), len(o.links), o.links)
}

// remaining returns those of o that still exist, as "program 12" and the
// like: what is freed is gone from its ID for good (IDs are not reused
// until they wrap around at 2^31).
func (o bpfObjects) remaining() ([]string, error) {
	var left []string
	check := func(what string, id uint32, err error, closeIt func()) error {
		switch {
		case err == nil:
			closeIt()
			left = append(left, fmt.Sprintf("%s %d", what, id))
		case errors.Is(err, os.ErrNotExist):
		default:
			return fmt.Errorf("look up %s %d: %w", what, id, err)
		}
		return nil
	}
	for _, id := range o.links {
		l, err := link.NewFromID(id)
		if err := check("link", uint32(id), err, func() { l.Close() }); err != nil {
			return left, err
		}
	}
	for _, id := range o.progs {
		p, err := ebpf.NewProgramFromID(id)
		if err := check("program", uint32(id), err, func() { p.Close() }); err != nil {
			return left, err
		}
	}
	for _, id := range o.maps {
		m, err := ebpf.NewMapFromID(id)
		if err := check("map", uint32(id), err, func() { m.Close() }); err != nil {
			return left, err
		}
	}
	return left, nil
}

// checkBPFGone: none of o is left once the daemon has exited. The kernel
// frees programs and maps a moment after their last reference goes (RCU),
// so this polls for up to 5 s.
func checkBPFGone(t *testing.T, o bpfObjects) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		left, err := o.remaining()
		if err != nil {
			t.Errorf("%v", err)
			return
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("5s after the daemon exited, %d of its BPF objects are still loaded: %v", len(left), left)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// distinctRecords counts the records keep accepts, each call once however
// often it arrived.
func distinctRecords(l plog.Logs, keep func(attrs pcommon.Map) bool) int {
	seen := map[recordKey]bool{}
	for _, r := range recordsOf(l, keep) {
		seen[keyOf(r)] = true
	}
	return len(seen)
}

// distinctSpans counts the spans keep accepts, each once however often it
// arrived.
func distinctSpans(td ptrace.Traces, keep func(attrs pcommon.Map) bool) int {
	seen := map[tracesIDs]bool{}
	for _, s := range tracesSpansOf(td, keep) {
		seen[tracesIDs{s.span.TraceID(), s.span.SpanID()}] = true
	}
	return len(seen)
}

// ms renders d in whole milliseconds, for the workload's options.
func ms(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }
