//go:build linux

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
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
}

func recordsOf(logs plog.Logs, keep func(plog.LogRecord) bool) []received {
	var out []received
	for _, rl := range logs.ResourceLogs().All() {
		for _, sl := range rl.ScopeLogs().All() {
			for _, lr := range sl.LogRecords().All() {
				if keep(lr) {
					out = append(out, received{rl.Resource(), sl.Scope(), lr})
				}
			}
		}
	}
	return out
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
	for _, tc := range []struct{ name, env string }{
		{"encoder=default", "MEMLOCK_EXPORTER_LOG_LEVEL=info"}, // no MEMLOCK_EXPORTER_OTLP_ENCODER: its default must apply
		{"encoder=sdk", "MEMLOCK_EXPORTER_OTLP_ENCODER=sdk"},
	} {
		t.Run(tc.name, func(t *testing.T) { testExportsEveryCall(t, tc.env) })
	}
}

func testExportsEveryCall(t *testing.T, encoderEnv string) {
	col := startCollector(t)
	bin := buildDaemon(t)
	workload := testutil.BuildWorkload(t)

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
	calls := testutil.RunWorkload(t, workload, "--repeat", "2")
	end := time.Now()
	mainPID := calls[0].PID
	pids := map[int64]bool{}
	for _, c := range calls {
		pids[int64(c.PID)] = true
	}
	ours := func(lr plog.LogRecord) bool {
		pid, _ := intAttr(lr.Attributes(), "process.pid")
		ppid, _ := intAttr(lr.Attributes(), "process.parent_pid")
		return pids[pid] || ppid == int64(mainPID)
	}

	logs := col.WaitForLogs(t, 20*time.Second, func(l plog.Logs) bool {
		return len(recordsOf(l, ours)) >= len(calls)
	})
	d.stop(t) // flushes the last metrics
	time.Sleep(300 * time.Millisecond)
	logs = col.Logs(t)
	got := recordsOf(logs, ours)
	if len(got) != len(calls) {
		t.Errorf("collector has %d records for the workload's processes, want %d (one per call)", len(got), len(calls))
	}

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
		for _, d := range checkRecord(byTID[tid][i], c, start, end) {
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
	checkCallMetrics(t, col.Metrics(t), calls)
}

func checkRecord(r received, c testutil.WorkloadCall, start, end time.Time) []string {
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
	if obs := lr.ObservedTimestamp().AsTime(); obs.Before(ts) {
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
	bounded := map[string]bool{"memlock.duration": true, "memlock.cgroup.id": true}

	// The schema lists every attribute an event's record may carry: what
	// we expect must be among them, and so must what arrived.
	schema := schemaAttributes(lr.EventName())
	for key := range want {
		if !schema[key] {
			diffs = append(diffs, fmt.Sprintf("expected attribute %s is not in the schema's %s event (semconv.Events)", key, lr.EventName()))
		}
	}

	attrs := lr.Attributes()
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
	if v, ok := attrs.Get("memlock.duration"); !ok || v.Type() != pcommon.ValueTypeDouble || v.Double() <= 0 || v.Double() > 1 {
		diffs = append(diffs, fmt.Sprintf("memlock.duration %v not a double in (0, 1] s", v.AsRaw()))
	}
	if _, ok := intAttr(attrs, "memlock.cgroup.id"); !ok {
		diffs = append(diffs, "memlock.cgroup.id missing or not an int")
	}
	return diffs
}

// schemaAttributes returns the attributes semconv.Events lets the event
// named eventName carry; none for an event it does not define.
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

// checkCallMetrics compares the last cumulative memlock.calls points, and
// the counts of the memlock.call.duration and memlock.call.size histograms,
// with what the workload did: every call counts, and has a duration, but
// only the calls that take a range (mlock, mlock2, munlock) have a size.
// make test runs packages one at a time (-p 1), so no other test's workload
// runs meanwhile.
func checkCallMetrics(t *testing.T, metrics pmetric.Metrics, calls []testutil.WorkloadCall) {
	t.Helper()
	type key struct{ syscall, errType string }
	want, wantSized := map[key]int64{}, map[key]int64{}
	for _, c := range calls {
		k := key{syscall: c.Syscall}
		if c.Ret < 0 {
			k.errType = bpf.Errno(-c.Ret).String()
		}
		want[k]++
		if c.Syscall == "mlock" || c.Syscall == "mlock2" || c.Syscall == "munlock" {
			wantSized[k]++
		}
	}
	got := map[key]int64{}
	// Histogram counts by metric name, from each one's newest export.
	gotHist := map[string]map[key]int64{}
	latestHist := map[string]pcommon.Timestamp{}
	var latest pcommon.Timestamp
	seen := map[string]bool{}
	for _, rm := range metrics.ResourceMetrics().All() {
		for _, sm := range rm.ScopeMetrics().All() {
			for _, m := range sm.Metrics().All() {
				seen[m.Name()] = true
				for _, forbidden := range []string{"process.pid", "thread.id", "thread.name", "memlock.addr"} {
					if hasAttr(m, forbidden) {
						t.Errorf("metric %s carries high-cardinality attribute %s", m.Name(), forbidden)
					}
				}
				if (m.Name() == "memlock.call.duration" || m.Name() == "memlock.call.size") && m.Type() == pmetric.MetricTypeHistogram {
					if gotHist[m.Name()] == nil {
						gotHist[m.Name()] = map[key]int64{}
					}
					for _, dp := range m.Histogram().DataPoints().All() {
						if dp.Timestamp() < latestHist[m.Name()] {
							continue
						}
						if dp.Timestamp() > latestHist[m.Name()] {
							latestHist[m.Name()] = dp.Timestamp()
							clear(gotHist[m.Name()])
						}
						sc, _ := dp.Attributes().Get("memlock.syscall")
						et, _ := dp.Attributes().Get("error.type")
						gotHist[m.Name()][key{sc.Str(), et.Str()}] = int64(dp.Count())
					}
					continue
				}
				if m.Name() != "memlock.calls" || m.Type() != pmetric.MetricTypeSum {
					continue
				}
				if !m.Sum().IsMonotonic() || m.Sum().AggregationTemporality() != pmetric.AggregationTemporalityCumulative {
					t.Errorf("memlock.calls is not a monotonic cumulative sum")
				}
				for _, dp := range m.Sum().DataPoints().All() {
					// Cumulative: the newest export holds the totals.
					if dp.Timestamp() < latest {
						continue
					}
					if dp.Timestamp() > latest {
						latest = dp.Timestamp()
						clear(got)
					}
					sc, _ := dp.Attributes().Get("memlock.syscall")
					et, _ := dp.Attributes().Get("error.type")
					got[key{sc.Str(), et.Str()}] = dp.IntValue()
				}
			}
		}
	}
	for _, name := range []string{"memlock.calls", "memlock.call.duration", "memlock.call.size", "memlock.events.lost"} {
		if !seen[name] {
			t.Errorf("collector received no %s metric", name)
		}
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("memlock.calls{syscall=%s, error.type=%q} = %d, want %d", k.syscall, k.errType, got[k], n)
		}
	}
	for k, n := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("memlock.calls{syscall=%s, error.type=%q} = %d, the workload made none", k.syscall, k.errType, n)
		}
	}
	for name, wantCounts := range map[string]map[key]int64{"memlock.call.duration": want, "memlock.call.size": wantSized} {
		gotCounts := gotHist[name]
		for k, n := range wantCounts {
			if gotCounts[k] != n {
				t.Errorf("%s{syscall=%s, error.type=%q} has count %d, want %d", name, k.syscall, k.errType, gotCounts[k], n)
			}
		}
		for k, n := range gotCounts {
			if _, ok := wantCounts[k]; !ok {
				t.Errorf("%s{syscall=%s, error.type=%q} has count %d, want no such series", name, k.syscall, k.errType, n)
			}
		}
	}
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
