//go:build linux

package e2e

import (
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/memlock-exporter/memlock-exporter/internal/testutil"
)

// TestCollectorDownIsNotFatal: with no collector listening, the daemon keeps
// tracing, says so once (not once per failed export), counts what it could
// not send, and still exits 0 within its shutdown budget on SIGTERM.
func TestCollectorDownIsNotFatal(t *testing.T) {
	testutil.RequireRoot(t)
	bin := buildDaemon(t)
	workload := testutil.BuildWorkload(t)
	endpoint := "http://" + testutil.FreeLoopbackAddr(t)

	d := startDaemon(t, bin,
		"OTEL_EXPORTER_OTLP_ENDPOINT="+endpoint,
		"OTEL_BLRP_SCHEDULE_DELAY=50",
		"OTEL_EXPORTER_OTLP_TIMEOUT=300",
		"OTEL_METRIC_EXPORT_INTERVAL=200",
		"MEMLOCK_EXPORTER_FLUSH_INTERVAL=20ms",
		"MEMLOCK_EXPORTER_SHUTDOWN_TIMEOUT=2s",
	)
	var calls int
	for range 3 {
		calls += len(testutil.RunWorkload(t, workload))
		time.Sleep(300 * time.Millisecond) // several failed exports in between
	}
	if err := d.cmd.Process.Signal(syscall.Signal(0)); err != nil {
		t.Fatalf("daemon died while the collector was down: %v\n%s", err, d.stderr)
	}

	start := time.Now()
	d.stop(t)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("shutdown took %v with a 2s budget", took)
	}

	out := d.stderr.String()
	if n := strings.Count(out, "cannot reach the collector at "+endpoint+"; will keep trying"); n != 1 {
		t.Errorf("the outage was reported %d times, want once (then rate-limited):\n%s", n, out)
	}
	if n := strings.Count(out, "level=ERROR"); n != 0 {
		t.Errorf("%d ERROR lines for an unreachable collector:\n%s", n, out)
	}
	m := regexp.MustCompile(`export_failures=(\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no shutdown summary with export_failures:\n%s", out)
	}
	if failures, _ := strconv.Atoi(m[1]); failures < calls {
		t.Errorf("export_failures=%d, but at least the workload's %d records were not delivered", failures, calls)
	}
	t.Logf("%d calls, %s, stderr lines: %d", calls, m[0], strings.Count(out, "\n"))
}

// TestLowRateOutageLosesNothing: at an ordinary rate (the whole script
// every 300 ms, some 100 calls a second, for 8.5 s), a collector that is
// away for 5.5 s in the middle (stopped with SIGTERM, as for an upgrade,
// then started again on the same ports) costs nothing: the records and
// spans made meanwhile wait in the export queue, which holds them easily,
// and every call arrives once as a log record and a span when the
// collector is back. memlock.events.lost counts nothing for export_failed
// or queue_full, and the daemon says the outage ended after at least 5 s.
func TestLowRateOutageLosesNothing(t *testing.T) {
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

	const runFor = 8500 * time.Millisecond
	plan := []collectorOutage{{at: 1500 * time.Millisecond, down: 5500 * time.Millisecond}}
	args := []string{"--for-ms", ms(runFor), "--pause-ms", "300"}
	start := time.Now()
	var w *testutil.Workload
	if inCgroup {
		w = cg.StartWorkload(t, workload, args...)
	} else {
		w = testutil.StartWorkload(t, workload, args...)
	}
	outages := col.runOutages(t, start, plan)
	calls := w.Wait(t)
	end := time.Now()
	res := <-outages
	if res.err != nil {
		t.Fatal(res.err)
	}
	ours := workloadAttrs(calls, cg, inCgroup)
	t.Logf("the workload made %d calls in %v (%.0f a second); the collector was away %v",
		len(calls), end.Sub(start).Round(time.Millisecond), float64(len(calls))/end.Sub(start).Seconds(),
		res.outages[0].Length().Round(time.Millisecond))

	if !waitUntil(20*time.Second, func() bool {
		return distinctRecords(col.Logs(t), ours) >= len(calls) && distinctSpans(col.Traces(t), ours) >= len(calls)
	}) {
		t.Errorf("not every call's record and span had arrived 20 s after the workload ended")
	}
	d.stop(t)
	col.current().Stop(t)

	runs := runsOf(t, col)
	records, dupRecords, dupSpans := deliveredOnce(t, runs, ours, calls, start, end, procOf(t, workload, cg, inCgroup), true)
	// The collector was stopped in order: it answered all it had written.
	if dupRecords != 0 || dupSpans != 0 {
		t.Errorf("%d records and %d spans arrived twice, though the collector answered every request it wrote before it stopped", dupRecords, dupSpans)
	}
	t.Logf("%d records and their spans over %d collector runs", len(records), len(runs))
	checkOutagesReported(t, d, col.Endpoint(), res.outages, 500*time.Millisecond)
	if logs, _ := outagesEnded(t, d.stderr.String(), col.Endpoint()); len(logs) == 1 && logs[0].length < 5*time.Second {
		t.Errorf("the daemon reports an outage of %v, want at least 5s: %s", logs[0].length, logs[0].line)
	}
	checkExportLosses(t, d, col.Metrics(t))
}
