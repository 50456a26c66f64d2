//go:build linux

package e2e

import (
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/memlock-exporter/memlock-exporter/internal/testutil"
	"github.com/memlock-exporter/memlock-exporter/procfs"
)

// gaugeValue returns the newest data point of gauge name whose process.pid
// is pid (pid 0: a point without process attributes).
func gaugeValue(m pmetric.Metrics, name string, pid int64) (int64, bool) {
	var (
		val    int64
		found  bool
		latest uint64
	)
	for _, rm := range m.ResourceMetrics().All() {
		for _, sm := range rm.ScopeMetrics().All() {
			for _, metric := range sm.Metrics().All() {
				if metric.Name() != name || metric.Type() != pmetric.MetricTypeGauge {
					continue
				}
				for _, dp := range metric.Gauge().DataPoints().All() {
					p, _ := intAttr(dp.Attributes(), "process.pid")
					if p != pid || uint64(dp.Timestamp()) < latest {
						continue
					}
					latest, val, found = uint64(dp.Timestamp()), dp.IntValue(), true
				}
			}
		}
	}
	return val, found
}

// TestLockedMemoryGauges: while the workload holds a known lock, the
// per-process gauges match what /proc says for its pid, within one page,
// and the system-wide gauge is reported. The gauges of other processes
// (the daemon tracks every process it sees lock memory) are left out by
// pid: the workload's is its own while it runs.
func TestLockedMemoryGauges(t *testing.T) {
	testutil.RequireRoot(t)
	col := startCollector(t)
	bin := buildDaemon(t)
	workload := testutil.BuildWorkload(t)

	d := startDaemon(t, bin,
		"OTEL_EXPORTER_OTLP_ENDPOINT="+col.Endpoint(),
		"OTEL_METRIC_EXPORT_INTERVAL=300",
		"MEMLOCK_EXPORTER_PROCESS_METRICS=on",
		"MEMLOCK_EXPORTER_FLUSH_INTERVAL=20ms",
	)
	defer d.stop(t)

	// It holds its lock much longer than the test waits for it; the
	// test's clean-up kills it.
	w := testutil.StartWorkload(t, workload, "--hold-ms", "60000")
	pid := int64(w.PID())
	for {
		c, ok := w.Next(t)
		if !ok {
			t.Fatal("workload ended before holding its lock")
		}
		if c.Step == "hold_mlock" {
			break
		}
	}
	locked, err := procfs.ReadLocked("/proc", uint32(pid))
	if err != nil {
		t.Fatalf("read VmLck of %d: %v", pid, err)
	}
	limit, unlimited, err := procfs.ReadMemlockLimit("/proc", uint32(pid))
	if err != nil || unlimited {
		t.Fatalf("read memlock limit of %d: %v (unlimited %v)", pid, err, unlimited)
	}

	page := int64(4096)
	within := func(got int64, want uint64) bool { d := got - int64(want); return d >= -page && d <= page }
	m := col.WaitForMetrics(t, 30*time.Second, func(m pmetric.Metrics) bool {
		l, ok1 := gaugeValue(m, "memlock.process.locked", pid)
		_, ok2 := gaugeValue(m, "memlock.process.limit", pid)
		_, ok3 := gaugeValue(m, "memlock.system.locked", 0)
		return ok1 && ok2 && ok3 && within(l, locked)
	})
	got, _ := gaugeValue(m, "memlock.process.locked", pid)
	if !within(got, locked) {
		t.Errorf("memlock.process.locked{pid=%d} = %d, /proc says VmLck %d", pid, got, locked)
	}
	if got, _ := gaugeValue(m, "memlock.process.limit", pid); !within(got, limit) {
		t.Errorf("memlock.process.limit{pid=%d} = %d, /proc says %d", pid, got, limit)
	}
	if v, ok := gaugeValue(m, "memlock.system.locked", 0); !ok || v < int64(locked)-page {
		t.Errorf("memlock.system.locked = %d (present %v), below this one process's %d", v, ok, locked)
	}
	t.Logf("pid %d holds %d bytes locked, limit %d; gauges agree", pid, locked, limit)
}
