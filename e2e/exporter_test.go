//go:build linux

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/memlock-exporter/memlock-exporter/bpf"
	"github.com/memlock-exporter/memlock-exporter/internal/testutil"
	"github.com/memlock-exporter/memlock-exporter/semconv"
)

// daemon is a memlock-exporter process started by a test.
type daemon struct {
	cmd    *exec.Cmd
	stderr *testutil.SyncBuffer
}

func buildDaemon(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "memlock-exporter")
	cmd := exec.Command("go", "build", "-o", bin, "-ldflags", "-X main.version=e2e-test", "../cmd/memlock-exporter")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build memlock-exporter: %v\n%s", err, out)
	}
	return bin
}

// startDaemon starts the exporter with env added to the test's environment
// and waits until it has attached and started reading.
func startDaemon(t *testing.T, bin string, env ...string) *daemon {
	t.Helper()
	d := &daemon{cmd: exec.Command(bin), stderr: &testutil.SyncBuffer{}}
	d.cmd.Env = append(os.Environ(), env...)
	d.cmd.Stderr = d.stderr
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("start memlock-exporter: %v", err)
	}
	t.Cleanup(func() {
		if d.cmd.ProcessState == nil {
			d.cmd.Process.Kill()
			d.cmd.Wait()
		}
		if t.Failed() {
			t.Logf("memlock-exporter stderr:\n%s", d.stderr)
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(d.stderr.String(), "memlock-exporter started") {
		if time.Now().After(deadline) {
			t.Fatalf("memlock-exporter did not start within 15s:\n%s", d.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return d
}

// stop sends SIGTERM and requires a clean exit within the shutdown budget.
func (d *daemon) stop(t *testing.T) {
	t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("signal memlock-exporter: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- d.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("memlock-exporter exited with %v after SIGTERM:\n%s", err, d.stderr)
		}
	case <-time.After(15 * time.Second):
		d.cmd.Process.Kill()
		t.Fatalf("memlock-exporter did not exit within 15s of SIGTERM:\n%s", d.stderr)
	}
}

// received is one log record as the collector stored it.
type received struct {
	res    pcommon.Resource
	scope  pcommon.InstrumentationScope
	record plog.LogRecord
	// attrs are the record's attributes with its resource's process
	// identity (callAttrs).
	attrs pcommon.Map
}

// recordsOf returns the records whose attributes, with their resource's
// process identity (callAttrs), keep accepts.
func recordsOf(logs plog.Logs, keep func(pcommon.Map) bool) []received {
	var out []received
	for _, rl := range logs.ResourceLogs().All() {
		for _, sl := range rl.ScopeLogs().All() {
			for _, lr := range sl.LogRecords().All() {
				attrs := callAttrs(rl.Resource(), lr.Attributes())
				if keep(attrs) {
					out = append(out, received{rl.Resource(), sl.Scope(), lr, attrs})
				}
			}
		}
	}
	return out
}

// all keeps every record.
func all(pcommon.Map) bool { return true }

// callAttrs returns a call's attributes (a record's or a span's) together
// with the process identity its resource carries
// (semconv.ProcessResourceAttributes): everything that describes the call.
func callAttrs(res pcommon.Resource, attrs pcommon.Map) pcommon.Map {
	m := pcommon.NewMap()
	attrs.CopyTo(m)
	for _, k := range semconv.ProcessResourceAttributes {
		if v, ok := res.Attributes().Get(string(k)); ok {
			v.CopyTo(m.PutEmpty(string(k)))
		}
	}
	return m
}

func intAttr(m pcommon.Map, key string) (int64, bool) {
	v, ok := m.Get(key)
	if !ok || v.Type() != pcommon.ValueTypeInt {
		return 0, false
	}
	return v.Int(), true
}

// TestExportsEveryCallToCollector is the product's core promise: every call
// of the mlock family the workload makes (it reports them all, and the
// daemon traces all five syscalls by default) arrives at a real collector
// over OTLP/gRPC as exactly one log record with every field right and the
// attributes the schema gives its event, and the metrics count them.
//
// It runs once with our own OTLP encoder (the default) and once through the
// OpenTelemetry SDK's pipelines: both must deliver the same.
func TestExportsEveryCallToCollector(t *testing.T) {
	testutil.RequireRoot(t)
	for _, tc := range []struct {
		name    string
		env     string
		untimed bool
	}{
		{"encoder=default", "MEMLOCK_EXPORTER_LOG_LEVEL=info", false}, // no MEMLOCK_EXPORTER_OTLP_ENCODER: its default must apply
		{"encoder=sdk", "MEMLOCK_EXPORTER_OTLP_ENCODER=sdk", false},
		// Exit hooks only: the same calls and arguments, no duration.
		{"call-duration=off", "MEMLOCK_EXPORTER_CALL_DURATION=off", true},
	} {
		t.Run(tc.name, func(t *testing.T) { testExportsEveryCall(t, tc.env, tc.untimed) })
	}
}

func testExportsEveryCall(t *testing.T, encoderEnv string, untimed bool) {
	col := startCollector(t)
	bin := buildDaemon(t)
	workload := testutil.BuildWorkload(t)
	// Another process calls mlock2 all along: the daemon exports its calls
	// too, and the metrics count them with the workload's.
	noise := testutil.StartNoise(t, workload, 2*time.Millisecond)
	cg, inCgroup := testutil.NewCgroup(t)

	d := startDaemon(t, bin, encoderEnv,
		"OTEL_EXPORTER_OTLP_ENDPOINT="+col.Endpoint(),
		"OTEL_EXPORTER_OTLP_PROTOCOL=", // unset: our default, gRPC, must apply
		"OTEL_LOGS_EXPORTER=", "OTEL_METRICS_EXPORTER=",
		"OTEL_METRIC_EXPORT_INTERVAL=500",
		"OTEL_BLRP_SCHEDULE_DELAY=100",
		"OTEL_SERVICE_NAME=", "OTEL_RESOURCE_ATTRIBUTES=deployment.environment.name=e2e",
		"MEMLOCK_EXPORTER_FLUSH_INTERVAL=50ms",
	)

	start := time.Now()
	calls := runWorkload(t, workload, cg, inCgroup, "--repeat", "2")
	end := time.Now()
	ours := workloadRecords(calls, cg, inCgroup)
	proc := procView{exePath: workload, untimed: untimed}
	if resolved, err := filepath.EvalSymlinks(workload); err == nil {
		proc.exePath = resolved
	}
	if inCgroup {
		proc.cgroup = cgroupFileOf(t, cg.HierarchyPath)
	}

	// Delivered while the daemon runs, not only when it stops.
	col.WaitForLogs(t, 20*time.Second, func(l plog.Logs) bool {
		return len(recordsOf(l, ours)) >= len(calls)
	})
	// The noise's records show that there were others' to leave out.
	col.WaitForLogs(t, 20*time.Second, func(l plog.Logs) bool { return len(recordsOf(l, ofPID(noise.PID()))) > 0 })
	stopped := time.Now()
	// The daemon drains the ring buffer, sends the last records, then the
	// final metrics; the collector writes out all it received.
	d.stop(t)
	col.Stop(t)
	logs, metrics := col.Logs(t), col.Metrics(t)
	got := recordsOf(logs, ours)
	if len(got) != len(calls) {
		t.Errorf("collector has %d records for the workload's processes, want %d (one per call)", len(got), len(calls))
	}
	t.Logf("%d records of the workload's calls, %d of other processes (%d of the noise's)",
		len(got), logs.LogRecordCount()-len(got), len(recordsOf(logs, ofPID(noise.PID()))))

	// Match calls to records by thread, in order.
	byTID := map[int64][]received{}
	for _, r := range got {
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
		for _, d := range checkRecord(byTID[tid][i], c, start, end, proc) {
			t.Errorf("step %s (tid %d): %s", c.Step, tid, d)
		}
	}
	for tid, rs := range byTID {
		if len(rs) > next[tid] {
			t.Errorf("tid %d: %d records, the workload made %d calls", tid, len(rs), next[tid])
		}
	}

	if len(got) > 0 {
		checkResource(t, got[0].res)
		if got[0].scope.Name() != "github.com/memlock-exporter/memlock-exporter" {
			t.Errorf("instrumentation scope %q", got[0].scope.Name())
		}
	}
	checkNothingLost(t, d, metrics)
	checkCallMetrics(t, metrics, logs, calls, stopped, untimed)
}

// workloadRecords returns a filter that keeps the log records of the
// workload's processes: those of its cgroup when it ran in one, else those
// of its pids (and of its main process's children).
func workloadRecords(calls []testutil.WorkloadCall, cg *testutil.Cgroup, inCgroup bool) func(pcommon.Map) bool {
	return workloadAttrs(calls, cg, inCgroup)
}

// ofPID returns a filter that keeps the calls of process pid.
func ofPID(pid int) func(pcommon.Map) bool {
	return func(attrs pcommon.Map) bool {
		got, _ := intAttr(attrs, "process.pid")
		return got == int64(pid)
	}
}

// workloadAttrs is workloadRecords for anything with a call's attributes
// (callAttrs: a span's too).
func workloadAttrs(calls []testutil.WorkloadCall, cg *testutil.Cgroup, inCgroup bool) func(pcommon.Map) bool {
	if inCgroup {
		id := int64(cg.ID)
		return func(attrs pcommon.Map) bool {
			got, ok := intAttr(attrs, "memlock.cgroup.id")
			return ok && got == id
		}
	}
	mainPID := int64(calls[0].PID)
	pids := map[int64]bool{}
	for _, c := range calls {
		pids[int64(c.PID)] = true
	}
	return func(attrs pcommon.Map) bool {
		pid, _ := intAttr(attrs, "process.pid")
		ppid, _ := intAttr(attrs, "process.parent_pid")
		return pids[pid] || ppid == mainPID
	}
}

// procView is what the kernel reads of a workload process, at its first
// call, however briefly it lives.
type procView struct {
	exePath string // the workload binary, symbolic links resolved
	cgroup  string // process.linux.cgroup; "" when any is right
	untimed bool   // MEMLOCK_EXPORTER_CALL_DURATION=off: no memlock.duration
}

// cgroupFileOf is process.linux.cgroup of a process that the test started
// in the cgroup v2 at v2Path: the test's own /proc/self/cgroup (its cgroup
// v1 hierarchies are the process's too), but for the cgroup v2 line; the
// hierarchies without a controller (name=systemd) are not reported.
func cgroupFileOf(t *testing.T, v2Path string) string {
	t.Helper()
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for line := range strings.Lines(string(data)) {
		line = strings.TrimRight(line, "\n")
		parts := strings.SplitN(line, ":", 3)
		switch {
		case len(parts) != 3 || strings.HasPrefix(parts[1], "name="):
		case parts[0] == "0":
			lines = append(lines, "0::"+v2Path)
		default:
			lines = append(lines, line)
		}
	}
	return strings.Join(lines, "\n")
}

// clockSkew is how far a record's timestamp may be off the wall clock:
// 500 ppm of the reader's 10 s between measurements of the boot-to-wall
// offset.
const clockSkew = 5 * time.Millisecond

func checkRecord(r received, c testutil.WorkloadCall, start, end time.Time, proc procView) []string {
	var diffs []string
	lr := r.record
	failed := c.Ret < 0
	ev := bpf.Event{Syscall: syscallByName(c.Syscall), Addr: c.Addr, Len: c.Len, Flags: c.Flags, Ret: c.Ret}

	if got, want := lr.EventName(), "memlock."+c.Syscall; got != want {
		diffs = append(diffs, fmt.Sprintf("EventName %q, want %q", got, want))
	}
	wantSev := plog.SeverityNumberInfo
	if failed {
		wantSev = plog.SeverityNumberWarn
	}
	if lr.SeverityNumber() != wantSev {
		diffs = append(diffs, fmt.Sprintf("severity %v, want %v", lr.SeverityNumber(), wantSev))
	}
	if got, want := lr.Body().Str(), string(ev.AppendCall(nil)); got != want {
		diffs = append(diffs, fmt.Sprintf("body %q, want %q", got, want))
	}
	ts := lr.Timestamp().AsTime()
	if ts.Before(start.Add(-50*time.Millisecond)) || ts.After(end.Add(50*time.Millisecond)) {
		diffs = append(diffs, fmt.Sprintf("timestamp %v outside the workload's run [%v, %v]", ts, start, end))
	}
	// The timestamp is the boot clock's, converted with an offset that
	// the reader measures every 10 s: between two measurements the wall
	// clock may drift from it (NTP slews it by up to 500 ppm).
	if obs := lr.ObservedTimestamp().AsTime(); obs.Before(ts.Add(-clockSkew)) {
		diffs = append(diffs, fmt.Sprintf("observed timestamp %v before the call's %v", obs, ts))
	}

	want := map[string]any{
		"memlock.syscall":               c.Syscall,
		"memlock.return_value":          c.Ret,
		"memlock.probe":                 "tracepoint",
		"process.pid":                   int64(c.PID),
		"process.parent_pid":            int64(c.PPID),
		"thread.id":                     int64(c.TID),
		"thread.name":                   c.Comm,
		"process.executable.name":       "workload",
		"process.user.id":               int64(c.EUID),
		"process.real_user.id":          int64(c.UID),
		"memlock.process.group.id":      int64(c.EGID),
		"memlock.process.real_group.id": int64(c.GID),
	}
	// The range for the calls that take one, the flags for those that
	// take flags (and their names when a bit is set).
	switch c.Syscall {
	case "mlock", "mlock2", "munlock":
		want["memlock.addr"] = int64(c.Addr)
		want["memlock.len"] = int64(c.Len)
		want["memlock.pages"] = int64(bpf.PagesCovered(c.Addr, c.Len, bpf.PageSize))
	}
	switch c.Syscall {
	case "mlock2", "mlockall":
		want["memlock.flags"] = int64(c.Flags)
		if names := bpf.FlagNames(ev.Syscall, c.Flags); len(names) > 0 {
			want["memlock.flag_names"] = names
		}
	}
	if failed {
		want["error.type"] = bpf.Errno(-c.Ret).String()
	}
	// Present with a value we can only bound.
	bounded := map[string]bool{"memlock.duration": true, "memlock.cgroup.id": true, "process.creation.time": true}
	// The process's identity, which the kernel read at its first call.
	want["process.executable.path"] = proc.exePath
	if proc.cgroup != "" {
		want["process.linux.cgroup"] = proc.cgroup
	} else {
		bounded["process.linux.cgroup"] = true
	}

	// The schema lists every attribute an event's record may carry, and
	// those its resource names the process with: what we expect must be
	// among them, and so must what arrived. The process's identity is on
	// the resource only.
	schema := schemaAttributes(lr.EventName())
	for _, k := range semconv.ProcessResourceAttributes {
		schema[string(k)] = true
		if v, ok := lr.Attributes().Get(string(k)); ok {
			diffs = append(diffs, fmt.Sprintf("the record carries %s=%s, which belongs on its resource", k, v.AsString()))
		}
	}
	if _, ok := r.res.Attributes().Get("process.pid"); !ok {
		diffs = append(diffs, "the resource does not name the process (no process.pid)")
	}
	for key := range want {
		if !schema[key] {
			diffs = append(diffs, fmt.Sprintf("expected attribute %s is not in the schema's %s event (semconv.Events)", key, lr.EventName()))
		}
	}

	attrs := r.attrs
	for key, v := range attrs.All() {
		if !schema[key] {
			diffs = append(diffs, fmt.Sprintf("attribute %s=%s is not in the schema's %s event (semconv.Events)", key, v.AsString(), lr.EventName()))
		}
		if bounded[key] {
			continue
		}
		w, ok := want[key]
		if !ok {
			diffs = append(diffs, fmt.Sprintf("unexpected attribute %s=%s", key, v.AsString()))
			continue
		}
		var g any
		switch v.Type() {
		case pcommon.ValueTypeInt:
			g = v.Int()
		case pcommon.ValueTypeStr:
			g = v.Str()
		case pcommon.ValueTypeSlice:
			var ss []string
			for _, e := range v.Slice().All() {
				ss = append(ss, e.Str())
			}
			g = ss
		default:
			g = v.AsRaw()
		}
		if gs, ok := g.([]string); ok {
			if !slices.Equal(gs, w.([]string)) {
				diffs = append(diffs, fmt.Sprintf("%s = %v, want %v", key, gs, w))
			}
		} else if g != w {
			diffs = append(diffs, fmt.Sprintf("%s = %v (%T), want %v (%T)", key, g, g, w, w))
		}
	}
	for key := range want {
		if _, ok := attrs.Get(key); !ok {
			diffs = append(diffs, "missing attribute "+key)
		}
	}
	switch v, ok := attrs.Get("memlock.duration"); {
	case proc.untimed && ok:
		diffs = append(diffs, fmt.Sprintf("memlock.duration %v with the call duration off", v.AsRaw()))
	case !proc.untimed && (!ok || v.Type() != pcommon.ValueTypeDouble || v.Double() <= 0 || v.Double() > 1):
		diffs = append(diffs, fmt.Sprintf("memlock.duration %v not a double in (0, 1] s", v.AsRaw()))
	}
	if _, ok := intAttr(attrs, "memlock.cgroup.id"); !ok {
		diffs = append(diffs, "memlock.cgroup.id missing or not an int")
	}
	// The workload process started after the test did, and before its call.
	if v, ok := attrs.Get("process.creation.time"); !ok {
		diffs = append(diffs, "missing attribute process.creation.time")
	} else if created, err := time.Parse(time.RFC3339Nano, v.Str()); err != nil || created.Before(start.Add(-time.Second)) || created.After(ts) {
		diffs = append(diffs, fmt.Sprintf("process.creation.time %q (%v) not between the test's start %v and the call %v", v.Str(), err, start, ts))
	}
	if _, ok := attrs.Get("process.linux.cgroup"); !ok {
		diffs = append(diffs, "missing attribute process.linux.cgroup")
	}
	return diffs
}

// schemaAttributes returns the attributes semconv.Events lets the event
// named eventName carry (on the record); none for an event it does not
// define.
func schemaAttributes(eventName string) map[string]bool {
	keys := map[string]bool{}
	for _, def := range semconv.Events {
		if def.Name == eventName {
			for _, k := range def.Attributes {
				keys[string(k)] = true
			}
		}
	}
	return keys
}

func checkResource(t *testing.T, res pcommon.Resource) {
	t.Helper()
	attrs := res.Attributes()
	wantStr := map[string]string{
		"service.name":                "memlock-exporter",
		"service.version":             "e2e-test",
		"os.type":                     "linux",
		"deployment.environment.name": "e2e",
	}
	for k, want := range wantStr {
		if v, ok := attrs.Get(k); !ok || v.Str() != want {
			t.Errorf("resource %s = %q, want %q", k, v.AsString(), want)
		}
	}
	for _, k := range []string{"host.name", "os.version"} {
		if v, ok := attrs.Get(k); !ok || v.Str() == "" {
			t.Errorf("resource lacks %s", k)
		}
	}
}

// seriesKey is one series of the call metrics: memlock.syscall and
// error.type ("" on success).
type seriesKey struct{ syscall, errType string }

func (k seriesKey) String() string {
	return fmt.Sprintf("{memlock.syscall=%s, error.type=%q}", k.syscall, k.errType)
}

func seriesOf(attrs pcommon.Map) seriesKey {
	sc, _ := attrs.Get("memlock.syscall")
	et, _ := attrs.Get("error.type")
	return seriesKey{sc.Str(), et.Str()}
}

// hasRange tells the syscalls that take a range, whose calls have a size.
var hasRange = map[string]bool{"mlock": true, "mlock2": true, "munlock": true}

// finalPoints returns, for each metric of the given names, the data points
// of its newest export (cumulative: they hold the totals), with their time.
func finalPoints(metrics pmetric.Metrics, names ...string) map[string]finalExport {
	out := map[string]finalExport{}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	for _, rm := range metrics.ResourceMetrics().All() {
		for _, sm := range rm.ScopeMetrics().All() {
			for _, m := range sm.Metrics().All() {
				if !want[m.Name()] {
					continue
				}
				f := out[m.Name()]
				visit := func(ts pcommon.Timestamp, attrs pcommon.Map, v int64) {
					if ts < f.at {
						return
					}
					if ts > f.at {
						f = finalExport{at: ts, points: map[string]int64{}}
					}
					f.points[attrKey(attrs)] += v
					f.attrs = append(f.attrs, attrs)
				}
				cumulative := false
				switch m.Type() {
				case pmetric.MetricTypeSum:
					cumulative = m.Sum().IsMonotonic() && m.Sum().AggregationTemporality() == pmetric.AggregationTemporalityCumulative
					for _, dp := range m.Sum().DataPoints().All() {
						visit(dp.Timestamp(), dp.Attributes(), dp.IntValue())
					}
				case pmetric.MetricTypeHistogram:
					cumulative = m.Histogram().AggregationTemporality() == pmetric.AggregationTemporalityCumulative
					for _, dp := range m.Histogram().DataPoints().All() {
						visit(dp.Timestamp(), dp.Attributes(), int64(dp.Count()))
					}
				}
				f.kind, f.monotonicCumulative = m.Type(), cumulative
				out[m.Name()] = f
			}
		}
	}
	return out
}

// finalExport is the newest export of one metric: each data point's value
// (a histogram's count) by its attributes (attrKey).
type finalExport struct {
	at                  pcommon.Timestamp
	kind                pmetric.MetricType
	monotonicCumulative bool
	points              map[string]int64
	attrs               []pcommon.Map
}

// attrKey renders a data point's attributes as a map key.
func attrKey(attrs pcommon.Map) string {
	raw := attrs.AsRaw()
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%v,", k, raw[k])
	}
	return b.String()
}

// bySeries re-keys a final export of a call metric by seriesKey.
func (f finalExport) bySeries() map[seriesKey]int64 {
	out := map[seriesKey]int64{}
	for _, attrs := range f.attrs {
		out[seriesOf(attrs)] = f.points[attrKey(attrs)]
	}
	return out
}

// lostByReason returns the newest memlock.events.lost, by memlock.reason.
func lostByReason(metrics pmetric.Metrics) map[string]int64 {
	f, ok := finalPoints(metrics, "memlock.events.lost")["memlock.events.lost"]
	if !ok {
		return nil
	}
	out := map[string]int64{}
	for _, attrs := range f.attrs {
		r, _ := attrs.Get("memlock.reason")
		out[r.Str()] = f.points[attrKey(attrs)]
	}
	return out
}

// checkNothingLost: no event was lost between the kernel and the collector:
// the final memlock.events.lost is 0 for every reason, and the daemon's
// shutdown summary agrees, but for calls that were already under way when
// the hooks were attached (exits without entries: the noise's, or a long
// mlockall of another test's workload), which are the whole host's and
// neither metric nor record counts. Had one been the workload's, its record
// would be missing.
func checkNothingLost(t *testing.T, d *daemon, final pmetric.Metrics) {
	t.Helper()
	lost := lostByReason(final)
	for _, reason := range []string{"ringbuf_full", "missed_entry", "entry_map_full", "program_busy", "repeat_shed", "malformed", "export_failed"} {
		n, ok := lost[reason]
		switch {
		case !ok:
			t.Errorf("final memlock.events.lost has no memlock.reason=%s point: %v", reason, lost)
		case reason == "missed_entry" && n != 0:
			t.Logf("%d calls of other processes under way while the hooks were attached were missed", n)
		case reason != "missed_entry" && n != 0:
			t.Errorf("memlock.events.lost{memlock.reason=%s} = %d, want 0", reason, n)
		}
	}
	stderr := d.stderr.String()
	i := strings.Index(stderr, "memlock-exporter stopped")
	if i < 0 {
		t.Errorf("no shutdown summary:\n%s", stderr)
		return
	}
	line, _, _ := strings.Cut(stderr[i:], "\n")
	for _, m := range regexp.MustCompile(`\b(malformed|\w*export_failures|lost_\w+)=(\d+)`).FindAllStringSubmatch(line, -1) {
		n, _ := strconv.ParseInt(m[2], 10, 64)
		if m[1] == "lost_missed_entry" {
			if n != lost["missed_entry"] {
				t.Errorf("shutdown summary says %s, memlock.events.lost{missed_entry} %d", m[0], lost["missed_entry"])
			}
		} else if n != 0 {
			t.Errorf("shutdown summary reports a loss: %s", m[0])
		}
	}
}

// checkCallMetrics checks the call metrics of a daemon's whole life against
// the log records the collector received from it. The daemon traces every
// process on the host and the metrics carry no pid, so they count the
// workload's calls together with everyone else's; but both signals come from
// the same events, and once nothing was lost (checkNothingLost), the final
// cumulative memlock.calls of each series (memlock.syscall, error.type)
// equals the number of records of that series from all processes, and so do
// the counts of memlock.call.duration (every call) and memlock.call.size
// (the calls that take a range: mlock, mlock2, munlock). The workload's own
// calls are among them. stopped is when the daemon was told to stop: its
// final export, the newest, was collected after.
//
// With untimed (the call duration off) there is no memlock.call.duration.
func checkCallMetrics(t *testing.T, metrics pmetric.Metrics, logs plog.Logs, calls []testutil.WorkloadCall, stopped time.Time, untimed bool) {
	t.Helper()
	// What the records say, from all processes.
	// A folded record stands for memlock.repeat.count calls.
	records, sized := map[seriesKey]int64{}, map[seriesKey]int64{}
	for _, r := range recordsOf(logs, all) {
		k := seriesOf(r.record.Attributes())
		n := int64(1)
		if repeat, ok := intAttr(r.record.Attributes(), "memlock.repeat.count"); ok {
			n = repeat
		}
		records[k] += n
		if hasRange[k.syscall] {
			sized[k] += n
		}
	}
	// Calls whose entry the hooks missed (under way when they were
	// attached) have no record and no duration or size, but memlock.calls
	// counts them by syscall and result all the same: it may exceed the
	// records of a series, by missed_entry calls in all.
	missed := lostByReason(metrics)["missed_entry"]
	// What the workload did.
	own := map[seriesKey]int64{}
	for _, c := range calls {
		k := seriesKey{syscall: c.Syscall}
		if c.Ret < 0 {
			k.errType = bpf.Errno(-c.Ret).String()
		}
		own[k]++
	}

	names := []string{"memlock.calls", "memlock.call.duration", "memlock.call.size", "memlock.events.lost"}
	if untimed {
		if f := finalPoints(metrics, "memlock.call.duration"); len(f) > 0 {
			t.Errorf("memlock.call.duration exported with the call duration off: %+v", f)
		}
		names = slices.DeleteFunc(names, func(n string) bool { return n == "memlock.call.duration" })
	}
	final := finalPoints(metrics, names...)
	for _, name := range names {
		f, ok := final[name]
		if !ok {
			t.Errorf("collector received no %s metric", name)
			continue
		}
		if !f.monotonicCumulative {
			t.Errorf("%s is not cumulative (and, for a sum, monotonic)", name)
		}
		if f.at.AsTime().Before(stopped) {
			t.Errorf("newest %s export was collected at %v, before the daemon was stopped (%v): the final export is missing",
				name, f.at.AsTime(), stopped)
		}
	}
	for _, rm := range metrics.ResourceMetrics().All() {
		for _, sm := range rm.ScopeMetrics().All() {
			for _, m := range sm.Metrics().All() {
				for _, forbidden := range []string{"process.pid", "thread.id", "thread.name", "memlock.addr"} {
					if hasAttr(m, forbidden) {
						t.Errorf("metric %s carries high-cardinality attribute %s", m.Name(), forbidden)
					}
				}
			}
		}
	}

	expected := map[string]map[seriesKey]int64{
		"memlock.calls": records, "memlock.call.duration": records, "memlock.call.size": sized,
	}
	if untimed {
		delete(expected, "memlock.call.duration")
	}
	for name, want := range expected {
		got := final[name].bySeries()
		excess := int64(0) // memlock.calls beyond the records: the missed calls
		for k, n := range want {
			switch {
			case name == "memlock.calls" && got[k] > n:
				excess += got[k] - n
			case got[k] != n:
				t.Errorf("%s%s = %d, but the collector received %d log records of that series", name, k, got[k], n)
			}
		}
		for k, n := range got {
			if _, ok := want[k]; ok {
				continue
			}
			if name == "memlock.calls" {
				excess += n
				continue
			}
			t.Errorf("%s%s = %d, but the collector received no log record of that series", name, k, n)
		}
		if name == "memlock.calls" && excess != missed {
			t.Errorf("memlock.calls exceeds the log records by %d calls in all, but memlock.events.lost{missed_entry} = %d: only missed calls may lack a record", excess, missed)
		}
		for k, n := range own {
			if name == "memlock.call.size" && !hasRange[k.syscall] {
				continue
			}
			if got[k] < n {
				t.Errorf("%s%s = %d, below the workload's own %d calls", name, k, got[k], n)
			}
		}
	}
	total := int64(0)
	for _, n := range records {
		total += n
	}
	t.Logf("memlock.calls and the histograms agree with %d log records in %d series, %d of them the workload's calls", total, len(records), len(calls))
}

func hasAttr(m pmetric.Metric, key string) bool {
	check := func(a pcommon.Map) bool { _, ok := a.Get(key); return ok }
	switch m.Type() {
	case pmetric.MetricTypeSum:
		for _, dp := range m.Sum().DataPoints().All() {
			if check(dp.Attributes()) {
				return true
			}
		}
	case pmetric.MetricTypeHistogram:
		for _, dp := range m.Histogram().DataPoints().All() {
			if check(dp.Attributes()) {
				return true
			}
		}
	case pmetric.MetricTypeGauge:
		for _, dp := range m.Gauge().DataPoints().All() {
			if check(dp.Attributes()) {
				return true
			}
		}
	}
	return false
}

func syscallByName(name string) bpf.Syscall {
	for s := bpf.SyscallMlock; s.Valid(); s++ {
		if s.String() == name {
			return s
		}
	}
	return bpf.SyscallUnknown
}

// runWorkload runs the workload in the test's cgroup when it has one
// (inCgroup), else as a plain child, and returns the calls it made.
func runWorkload(t testing.TB, workload string, cg *testutil.Cgroup, inCgroup bool, args ...string) []testutil.WorkloadCall {
	t.Helper()
	if inCgroup {
		return cg.RunWorkload(t, workload, args...)
	}
	return testutil.RunWorkload(t, workload, args...)
}
