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
