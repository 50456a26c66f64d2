package exporter

import (
	"context"
	"errors"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/codes"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/memlock-exporter/memlock-exporter/bpf"
	"github.com/memlock-exporter/memlock-exporter/semconv"
)

func spanAttrs(s sdktrace.ReadOnlySpan) attrs {
	out := attrs{}
	for _, kv := range s.Attributes() {
		if _, dup := out[kv.Key]; dup {
			out[kv.Key+" (duplicate)"] = kv.Value
		}
		out[kv.Key] = kv.Value
	}
	return out
}

func diffAttrs(got, want attrs) []string {
	var diffs []string
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			diffs = append(diffs, "missing "+string(k)+"="+w.Emit())
			continue
		}
		if g.Type() != w.Type() || !reflect.DeepEqual(g.AsInterface(), w.AsInterface()) {
			diffs = append(diffs, string(k)+" = "+g.Type().String()+" "+g.Emit()+", want "+w.Type().String()+" "+w.Emit())
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			diffs = append(diffs, "unexpected "+string(k)+"="+g.Emit())
		}
	}
	return diffs
}

// TestSpans: every call is one root span named after the syscall, of kind
// internal, from the call's entry to its exit, with exactly the attributes
// of its log record and an error status on failure; its log record carries
// its trace and span IDs.
func TestSpans(t *testing.T) {
	needPageSize4K(t)
	traceIDs := map[trace.TraceID]string{}
	for _, tc := range recordCases {
		t.Run(tc.name, func(t *testing.T) {
			rig := newRig(t, Options{ServiceVersion: "1.2.3"})
			ev := sampleEvent()
			if tc.mod != nil {
				tc.mod(&ev)
			}
			want := ev
			rig.exp.Handle(&ev)
			ev = bpf.Event{} // Handle must not retain ev

			spans := rig.spans.Ended()
			if len(spans) != 1 {
				t.Fatalf("got %d ended spans, want 1 (started: %d)", len(spans), len(rig.spans.Started()))
			}
			recs := rig.logs.Records()
			if len(recs) != 1 {
				t.Fatalf("got %d records, want 1", len(recs))
			}
			s, r := spans[0], &recs[0]

			if got, want := s.Name(), strings.TrimPrefix(tc.event, "memlock."); got != want {
				t.Errorf("Name = %q, want %q", got, want)
			}
			if got := s.SpanKind(); got != trace.SpanKindInternal {
				t.Errorf("SpanKind = %v, want internal", got)
			}
			if got := s.StartTime(); !got.Equal(want.Time) {
				t.Errorf("StartTime = %v, want the call's entry %v", got, want.Time)
			}
			if got, wantEnd := s.EndTime(), want.Time.Add(want.Duration); !got.Equal(wantEnd) {
				t.Errorf("EndTime = %v, want the call's exit %v", got, wantEnd)
			}
			if got := s.StartTime(); !got.Equal(r.Timestamp()) {
				t.Errorf("StartTime = %v, record's Timestamp %v", got, r.Timestamp())
			}
			wantStatus := sdktrace.Status{Code: codes.Unset}
			if want.Ret < 0 {
				errType, _ := tc.attrs[semconv.ErrorTypeKey]
				wantStatus = sdktrace.Status{Code: codes.Error, Description: errType.AsString()}
			}
			if got := s.Status(); got != wantStatus {
				t.Errorf("Status = %+v, want %+v", got, wantStatus)
			}

			// The same attributes as the log record, and those are right.
			got := spanAttrs(s)
			for _, d := range diffAttrs(got, recordAttrs(r)) {
				t.Errorf("span attribute differs from the record's: %s", d)
			}
			for _, d := range diffAttrs(got, tc.attrs) {
				t.Errorf("span attribute: %s", d)
			}
			if n := s.DroppedAttributes(); n != 0 {
				t.Errorf("%d span attributes dropped", n)
			}
			if len(s.Events()) != 0 || len(s.Links()) != 0 {
				t.Errorf("span has events %v, links %v; want none", s.Events(), s.Links())
			}

			// A root span, sampled, whose IDs the record carries.
			sc := s.SpanContext()
			if !sc.IsValid() || !sc.IsSampled() {
				t.Errorf("span context %+v: want valid and sampled", sc)
			}
			if s.Parent().IsValid() {
				t.Errorf("span has parent %v, want a root span", s.Parent().SpanID())
			}
			if r.TraceID() != sc.TraceID() || r.SpanID() != sc.SpanID() || r.TraceFlags() != sc.TraceFlags() {
				t.Errorf("record's trace context %v/%v/%v, span's %v/%v/%v",
					r.TraceID(), r.SpanID(), r.TraceFlags(), sc.TraceID(), sc.SpanID(), sc.TraceFlags())
			}
			if prev, dup := traceIDs[sc.TraceID()]; dup {
				t.Errorf("trace ID %v already used by %q: each call must be its own trace", sc.TraceID(), prev)
			}
			traceIDs[sc.TraceID()] = tc.name

			scope := s.InstrumentationScope()
			if scope.Name != semconv.ScopeName || scope.SchemaURL != semconv.SchemaURL || scope.Version != "1.2.3" {
				t.Errorf("scope = %+v, want %s %s 1.2.3", scope, semconv.ScopeName, semconv.SchemaURL)
			}
		})
	}
}

// TestSpansOnly: with log records going nowhere (OTEL_LOGS_EXPORTER=none)
// the spans are still made, with their attributes.
func TestSpansOnly(t *testing.T) {
	rig := newRig(t, Options{})
	rig.exp.logsOn = false
	ev := sampleEvent()
	rig.exp.Handle(&ev)
	spans := rig.spans.Ended()
	if len(spans) != 1 {
		t.Fatalf("got %d spans, want 1", len(spans))
	}
	if got := spanAttrs(spans[0]); len(got) != len(process())+9 {
		t.Errorf("span has %d attributes, want %d: %v", len(got), len(process())+9, got)
	}
}

// TestSampledOutSpans: the tracer provider honours OTEL_TRACES_SAMPLER by
// itself; a span the sampler drops is not exported, but its log record
// still carries its (unsampled) trace context.
func TestSampledOutSpans(t *testing.T) {
	cleanOTelEnv(t, "OTEL_TRACES_SAMPLER", "always_off")
	spans := tracetest.NewSpanRecorder()
	rig := newRigWith(t, Options{}, sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans)))
	ev := sampleEvent()
	rig.exp.Handle(&ev)
	if n := len(spans.Ended()); n != 0 {
		t.Errorf("%d spans recorded with OTEL_TRACES_SAMPLER=always_off", n)
	}
	recs := rig.logs.Records()
	if len(recs) != 1 {
		t.Fatalf("got %d records, want 1", len(recs))
	}
	if r := &recs[0]; !r.TraceID().IsValid() || !r.SpanID().IsValid() || r.TraceFlags().IsSampled() {
		t.Errorf("record's trace context %v/%v/%v, want valid IDs, not sampled", r.TraceID(), r.SpanID(), r.TraceFlags())
	}
}

// handleAllocsWithoutSpans is what Handle allocated per event before spans
// existed (with a discarding log processor and a real meter provider): the
// body, the record's attribute storage, and the SDK's record and emit.
// OTEL_TRACES_EXPORTER=none must not add to it.
const handleAllocsWithoutSpans = 8

// TestNoSpansCostNothing: without a tracer provider (what New does for
// OTEL_TRACES_EXPORTER=none), Handle makes no tracer call, exports no span
// and allocates what it did before spans existed.
func TestNoSpansCostNothing(t *testing.T) {
	t.Run("New", func(t *testing.T) {
		cleanOTelEnv(t,
			"OTEL_TRACES_EXPORTER", "none",
			"OTEL_LOGS_EXPORTER", "none",
			"OTEL_METRICS_EXPORTER", "none")
		e, err := New(context.Background(), Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer e.Shutdown(context.Background())
		if e.tracer != nil {
			t.Fatal("New built a tracer for OTEL_TRACES_EXPORTER=none")
		}
	})

	t.Run("allocations", func(t *testing.T) {
		if raceEnabled {
			t.Skip("allocation counts differ under the race detector")
		}
		lp := sdklog.NewLoggerProvider(sdklog.WithProcessor(discardProcessor{}), sdklog.WithAllowKeyDuplication())
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
		e, err := NewWithProviders(lp, mp, nil, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer e.Shutdown(context.Background())
		ev := sampleEvent()
		e.Handle(&ev) // warm the caches
		if got := testing.AllocsPerRun(200, func() { e.Handle(&ev) }); got != handleAllocsWithoutSpans {
			t.Errorf("Handle without spans allocates %.1f times per event, want %d as before spans existed",
				got, handleAllocsWithoutSpans)
		}
	})

	t.Run("no tracer calls", func(t *testing.T) {
		rig := newRigWith(t, Options{}, nil)
		if rig.exp.tracer != nil {
			t.Fatal("a tracer exists without a tracer provider")
		}
		ev := sampleEvent()
		rig.exp.Handle(&ev)
		recs := rig.logs.Records()
		if len(recs) != 1 {
			t.Fatalf("got %d records, want 1", len(recs))
		}
		if r := &recs[0]; r.TraceID().IsValid() || r.SpanID().IsValid() {
			t.Errorf("record without spans carries trace context %v/%v", r.TraceID(), r.SpanID())
		}
	})
}

// flakySpanExporter fails its first `fail` ExportSpans calls, then
// succeeds.
type flakySpanExporter struct {
	fail, calls, delivered int
}

func (f *flakySpanExporter) ExportSpans(_ context.Context, spans []sdktrace.ReadOnlySpan) error {
	f.calls++
	if f.calls <= f.fail {
		return errUnreachable
	}
	f.delivered += len(spans)
	return nil
}
func (f *flakySpanExporter) Shutdown(context.Context) error { return nil }

// TestCountingSpanExporter: failed span exports are counted and reported
// like failed log exports (once, then at most once a minute, then once
// when they succeed again), apart from them, and never twice through the
// SDK's error handler.
func TestCountingSpanExporter(t *testing.T) {
	sink := &logSink{}
	clock := &fakeClock{t: time.Date(2026, 11, 5, 10, 0, 0, 0, time.UTC)}
	diag := newDiagnostics(slog.New(sink), "http://logs:4317", "http://traces:4317")
	diag.now = clock.now
	exp := &countingSpanExporter{SpanExporter: &flakySpanExporter{fail: 4}, diag: diag}
	batch := make([]sdktrace.ReadOnlySpan, 10)
	ctx := context.Background()

	for i := range 3 {
		err := exp.ExportSpans(ctx, batch)
		if !errors.Is(err, errUnreachable) || !errors.As(err, new(reportedError)) {
			t.Fatalf("ExportSpans %d: error %v, want %v marked as reported", i, err, errUnreachable)
		}
		clock.advance(10 * time.Second)
	}
	if got := diag.spansUndelivered.Load(); got != 30 {
		t.Errorf("spans undelivered = %d, want 30", got)
	}
	if got := diag.undelivered.Load(); got != 0 {
		t.Errorf("log records undelivered = %d, want 0: spans are counted apart", got)
	}
	logs := sink.take()
	if len(logs) != 1 || logs[0].Level != slog.LevelWarn ||
		logs[0].Message != "cannot export spans to the collector at http://traces:4317; will keep trying; spans are being dropped" {
		t.Fatalf("3 failures in 30s logged %v, want one warning", logs)
	}
	if v, _ := attrOf(logs[0], "dropped_spans"); v.Uint64() != 10 {
		t.Errorf("dropped_spans = %v, want 10", v)
	}

	// The log outage is its own: it still warns.
	diag.exportFailed(5, errUnreachable)
	if logs := sink.take(); len(logs) != 1 || !strings.HasPrefix(logs[0].Message, "cannot reach the collector at http://logs:4317") {
		t.Errorf("log export failure during a span outage logged %v, want its own warning", logs)
	}

	clock.advance(31 * time.Second)
	_ = exp.ExportSpans(ctx, batch[:4])
	logs = sink.take()
	if len(logs) != 1 || !strings.HasPrefix(logs[0].Message, "still cannot export spans to the collector at http://traces:4317") {
		t.Fatalf("after a minute: %v, want one 'still cannot export spans' warning", logs)
	}
	if v, _ := attrOf(logs[0], "dropped_spans"); v.Uint64() != 24 {
		t.Errorf("dropped_spans = %v, want 24", v)
	}

	if err := exp.ExportSpans(ctx, batch); err != nil {
		t.Fatalf("ExportSpans after recovery: %v", err)
	}
	_ = exp.ExportSpans(ctx, batch)
	logs = sink.take()
	if len(logs) != 1 || logs[0].Level != slog.LevelInfo || logs[0].Message != "span exports to the collector at http://traces:4317 succeed again" {
		t.Fatalf("recovery logged %v, want one INFO", logs)
	}
	if v, _ := attrOf(logs[0], "dropped_spans"); v.Uint64() != 34 {
		t.Errorf("recovery dropped_spans = %v, want 34", v)
	}
	if got := diag.spansUndelivered.Load(); got != 34 {
		t.Errorf("spans undelivered = %d, want 34", got)
	}
}

// TestTracesEndpointDefaultsToEndpoint: span diagnostics name
// Options.TracesEndpoint, or Options.Endpoint when it is empty.
func TestTracesEndpointDefaultsToEndpoint(t *testing.T) {
	for _, tc := range []struct {
		opts Options
		want string
	}{
		{Options{Endpoint: "http://a:4317"}, "cannot export spans to the collector at http://a:4317;"},
		{Options{Endpoint: "http://a:4317", TracesEndpoint: "http://b:4317"}, "cannot export spans to the collector at http://b:4317;"},
		{Options{}, "cannot export spans to the collector;"},
	} {
		sink := &logSink{}
		tc.opts.Logger = slog.New(sink)
		tc.opts.newDiagnostics().spanExportFailed(1, errUnreachable)
		if logs := sink.take(); len(logs) != 1 || !strings.HasPrefix(logs[0].Message, tc.want) {
			t.Errorf("%+v: logged %v, want %q...", tc.opts, logs, tc.want)
		}
	}
}

// keepingSpanExporter keeps every span exported to it, also after
// Shutdown (tracetest.InMemoryExporter forgets them then).
type keepingSpanExporter struct {
	mu    sync.Mutex
	spans []sdktrace.ReadOnlySpan
}

func (k *keepingSpanExporter) ExportSpans(_ context.Context, spans []sdktrace.ReadOnlySpan) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.spans = append(k.spans, spans...)
	return nil
}
func (k *keepingSpanExporter) Shutdown(context.Context) error { return nil }
func (k *keepingSpanExporter) count() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.spans)
}

// TestShutdownFlushesSpans: spans still in the batch span processor are
// exported by Shutdown, as are log records.
func TestShutdownFlushesSpans(t *testing.T) {
	spans := &keepingSpanExporter{}
	// Schedule delays longer than the test: only Shutdown can flush.
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(
		sdktrace.NewBatchSpanProcessor(spans, sdktrace.WithBatchTimeout(time.Hour))))
	logs := &flakyExporter{}
	lp := sdklog.NewLoggerProvider(sdklog.WithProcessor(sdklog.NewBatchProcessor(logs, sdklog.WithExportInterval(time.Hour))))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	e, err := NewWithProviders(lp, mp, tp, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ev := sampleEvent()
	for range 5 {
		e.Handle(&ev)
	}
	if n := spans.count(); n != 0 {
		t.Fatalf("%d spans exported before Shutdown; the test needs them pending", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if n := spans.count(); n != 5 {
		t.Errorf("%d spans exported by Shutdown, want 5", n)
	}
	logs.mu.Lock()
	defer logs.mu.Unlock()
	if logs.delivered != 5 {
		t.Errorf("%d log records exported by Shutdown, want 5", logs.delivered)
	}
}
