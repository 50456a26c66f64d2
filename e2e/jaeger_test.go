//go:build linux

package e2e

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/memlock-exporter/memlock-exporter/bpf"
	"github.com/memlock-exporter/memlock-exporter/internal/testutil"
)

// testJaeger is Jaeger v2, built from the e2e/jaeger module, whose go.mod
// pins its version with a tool line.
var testJaeger = &moduleProgram{dir: "jaeger", pkg: "github.com/jaegertracing/jaeger/cmd/jaeger", name: "jaeger", what: "Jaeger"}

// buildJaeger builds Jaeger and returns the binary's path.
func buildJaeger(t testing.TB) string {
	t.Helper()
	return testJaeger.build(t)
}

// jaegerConfig is a Jaeger v2 configuration with traces kept in memory, the
// query service (HTTP API and gRPC) and an OTLP/gRPC receiver, on the
// loopback addresses given in this order: query HTTP, query gRPC, OTLP/gRPC.
// It opens no other port: no Jaeger, Zipkin or OTLP/HTTP receiver, no
// sampling, health or zpages extension, no internal metrics endpoint; and
// the query service does not trace itself.
const jaegerConfig = `service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: info

extensions:
  jaeger_storage:
    backends:
      e2e_store:
        memory:
          max_traces: 100000
  jaeger_query:
    storage:
      traces: e2e_store
    enable_tracing: false
    http:
      endpoint: %q
    grpc:
      endpoint: %q

receivers:
  otlp:
    protocols:
      grpc:
        endpoint: %q

exporters:
  jaeger_storage_exporter:
    trace_storage: e2e_store
`

// jaegerMaxLimit is the most traces one query may ask for: the memory
// store's max_traces.
const jaegerMaxLimit = 100000

// jaeger is a running Jaeger v2 started by a test.
type jaeger struct {
	*server
	otlpAddr, queryAddr string
}

// startJaeger builds (or reuses) Jaeger and starts it with jaegerConfig on
// free loopback ports, its output in a fresh t.TempDir(). It returns once
// the OTLP port accepts connections and the query API answers; a cleanup
// stops it with SIGTERM.
func startJaeger(t *testing.T) *jaeger {
	t.Helper()
	bin := buildJaeger(t)
	// Another process may take a port between our probe and Jaeger's bind:
	// try again on fresh ports if that happens.
	const attempts = 3
	for i := 1; ; i++ {
		j, err := tryStartJaeger(t, bin)
		if err == nil {
			return j
		}
		if i == attempts || !strings.Contains(err.Error(), "address already in use") {
			t.Fatalf("start Jaeger: %v", err)
		}
		t.Logf("jaeger: %v; retrying on other ports", err)
	}
}

func tryStartJaeger(t *testing.T, bin string) (*jaeger, error) {
	j := &jaeger{otlpAddr: testutil.FreeLoopbackAddr(t), queryAddr: testutil.FreeLoopbackAddr(t)}
	dir := t.TempDir()
	config := filepath.Join(dir, "jaeger.yaml")
	if err := os.WriteFile(config, fmt.Appendf(nil, jaegerConfig, j.queryAddr, testutil.FreeLoopbackAddr(t), j.otlpAddr), 0o644); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "--config=file:"+config)
	cmd.Dir = dir
	s, err := startServer(t, "jaeger", dir, cmd, 60*time.Second,
		"accept OTLP on "+j.otlpAddr+" and answer queries on "+j.queryAddr,
		func() bool { return acceptsTCP(j.otlpAddr) && j.services() == nil })
	if err != nil {
		return nil, err
	}
	j.server = s
	return j, nil
}

// OTLPEndpoint is the OTLP/gRPC endpoint, e.g. "http://127.0.0.1:43171".
func (j *jaeger) OTLPEndpoint() string { return "http://" + j.otlpAddr }

// jaegerResponse is the envelope of the query API's answers.
type jaegerResponse[T any] struct {
	Data   T `json:"data"`
	Errors []struct {
		Code int    `json:"code"`
		Msg  string `json:"msg"`
	} `json:"errors"`
}

// jaegerTrace, jaegerSpan, jaegerProcess and jaegerTag are the query API's
// JSON (the UI's model): times and durations in microseconds, attributes as
// typed tags.
type jaegerTrace struct {
	TraceID   string                   `json:"traceID"`
	Spans     []jaegerSpan             `json:"spans"`
	Processes map[string]jaegerProcess `json:"processes"`
	Warnings  []string                 `json:"warnings"`
}

type jaegerSpan struct {
	TraceID       string `json:"traceID"`
	SpanID        string `json:"spanID"`
	OperationName string `json:"operationName"`
	References    []struct {
		RefType string `json:"refType"`
		SpanID  string `json:"spanID"`
	} `json:"references"`
	StartTime int64       `json:"startTime"`
	Duration  int64       `json:"duration"`
	Tags      []jaegerTag `json:"tags"`
	ProcessID string      `json:"processID"`
	Warnings  []string    `json:"warnings"`
}

type jaegerProcess struct {
	ServiceName string      `json:"serviceName"`
	Tags        []jaegerTag `json:"tags"`
}

type jaegerTag struct {
	Key   string `json:"key"`
	Type  string `json:"type"`
	Value any    `json:"value"` // json.Number for numbers
}

// get fetches path with query from the query API and decodes its data
// into data.
func (j *jaeger) get(path string, query url.Values, data any) error {
	u := url.URL{Scheme: "http", Host: j.queryAddr, Path: path, RawQuery: query.Encode()}
	client := http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(u.String())
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	dec.UseNumber()
	var r jaegerResponse[json.RawMessage]
	if err := dec.Decode(&r); err != nil {
		return fmt.Errorf("GET %s: %s: decode: %w", u.String(), resp.Status, err)
	}
	if resp.StatusCode != http.StatusOK || len(r.Errors) > 0 {
		return fmt.Errorf("GET %s: %s: %v", u.String(), resp.Status, r.Errors)
	}
	dec = json.NewDecoder(strings.NewReader(string(r.Data)))
	dec.UseNumber()
	return dec.Decode(data)
}

// services is nil once the query API answers /api/services.
func (j *jaeger) services() error {
	var names []string
	return j.get("/api/services", nil, &names)
}

// traces asks /api/traces for up to limit traces of service that started
// after since and carry every tag of tags (on a span, or its process). raw
// asks for them as stored, without the query service's adjusters (which,
// among other things, drop duplicate spans).
func (j *jaeger) traces(service string, tags map[string]string, since time.Time, limit int, raw bool) ([]jaegerTrace, error) {
	q := url.Values{
		"service": {service},
		"start":   {strconv.FormatInt(since.UnixMicro(), 10)},
		"end":     {strconv.FormatInt(time.Now().Add(time.Minute).UnixMicro(), 10)},
		"limit":   {strconv.Itoa(limit)},
		"raw":     {strconv.FormatBool(raw)},
	}
	if len(tags) > 0 {
		b, err := json.Marshal(tags)
		if err != nil {
			return nil, err
		}
		q.Set("tags", string(b))
	}
	var traces []jaegerTrace
	if err := j.get("/api/traces", q, &traces); err != nil {
		return nil, err
	}
	return traces, nil
}

// jaegerCall is one span as Jaeger answers it, with its trace and process.
type jaegerCall struct {
	trace   *jaegerTrace
	span    jaegerSpan
	process jaegerProcess
	// tags are the span's tags, ptags its process's, all both (the
	// call's attributes with its process identity, as callAttrs).
	tags, ptags, all pcommon.Map
}

func (c jaegerCall) String() string {
	sys, _ := c.tags.Get("memlock.syscall")
	tid, _ := intAttr(c.tags, "thread.id")
	return fmt.Sprintf("span %s/%s %q (%s, tid %d)", c.span.TraceID, c.span.SpanID, c.span.OperationName, sys.AsString(), tid)
}

// jaegerCalls flattens traces into their spans; a span whose tags do not
// convert, or whose process is missing, fails the test.
func jaegerCalls(t *testing.T, traces []jaegerTrace) []jaegerCall {
	t.Helper()
	var out []jaegerCall
	for i := range traces {
		tr := &traces[i]
		for _, sp := range tr.Spans {
			p, ok := tr.Processes[sp.ProcessID]
			if !ok {
				t.Fatalf("trace %s: span %s names process %q, which the trace does not hold (it has %v)",
					tr.TraceID, sp.SpanID, sp.ProcessID, tr.Processes)
			}
			tags, err := jaegerTagMap(sp.Tags)
			if err != nil {
				t.Fatalf("trace %s: span %s: %v", tr.TraceID, sp.SpanID, err)
			}
			ptags, err := jaegerTagMap(p.Tags)
			if err != nil {
				t.Fatalf("trace %s: span %s's process: %v", tr.TraceID, sp.SpanID, err)
			}
			all := pcommon.NewMap()
			tags.CopyTo(all)
			for k, v := range ptags.All() {
				v.CopyTo(all.PutEmpty(k))
			}
			out = append(out, jaegerCall{tr, sp, p, tags, ptags, all})
		}
	}
	return out
}

// jaegerTagMap turns Jaeger's typed tags back into attributes.
func jaegerTagMap(tags []jaegerTag) (pcommon.Map, error) {
	m := pcommon.NewMap()
	for _, tag := range tags {
		if _, dup := m.Get(tag.Key); dup {
			return m, fmt.Errorf("tag %s twice", tag.Key)
		}
		bad := fmt.Errorf("tag %s: %s value %#v", tag.Key, tag.Type, tag.Value)
		switch tag.Type {
		case "string":
			s, ok := tag.Value.(string)
			if !ok {
				return m, bad
			}
			m.PutStr(tag.Key, s)
		case "int64":
			n, ok := tag.Value.(json.Number)
			if !ok {
				return m, bad
			}
			i, err := n.Int64()
			if err != nil {
				return m, bad
			}
			m.PutInt(tag.Key, i)
		case "float64":
			n, ok := tag.Value.(json.Number)
			if !ok {
				return m, bad
			}
			f, err := n.Float64()
			if err != nil {
				return m, bad
			}
			m.PutDouble(tag.Key, f)
		case "bool":
			b, ok := tag.Value.(bool)
			if !ok {
				return m, bad
			}
			m.PutBool(tag.Key, b)
		default:
			return m, bad
		}
	}
	return m, nil
}

// jaegerCallKey is what tells a workload's calls apart: the thread, the
// syscall, the arguments it takes and the result.
type jaegerCallKey struct {
	tid              int64
	syscall          string
	addr, len, flags int64
	ret              int64
}

func (k jaegerCallKey) String() string {
	return fmt.Sprintf("tid %d %s(addr %#x, len %d, flags %#x) = %d", k.tid, k.syscall, k.addr, k.len, k.flags, k.ret)
}

func keyOfCall(c testutil.WorkloadCall) jaegerCallKey {
	k := jaegerCallKey{tid: int64(c.TID), syscall: c.Syscall, ret: c.Ret}
	switch c.Syscall {
	case "mlock", "mlock2", "munlock":
		k.addr, k.len = int64(c.Addr), int64(c.Len)
	}
	switch c.Syscall {
	case "mlock2", "mlockall":
		k.flags = int64(c.Flags)
	}
	return k
}

func keyOfSpan(c jaegerCall) jaegerCallKey {
	sys, _ := c.tags.Get("memlock.syscall")
	k := jaegerCallKey{syscall: sys.AsString()}
	k.tid, _ = intAttr(c.tags, "thread.id")
	k.addr, _ = intAttr(c.tags, "memlock.addr")
	k.len, _ = intAttr(c.tags, "memlock.len")
	k.flags, _ = intAttr(c.tags, "memlock.flags")
	k.ret, _ = intAttr(c.tags, "memlock.return_value")
	return k
}

// jaegerService is the service.name of the daemon's spans: its default.
const jaegerService = "memlock-exporter"

// TestJaegerReceivesEveryCall proves the daemon's spans in a real tracing
// backend: Jaeger v2 (built from its Go module in e2e/jaeger, traces in
// memory) receives the daemon's OTLP/gRPC spans, and its query API
// (/api/traces, what its UI reads) answers with exactly one span per call
// the workload made, each a trace of its own, named after the syscall, with
// the call's attributes as tags (an error for a failed call) and the
// calling process's identity among its process's tags. Another process
// calls mlock2 all along; the test looks only at the workload's spans.
func TestJaegerReceivesEveryCall(t *testing.T) {
	testutil.RequireRoot(t)
	j := startJaeger(t)
	bin := buildDaemon(t)
	workload := testutil.BuildWorkload(t)
	noise := testutil.StartNoise(t, workload, 2*time.Millisecond)
	cg, inCgroup := testutil.NewCgroup(t)

	d := startDaemon(t, bin,
		"OTEL_EXPORTER_OTLP_ENDPOINT="+j.OTLPEndpoint(),
		"OTEL_EXPORTER_OTLP_PROTOCOL=", // unset: our default, gRPC
		"OTEL_TRACES_EXPORTER=",        // unset: the default, otlp
		// Jaeger takes traces only.
		"OTEL_LOGS_EXPORTER=none", "OTEL_METRICS_EXPORTER=none",
		"OTEL_TRACES_SAMPLER=", "OTEL_TRACES_SAMPLER_ARG=", // the default sampler
		"OTEL_BSP_SCHEDULE_DELAY=100",
		"OTEL_SERVICE_NAME=", "OTEL_RESOURCE_ATTRIBUTES=deployment.environment.name=e2e",
		"MEMLOCK_EXPORTER_FLUSH_INTERVAL=50ms",
	)

	start := time.Now()
	calls := runWorkload(t, workload, cg, inCgroup, "--repeat", "2")
	end := time.Now()
	ours := workloadAttrs(calls, cg, inCgroup)
	proc := procOf(t, workload, cg, inCgroup)
	var cgroupID int64
	if inCgroup {
		cgroupID = int64(cg.ID)
	}

	// Ask Jaeger for the workload's spans: by its cgroup, or else by each
	// of its processes (and the children of its main process); the test
	// keeps those its filter accepts, as the other e2e tests do.
	var queries []map[string]string
	if inCgroup {
		queries = append(queries, map[string]string{"memlock.cgroup.id": strconv.FormatUint(cg.ID, 10)})
	} else {
		seen := map[uint32]bool{}
		for _, c := range calls {
			if !seen[c.PID] {
				seen[c.PID] = true
				queries = append(queries, map[string]string{"process.pid": strconv.FormatUint(uint64(c.PID), 10)})
			}
		}
		queries = append(queries, map[string]string{"process.parent_pid": strconv.FormatUint(uint64(calls[0].PID), 10)})
	}
	since := start.Add(-time.Second)
	limit := min(10*len(calls)+100, jaegerMaxLimit) // room for extra spans, to be seen
	fetch := func(raw bool) ([]jaegerCall, error) {
		var out []jaegerCall
		seen := map[string]bool{}
		for _, tags := range queries {
			traces, err := j.traces(jaegerService, tags, since, limit, raw)
			if err != nil {
				return nil, err
			}
			if len(traces) == limit {
				return nil, fmt.Errorf("query %v hit its limit of %d traces", tags, limit)
			}
			for _, tr := range traces {
				// The queries of the pid fallback may overlap: keep a
				// trace once (a span stored twice is still seen twice).
				if seen[tr.TraceID] {
					continue
				}
				seen[tr.TraceID] = true
				for _, c := range jaegerCalls(t, []jaegerTrace{tr}) {
					if ours(c.all) {
						out = append(out, c)
					}
				}
			}
		}
		return out, nil
	}

	// Delivered while the daemon runs, not only when it stops.
	waitStart := time.Now()
	var got []jaegerCall
	deadline := time.Now().Add(30 * time.Second)
	for {
		var err error
		got, err = fetch(true)
		if err != nil {
			t.Fatalf("query Jaeger: %v", err)
		}
		if len(got) >= len(calls) {
			break
		}
		select {
		case <-j.exited:
			t.Fatalf("jaeger exited (%v) with %d of the workload's %d calls as spans:\n%s", j.waitErr, len(got), len(calls), j.output())
		default:
		}
		if time.Now().After(deadline) {
			break // the comparison below says what is missing
		}
		time.Sleep(100 * time.Millisecond)
	}
	arrived := time.Since(waitStart)
	// The noise's spans show that there were others' to leave out.
	var noiseErr error
	if !waitUntil(20*time.Second, func() bool {
		var traces []jaegerTrace
		traces, noiseErr = j.traces(jaegerService, map[string]string{"process.pid": strconv.Itoa(noise.PID())}, since, 10, true)
		return noiseErr != nil || len(traces) > 0
	}) {
		t.Errorf("jaeger has no span of the noise process (pid %d), which calls mlock2 all along", noise.PID())
	}
	if noiseErr != nil {
		t.Fatalf("query Jaeger for the noise's spans: %v", noiseErr)
	}

	// Once the daemon has exited it has sent all it had: a late duplicate
	// would be in Jaeger by now (its receiver stores a request before it
	// answers).
	d.stop(t)
	got, err := fetch(true)
	if err != nil {
		t.Fatalf("query Jaeger: %v", err)
	}
	t.Logf("jaeger: %d spans of the workload's %d calls (all there %v after the workload ended); the noise's spans are there too",
		len(got), len(calls), arrived.Round(time.Millisecond))
	if len(got) != len(calls) {
		t.Errorf("jaeger has %d spans of the workload's processes, want %d: one per call", len(got), len(calls))
	}

	// Each call is a trace of its own, holding one root span.
	traceIDs := map[string]int{}
	for _, c := range got {
		traceIDs[c.span.TraceID]++
	}
	for id, n := range traceIDs {
		if n > 1 {
			t.Errorf("trace %s holds %d of the workload's spans: each call must be its own trace (or a span was stored twice)", id, n)
		}
	}

	// Match the calls to the spans by thread, syscall, arguments and
	// result: each call must have exactly one span.
	byKey := map[jaegerCallKey][]jaegerCall{}
	for _, c := range got {
		k := keyOfSpan(c)
		byKey[k] = append(byKey[k], c)
	}
	for _, c := range calls {
		k := keyOfCall(c)
		spans := byKey[k]
		if len(spans) == 0 {
			t.Errorf("step %s: no span in Jaeger for the call %s", c.Step, k)
			continue
		}
		s := spans[0]
		byKey[k] = spans[1:]
		for _, d := range jaegerCheckSpan(s, c, start, end, proc, cgroupID) {
			t.Errorf("step %s, %s: %s", c.Step, s, d)
		}
	}
	for k, spans := range byKey {
		for _, s := range spans {
			t.Errorf("%s: a span the workload's calls do not account for (%s)", s, k)
		}
	}

	// What Jaeger's UI shows (the query service's adjusters applied) is the
	// same spans, without warnings.
	adjusted, err := fetch(false)
	if err != nil {
		t.Fatalf("query Jaeger: %v", err)
	}
	if len(adjusted) != len(got) {
		t.Errorf("jaeger shows %d of the workload's spans once adjusted, %d as stored", len(adjusted), len(got))
	}
	for _, c := range adjusted {
		if len(c.span.Warnings) > 0 || len(c.trace.Warnings) > 0 {
			t.Errorf("%s: Jaeger warns %q (trace: %q)", c, c.span.Warnings, c.trace.Warnings)
		}
	}
}

// jaegerCheckSpan compares the span s, as Jaeger answers it, with the call
// c the workload reported between start and end, from the process proc
// (in the cgroup cgroupID, unless 0).
func jaegerCheckSpan(s jaegerCall, c testutil.WorkloadCall, start, end time.Time, proc procView, cgroupID int64) []string {
	var diffs []string
	if s.span.OperationName != c.Syscall {
		diffs = append(diffs, fmt.Sprintf("operation %q, want %q", s.span.OperationName, c.Syscall))
	}
	if s.span.TraceID == "" || s.span.SpanID == "" || s.span.TraceID != s.trace.TraceID {
		diffs = append(diffs, fmt.Sprintf("IDs %q/%q in trace %q", s.span.TraceID, s.span.SpanID, s.trace.TraceID))
	}
	if len(s.span.References) > 0 {
		diffs = append(diffs, fmt.Sprintf("references %v, want a root span", s.span.References))
	}
	if n := len(s.trace.Spans); n != 1 {
		diffs = append(diffs, fmt.Sprintf("its trace holds %d spans, want 1", n))
	}
	if len(s.span.Warnings) > 0 {
		diffs = append(diffs, fmt.Sprintf("Jaeger warns %q", s.span.Warnings))
	}
	// Jaeger's microseconds: truncated, so the span's start may read up to
	// 1µs early.
	startAt := time.UnixMicro(s.span.StartTime)
	if startAt.Before(start.Add(-50*time.Millisecond)) || startAt.After(end.Add(50*time.Millisecond)) {
		diffs = append(diffs, fmt.Sprintf("starts at %v, outside the workload's run [%v, %v]", startAt, start, end))
	}
	if v, ok := s.tags.Get("memlock.duration"); !ok || v.Type() != pcommon.ValueTypeDouble || v.Double() <= 0 || v.Double() > 1 {
		diffs = append(diffs, fmt.Sprintf("memlock.duration %v, want a float64 in (0, 1] s", v.AsRaw()))
	} else if want := int64(math.Round(v.Double() * 1e6)); s.span.Duration < want-2 || s.span.Duration > want+2 {
		diffs = append(diffs, fmt.Sprintf("duration %dµs, memlock.duration says %gs", s.span.Duration, v.Double()))
	}

	// The call's attributes, as span tags.
	want := map[string]any{
		"memlock.syscall":               c.Syscall,
		"memlock.return_value":          c.Ret,
		"process.parent_pid":            int64(c.PPID),
		"thread.id":                     int64(c.TID),
		"thread.name":                   c.Comm,
		"process.user.id":               int64(c.EUID),
		"process.real_user.id":          int64(c.UID),
		"memlock.process.group.id":      int64(c.EGID),
		"memlock.process.real_group.id": int64(c.GID),
		"span.kind":                     "internal",
		"otel.scope.name":               "github.com/memlock-exporter/memlock-exporter",
	}
	switch c.Syscall {
	case "mlock", "mlock2", "munlock":
		want["memlock.addr"] = int64(c.Addr)
		want["memlock.len"] = int64(c.Len)
		want["memlock.pages"] = int64(bpf.PagesCovered(c.Addr, c.Len, bpf.PageSize))
	}
	switch c.Syscall {
	case "mlock2", "mlockall":
		want["memlock.flags"] = int64(c.Flags)
		if names := bpf.FlagNames(syscallByName(c.Syscall), c.Flags); len(names) > 0 {
			b, _ := json.Marshal(names) // a string list is a JSON string tag in Jaeger
			want["memlock.flag_names"] = string(b)
		}
	}
	if c.Ret < 0 {
		errno := bpf.Errno(-c.Ret).String()
		want["error.type"] = errno
		want["error"] = true
		want["otel.status_code"] = "ERROR"
		want["otel.status_description"] = errno
	}
	if cgroupID != 0 {
		want["memlock.cgroup.id"] = cgroupID
	}
	diffs = append(diffs, jaegerCheckTags("tag", s.tags, want)...)
	for _, k := range []string{"error", "error.type", "otel.status_code", "otel.status_description"} {
		if _, ok := want[k]; !ok {
			if v, ok := s.tags.Get(k); ok {
				diffs = append(diffs, fmt.Sprintf("a successful call's span has tag %s=%s", k, v.AsString()))
			}
		}
	}
	if v, ok := s.tags.Get("memlock.probe"); !ok || v.Str() == "" {
		diffs = append(diffs, "no memlock.probe tag")
	}
	// Every tag of the call is one the schema gives its event, or one
	// Jaeger makes of the span's kind, scope and status.
	schema := schemaAttributes("memlock." + c.Syscall)
	for k, v := range s.tags.All() {
		switch k {
		case "span.kind", "otel.scope.name", "otel.scope.version", "error", "otel.status_code", "otel.status_description":
			continue
		}
		if !schema[k] {
			diffs = append(diffs, fmt.Sprintf("tag %s=%s is not in the schema's memlock.%s event", k, v.AsString(), c.Syscall))
		}
	}

	// The process: the daemon's service, and the calling process's
	// identity among its tags.
	if s.process.ServiceName != jaegerService {
		diffs = append(diffs, fmt.Sprintf("service %q, want %q", s.process.ServiceName, jaegerService))
	}
	pwant := map[string]any{
		"process.pid":                 int64(c.PID),
		"process.executable.name":     "workload",
		"process.executable.path":     proc.exePath,
		"service.version":             "e2e-test",
		"deployment.environment.name": "e2e",
		"os.type":                     "linux",
	}
	if proc.cgroup != "" {
		pwant["process.linux.cgroup"] = proc.cgroup
	}
	diffs = append(diffs, jaegerCheckTags("process tag", s.ptags, pwant)...)
	for _, k := range []string{"host.name", "os.version", "process.creation.time"} {
		if v, ok := s.ptags.Get(k); !ok || v.Str() == "" {
			diffs = append(diffs, fmt.Sprintf("no process tag %s", k))
		}
	}
	return diffs
}

// jaegerCheckTags compares the tags in have with want's: each must be
// there, of the same type and value.
func jaegerCheckTags(what string, have pcommon.Map, want map[string]any) []string {
	var diffs []string
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v, ok := have.Get(k)
		if !ok {
			diffs = append(diffs, fmt.Sprintf("missing %s %s (want %v)", what, k, want[k]))
			continue
		}
		if got := v.AsRaw(); got != want[k] {
			diffs = append(diffs, fmt.Sprintf("%s %s = %v (%T), want %v (%T)", what, k, got, got, want[k], want[k]))
		}
	}
	return diffs
}
