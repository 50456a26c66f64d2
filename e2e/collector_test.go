//go:build linux

package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploggrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	otellog "go.opentelemetry.io/otel/log"
	"go.opentelemetry.io/otel/metric"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/memlock-exporter/memlock-exporter/internal/testutil"
)

// collectorModule is the test-only collector's module, relative to this
// package's directory (where go test runs the test binary).
const collectorModule = "otelcol"

// moduleBuildArgs are the go build flags; they are part of the cache key.
var moduleBuildArgs = []string{"build", "-buildvcs=false", "-ldflags=-s -w", "-o"}

// A moduleProgram is a program the end-to-end tests build from a Go module
// of its own under e2e/ (so that its dependencies stay out of the project's
// go.mod), once per source version.
type moduleProgram struct {
	dir  string // the module, relative to this package's directory
	pkg  string // the package to build, in the module's terms
	name string // of the binary, and of its cache directory
	what string // for messages: "an OpenTelemetry Collector"

	mu   sync.Mutex
	path string
}

var testCollector = &moduleProgram{dir: collectorModule, pkg: ".", name: "otelcol", what: "an OpenTelemetry Collector"}

// buildCollector builds the e2e/otelcol module and returns the binary's path.
func buildCollector(t testing.TB) string {
	t.Helper()
	return testCollector.build(t)
}

// build builds p once per source version and returns the binary's path. The
// binary is kept under the user's cache directory ($XDG_CACHE_HOME or
// ~/.cache)/memlock-exporter/<name>-<hash>, where the hash covers the
// module's go.mod, go.sum and Go files, the package, the Go version and the
// build flags, so later runs start at once.
func (p *moduleProgram) build(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skipf("skipping end-to-end test in -short mode: it builds %s", p.what)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.path != "" {
		return p.path
	}

	modDir, err := filepath.Abs(p.dir)
	if err != nil {
		t.Fatalf("find module %s: %v", p.dir, err)
	}
	key, err := moduleSourceHash(modDir, p.pkg)
	if err != nil {
		t.Fatalf("hash module %s: %v", p.dir, err)
	}
	cacheRoot, err := os.UserCacheDir()
	if err != nil {
		cacheRoot = os.TempDir()
	}
	dir := filepath.Join(cacheRoot, "memlock-exporter", p.name+"-"+key)
	bin := filepath.Join(dir, p.name+"-e2e")
	if fi, err := os.Stat(bin); err == nil && fi.Mode().IsRegular() {
		t.Logf("%s: using cached %s", p.name, bin)
		p.path = bin
		return bin
	}

	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("create %s cache directory: %v", p.name, err)
	}
	// Build into a unique name and rename, so concurrent runs never see a
	// half-written binary.
	tmp, err := os.CreateTemp(dir, p.name+"-e2e-*.tmp")
	if err != nil {
		t.Fatalf("create %s binary: %v", p.name, err)
	}
	tmp.Close()
	defer os.Remove(tmp.Name())

	start := time.Now()
	cmd := exec.Command("go", append(slices.Clone(moduleBuildArgs), tmp.Name(), p.pkg)...)
	cmd.Dir = modDir
	cmd.Env = append(os.Environ(), "GOWORK=off", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s in %s: %v\n%s", p.pkg, modDir, err, out)
	}
	if err := os.Rename(tmp.Name(), bin); err != nil {
		t.Fatalf("install %s binary: %v", p.name, err)
	}
	t.Logf("%s: built %s in %v", p.name, bin, time.Since(start).Round(100*time.Millisecond))
	p.path = bin
	return bin
}

func moduleSourceHash(modDir, pkg string) (string, error) {
	names, err := filepath.Glob(filepath.Join(modDir, "*.go"))
	if err != nil {
		return "", err
	}
	names = append(names, filepath.Join(modDir, "go.mod"), filepath.Join(modDir, "go.sum"))
	slices.Sort(names)
	h := sha256.New()
	fmt.Fprintf(h, "%s %s/%s CGO_ENABLED=0 %q %s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH, moduleBuildArgs, pkg)
	for _, name := range names {
		data, err := os.ReadFile(name)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s %d\n", filepath.Base(name), len(data))
		h.Write(data)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// collector is a running test collector. Everything it receives is written,
// one OTLP JSON request per line, into logs.jsonl, metrics.jsonl and
// traces.jsonl in its own temporary directory.
type collector struct {
	*server
	grpcAddr, httpAddr string
}

// startCollector builds (or reuses) the collector binary and starts it with
// e2e/otelcol/config.yaml on two free loopback ports (OTLP/gRPC and
// OTLP/HTTP), writing into a fresh t.TempDir(). Extra command-line arguments,
// such as "--set=exporters.debug.verbosity=detailed", are passed on. It
// returns once both ports accept connections and the process is still
// running; a cleanup stops it with SIGTERM.
func startCollector(t testing.TB, args ...string) *collector {
	t.Helper()
	bin := buildCollector(t)
	config, err := filepath.Abs(filepath.Join(collectorModule, "config.yaml"))
	if err != nil {
		t.Fatalf("find collector config: %v", err)
	}
	// Another process may take a port between our probe and the collector's
	// bind: try again on fresh ports if that happens.
	const attempts = 3
	for i := 1; ; i++ {
		c, err := tryStartCollector(t, bin, config, args)
		if err == nil {
			return c
		}
		if i == attempts || !strings.Contains(err.Error(), "address already in use") {
			t.Fatalf("start collector: %v", err)
		}
		t.Logf("collector: %v; retrying on other ports", err)
	}
}

func tryStartCollector(t testing.TB, bin, config string, args []string) (*collector, error) {
	return startCollectorOn(t, bin, config, args, testutil.FreeLoopbackAddr(t), testutil.FreeLoopbackAddr(t), t.TempDir())
}

// startCollectorOn starts the collector on the given addresses, writing into
// dir, and waits until it is ready. It fails nothing: a test may call it
// from another goroutine (see restartableCollector).
func startCollectorOn(t testing.TB, bin, config string, args []string, grpcAddr, httpAddr, dir string) (*collector, error) {
	cmd := exec.Command(bin, append([]string{"--config=file:" + config}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"OTELCOL_E2E_GRPC_ENDPOINT="+grpcAddr,
		"OTELCOL_E2E_HTTP_ENDPOINT="+httpAddr,
		"OTELCOL_E2E_OUTPUT_DIR="+dir,
	)
	s, err := startServer(t, "collector", dir, cmd, 30*time.Second, "listen on "+grpcAddr+" and "+httpAddr,
		func() bool { return acceptsTCP(grpcAddr) && acceptsTCP(httpAddr) })
	if err != nil {
		return nil, err
	}
	return &collector{server: s, grpcAddr: grpcAddr, httpAddr: httpAddr}, nil
}

func acceptsTCP(addr string) bool {
	conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

// Endpoint is the OTLP/gRPC endpoint, e.g. "http://127.0.0.1:43171".
func (c *collector) Endpoint() string { return "http://" + c.grpcAddr }

// HTTPEndpoint is the OTLP/HTTP endpoint, e.g. "http://127.0.0.1:43172".
func (c *collector) HTTPEndpoint() string { return "http://" + c.httpAddr }

// Logs returns every log record the collector has written so far, the
// requests merged in order of arrival.
func (c *collector) Logs(t testing.TB) plog.Logs {
	t.Helper()
	all := plog.NewLogs()
	var u plog.JSONUnmarshaler
	c.readLines(t, "logs.jsonl", func(line []byte) error {
		ld, err := u.UnmarshalLogs(line)
		if err == nil {
			ld.ResourceLogs().MoveAndAppendTo(all.ResourceLogs())
		}
		return err
	})
	return all
}

// Metrics returns every metric data point the collector has written so far,
// the requests merged in order of arrival (a metric exported twice appears
// twice).
func (c *collector) Metrics(t testing.TB) pmetric.Metrics {
	t.Helper()
	all := pmetric.NewMetrics()
	var u pmetric.JSONUnmarshaler
	c.readLines(t, "metrics.jsonl", func(line []byte) error {
		md, err := u.UnmarshalMetrics(line)
		if err == nil {
			md.ResourceMetrics().MoveAndAppendTo(all.ResourceMetrics())
		}
		return err
	})
	return all
}

// Traces returns every span the collector has written so far, the requests
// merged in order of arrival.
func (c *collector) Traces(t testing.TB) ptrace.Traces {
	t.Helper()
	all := ptrace.NewTraces()
	var u ptrace.JSONUnmarshaler
	c.readLines(t, "traces.jsonl", func(line []byte) error {
		td, err := u.UnmarshalTraces(line)
		if err == nil {
			td.ResourceSpans().MoveAndAppendTo(all.ResourceSpans())
		}
		return err
	})
	return all
}

// readLines calls parse for every complete line of the named output file. A
// missing file (nothing received yet) has no lines; a trailing line without
// its newline is still being written and is left for the next read.
func (c *collector) readLines(t testing.TB, name string, parse func([]byte) error) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(c.dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err != nil {
		t.Fatalf("read collector output: %v", err)
	}
	for n := 1; ; n++ {
		line, rest, complete := bytes.Cut(data, []byte("\n"))
		if !complete {
			return
		}
		data = rest
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		if err := parse(line); err != nil {
			t.Fatalf("parse %s line %d: %v\n%s", name, n, err, line)
		}
	}
}

// WaitForLogs polls the collector's output until ok accepts it, and returns
// it. It fails the test after timeout, or at once if the collector dies.
func (c *collector) WaitForLogs(t testing.TB, timeout time.Duration, ok func(plog.Logs) bool) plog.Logs {
	t.Helper()
	return waitFor(t, c, timeout, "logs", c.Logs, ok, func(ld plog.Logs) string {
		return fmt.Sprintf("%d log records", ld.LogRecordCount())
	})
}

// WaitForMetrics is WaitForLogs for metrics.
func (c *collector) WaitForMetrics(t testing.TB, timeout time.Duration, ok func(pmetric.Metrics) bool) pmetric.Metrics {
	t.Helper()
	return waitFor(t, c, timeout, "metrics", c.Metrics, ok, func(md pmetric.Metrics) string {
		return fmt.Sprintf("%d metrics, %d data points", md.MetricCount(), md.DataPointCount())
	})
}

// WaitForTraces is WaitForLogs for traces.
func (c *collector) WaitForTraces(t testing.TB, timeout time.Duration, ok func(ptrace.Traces) bool) ptrace.Traces {
	t.Helper()
	return waitFor(t, c, timeout, "traces", c.Traces, ok, func(td ptrace.Traces) string {
		return fmt.Sprintf("%d spans", td.SpanCount())
	})
}

func waitFor[T any](t testing.TB, c *collector, timeout time.Duration, what string,
	read func(testing.TB) T, ok func(T) bool, summary func(T) string,
) T {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		data := read(t)
		if ok(data) {
			return data
		}
		select {
		case <-c.exited:
			// Read once more: the files are complete now.
			if data = read(t); ok(data) {
				return data
			}
			t.Fatalf("waiting for %s: collector exited (%v); it had written %s:\n%s",
				what, c.waitErr, summary(data), c.output())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: not there after %v; the collector has written %s", what, timeout, summary(data))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestCollectorRoundTrip proves the harness: what the OTel Go SDK sends over
// OTLP/gRPC comes back out of the collector's files unchanged.
func TestCollectorRoundTrip(t *testing.T) {
	c := startCollector(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	res := resource.NewSchemaless(attribute.String("service.name", "e2e-roundtrip"))

	// One log record (an event).
	logExp, err := otlploggrpc.New(ctx, otlploggrpc.WithEndpointURL(c.Endpoint()), otlploggrpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	lp := sdklog.NewLoggerProvider(sdklog.WithResource(res), sdklog.WithProcessor(sdklog.NewBatchProcessor(logExp)))
	when := time.Date(2026, 11, 2, 3, 4, 5, 6000, time.UTC)
	var rec otellog.Record
	rec.SetEventName("memlock.mlock2")
	rec.SetTimestamp(when)
	rec.SetSeverity(otellog.SeverityInfo)
	rec.SetBody(attribute.StringValue("mlock2(0x7f3a1c000000, 8192, MLOCK_ONFAULT) = 0"))
	rec.AddAttributes(attribute.String("memlock.syscall", "mlock2"), attribute.Int64("memlock.len", 8192))
	lp.Logger("e2e").Emit(ctx, rec)
	if err := lp.Shutdown(ctx); err != nil { // flushes
		t.Fatalf("flush logs: %v", err)
	}

	// One metric with one data point.
	metricExp, err := otlpmetricgrpc.New(ctx, otlpmetricgrpc.WithEndpointURL(c.Endpoint()), otlpmetricgrpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithResource(res), sdkmetric.WithReader(sdkmetric.NewPeriodicReader(metricExp)))
	calls, err := mp.Meter("e2e").Int64Counter("memlock.calls", metric.WithUnit("{call}"))
	if err != nil {
		t.Fatal(err)
	}
	calls.Add(ctx, 42, metric.WithAttributes(attribute.String("memlock.syscall", "mlock2")))
	if err := mp.Shutdown(ctx); err != nil { // collects and exports once
		t.Fatalf("flush metrics: %v", err)
	}

	// One span.
	traceExp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpointURL(c.Endpoint()), otlptracegrpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithResource(res), sdktrace.WithSyncer(traceExp))
	_, span := tp.Tracer("e2e").Start(ctx, "mlock2")
	span.SetAttributes(attribute.String("memlock.syscall", "mlock2"))
	span.End()
	if err := tp.Shutdown(ctx); err != nil {
		t.Fatalf("flush traces: %v", err)
	}

	const timeout = 10 * time.Second
	c.WaitForLogs(t, timeout, func(ld plog.Logs) bool { return ld.LogRecordCount() > 0 })
	c.WaitForMetrics(t, timeout, func(md pmetric.Metrics) bool { return md.DataPointCount() > 0 })
	c.WaitForTraces(t, timeout, func(td ptrace.Traces) bool { return td.SpanCount() > 0 })
	c.Stop(t) // then a late duplicate would be in the files too
	ld, md, td := c.Logs(t), c.Metrics(t), c.Traces(t)

	if n := ld.LogRecordCount(); n != 1 {
		t.Fatalf("collector received %d log records, want 1", n)
	}
	rl := ld.ResourceLogs().At(0)
	checkServiceName(t, "log", rl.Resource())
	lr := rl.ScopeLogs().At(0).LogRecords().At(0)
	if got, want := rl.ScopeLogs().At(0).Scope().Name(), "e2e"; got != want {
		t.Errorf("log scope = %q, want %q", got, want)
	}
	if got, want := lr.EventName(), "memlock.mlock2"; got != want {
		t.Errorf("log EventName = %q, want %q", got, want)
	}
	if got, want := lr.Body().AsString(), "mlock2(0x7f3a1c000000, 8192, MLOCK_ONFAULT) = 0"; got != want {
		t.Errorf("log body = %q, want %q", got, want)
	}
	if got := lr.Timestamp().AsTime(); !got.Equal(when) {
		t.Errorf("log timestamp = %v, want %v", got, when)
	}
	if got, want := lr.SeverityNumber(), plog.SeverityNumberInfo; got != want {
		t.Errorf("log severity = %v, want %v", got, want)
	}
	checkAttr(t, "log", lr.Attributes(), "memlock.syscall", "mlock2")
	checkAttr(t, "log", lr.Attributes(), "memlock.len", int64(8192))
	if n := lr.Attributes().Len(); n != 2 {
		t.Errorf("log has %d attributes, want 2: %v", n, lr.Attributes().AsRaw())
	}

	if n := md.DataPointCount(); n != 1 {
		t.Fatalf("collector received %d metric data points, want 1", n)
	}
	rm := md.ResourceMetrics().At(0)
	checkServiceName(t, "metric", rm.Resource())
	m := rm.ScopeMetrics().At(0).Metrics().At(0)
	if m.Name() != "memlock.calls" || m.Unit() != "{call}" || m.Type() != pmetric.MetricTypeSum {
		t.Fatalf("metric = %s %q (%v), want memlock.calls {call} (Sum)", m.Name(), m.Unit(), m.Type())
	}
	if !m.Sum().IsMonotonic() || m.Sum().AggregationTemporality() != pmetric.AggregationTemporalityCumulative {
		t.Errorf("memlock.calls: monotonic %v, temporality %v; want a cumulative counter",
			m.Sum().IsMonotonic(), m.Sum().AggregationTemporality())
	}
	dp := m.Sum().DataPoints().At(0)
	if dp.ValueType() != pmetric.NumberDataPointValueTypeInt || dp.IntValue() != 42 {
		t.Errorf("memlock.calls value = %v %d, want int 42", dp.ValueType(), dp.IntValue())
	}
	checkAttr(t, "metric", dp.Attributes(), "memlock.syscall", "mlock2")

	if n := td.SpanCount(); n != 1 {
		t.Fatalf("collector received %d spans, want 1", n)
	}
	rs := td.ResourceSpans().At(0)
	checkServiceName(t, "span", rs.Resource())
	sp := rs.ScopeSpans().At(0).Spans().At(0)
	if sp.Name() != "mlock2" || sp.TraceID().IsEmpty() || sp.SpanID().IsEmpty() {
		t.Errorf("span = %q trace %v span %v, want mlock2 with IDs", sp.Name(), sp.TraceID(), sp.SpanID())
	}
	checkAttr(t, "span", sp.Attributes(), "memlock.syscall", "mlock2")
}

func checkServiceName(t *testing.T, what string, res pcommon.Resource) {
	t.Helper()
	checkAttr(t, what+" resource", res.Attributes(), "service.name", "e2e-roundtrip")
}

func checkAttr(t *testing.T, what string, attrs pcommon.Map, key string, want any) {
	t.Helper()
	v, ok := attrs.Get(key)
	if !ok {
		t.Errorf("%s: attribute %s missing; have %v", what, key, attrs.AsRaw())
		return
	}
	if got := v.AsRaw(); got != want {
		t.Errorf("%s: attribute %s = %v (%T), want %v (%T)", what, key, got, got, want, want)
	}
}
