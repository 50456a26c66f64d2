package exporter

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	stdsemconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/memlock-exporter/memlock-exporter/semconv"
)

// fakeCollector is an OTLP receiver over gRPC or HTTP that keeps what it
// receives.
type fakeCollector struct {
	collogspb.UnimplementedLogsServiceServer

	endpoint string
	mu       sync.Mutex
	logs     []*collogspb.ExportLogsServiceRequest
	metrics  []*colmetricspb.ExportMetricsServiceRequest
	traces   []*coltracepb.ExportTraceServiceRequest
	requests int
}

func (c *fakeCollector) Export(_ context.Context, req *collogspb.ExportLogsServiceRequest) (*collogspb.ExportLogsServiceResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.requests++
	c.logs = append(c.logs, req)
	return &collogspb.ExportLogsServiceResponse{}, nil
}

type metricsService struct{ c *fakeCollector }

func (m metricsService) Export(_ context.Context, req *colmetricspb.ExportMetricsServiceRequest) (*colmetricspb.ExportMetricsServiceResponse, error) {
	m.c.mu.Lock()
	defer m.c.mu.Unlock()
	m.c.requests++
	m.c.metrics = append(m.c.metrics, req)
	return &colmetricspb.ExportMetricsServiceResponse{}, nil
}

type grpcMetrics struct {
	colmetricspb.UnimplementedMetricsServiceServer
	metricsService
}

func (g grpcMetrics) Export(ctx context.Context, req *colmetricspb.ExportMetricsServiceRequest) (*colmetricspb.ExportMetricsServiceResponse, error) {
	return g.metricsService.Export(ctx, req)
}

type tracesService struct{ c *fakeCollector }

func (s tracesService) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	s.c.requests++
	s.c.traces = append(s.c.traces, req)
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

type grpcTraces struct {
	coltracepb.UnimplementedTraceServiceServer
	tracesService
}

func (g grpcTraces) Export(ctx context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	return g.tracesService.Export(ctx, req)
}

func startGRPCCollector(t *testing.T) *fakeCollector {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &fakeCollector{endpoint: "http://" + lis.Addr().String()}
	srv := grpc.NewServer()
	collogspb.RegisterLogsServiceServer(srv, c)
	colmetricspb.RegisterMetricsServiceServer(srv, grpcMetrics{metricsService: metricsService{c}})
	coltracepb.RegisterTraceServiceServer(srv, grpcTraces{tracesService: tracesService{c}})
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return c
}

func startHTTPCollector(t *testing.T) *fakeCollector {
	t.Helper()
	c := &fakeCollector{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body = zr
		}
		data, err := io.ReadAll(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var resp proto.Message
		switch r.URL.Path {
		case "/v1/logs":
			req := &collogspb.ExportLogsServiceRequest{}
			if err := proto.Unmarshal(data, req); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			resp, _ = c.Export(r.Context(), req)
		case "/v1/metrics":
			req := &colmetricspb.ExportMetricsServiceRequest{}
			if err := proto.Unmarshal(data, req); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			resp, _ = metricsService{c}.Export(r.Context(), req)
		case "/v1/traces":
			req := &coltracepb.ExportTraceServiceRequest{}
			if err := proto.Unmarshal(data, req); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			resp, _ = tracesService{c}.Export(r.Context(), req)
		default:
			http.NotFound(w, r)
			return
		}
		out, _ := proto.Marshal(resp)
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	}))
	t.Cleanup(srv.Close)
	c.endpoint = srv.URL
	return c
}

// cleanOTelEnv unsets every variable that could redirect the SDK during a
// test, then sets the given ones.
func cleanOTelEnv(t *testing.T, kv ...string) {
	t.Helper()
	for _, v := range os.Environ() {
		if name, _, _ := strings.Cut(v, "="); strings.HasPrefix(name, "OTEL_") {
			t.Setenv(name, "")
		}
	}
	for i := 0; i+1 < len(kv); i += 2 {
		t.Setenv(kv[i], kv[i+1])
	}
}

func anyString(v *commonpb.AnyValue) string { return v.GetStringValue() }

func TestNewExportsOverOTLP(t *testing.T) {
	for _, tc := range []struct {
		protocol string
		start    func(*testing.T) *fakeCollector
	}{
		{"grpc", startGRPCCollector},
		{"http/protobuf", startHTTPCollector},
	} {
		t.Run(tc.protocol, func(t *testing.T) {
			c := tc.start(t)
			cleanOTelEnv(t,
				"OTEL_EXPORTER_OTLP_PROTOCOL", tc.protocol,
				"OTEL_EXPORTER_OTLP_ENDPOINT", c.endpoint)
			sink := &logSink{}
			ctx := context.Background()
			e, err := New(ctx, Options{ServiceVersion: "9.9.9", Logger: slog.New(sink), Endpoint: c.endpoint})
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
			if n := e.ExportFailures(); n != 0 {
				t.Errorf("ExportFailures = %d, want 0", n)
			}
			for _, r := range sink.take() {
				t.Errorf("unexpected diagnostic: %s %s", r.Level, r.Message)
			}

			c.mu.Lock()
			defer c.mu.Unlock()
			var records int
			logIDs := map[string]bool{} // trace ID + span ID of each record
			for _, req := range c.logs {
				for _, rl := range req.GetResourceLogs() {
					res := map[string]string{}
					for _, kv := range rl.GetResource().GetAttributes() {
						res[kv.GetKey()] = anyString(kv.GetValue())
					}
					if res["service.name"] != DefaultServiceName || res["service.version"] != "9.9.9" || res["os.type"] != "linux" {
						t.Errorf("resource = %v", res)
					}
					if rl.GetSchemaUrl() != semconv.SchemaURL {
						t.Errorf("resource schema = %q, want %q", rl.GetSchemaUrl(), semconv.SchemaURL)
					}
					for _, sl := range rl.GetScopeLogs() {
						if sl.GetScope().GetName() != semconv.ScopeName || sl.GetSchemaUrl() != semconv.SchemaURL {
							t.Errorf("scope = %v schema %q", sl.GetScope(), sl.GetSchemaUrl())
						}
						for _, lr := range sl.GetLogRecords() {
							records++
							if lr.GetEventName() != "memlock.mlock2" ||
								anyString(lr.GetBody()) != "mlock2(0x7f3a1c000000, 8192, MLOCK_ONFAULT) = 0" ||
								lr.GetTimeUnixNano() != uint64(ev.Time.UnixNano()) ||
								lr.GetSeverityNumber() != 9 {
								t.Errorf("log record = %v", lr)
							}
							logIDs[string(lr.GetTraceId())+string(lr.GetSpanId())] = true
						}
					}
				}
			}
			if records != 3 {
				t.Errorf("collector received %d log records, want 3", records)
			}
			if len(logIDs) != 3 {
				t.Errorf("log records carry %d distinct trace/span IDs, want 3", len(logIDs))
			}
			var spans int
			for _, req := range c.traces {
				for _, rs := range req.GetResourceSpans() {
					res := map[string]string{}
					for _, kv := range rs.GetResource().GetAttributes() {
						res[kv.GetKey()] = anyString(kv.GetValue())
					}
					if res["service.name"] != DefaultServiceName || res["service.version"] != "9.9.9" || res["os.type"] != "linux" {
						t.Errorf("span resource = %v", res)
					}
					for _, ss := range rs.GetScopeSpans() {
						if ss.GetScope().GetName() != semconv.ScopeName || ss.GetScope().GetVersion() != "9.9.9" || ss.GetSchemaUrl() != semconv.SchemaURL {
							t.Errorf("span scope = %v schema %q", ss.GetScope(), ss.GetSchemaUrl())
						}
						for _, sp := range ss.GetSpans() {
							spans++
							if sp.GetName() != "mlock2" || sp.GetKind() != tracepb.Span_SPAN_KIND_INTERNAL ||
								len(sp.GetParentSpanId()) != 0 ||
								sp.GetStartTimeUnixNano() != uint64(ev.Time.UnixNano()) ||
								sp.GetEndTimeUnixNano() != uint64(ev.Time.Add(ev.Duration).UnixNano()) ||
								sp.GetStatus().GetCode() != tracepb.Status_STATUS_CODE_UNSET {
								t.Errorf("span = %v", sp)
							}
							if !logIDs[string(sp.GetTraceId())+string(sp.GetSpanId())] {
								t.Errorf("span %x/%x: no log record carries its IDs", sp.GetTraceId(), sp.GetSpanId())
							}
						}
					}
				}
			}
			if spans != 3 {
				t.Errorf("collector received %d spans, want 3", spans)
			}
			var calls int64
			for _, req := range c.metrics {
				for _, rm := range req.GetResourceMetrics() {
					for _, sm := range rm.GetScopeMetrics() {
						for _, m := range sm.GetMetrics() {
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
				t.Errorf("collector received %s = %d, want 3", semconv.MetricCalls, calls)
			}
		})
	}
}

func TestDisabledExportsNothing(t *testing.T) {
	c := startHTTPCollector(t)
	cleanOTelEnv(t,
		"OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf",
		"OTEL_EXPORTER_OTLP_ENDPOINT", c.endpoint)
	e, err := New(context.Background(), Options{Disabled: true, Losses: &fakeLosses{}})
	if err != nil {
		t.Fatal(err)
	}
	if e.logger != nil || e.inst != nil {
		t.Errorf("disabled exporter built providers")
	}
	ev := sampleEvent()
	if n := testing.AllocsPerRun(100, func() { e.Handle(&ev) }); n != 0 && !raceEnabled {
		t.Errorf("disabled Handle allocates %.0f times", n)
	}
	if err := e.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if e.ExportFailures() != 0 {
		t.Errorf("ExportFailures = %d", e.ExportFailures())
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.requests != 0 {
		t.Errorf("collector received %d requests from a disabled exporter", c.requests)
	}
}

func TestNoneExporters(t *testing.T) {
	c := startHTTPCollector(t)
	cleanOTelEnv(t,
		"OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf",
		"OTEL_EXPORTER_OTLP_ENDPOINT", c.endpoint,
		"OTEL_LOGS_EXPORTER", "none",
		"OTEL_METRICS_EXPORTER", "none",
		"OTEL_TRACES_EXPORTER", "none")
	e, err := New(context.Background(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if e.logsOn {
		t.Errorf("records are built although OTEL_LOGS_EXPORTER=none")
	}
	if e.tracer != nil {
		t.Errorf("a tracer exists although OTEL_TRACES_EXPORTER=none")
	}
	for _, step := range e.shutdowns {
		if len(step) != 0 {
			t.Errorf("%d providers to shut down although every exporter is none", len(step))
		}
	}
	ev := sampleEvent()
	e.Handle(&ev)
	if err := e.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.requests != 0 {
		t.Errorf("collector received %d requests", c.requests)
	}
}

func TestBadExporterVariable(t *testing.T) {
	for _, name := range []string{"OTEL_LOGS_EXPORTER", "OTEL_METRICS_EXPORTER", "OTEL_TRACES_EXPORTER"} {
		cleanOTelEnv(t, name, "carrier-pigeon")
		if _, err := New(context.Background(), Options{}); err == nil {
			t.Errorf("New accepted %s=carrier-pigeon", name)
		}
	}
}

// TestShutdownWhenCollectorDown: with nothing listening, Shutdown gives up
// when its context ends, the records are counted as undelivered and the
// operator is told once.
func TestShutdownWhenCollectorDown(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	endpoint := "http://" + lis.Addr().String()
	lis.Close()
	cleanOTelEnv(t,
		"OTEL_EXPORTER_OTLP_PROTOCOL", "grpc",
		"OTEL_EXPORTER_OTLP_ENDPOINT", endpoint,
		// The batch span processor's final export is not bound by
		// Shutdown's context but by the exporter's own timeout (10s by
		// default), retrying until then.
		"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "500")
	sink := &logSink{}
	e, err := New(context.Background(), Options{Logger: slog.New(sink), Endpoint: endpoint})
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
	// The batch processor may finish its last export just after Shutdown
	// gave up waiting for it.
	for deadline := time.Now().Add(3 * time.Second); e.ExportFailures() < 10 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if got := e.ExportFailures(); got != 10 {
		t.Errorf("ExportFailures = %d, want 10", got)
	}
	for deadline := time.Now().Add(3 * time.Second); e.SpanExportFailures() < 10 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
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
	if warns != 1 {
		t.Errorf("%d 'cannot reach' warnings, want 1", warns)
	}
	if spanWarns != 1 {
		t.Errorf("%d 'cannot export spans' warnings, want 1", spanWarns)
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
		env     []string
		service string
		extra   map[attribute.Key]string
	}{
		{name: "defaults", service: DefaultServiceName},
		{
			name:    "OTEL_SERVICE_NAME wins",
			env:     []string{"OTEL_SERVICE_NAME", "locks-prod", "OTEL_RESOURCE_ATTRIBUTES", "service.name=other,deployment.environment.name=test"},
			service: "locks-prod",
			extra:   map[attribute.Key]string{"deployment.environment.name": "test"},
		},
		{
			name:    "OTEL_RESOURCE_ATTRIBUTES",
			env:     []string{"OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attrs,host.name=override"},
			service: "from-attrs",
			extra:   map[attribute.Key]string{"host.name": "override"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cleanOTelEnv(t, tc.env...)
			res, err := newResource(context.Background(), "1.0.0")
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
