//go:build linux

package e2e

import (
	"testing"
	"time"

	"github.com/memlock-exporter/memlock-exporter/internal/testutil"
)

// TestCollectorRestartsLoseNothing: a collector that crashes and comes
// back costs nothing. While a workload makes its calls at a steady rate
// (the whole script every 150 ms, some 150 calls a second, for 11 s), the
// collector is killed with SIGKILL three times and started again on the
// same ports after 1, 2 and 2.5 s. In the end every call the workload
// reported is one log record and one span at the collector, with every
// field right; a request the collector had written but could not answer
// before it died may arrive twice (at-least-once delivery), and such
// copies are counted, never two in one run of the collector. The daemon
// says that each outage ended, with nothing dropped and an outage= as long
// as the collector was away, and the exporter counts no loss.
func TestCollectorRestartsLoseNothing(t *testing.T) {
	testutil.RequireRoot(t)
	col := startRestartableCollector(t)
	bin := buildDaemon(t)
	workload := testutil.BuildWorkload(t)
	cg, inCgroup := testutil.NewCgroup(t)

	d := startDaemon(t, bin, append([]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT=" + col.Endpoint(),
		"OTEL_BLRP_SCHEDULE_DELAY=100",
		"OTEL_BSP_SCHEDULE_DELAY=100",
		"OTEL_METRIC_EXPORT_INTERVAL=500",
		"MEMLOCK_EXPORTER_FLUSH_INTERVAL=50ms",
	}, outageQueues...)...)

	const runFor = 11 * time.Second
	plan := []collectorOutage{
		{at: 1500 * time.Millisecond, down: 1 * time.Second, kill: true},
		{at: 4 * time.Second, down: 2 * time.Second, kill: true},
		{at: 7500 * time.Millisecond, down: 2500 * time.Millisecond, kill: true},
	}
	args := []string{"--for-ms", ms(runFor), "--pause-ms", "150"}
	start := time.Now()
	var w *testutil.Workload
	if inCgroup {
		w = cg.StartWorkload(t, workload, args...)
	} else {
		w = testutil.StartWorkload(t, workload, args...)
	}
	outages := col.runOutages(t, start, plan)
	calls := w.Wait(t) // reads the workload's lines while the collector comes and goes
	end := time.Now()
	res := <-outages
	if res.err != nil {
		t.Fatal(res.err)
	}
	ours := workloadAttrs(calls, cg, inCgroup)
	t.Logf("the workload made %d calls in %v (%.0f a second); the collector was away %d times",
		len(calls), end.Sub(start).Round(time.Millisecond), float64(len(calls))/end.Sub(start).Seconds(), len(res.outages))

	// Everything arrives while the daemon runs.
	delivered := time.Now()
	if waitUntil(30*time.Second, func() bool {
		return distinctRecords(col.Logs(t), ours) >= len(calls) && distinctSpans(col.Traces(t), ours) >= len(calls)
	}) {
		t.Logf("the last record and span arrived %v after the workload ended", time.Since(delivered).Round(time.Millisecond))
	} else {
		t.Errorf("not every call's record and span had arrived 30 s after the workload ended")
	}
	d.stop(t)
	col.current().Stop(t) // then a late copy would be in its files too

	runs := runsOf(t, col)
	records, dupRecords, dupSpans := deliveredOnce(t, runs, ours, calls, start, end, procOf(t, workload, cg, inCgroup), true)
	t.Logf("%d records and their spans over %d collector runs; %d records and %d spans arrived twice (a kill between the collector's write and its answer)",
		len(records), len(runs), dupRecords, dupSpans)
	checkOutagesReported(t, d, col.Endpoint(), res.outages, 500*time.Millisecond)
	checkExportLosses(t, d, col.Metrics(t))
}
