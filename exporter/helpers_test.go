package exporter

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/memlock-exporter/memlock-exporter/bpf"
	"github.com/memlock-exporter/memlock-exporter/semconv"
)

var observedAt = time.Date(2026, 11, 5, 10, 0, 1, 0, time.UTC)

// sampleEvent is an mlock2(MLOCK_ONFAULT) call that succeeded.
func sampleEvent() bpf.Event {
	return bpf.Event{
		Time:     time.Date(2026, 11, 5, 10, 0, 0, 123456789, time.UTC),
		BootNs:   1_000_000,
		Duration: 4200 * time.Nanosecond,
		Syscall:  bpf.SyscallMlock2,
		Probe:    bpf.ProbeTracepoint,
		PID:      4242,
		TID:      4242,
		PPID:     1,
		UID:      1000,
		EUID:     1001,
		GID:      100,
		EGID:     101,
		Comm:     "gpg-agent",
		ExeName:  "gpg-agent",
		CgroupID: 7788,
		Addr:     0x7f3a1c000000,
		Len:      8192,
		Flags:    1,
		Ret:      0,
	}
}

// fakeSender keeps what it is asked to send and fails while err is set.
type fakeSender struct {
	mu       sync.Mutex
	bodies   [][]byte
	err      error
	rejected int64
	block    chan struct{} // if set, Send waits on it (or ctx)
	closed   bool
}

func (f *fakeSender) Send(ctx context.Context, body []byte) (int64, error) {
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return 0, f.err
	}
	f.bodies = append(f.bodies, bytes.Clone(body))
	return f.rejected, nil
}

func (f *fakeSender) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	return nil
}

// logRequests decodes every request sent as a logs request.
func (f *fakeSender) logRequests(t testing.TB) []*collogspb.ExportLogsServiceRequest {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*collogspb.ExportLogsServiceRequest
	for _, b := range f.bodies {
		req := &collogspb.ExportLogsServiceRequest{}
		if err := proto.Unmarshal(b, req); err != nil {
			t.Fatalf("request does not decode: %v", err)
		}
		out = append(out, req)
	}
	return out
}

func (f *fakeSender) traceRequests(t testing.TB) []*coltracepb.ExportTraceServiceRequest {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*coltracepb.ExportTraceServiceRequest
	for _, b := range f.bodies {
		req := &coltracepb.ExportTraceServiceRequest{}
		if err := proto.Unmarshal(b, req); err != nil {
			t.Fatalf("request does not decode: %v", err)
		}
		out = append(out, req)
	}
	return out
}

// received is one log record with the resource and scope it came with.
type received struct {
	resource *resourcepb.Resource
	scope    *commonpb.InstrumentationScope
	record   *logspb.LogRecord
}

func logsOf(reqs []*collogspb.ExportLogsServiceRequest) []received {
	var out []received
	for _, req := range reqs {
		for _, rl := range req.GetResourceLogs() {
			for _, sl := range rl.GetScopeLogs() {
				for _, r := range sl.GetLogRecords() {
					out = append(out, received{rl.GetResource(), sl.GetScope(), r})
				}
			}
		}
	}
	return out
}

type receivedSpan struct {
	resource *resourcepb.Resource
	scope    *commonpb.InstrumentationScope
	span     *tracepb.Span
}

func spansOf(reqs []*coltracepb.ExportTraceServiceRequest) []receivedSpan {
	var out []receivedSpan
	for _, req := range reqs {
		for _, rs := range req.GetResourceSpans() {
			for _, ss := range rs.GetScopeSpans() {
				for _, s := range ss.GetSpans() {
					out = append(out, receivedSpan{rs.GetResource(), ss.GetScope(), s})
				}
			}
		}
	}
	return out
}

// testRig is an Exporter whose log records and spans go to fake senders
// and whose metrics to a manual reader.
type testRig struct {
	exp         *Exporter
	logs, spans *fakeSender
	reader      *sdkmetric.ManualReader
	diagnostics *diagLog
}

// on sends both signals (to the rig's fakes).
func on(opts Options) Options {
	opts.Logs.Kind, opts.Spans.Kind = ToOTLP, ToOTLP
	return opts
}

// newRig builds an Exporter from opts whose OTLP destinations are fakes
// that never send on their own (only flush sends) and whose metrics are
// read by a manual reader, with the given temporality preference.
func newRig(t testing.TB, opts Options) *testRig {
	t.Helper()
	rig := &testRig{logs: &fakeSender{}, spans: &fakeSender{}, diagnostics: &diagLog{}}
	for _, d := range []struct {
		dest *Destination
		send *fakeSender
	}{{&opts.Logs, rig.logs}, {&opts.Spans, rig.spans}} {
		if d.dest.Kind == ToOTLP && d.dest.send == nil {
			d.dest.send = d.send
			if d.dest.Batch.ScheduleDelay == 0 {
				d.dest.Batch.ScheduleDelay = time.Hour
			}
		}
	}
	if opts.Metrics.newReader == nil {
		opts.Metrics.newReader = func(p sdkmetric.Producer) sdkmetric.Reader {
			rig.reader = sdkmetric.NewManualReader(sdkmetric.WithProducer(p),
				sdkmetric.WithTemporalitySelector(opts.Metrics.Temporality.selector()))
			return rig.reader
		}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(rig.diagnostics)
	}
	e, err := New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	e.now = func() time.Time { return observedAt }
	t.Cleanup(func() { _ = e.Shutdown(context.Background()) })
	rig.exp = e
	return rig
}

// flush sends what the sinks hold, synchronously.
func (r *testRig) flush() {
	for _, s := range r.exp.sinks {
		var st *stream
		switch s := s.(type) {
		case *logSink:
			st = s.stream
		case *spanSink:
			st = s.stream
		}
		if b := st.take(); b != nil {
			_ = st.export(context.Background(), b)
		}
	}
}

// records flushes and returns every log record sent so far.
func (r *testRig) records(t testing.TB) []received {
	t.Helper()
	r.flush()
	return logsOf(r.logs.logRequests(t))
}

// spans flushes and returns every span sent so far.
func (r *testRig) sentSpans(t testing.TB) []receivedSpan {
	t.Helper()
	r.flush()
	return spansOf(r.spans.traceRequests(t))
}

func collect(t testing.TB, rig *testRig) map[string]metricdata.Metrics {
	t.Helper()
	ms, err := collectErr(t, rig)
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

// collectErr collects and returns the metrics and the error of the
// collection: the SDK still returns data when a callback fails.
func collectErr(t testing.TB, rig *testRig) (map[string]metricdata.Metrics, error) {
	t.Helper()
	var rm metricdata.ResourceMetrics
	err := rig.reader.Collect(context.Background(), &rm)
	out := map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != semconv.ScopeName || sm.Scope.SchemaURL != semconv.SchemaURL {
			t.Errorf("scope = %+v, want %s with schema %s", sm.Scope, semconv.ScopeName, semconv.SchemaURL)
		}
		for _, m := range sm.Metrics {
			out[m.Name] = m
		}
	}
	return out, err
}

// attrKey renders a metric attribute set as "syscall/error.type".
func attrKey(s attribute.Set) string {
	sys, _ := s.Value(semconv.SyscallKey)
	key := sys.AsString()
	if et, ok := s.Value(semconv.ErrorTypeKey); ok {
		key += "/" + et.AsString()
	}
	return key
}

type attrs map[attribute.Key]attribute.Value

// attrsOf converts OTLP attributes to attribute values, duplicates marked.
func attrsOf(t testing.TB, kvs []*commonpb.KeyValue) attrs {
	t.Helper()
	out := attrs{}
	for _, kv := range kvs {
		k := attribute.Key(kv.GetKey())
		if _, dup := out[k]; dup {
			k += " (duplicate)"
		}
		out[k] = valueOf(t, kv.GetValue())
	}
	return out
}

// valueOf converts the OTLP values our attributes use.
func valueOf(t testing.TB, v *commonpb.AnyValue) attribute.Value {
	t.Helper()
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return attribute.StringValue(x.StringValue)
	case *commonpb.AnyValue_IntValue:
		return attribute.Int64Value(x.IntValue)
	case *commonpb.AnyValue_DoubleValue:
		return attribute.Float64Value(x.DoubleValue)
	case *commonpb.AnyValue_BoolValue:
		return attribute.BoolValue(x.BoolValue)
	case *commonpb.AnyValue_ArrayValue:
		var ss []string
		for _, e := range x.ArrayValue.GetValues() {
			s, ok := e.GetValue().(*commonpb.AnyValue_StringValue)
			if !ok {
				t.Fatalf("array of %T, want strings", e.GetValue())
			}
			ss = append(ss, s.StringValue)
		}
		return attribute.StringSliceValue(ss)
	}
	t.Fatalf("unexpected value type %T", v.GetValue())
	return attribute.Value{}
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

// diagLog records what diagnostics log.
type diagLog struct {
	mu      sync.Mutex
	records []slog.Record
	changed chan struct{} // closed and replaced at each record
}

func (s *diagLog) Enabled(context.Context, slog.Level) bool { return true }
func (s *diagLog) WithAttrs([]slog.Attr) slog.Handler       { return s }
func (s *diagLog) WithGroup(string) slog.Handler            { return s }
func (s *diagLog) Handle(_ context.Context, r slog.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records = append(s.records, r.Clone())
	if s.changed != nil {
		close(s.changed)
		s.changed = nil
	}
	return nil
}

func (s *diagLog) take() []slog.Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.records
	s.records = nil
	return out
}

// await waits until a record satisfies ok, and returns it.
func (s *diagLog) await(t testing.TB, what string, ok func(slog.Record) bool) slog.Record {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		s.mu.Lock()
		for _, r := range s.records {
			if ok(r) {
				s.mu.Unlock()
				return r
			}
		}
		if s.changed == nil {
			s.changed = make(chan struct{})
		}
		changed := s.changed
		s.mu.Unlock()
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("no diagnostic %s within 5s", what)
		}
	}
}

func attrOf(r slog.Record, key string) (slog.Value, bool) {
	var v slog.Value
	var found bool
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == key {
			v, found = a.Value, true
			return false
		}
		return true
	})
	return v, found
}

type fakeLosses struct {
	counts    bpf.LossCounts
	err       error
	malformed uint64
	lost      []bpf.LostCalls
	lostErr   error
}

func (f *fakeLosses) Losses() (bpf.LossCounts, error)     { return f.counts, f.err }
func (f *fakeLosses) Malformed() uint64                   { return f.malformed }
func (f *fakeLosses) LostCalls() ([]bpf.LostCalls, error) { return f.lost, f.lostErr }

func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(time.Millisecond)
	}
}

var errUnreachable = errors.New("rpc error: code = Unavailable desc = connection refused")

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

type metricsService struct {
	colmetricspb.UnimplementedMetricsServiceServer
	c *fakeCollector
}

func (m metricsService) Export(_ context.Context, req *colmetricspb.ExportMetricsServiceRequest) (*colmetricspb.ExportMetricsServiceResponse, error) {
	m.c.mu.Lock()
	defer m.c.mu.Unlock()
	m.c.requests++
	m.c.metrics = append(m.c.metrics, req)
	return &colmetricspb.ExportMetricsServiceResponse{}, nil
}

type tracesService struct {
	coltracepb.UnimplementedTraceServiceServer
	c *fakeCollector
}

func (s tracesService) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	s.c.requests++
	s.c.traces = append(s.c.traces, req)
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

func startGRPCCollector(t testing.TB) *fakeCollector {
	t.Helper()
	return startGRPCCollectorAt(t, "127.0.0.1:0")
}

// startGRPCCollectorAt starts a collector listening on addr.
func startGRPCCollectorAt(t testing.TB, addr string) *fakeCollector {
	t.Helper()
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c := &fakeCollector{endpoint: "http://" + lis.Addr().String()}
	srv := grpc.NewServer()
	collogspb.RegisterLogsServiceServer(srv, c)
	colmetricspb.RegisterMetricsServiceServer(srv, metricsService{c: c})
	coltracepb.RegisterTraceServiceServer(srv, tracesService{c: c})
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return c
}

func startHTTPCollector(t testing.TB) *fakeCollector {
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
			resp, _ = metricsService{c: c}.Export(r.Context(), req)
		case "/v1/traces":
			req := &coltracepb.ExportTraceServiceRequest{}
			if err := proto.Unmarshal(data, req); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			resp, _ = tracesService{c: c}.Export(r.Context(), req)
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

func needPageSize4K(t testing.TB) {
	if bpf.PageSize != 4096 {
		t.Skipf("expected page counts assume 4096-byte pages; this host has %d", bpf.PageSize)
	}
}
