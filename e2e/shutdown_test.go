//go:build linux

package e2e

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/memlock-exporter/memlock-exporter/internal/testutil"
)

// TestShutdownDuringOutage: SIGTERM while the collector is gone and
// records wait in the export queue, retried, is still a clean exit: the
// daemon gives up on them once its shutdown budget
// (MEMLOCK_EXPORTER_SHUTDOWN_TIMEOUT, 2 s here) is spent, exits 0 within
// it (plus slack for draining the ring buffer and exiting), says in its
// summary how many records and spans were not delivered (at least those of
// the calls made during the outage), and leaves none of its BPF programs,
// links or maps behind: read from /proc/<pid>/fdinfo while it runs, each
// is gone from its ID once it has exited.
func TestShutdownDuringOutage(t *testing.T) {
	testutil.RequireRoot(t)
	col := startRestartableCollector(t)
	bin := buildDaemon(t)
	workload := testutil.BuildWorkload(t)
	cg, inCgroup := testutil.NewCgroup(t)
	run := func(args ...string) []testutil.WorkloadCall {
		if inCgroup {
			return cg.RunWorkload(t, workload, args...)
		}
		return testutil.RunWorkload(t, workload, args...)
	}

	const budget = 2 * time.Second
	d := startDaemon(t, bin,
		"OTEL_EXPORTER_OTLP_ENDPOINT="+col.Endpoint(),
		"OTEL_BLRP_SCHEDULE_DELAY=100",
		"OTEL_BSP_SCHEDULE_DELAY=100",
		"OTEL_EXPORTER_OTLP_TIMEOUT=500",
		"OTEL_METRIC_EXPORT_INTERVAL=500",
		"MEMLOCK_EXPORTER_FLUSH_INTERVAL=50ms",
		"MEMLOCK_EXPORTER_SHUTDOWN_TIMEOUT="+budget.String(),
	)

	// Exports work: the first calls arrive (some of them will do: what
	// this test is about comes later).
	before := run()
	ours := workloadAttrs(before, cg, inCgroup)
	col.WaitForLogs(t, 20*time.Second, func(l plog.Logs) bool { return distinctRecords(l, ours) > 0 })

	if err := col.kill(); err != nil {
		t.Fatal(err)
	}
	var during []testutil.WorkloadCall
	for range 3 {
		during = append(during, run()...)
		time.Sleep(200 * time.Millisecond)
	}
	// The daemon has noticed, and keeps retrying.
	endpoint := col.Endpoint()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(d.stderr.String(), "cannot reach the collector at "+endpoint) {
		if time.Now().After(deadline) {
			t.Fatalf("10s into the outage the daemon has not said it cannot reach %s:\n%s", endpoint, d.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)

	objs := bpfObjectsOf(t, d.cmd.Process.Pid)
	if len(objs.progs) == 0 || len(objs.links) == 0 {
		t.Fatalf("the running daemon holds no BPF program or link: %v", objs)
	}
	t.Logf("the daemon holds %v", objs)

	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	sent := time.Now()
	done := make(chan error, 1)
	go func() { done <- d.cmd.Wait() }()
	const slack = 2 * time.Second
	select {
	case err := <-done:
		took := time.Since(sent)
		if err != nil {
			t.Errorf("the daemon exited with %v after SIGTERM, want 0", err)
		}
		if took > budget+slack {
			t.Errorf("the daemon took %v to exit after SIGTERM, with a %v shutdown budget (allowing %v more)", took.Round(time.Millisecond), budget, slack)
		}
		t.Logf("the daemon exited %v after SIGTERM (budget %v)", took.Round(time.Millisecond), budget)
	case <-time.After(15 * time.Second):
		d.cmd.Process.Kill()
		<-done
		t.Fatalf("the daemon did not exit within 15s of SIGTERM, with a %v shutdown budget", budget)
	}

	fields, line, ok := shutdownSummary(d.stderr.String())
	if !ok {
		t.Fatalf("no shutdown summary:\n%s", d.stderr)
	}
	t.Logf("%d calls before the outage, %d during it; %s", len(before), len(during), line)
	for _, k := range []string{"export_failures", "span_export_failures"} {
		n, ok := fields[k]
		switch {
		case !ok:
			t.Errorf("the shutdown summary has no %s: %s", k, line)
		case n < int64(len(during)):
			t.Errorf("%s=%d, but the %d calls made while the collector was gone were never delivered", k, n, len(during))
		case n > fields["events"]:
			t.Errorf("%s=%d, more than the %d events the daemon read", k, n, fields["events"])
		}
	}
	if n := strings.Count(d.stderr.String(), "level=ERROR"); n != 0 {
		t.Errorf("%d ERROR lines for a collector that went away", n)
	}
	checkBPFGone(t, objs)
}
