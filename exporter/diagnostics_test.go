package exporter

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

// TestOutageReports: an outage is told once when it starts, then at most
// once a minute with the counts since, and once when it ends, with its
// real length (from its first failed attempt) and what it cost; a new
// outage is told at once again. Failed attempts that will be retried lose
// nothing; only a full queue or a final failure does.
func TestOutageReports(t *testing.T) {
	sink := &diagLog{}
	clock := &fakeClock{t: time.Date(2026, 11, 5, 10, 0, 0, 0, time.UTC)}
	diag := newDiagnostics(slog.New(sink), "http://localhost:4317", "http://localhost:4317")
	diag.now = clock.now

	// Three failed attempts within a minute: one warning, nothing lost.
	for range 3 {
		diag.exportRetrying(errUnreachable, time.Second)
		clock.advance(10 * time.Second)
	}
	if got := diag.undelivered.Load(); got != 0 {
		t.Errorf("undelivered = %d after attempts that will be retried, want 0", got)
	}
	logs := sink.take()
	if len(logs) != 1 {
		t.Fatalf("logged %d messages for 3 failures in 30s, want 1: %v", len(logs), logs)
	}
	if logs[0].Level != slog.LevelWarn ||
		logs[0].Message != "cannot reach the collector at http://localhost:4317; will keep trying; records wait in the export queue, and are dropped only when it is full" {
		t.Errorf("first message = %s %q", logs[0].Level, logs[0].Message)
	}
	if v, _ := attrOf(logs[0], "error"); !strings.Contains(v.String(), "connection refused") {
		t.Errorf("first message's error = %v, want the exporter's error", v)
	}

	// The queue overflows during the outage: counted, reported with it.
	diag.queueDropped(24)
	if logs := sink.take(); len(logs) != 0 {
		t.Errorf("a full queue during the outage logged %v, want it in the outage's reports", logs)
	}

	// A minute after the first report, the next failure reports the counts
	// since then.
	clock.advance(31 * time.Second)
	diag.exportRetrying(errUnreachable, time.Second)
	logs = sink.take()
	if len(logs) != 1 || logs[0].Level != slog.LevelWarn || !strings.HasPrefix(logs[0].Message, "still cannot reach the collector") {
		t.Fatalf("after a minute: %v, want one 'still cannot reach' warning", logs)
	}
	if v, _ := attrOf(logs[0], "failed_attempts"); v.Uint64() != 3 {
		t.Errorf("failed_attempts = %v, want 3", v)
	}
	if v, _ := attrOf(logs[0], "dropped_records"); v.Uint64() != 24 {
		t.Errorf("dropped_records = %v, want 24", v)
	}
	diag.exportFailed(1, errUnreachable) // soon after: silent
	diag.queueDropped(3)                 // part of the outage: silent
	if logs := sink.take(); len(logs) != 0 {
		t.Errorf("failures within the minute logged %v", logs)
	}
	if got, full := diag.undelivered.Load(), diag.queueFull.Load(); got != 28 || full != 27 {
		t.Errorf("undelivered = %d (queue full %d), want 28 (27)", got, full)
	}

	// Recovery, 85 s after the first failed attempt: one INFO with the
	// outage's length and total, then silence.
	clock.advance(24 * time.Second)
	for range 3 {
		diag.exportSucceeded()
	}
	logs = sink.take()
	if len(logs) != 1 || logs[0].Level != slog.LevelInfo || logs[0].Message != "exports to the collector at http://localhost:4317 succeed again" {
		t.Fatalf("recovery logged %v, want one INFO", logs)
	}
	if v, _ := attrOf(logs[0], "dropped_records"); v.Uint64() != 28 {
		t.Errorf("recovery dropped_records = %v, want 28", v)
	}
	if v, _ := attrOf(logs[0], "outage"); v.Duration() != 85*time.Second {
		t.Errorf("recovery outage = %v, want 1m25s: from the first failed attempt", v)
	}

	// A new outage warns at once again.
	diag.exportFailed(2, errUnreachable)
	logs = sink.take()
	if len(logs) != 1 || !strings.HasPrefix(logs[0].Message, "cannot reach") {
		t.Errorf("new outage logged %v, want one 'cannot reach' warning", logs)
	}
	if v, _ := attrOf(logs[0], "dropped_records"); v.Uint64() != 2 {
		t.Errorf("new outage dropped_records = %v, want 2", v)
	}

	// Spans are followed apart.
	diag.spanExportRetrying(errUnreachable, time.Second)
	diag.spanExportFailed(5, errUnreachable)
	diag.spanQueueDropped(2)
	logs = sink.take()
	if len(logs) != 1 || !strings.HasPrefix(logs[0].Message, "cannot export spans to the collector at http://localhost:4317") {
		t.Errorf("span outage logged %v", logs)
	}
	if got := diag.spansUndelivered.Load(); got != 7 {
		t.Errorf("spans undelivered = %d, want 7", got)
	}
}

func TestCollectorNameWithoutEndpoint(t *testing.T) {
	sink := &diagLog{}
	d := newDiagnostics(slog.New(sink), "", "")
	d.exportFailed(1, errUnreachable)
	logs := sink.take()
	if len(logs) != 1 || logs[0].Message != "cannot reach the collector; will keep trying; records wait in the export queue, and are dropped only when it is full" {
		t.Errorf("logged %v", logs)
	}
}

// TestQueueFullReported: records dropped from a full queue while exports
// succeed are counted and told about once a minute at most.
func TestQueueFullReported(t *testing.T) {
	sink := &diagLog{}
	clock := &fakeClock{t: time.Date(2026, 11, 5, 10, 0, 0, 0, time.UTC)}
	d := newDiagnostics(slog.New(sink), "", "")
	d.now = clock.now
	d.queueDropped(10)
	d.queueDropped(5)
	clock.advance(time.Minute)
	d.queueDropped(1)
	logs := sink.take()
	if len(logs) != 2 || !strings.HasPrefix(logs[0].Message, "the log export queue is full") {
		t.Fatalf("logged %v, want two 'queue is full' warnings", logs)
	}
	if v, _ := attrOf(logs[1], "dropped_records"); v.Uint64() != 6 {
		t.Errorf("second report dropped_records = %v, want 6", v)
	}
	if got := d.undelivered.Load(); got != 16 {
		t.Errorf("undelivered = %d, want 16", got)
	}
}

func TestSDKErrorsRateLimited(t *testing.T) {
	sink := &diagLog{}
	clock := &fakeClock{t: time.Date(2026, 11, 5, 10, 0, 0, 0, time.UTC)}
	d := newDiagnostics(slog.New(sink), "", "")
	d.now = clock.now
	for range 100 {
		d.sdkError("OpenTelemetry SDK error", errors.New("failed to upload metrics"))
		clock.advance(time.Second)
	}
	logs := sink.take()
	if len(logs) != 2 {
		t.Fatalf("100 errors over 100s logged %d messages, want 2", len(logs))
	}
	if _, ok := attrOf(logs[0], "suppressed"); ok {
		t.Errorf("first message has a suppressed count")
	}
	if v, _ := attrOf(logs[1], "suppressed"); v.Uint64() != 59 {
		t.Errorf("second message suppressed = %v, want 59", v)
	}

	// While the collector is reported unreachable, SDK errors (metric
	// exports failing alike) add nothing to the outage's reports.
	clock.advance(time.Hour)
	d.exportFailed(1, errUnreachable)
	d.sdkError("OpenTelemetry SDK error", errors.New("failed to upload metrics"))
	if logs := sink.take(); len(logs) != 1 || !strings.HasPrefix(logs[0].Message, "cannot reach") {
		t.Errorf("during an outage: %v, want only the outage warning", logs)
	}
}

// TestGlobalHandlers: the SDK's process-wide error handler reports to the
// newest Exporter's diagnostics, rate-limited.
func TestGlobalHandlers(t *testing.T) {
	sink := &diagLog{}
	d := newDiagnostics(slog.New(sink), "", "")
	installGlobalHandlers(d)
	t.Cleanup(func() { activeDiag.Store(nil) })
	for range 5 {
		otel.Handle(errors.New("boom"))
	}
	if logs := sink.take(); len(logs) != 1 {
		t.Errorf("5 SDK errors logged %d messages, want 1", len(logs))
	}
}

// TestStreamFailuresReachDiagnostics: a sink whose collector refuses counts
// what it could not deliver in ExportFailures (hence
// memlock.events.lost{reason=export_failed}) and says so; a full queue
// counts the records dropped, so that sent plus lost is what was handled.
func TestStreamFailuresReachDiagnostics(t *testing.T) {
	t.Run("collector refuses", func(t *testing.T) {
		rig := newRig(t, Options{Logs: Destination{Kind: ToOTLP, send: &fakeSender{err: errUnreachable}}})
		ev := sampleEvent()
		for range 5 {
			rig.exp.Handle(&ev)
		}
		rig.flush()
		if got := rig.exp.ExportFailures(); got != 5 {
			t.Errorf("ExportFailures = %d, want 5", got)
		}
		rig.diagnostics.await(t, "'cannot reach'", func(r slog.Record) bool {
			return r.Level == slog.LevelWarn && strings.HasPrefix(r.Message, "cannot reach")
		})
	})
	t.Run("queue full", func(t *testing.T) {
		stuck := &fakeSender{block: make(chan struct{})}
		rig := newRig(t, Options{Logs: Destination{Kind: ToOTLP, send: stuck,
			Batch: BatchOptions{MaxQueueSize: 40, MaxExportBatch: 10, ScheduleDelay: time.Hour}}})
		const events = 1000
		ev := sampleEvent()
		for range events {
			rig.exp.Handle(&ev)
		}
		close(stuck.block)
		if err := rig.exp.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		sent := len(logsOf(stuck.logRequests(t)))
		lost := rig.exp.ExportFailures()
		if sent == events || lost == 0 {
			t.Fatalf("sent %d, lost %d: the queue never overflowed", sent, lost)
		}
		if uint64(sent)+lost != events {
			t.Errorf("sent %d + lost %d != %d handled", sent, lost, events)
		}
		rig.diagnostics.await(t, "'queue is full'", func(r slog.Record) bool {
			return strings.HasPrefix(r.Message, "the log export queue is full")
		})
	})
}
