package exporter

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"

	"github.com/memlock-exporter/memlock-exporter/bpf"
	"github.com/memlock-exporter/memlock-exporter/procfs"
	"github.com/memlock-exporter/memlock-exporter/semconv"
)

// fakeProcRoot is a procfs tree in a temporary directory with the files
// the locked-memory gauges read.
type fakeProcRoot struct {
	t    *testing.T
	root string
}

func newFakeProcRoot(t *testing.T, mlockedKB uint64) *fakeProcRoot {
	t.Helper()
	f := &fakeProcRoot{t: t, root: t.TempDir()}
	f.write("meminfo", fmt.Sprintf("MemTotal:        8000000 kB\nUnevictable:        2048 kB\nMlocked:         %8d kB\nSwapTotal:             0 kB\n", mlockedKB))
	return f
}

func (f *fakeProcRoot) write(name, data string) {
	f.t.Helper()
	path := filepath.Join(f.root, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

// process writes /proc/<pid>/status and limits; limit "unlimited" or a
// byte count.
func (f *fakeProcRoot) process(pid uint32, name string, vmLckKB uint64, limit string) {
	f.t.Helper()
	dir := strconv.FormatUint(uint64(pid), 10)
	f.write(dir+"/status", fmt.Sprintf("Name:\t%s\nTgid:\t%d\nPid:\t%d\nNSpid:\t%d\nVmLck:\t%8d kB\nVmPin:\t       0 kB\n", name, pid, pid, pid, vmLckKB))
	f.write(dir+"/limits", "Limit                     Soft Limit           Hard Limit           Units     \n"+
		"Max stack size            8388608              unlimited            bytes     \n"+
		fmt.Sprintf("Max locked memory         %-20s %-20s bytes     \n", limit, limit)+
		"Max address space         unlimited            unlimited            bytes     \n")
}

// zombie drops VmLck from a process's status, as for a zombie.
func (f *fakeProcRoot) zombie(pid uint32) {
	f.t.Helper()
	f.write(strconv.FormatUint(uint64(pid), 10)+"/status", fmt.Sprintf("Name:\tx\nState:\tZ (zombie)\nTgid:\t%d\n", pid))
}

func (f *fakeProcRoot) exit(pid uint32) {
	f.t.Helper()
	if err := os.RemoveAll(filepath.Join(f.root, strconv.FormatUint(uint64(pid), 10))); err != nil {
		f.t.Fatal(err)
	}
}

func callFrom(pid uint32, exe string) *bpf.Event {
	ev := sampleEvent()
	ev.PID, ev.TID, ev.ExeName, ev.Comm = pid, pid, exe, exe
	return &ev
}

// gaugeByPID returns the int64 gauge's points by process.pid, checking
// each carries exactly process.pid and process.executable.name.
func gaugeByPID(t *testing.T, m metricdata.Metrics, names map[int64]string) map[int64]int64 {
	t.Helper()
	g, ok := m.Data.(metricdata.Gauge[int64])
	if !ok {
		t.Fatalf("%s is %T, want an int64 gauge", m.Name, m.Data)
	}
	out := map[int64]int64{}
	for _, dp := range g.DataPoints {
		pid, ok := dp.Attributes.Value(semconv.ProcessPIDKey)
		if !ok {
			t.Errorf("%s: point without process.pid: %v", m.Name, dp.Attributes.ToSlice())
			continue
		}
		name, _ := dp.Attributes.Value(semconv.ProcessExecutableNameKey)
		if dp.Attributes.Len() != 2 || name.AsString() != names[pid.AsInt64()] {
			t.Errorf("%s: attributes %v, want process.pid and process.executable.name=%q", m.Name, dp.Attributes.ToSlice(), names[pid.AsInt64()])
		}
		out[pid.AsInt64()] = dp.Value
	}
	return out
}

func limitNearRecords(t *testing.T, rig *testRig) []received {
	t.Helper()
	var out []received
	for _, r := range rig.records(t) {
		if r.record.GetEventName() == semconv.EventLimitNear {
			out = append(out, r)
		}
	}
	return out
}

func bodiesOf(recs []received) []string {
	var out []string
	for _, r := range recs {
		out = append(out, r.record.GetBody().GetStringValue())
	}
	return out
}

// sampleAndCollect takes a locked-memory reading, as every metric interval,
// and collects the metrics.
func sampleAndCollect(t *testing.T, rig *testRig) map[string]metricdata.Metrics {
	t.Helper()
	rig.exp.locked.sample()
	return collect(t, rig)
}

func TestSystemLockedAlways(t *testing.T) {
	proc := newFakeProcRoot(t, 1500)
	rig := newRig(t, Options{Locked: procfs.Locked{Root: proc.root}})
	ms := sampleAndCollect(t, rig)
	m, ok := ms[semconv.MetricSystemLocked]
	if !ok {
		t.Fatalf("no %s", semconv.MetricSystemLocked)
	}
	if m.Unit != "By" || m.Description != semconv.MetricSystemLockedDescription {
		t.Errorf("unit %q, description %q", m.Unit, m.Description)
	}
	g := m.Data.(metricdata.Gauge[int64])
	if len(g.DataPoints) != 1 || g.DataPoints[0].Value != 1500*1024 || g.DataPoints[0].Attributes.Len() != 0 {
		t.Errorf("points = %+v, want one of %d bytes without attributes", g.DataPoints, 1500*1024)
	}
	for _, name := range []string{semconv.MetricProcessLocked, semconv.MetricProcessLimit} {
		if _, ok := ms[name]; ok {
			t.Errorf("%s reported without ProcessMetrics", name)
		}
	}

	// An unreadable meminfo is an error of the collection, not a crash.
	if err := os.Remove(filepath.Join(proc.root, "meminfo")); err != nil {
		t.Fatal(err)
	}
	rig.exp.locked.sample()
	ms, err := collectErr(t, rig)
	if err == nil {
		t.Error("collection without /proc/meminfo reported no error")
	}
	if m, ok := ms[semconv.MetricSystemLocked]; ok && len(m.Data.(metricdata.Gauge[int64]).DataPoints) != 0 {
		t.Errorf("%s reported without /proc/meminfo", semconv.MetricSystemLocked)
	}
}

func TestProcessGauges(t *testing.T) {
	proc := newFakeProcRoot(t, 0)
	proc.process(100, "postgres", 900, "1048576") // 900 KiB of 1 MiB: above 0.9
	proc.process(200, "gpg-agent", 64, "8388608") // 64 KiB of 8 MiB
	proc.process(300, "dpdk-app", 4096, "unlimited")
	rig := newRig(t, Options{Locked: procfs.Locked{Root: proc.root}, ProcessMetrics: true})
	names := map[int64]string{100: "postgres", 200: "gpg-agent", 300: "dpdk-app", 400: "gone"}
	for pid, name := range names {
		rig.exp.Handle(callFrom(uint32(pid), name))
	}
	rig.exp.Handle(callFrom(100, "postgres")) // seen twice, one series
	// pid 400 exited before the reading.

	ms := sampleAndCollect(t, rig)
	locked := gaugeByPID(t, ms[semconv.MetricProcessLocked], names)
	want := map[int64]int64{100: 900 << 10, 200: 64 << 10, 300: 4096 << 10}
	if fmt.Sprint(locked) != fmt.Sprint(want) {
		t.Errorf("%s = %v, want %v", semconv.MetricProcessLocked, locked, want)
	}
	limit := gaugeByPID(t, ms[semconv.MetricProcessLimit], names)
	// Unlimited (pid 300) has no point.
	want = map[int64]int64{100: 1 << 20, 200: 8 << 20}
	if fmt.Sprint(limit) != fmt.Sprint(want) {
		t.Errorf("%s = %v, want %v", semconv.MetricProcessLimit, limit, want)
	}
	for _, name := range []string{semconv.MetricProcessLocked, semconv.MetricProcessLimit} {
		if m := ms[name]; m.Unit != "By" {
			t.Errorf("%s: unit %q, want By", name, m.Unit)
		}
	}

	// The exited process was forgotten; one that exits now is forgotten
	// at the next reading, and a zombie too.
	w := rig.exp.locked
	w.mu.Lock()
	_, kept := w.tracked[400]
	w.mu.Unlock()
	if kept {
		t.Error("pid 400 still tracked after it was found gone")
	}
	proc.exit(200)
	proc.zombie(300)
	ms = sampleAndCollect(t, rig)
	locked = gaugeByPID(t, ms[semconv.MetricProcessLocked], names)
	if _, ok := locked[200]; ok {
		t.Error("exited pid 200 still reported")
	}
	if _, ok := locked[300]; ok {
		t.Error("zombie pid 300 still reported")
	}
	w.mu.Lock()
	n := len(w.tracked)
	w.mu.Unlock()
	if n != 1 {
		t.Errorf("%d processes tracked, want 1 (pid 100)", n)
	}
}

func TestProcessGaugesBounded(t *testing.T) {
	proc := newFakeProcRoot(t, 0)
	for pid := uint32(1); pid <= 5; pid++ {
		proc.process(pid, "p", 4, "65536")
	}
	rig := newRig(t, Options{Locked: procfs.Locked{Root: proc.root}, ProcessMetrics: true, ProcessMetricsMax: 3})
	for pid := uint32(1); pid <= 5; pid++ {
		rig.exp.Handle(callFrom(pid, "p"))
		rig.exp.Handle(callFrom(pid, "p"))
	}
	ms := sampleAndCollect(t, rig)
	if n := len(gaugeByPID(t, ms[semconv.MetricProcessLocked], map[int64]string{1: "p", 2: "p", 3: "p"})); n != 3 {
		t.Errorf("%d processes reported, want the first 3", n)
	}
	sum, ok := ms[semconv.MetricProcessUntracked].Data.(metricdata.Sum[int64])
	if !ok || len(sum.DataPoints) != 1 || sum.DataPoints[0].Value != 4 || !sum.IsMonotonic {
		t.Errorf("%s = %+v, want 4 (two calls each of pids 4 and 5)", semconv.MetricProcessUntracked, ms[semconv.MetricProcessUntracked].Data)
	}

	// When a tracked process exits, its room goes to the next caller.
	proc.exit(1)
	rig.exp.locked.sample()
	rig.exp.Handle(callFrom(4, "p"))
	ms = sampleAndCollect(t, rig)
	got := gaugeByPID(t, ms[semconv.MetricProcessLocked], map[int64]string{2: "p", 3: "p", 4: "p"})
	if _, ok := got[4]; !ok || len(got) != 3 {
		t.Errorf("reported pids %v, want 2, 3 and 4", got)
	}
}

func TestLimitNear(t *testing.T) {
	proc := newFakeProcRoot(t, 0)
	proc.process(100, "postgres", 900, "1048576")   // 0.88 of the limit
	proc.process(200, "gpg-agent", 1000, "1048576") // 0.98
	proc.process(300, "dpdk-app", 1<<20, "unlimited")
	proc.process(400, "capped", 2048, "1048576") // over: CAP_IPC_LOCK
	// Process metrics off: the warnings still come.
	rig := newRig(t, on(Options{Locked: procfs.Locked{Root: proc.root}}))
	for pid, name := range map[uint32]string{100: "postgres", 200: "gpg-agent", 300: "dpdk-app", 400: "capped"} {
		rig.exp.Handle(callFrom(pid, name))
	}

	rig.exp.locked.sample()
	all := rig.records(t)
	var got []received
	// A warning goes under the very resource of its process's calls, in
	// one group with them when they share a batch, as here.
	callResources := map[*resourcepb.Resource]bool{}
	for _, r := range all {
		if r.record.GetEventName() == semconv.EventLimitNear {
			got = append(got, r)
		} else {
			callResources[r.resource] = true
		}
	}
	want := []string{
		"pid 200 (gpg-agent) holds 1000 KiB locked of its 1 MiB limit",
		"pid 400 (capped) holds 2 MiB locked of its 1 MiB limit",
	}
	if strings.Join(slices.Sorted(slices.Values(bodiesOf(got))), "\n") != strings.Join(want, "\n") {
		t.Errorf("limit_near bodies = %q, want %q", bodiesOf(got), want)
	}
	for _, rec := range got {
		r := rec.record
		if r.GetSeverityNumber() != severityWarn {
			t.Errorf("severity %v, want WARN", r.GetSeverityNumber())
		}
		if r.GetTimeUnixNano() != uint64(observedAt.UnixNano()) {
			t.Errorf("timestamp %d, want the reading's time", r.GetTimeUnixNano())
		}
		if len(r.GetTraceId()) != 0 {
			t.Errorf("a warning carries a trace ID")
		}
		// Under the resource of the process's calls.
		res := attrsOf(t, rec.resource.GetAttributes())
		pid := res[semconv.ProcessPIDKey].AsInt64()
		if !callResources[rec.resource] {
			t.Errorf("pid %d: the warning is not grouped with its process's calls (resource %v)", pid, identityOf(res))
		}
		wantAttrs := attrs{
			semconv.LockedKey: attribute.Int64Value(map[int64]int64{200: 1000 << 10, 400: 2 << 20}[pid]),
			semconv.LimitKey:  attribute.Int64Value(1 << 20),
		}
		for _, d := range diffAttrs(attrsOf(t, r.GetAttributes()), wantAttrs) {
			t.Errorf("pid %d: %s", pid, d)
		}
	}
	if n := len(rig.sentSpans(t)); n != 4 {
		t.Errorf("%d spans, want 4: one per call, none for the warnings", n)
	}

	// Once per process per reading.
	rig.exp.locked.sample()
	if n := len(limitNearRecords(t, rig)); n != 4 {
		t.Errorf("%d limit_near records after two readings, want 4", n)
	}

	// A lower fraction catches pid 100 too.
	rig2 := newRig(t, on(Options{Locked: procfs.Locked{Root: proc.root}, LimitWarnFraction: 0.5}))
	rig2.exp.Handle(callFrom(100, "postgres"))
	rig2.exp.locked.sample()
	if got := bodiesOf(limitNearRecords(t, rig2)); len(got) != 1 || !strings.HasPrefix(got[0], "pid 100 (postgres) holds 900 KiB") {
		t.Errorf("limit_near at 0.5 = %q", got)
	}
}

func TestLimitNearWithoutLogs(t *testing.T) {
	proc := newFakeProcRoot(t, 0)
	proc.process(200, "gpg-agent", 1000, "1048576")
	rig := newRig(t, Options{Locked: procfs.Locked{Root: proc.root}, Spans: Destination{Kind: ToOTLP}})
	rig.exp.Handle(callFrom(200, "gpg-agent"))
	rig.exp.locked.sample()
	if n := len(rig.sentSpans(t)); n != 1 {
		t.Errorf("%d spans, want 1, for the call only", n)
	}
	if n := len(rig.exp.locked.tracked); n != 0 {
		t.Errorf("%d processes tracked with neither logs nor process metrics", n)
	}
}

func TestLockedOptions(t *testing.T) {
	for _, o := range []Options{{ProcessMetricsMax: -1}, {LimitWarnFraction: 1.5}, {LimitWarnFraction: -0.1}, {LimitWarnFraction: math.NaN()}} {
		if _, err := o.lockedOptions(); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
	lo, err := (&Options{ProcessMetrics: true}).lockedOptions()
	if err != nil || lo != (lockedOptions{max: 1000, warnFraction: 0.9}) {
		t.Errorf("defaults without Locked = %+v, %v; want no per-process metrics", lo, err)
	}

	// Without Locked: no locked-memory metrics, nothing tracked.
	rig := newRig(t, on(Options{ProcessMetrics: true}))
	rig.exp.Handle(callFrom(100, "x"))
	ms := collect(t, rig)
	for _, name := range []string{semconv.MetricSystemLocked, semconv.MetricProcessLocked, semconv.MetricProcessLimit, semconv.MetricProcessUntracked} {
		if _, ok := ms[name]; ok {
			t.Errorf("%s reported without Locked", name)
		}
	}
	if rig.exp.locked != nil {
		t.Error("a locked-memory watcher without Locked")
	}
}

func TestHumanBytes(t *testing.T) {
	for n, want := range map[uint64]string{
		0: "0 B", 512: "512 B", 1024: "1 KiB", 900 << 10: "900 KiB", 1 << 20: "1 MiB",
		3 << 19: "1.5 MiB", 16 << 30: "16 GiB", 1<<30 + 1<<29: "1.5 GiB",
	} {
		if got := humanBytes(n); got != want {
			t.Errorf("humanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
