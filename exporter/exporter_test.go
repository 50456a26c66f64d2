package exporter

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	stdsemconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/memlock-exporter/memlock-exporter/internal/testutil"
	"github.com/memlock-exporter/memlock-exporter/semconv"
)

// otlpOptions send every signal to c over protocol.
func otlpOptions(protocol, endpoint string) Options {
	logs, traces, metrics := endpoint, endpoint, endpoint
	if protocol != "grpc" {
		logs, traces, metrics = endpoint+"/v1/logs", endpoint+"/v1/traces", endpoint+"/v1/metrics"
	}
	target := func(url string) OTLPTarget {
		return OTLPTarget{Protocol: protocol, Endpoint: url, Timeout: 5 * time.Second}
	}
	return Options{
		Logs:    Destination{Kind: ToOTLP, OTLP: target(logs)},
		Spans:   Destination{Kind: ToOTLP, OTLP: target(traces)},
		Metrics: MetricsOptions{Kind: MetricsToOTLP, OTLP: target(metrics)},
	}
}

// TestNewExportsOverOTLP: every signal reaches a collector over both OTLP
// transports, under our resource and scope, each record linked to its span.
func TestNewExportsOverOTLP(t *testing.T) {
	for _, tc := range []struct {
		protocol string
		start    func(testing.TB) *fakeCollector
	}{
		{"grpc", startGRPCCollector},
		{"http/protobuf", startHTTPCollector},
	} {
		t.Run(tc.protocol, func(t *testing.T) {
			c := tc.start(t)
			sink := &diagLog{}
			opts := otlpOptions(tc.protocol, c.endpoint)
			opts.ServiceVersion, opts.Logger = "9.9.9", slog.New(sink)
			ctx := context.Background()
			e, err := New(ctx, opts)
			if err != nil {
				t.Fatal(err)
			}
			ev := sampleEvent()
			for range 3 {
				e.Handle(&ev)
			}
			sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			if err := e.Shutdown(sctx); err != nil {
				t.Fatalf("Shutdown: %v", err)
			}
			if n := e.ExportFailures() + e.SpanExportFailures(); n != 0 {
				t.Errorf("%d export failures, want 0", n)
			}
			for _, r := range sink.take() {
				t.Errorf("unexpected diagnostic: %s %s", r.Level, r.Message)
			}

			c.mu.Lock()
			defer c.mu.Unlock()
			recs := logsOf(c.logs)
			if len(recs) != 3 {
				t.Fatalf("collector received %d log records, want 3", len(recs))
			}
			logIDs := map[string]bool{}
			for _, r := range recs {
				checkOurResource(t, attrsOf(t, r.resource.GetAttributes()), "9.9.9")
				if r.scope.GetName() != semconv.ScopeName || r.scope.GetVersion() != "9.9.9" {
					t.Errorf("scope = %v", r.scope)
				}
				lr := r.record
				if lr.GetEventName() != "memlock.mlock2" ||
					lr.GetBody().GetStringValue() != "mlock2(0x7f3a1c000000, 8192, MLOCK_ONFAULT) = 0" ||
					lr.GetTimeUnixNano() != uint64(ev.Time.UnixNano()) || lr.GetSeverityNumber() != severityInfo {
					t.Errorf("log record = %v", lr)
				}
				logIDs[string(lr.GetTraceId())+string(lr.GetSpanId())] = true
			}
			if len(logIDs) != 3 {
				t.Errorf("log records carry %d distinct trace/span IDs, want 3", len(logIDs))
			}
			if c.logs[0].GetResourceLogs()[0].GetSchemaUrl() != semconv.SchemaURL {
				t.Errorf("resource schema URL %q", c.logs[0].GetResourceLogs()[0].GetSchemaUrl())
			}
			spans := spansOf(c.traces)
			if len(spans) != 3 {
				t.Fatalf("collector received %d spans, want 3", len(spans))
			}
			for _, s := range spans {
				checkOurResource(t, attrsOf(t, s.resource.GetAttributes()), "9.9.9")
				sp := s.span
				if sp.GetName() != "mlock2" || sp.GetKind() != tracepb.Span_SPAN_KIND_INTERNAL ||
					sp.GetStartTimeUnixNano() != uint64(ev.Time.UnixNano()) ||
					sp.GetEndTimeUnixNano() != uint64(ev.Time.Add(ev.Duration).UnixNano()) {
					t.Errorf("span = %v", sp)
				}
				if !logIDs[string(sp.GetTraceId())+string(sp.GetSpanId())] {
					t.Errorf("span %x/%x: no log record carries its IDs", sp.GetTraceId(), sp.GetSpanId())
				}
			}
			got := map[string]bool{}
			var calls int64
			for _, req := range c.metrics {
				for _, rm := range req.GetResourceMetrics() {
					checkOurResource(t, attrsOf(t, rm.GetResource().GetAttributes()), "9.9.9")
					for _, sm := range rm.GetScopeMetrics() {
						for _, m := range sm.GetMetrics() {
							got[m.GetName()] = true
							if m.GetName() == semconv.MetricCalls {
								for _, dp := range m.GetSum().GetDataPoints() {
									calls = max(calls, dp.GetAsInt())
								}
							}
						}
					}
				}
			}
			if calls != 3 {
				t.Errorf("%s = %d, want 3", semconv.MetricCalls, calls)
			}
			for _, name := range []string{semconv.MetricCalls, semconv.MetricCallDuration, semconv.MetricCallSize, semconv.MetricEventsLost} {
				if !got[name] {
					t.Errorf("collector received no %s", name)
				}
			}
		})
	}
}

func checkOurResource(t *testing.T, res attrs, version string) {
	t.Helper()
	for k, want := range map[attribute.Key]string{
		stdsemconv.ServiceNameKey:    DefaultServiceName,
		stdsemconv.ServiceVersionKey: version,
		stdsemconv.OSTypeKey:         runtime.GOOS,
	} {
		if got := res[k]; got.AsString() != want {
			t.Errorf("resource %s = %q, want %q", k, got.AsString(), want)
		}
	}
}

func TestDisabledExportsNothing(t *testing.T) {
	c := startHTTPCollector(t)
	opts := otlpOptions("http/protobuf", c.endpoint)
	opts.Disabled, opts.Losses = true, &fakeLosses{}
	e, err := New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if e.sinks != nil || e.stats != nil {
		t.Errorf("a disabled exporter built sinks or metrics")
	}
	ev := sampleEvent()
	if n := testing.AllocsPerRun(100, func() { e.Handle(&ev) }); n != 0 && !raceEnabled {
		t.Errorf("disabled Handle allocates %.0f times", n)
	}
	if err := e.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.requests != 0 {
		t.Errorf("collector received %d requests from a disabled exporter", c.requests)
	}
}

// TestNothingOn: with every signal going nowhere, nothing is built to be
// shut down, Handle still counts, and nothing is sent.
func TestNothingOn(t *testing.T) {
	e, err := New(context.Background(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(e.sinks) != 0 || e.enc.ids != nil {
		t.Errorf("%d sinks, trace IDs %v, with every signal off", len(e.sinks), e.enc.ids != nil)
	}
	for _, step := range e.shutdowns {
		if len(step) != 0 {
			t.Errorf("%d things to shut down although every signal is off", len(step))
		}
	}
	ev := sampleEvent()
	e.Handle(&ev)
	var calls uint64
	e.stats.each(func(se *series) { calls += se.calls })
	if calls != 1 {
		t.Errorf("%d calls counted, want 1", calls)
	}
	if err := e.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}

func TestBadTargetStopsNew(t *testing.T) {
	for name, opts := range map[string]Options{
		"log protocol":    {Logs: Destination{Kind: ToOTLP, OTLP: OTLPTarget{Protocol: "carrier-pigeon", Endpoint: "x:1"}}},
		"span endpoint":   {Spans: Destination{Kind: ToOTLP, OTLP: OTLPTarget{Protocol: "grpc"}}},
		"metric CA file":  {Metrics: MetricsOptions{Kind: MetricsToOTLP, OTLP: OTLPTarget{Protocol: "grpc", Endpoint: "https://x:1", CertificateFile: "/nonexistent.pem"}}},
		"log CA file":     {Logs: Destination{Kind: ToOTLP, OTLP: OTLPTarget{Protocol: "http/protobuf", Endpoint: "https://x:1/v1/logs", CertificateFile: "/nonexistent.pem"}}},
		"warn fraction":   {LimitWarnFraction: 2},
		"Prometheus port": {Metrics: MetricsOptions{Kind: MetricsToPrometheus, PrometheusAddr: "127.0.0.1:99999"}},
	} {
		if e, err := New(context.Background(), opts); err == nil {
			_ = e.Shutdown(context.Background())
			t.Errorf("%s: New accepted %+v", name, opts)
		}
	}
}

// TestShutdownWhenCollectorDown: with nothing listening, Shutdown gives up
// when its context ends, the records and spans are counted as undelivered
// and the operator is told once of each.
func TestShutdownWhenCollectorDown(t *testing.T) {
	endpoint := "http://" + testutil.FreeLoopbackAddr(t)
	sink := &diagLog{}
	opts := otlpOptions("grpc", endpoint)
	opts.Metrics = MetricsOptions{}
	opts.Logger = slog.New(sink)
	e, err := New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	ev := sampleEvent()
	for range 10 {
		e.Handle(&ev)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start := time.Now()
	if err := e.Shutdown(ctx); err == nil {
		t.Error("Shutdown succeeded with no collector")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Shutdown took %v with a 1s deadline", d)
	}
	// Shutdown returns once every item is counted: no waiting here.
	if got := e.ExportFailures(); got != 10 {
		t.Errorf("ExportFailures = %d, want 10", got)
	}
	if got := e.SpanExportFailures(); got != 10 {
		t.Errorf("SpanExportFailures = %d, want 10", got)
	}
	var warns, spanWarns int
	for _, r := range sink.take() {
		if strings.HasPrefix(r.Message, "cannot reach the collector at "+endpoint) {
			warns++
		}
		if strings.HasPrefix(r.Message, "cannot export spans to the collector at "+endpoint) {
			spanWarns++
		}
	}
	if warns != 1 || spanWarns != 1 {
		t.Errorf("%d 'cannot reach' and %d 'cannot export spans' warnings, want 1 each", warns, spanWarns)
	}
}

// TestOutageHoldsRecords: records and spans made while the collector is
// down wait in their queues and are all delivered, once each, when it
// comes up; nothing is counted lost, and the end of the outage is told
// with its real length.
func TestOutageHoldsRecords(t *testing.T) {
	addr := testutil.FreeLoopbackAddr(t)
	sink := &diagLog{}
	opts := otlpOptions("grpc", "http://"+addr)
	opts.Metrics = MetricsOptions{}
	opts.Logger = slog.New(sink)
	opts.Logs.Batch.ScheduleDelay = 20 * time.Millisecond
	opts.Spans.Batch.ScheduleDelay = 20 * time.Millisecond
	e, err := New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = e.Shutdown(context.Background()) }()

	const calls = 25
	ev := sampleEvent()
	for i := range calls {
		ev.Len = uint64(4096 * (i + 1)) // tell them apart
		e.Handle(&ev)
	}
	sink.await(t, "the outage's first warning", func(r slog.Record) bool {
		return strings.HasPrefix(r.Message, "cannot reach the collector at http://"+addr)
	})
	down := time.Now()
	time.Sleep(700 * time.Millisecond) // several failed attempts
	c := startGRPCCollectorAt(t, addr)
	up := time.Now()

	waitFor(t, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(logsOf(c.logs)) >= calls && len(spansOf(c.traces)) >= calls
	})
	c.mu.Lock()
	got, spans := logsOf(c.logs), spansOf(c.traces)
	c.mu.Unlock()
	seen := map[int64]int{}
	for _, r := range got {
		seen[attrsOf(t, r.record.GetAttributes())[semconv.LenKey].AsInt64()]++
	}
	for i := range calls {
		if n := seen[int64(4096*(i+1))]; n != 1 {
			t.Errorf("call %d arrived %d times, want once", i, n)
		}
	}
	if len(got) != calls || len(spans) != calls {
		t.Errorf("the collector got %d records and %d spans, want %d each", len(got), len(spans), calls)
	}
	if f, sf := e.ExportFailures(), e.SpanExportFailures(); f != 0 || sf != 0 {
		t.Errorf("ExportFailures = %d, SpanExportFailures = %d after the collector came back, want 0", f, sf)
	}
	ok := sink.await(t, "the end of the outage", func(r slog.Record) bool {
		return strings.HasPrefix(r.Message, "exports to the collector at http://"+addr+" succeed again")
	})
	if v, _ := attrOf(ok, "outage"); v.Duration() < up.Sub(down) {
		t.Errorf("outage = %v, but the collector was down at least %v", v.Duration(), up.Sub(down))
	}
}

func TestResource(t *testing.T) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatal(err)
	}
	release, _, _ := bytes.Cut(u.Release[:], []byte{0})
	hostname, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		user    []attribute.KeyValue
		service string
		extra   map[attribute.Key]string
	}{
		{name: "defaults", service: DefaultServiceName},
		{
			name: "the user's attributes win, the last one of a key",
			user: []attribute.KeyValue{
				attribute.String("service.name", "other"), attribute.String("deployment.environment.name", "test"),
				attribute.String("host.name", "override"), attribute.String("service.name", "locks-prod"),
			},
			service: "locks-prod",
			extra:   map[attribute.Key]string{"deployment.environment.name": "test", "host.name": "override"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := newResource(context.Background(), "1.0.0", tc.user)
			if err != nil {
				t.Fatalf("newResource: %v", err)
			}
			if res.SchemaURL() != semconv.SchemaURL {
				t.Errorf("schema URL = %q, want %q", res.SchemaURL(), semconv.SchemaURL)
			}
			want := map[attribute.Key]string{
				stdsemconv.ServiceNameKey:    tc.service,
				stdsemconv.ServiceVersionKey: "1.0.0",
				stdsemconv.HostNameKey:       hostname,
				stdsemconv.OSTypeKey:         runtime.GOOS,
				stdsemconv.OSVersionKey:      string(release),
			}
			for k, v := range tc.extra {
				want[k] = v
			}
			set := res.Set()
			for k, v := range want {
				got, ok := set.Value(k)
				if !ok || got.AsString() != v {
					t.Errorf("%s = %q (present %v), want %q", k, got.AsString(), ok, v)
				}
			}
			if id, ok := set.Value(stdsemconv.HostIDKey); !ok || id.AsString() == "" {
				t.Errorf("host.id missing")
			}
		})
	}
}

// TestConsole: log records and spans go to the console as OTLP/JSON
// export requests, one per line, which decode to what a collector would
// receive; metrics too, in the SDK's console format.
func TestConsole(t *testing.T) {
	var out testutil.SyncBuffer
	e, err := New(context.Background(), Options{
		Console: &out,
		Logs:    Destination{Kind: ToConsole},
		Spans:   Destination{Kind: ToConsole},
		Metrics: MetricsOptions{Kind: MetricsToConsole, Interval: time.Hour},
	})
	if err != nil {
		t.Fatal(err)
	}
	ev := sampleEvent()
	e.Handle(&ev)
	e.Handle(&ev)
	if err := e.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	var records, spans, metricLines int
	sc := bufio.NewScanner(strings.NewReader(out.String()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var logsReq collogspb.ExportLogsServiceRequest
		var tracesReq coltracepb.ExportTraceServiceRequest
		switch {
		case bytes.Contains(line, []byte(`"resourceLogs"`)):
			if err := protojson.Unmarshal(line, &logsReq); err != nil {
				t.Fatalf("log line does not decode: %v\n%s", err, line)
			}
			for _, r := range logsOf([]*collogspb.ExportLogsServiceRequest{&logsReq}) {
				records++
				if r.record.GetBody().GetStringValue() != "mlock2(0x7f3a1c000000, 8192, MLOCK_ONFAULT) = 0" {
					t.Errorf("record body %q", r.record.GetBody().GetStringValue())
				}
			}
		case bytes.Contains(line, []byte(`"resourceSpans"`)):
			if err := protojson.Unmarshal(line, &tracesReq); err != nil {
				t.Fatalf("span line does not decode: %v\n%s", err, line)
			}
			spans += len(spansOf([]*coltracepb.ExportTraceServiceRequest{&tracesReq}))
		case bytes.Contains(line, []byte(semconv.MetricCalls)):
			metricLines++
		default:
			t.Errorf("unexpected console line %s", line)
		}
	}
	if records != 2 || spans != 2 || metricLines != 1 {
		t.Errorf("console: %d records, %d spans, %d metric exports; want 2, 2, 1:\n%s", records, spans, metricLines, out.String())
	}
}

// TestPrometheus: the metrics are served for scraping, histograms
// included.
func TestPrometheus(t *testing.T) {
	addr := testutil.FreeLoopbackAddr(t)
	e, err := New(context.Background(), Options{Metrics: MetricsOptions{Kind: MetricsToPrometheus, PrometheusAddr: addr}})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Shutdown(context.Background())
	ev := sampleEvent()
	e.Handle(&ev)
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		`memlock_calls_total{memlock_syscall="mlock2"`,
		`memlock_call_duration_seconds_bucket{memlock_syscall="mlock2"`,
		`memlock_call_size_bytes_count{memlock_syscall="mlock2"`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("no %s in the scrape:\n%s", want, body)
		}
	}
	_ = fmt.Sprint
}

// TestPersistentQueue: with a queue directory, records and spans that the
// collector could not take before shutdown stay on the disk and are sent
// at the next start, once each; with the collector up they go straight
// through; a queue too small for them drops the newest, counted.
func TestPersistentQueue(t *testing.T) {
	dir := t.TempDir()
	addr := testutil.FreeLoopbackAddr(t)
	const calls = 40
	start := func(t *testing.T, q QueueOptions) (*Exporter, *diagLog) {
		sink := &diagLog{}
		opts := otlpOptions("grpc", "http://"+addr)
		opts.Metrics = MetricsOptions{}
		opts.Logger = slog.New(sink)
		opts.Queue = q
		for _, b := range []*BatchOptions{&opts.Logs.Batch, &opts.Spans.Batch} {
			b.ScheduleDelay, b.MaxExportBatch = 20*time.Millisecond, 16
		}
		e, err := New(context.Background(), opts)
		if err != nil {
			t.Fatal(err)
		}
		return e, sink
	}
	handle := func(e *Exporter, from int) {
		ev := sampleEvent()
		for i := range calls {
			ev.Len = uint64(4096 * (from + i))
			e.Handle(&ev)
		}
	}

	// The collector is down: everything waits on the disk.
	e, sink := start(t, QueueOptions{Dir: dir})
	handle(e, 1)
	sink.await(t, "the outage's first warning", func(r slog.Record) bool {
		return strings.HasPrefix(r.Message, "cannot reach the collector")
	})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_ = e.Shutdown(ctx)
	kept := sink.await(t, "what was left on the disk", func(r slog.Record) bool {
		return strings.HasPrefix(r.Message, "log records left in the persistent queue")
	})
	if v, _ := attrOf(kept, "records"); v.Int64() != calls {
		t.Errorf("left %v records on the disk, want %d", v, calls)
	}
	if f := e.ExportFailures(); f != 0 {
		t.Errorf("ExportFailures = %d: records kept on the disk are not lost", f)
	}

	// The next start sends them, and new ones after them.
	c := startGRPCCollectorAt(t, addr)
	e, _ = start(t, QueueOptions{Dir: dir})
	handle(e, 1+calls)
	waitFor(t, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(logsOf(c.logs)) >= 2*calls && len(spansOf(c.traces)) >= 2*calls
	})
	if err := e.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	c.mu.Lock()
	got, spans := logsOf(c.logs), spansOf(c.traces)
	c.mu.Unlock()
	seen := map[int64]int{}
	for _, r := range got {
		seen[attrsOf(t, r.record.GetAttributes())[semconv.LenKey].AsInt64()]++
	}
	for i := 1; i <= 2*calls; i++ {
		if n := seen[int64(4096*i)]; n != 1 {
			t.Errorf("call %d arrived %d times, want once", i, n)
		}
	}
	if len(got) != 2*calls || len(spans) != 2*calls {
		t.Errorf("%d records and %d spans arrived, want %d each", len(got), len(spans), 2*calls)
	}

	// A queue with room for less than one request drops, and counts.
	small, _ := start(t, QueueOptions{Dir: t.TempDir(), MaxBytes: 512})
	handle(small, 1)
	_ = small.Shutdown(context.Background())
	if f := small.ExportFailures(); f != calls {
		t.Errorf("ExportFailures = %d with a queue too small for any request, want %d", f, calls)
	}
	if full := small.diag.queueFull.Load(); full != calls {
		t.Errorf("queue_full = %d, want %d", full, calls)
	}
}
