package exporter

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	"github.com/memlock-exporter/memlock-exporter/bpf"
	"github.com/memlock-exporter/memlock-exporter/exporter/internal/otlpsend"
	"github.com/memlock-exporter/memlock-exporter/exporter/internal/otlpwire"
	"github.com/memlock-exporter/memlock-exporter/procfs"
)

// equivalenceEvents are calls of every kind, succeeding and failing, for
// comparing the direct pipeline with the SDK's.
func equivalenceEvents() []bpf.Event {
	ok := sampleEvent()
	failed := sampleEvent()
	failed.Syscall, failed.Flags, failed.Ret = bpf.SyscallMlock, 0, -12
	all := sampleEvent()
	all.Syscall, all.Addr, all.Len, all.Flags = bpf.SyscallMlockall, 0, 0, 0x7
	none := sampleEvent()
	none.Syscall, none.Addr, none.Len, none.Flags, none.Probe = bpf.SyscallMunlockall, 0, 0, 0, bpf.ProbeFentry
	libc := sampleEvent()
	libc.LibcFunc, libc.CallerAddr, libc.KernelDuration, libc.Probe = bpf.LibcMlock2, 0x55aa0010, 1500*time.Nanosecond, bpf.ProbeKprobe
	unlock := sampleEvent()
	unlock.Syscall, unlock.Flags, unlock.Ret, unlock.Comm = bpf.SyscallMunlock, 0, -22, "naïve-名前"
	return []bpf.Event{ok, failed, all, none, libc, unlock}
}

// flatLogs and flatSpans are what a collector received, in order, across
// requests, with each request's resource and scope checked to be the same.
func flatLogs(t *testing.T, reqs []*collogspb.ExportLogsServiceRequest) (header *logspb.ResourceLogs, records []*logspb.LogRecord) {
	t.Helper()
	for _, req := range reqs {
		for _, rl := range req.GetResourceLogs() {
			for _, sl := range rl.GetScopeLogs() {
				records = append(records, sl.GetLogRecords()...)
			}
			h := &logspb.ResourceLogs{Resource: rl.GetResource(), SchemaUrl: rl.GetSchemaUrl()}
			for _, sl := range rl.GetScopeLogs() {
				h.ScopeLogs = append(h.ScopeLogs, &logspb.ScopeLogs{Scope: sl.GetScope(), SchemaUrl: sl.GetSchemaUrl()})
			}
			if header == nil {
				header = h
			} else if !proto.Equal(header, h) {
				t.Errorf("requests differ in resource or scope:\n%v\n%v", header, h)
			}
		}
	}
	return header, records
}

func flatSpans(t *testing.T, reqs []*coltracepb.ExportTraceServiceRequest) (header *tracepb.ResourceSpans, spans []*tracepb.Span) {
	t.Helper()
	for _, req := range reqs {
		for _, rs := range req.GetResourceSpans() {
			for _, ss := range rs.GetScopeSpans() {
				spans = append(spans, ss.GetSpans()...)
			}
			h := &tracepb.ResourceSpans{Resource: rs.GetResource(), SchemaUrl: rs.GetSchemaUrl()}
			for _, ss := range rs.GetScopeSpans() {
				h.ScopeSpans = append(h.ScopeSpans, &tracepb.ScopeSpans{Scope: ss.GetScope(), SchemaUrl: ss.GetSchemaUrl()})
			}
			if header == nil {
				header = h
			} else if !proto.Equal(header, h) {
				t.Errorf("requests differ in resource or scope:\n%v\n%v", header, h)
			}
		}
	}
	return header, spans
}

// runPipeline sends evs through an Exporter made by New, through the SDK
// (direct false) or the direct pipeline, to a fake collector over proto,
// and returns what it received.
func runPipeline(t *testing.T, protocol string, direct bool, evs []bpf.Event) *fakeCollector {
	t.Helper()
	start := startGRPCCollector
	if protocol != "grpc" {
		start = startHTTPCollector
	}
	c := start(t)
	cleanOTelEnv(t,
		"OTEL_EXPORTER_OTLP_PROTOCOL", protocol,
		"OTEL_EXPORTER_OTLP_ENDPOINT", c.endpoint,
		"OTEL_METRICS_EXPORTER", "none")
	opts := Options{
		ServiceVersion: "1.2.3",
		Processes: &staticProcesses{procfs.Info{
			ExePath: "/usr/bin/gpg-agent", CommandArgs: []string{"gpg-agent", "--daemon"},
			CgroupPath: "/system.slice/docker-0123.scope", ContainerID: "0123", VPID: 7, InPIDNamespace: true, PodUID: "5e1a3b2c-0000-4000-8000-000000000001",
		}},
	}
	if direct {
		endpoint := c.endpoint
		logsURL, tracesURL := endpoint, endpoint
		if protocol != "grpc" {
			logsURL, tracesURL = endpoint+"/v1/logs", endpoint+"/v1/traces"
		}
		opts.Direct = &DirectOptions{
			Logs:  &DirectStream{Target: OTLPTarget{Protocol: protocol, Endpoint: logsURL, Timeout: 5 * time.Second}},
			Spans: &DirectStream{Target: OTLPTarget{Protocol: protocol, Endpoint: tracesURL, Timeout: 5 * time.Second}},
		}
	}
	e, err := New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	e.now = func() time.Time { return observedAt }
	for i := range evs {
		e.Handle(&evs[i])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if n := e.ExportFailures() + e.SpanExportFailures(); n != 0 {
		t.Fatalf("%d export failures", n)
	}
	return c
}

// TestDirectMatchesSDK: the same calls through the OpenTelemetry SDK's
// pipelines and through the direct one reach a collector as equal OTLP
// messages (resource, scope, every field of every record and span), but
// for the random trace and span IDs, which must still link each record to
// its span.
func TestDirectMatchesSDK(t *testing.T) {
	for _, protocol := range []string{"grpc", "http/protobuf"} {
		t.Run(protocol, func(t *testing.T) {
			evs := equivalenceEvents()
			sdk := runPipeline(t, protocol, false, evs)
			dir := runPipeline(t, protocol, true, evs)

			sdkLogHdr, sdkRecs := flatLogs(t, sdk.logs)
			dirLogHdr, dirRecs := flatLogs(t, dir.logs)
			sdkSpanHdr, sdkSpans := flatSpans(t, sdk.traces)
			dirSpanHdr, dirSpans := flatSpans(t, dir.traces)
			if len(sdkRecs) != len(evs) || len(dirRecs) != len(evs) || len(sdkSpans) != len(evs) || len(dirSpans) != len(evs) {
				t.Fatalf("records sdk %d direct %d, spans sdk %d direct %d; want %d each",
					len(sdkRecs), len(dirRecs), len(sdkSpans), len(dirSpans), len(evs))
			}
			checkSameProto(t, "log resource and scope", sdkLogHdr, dirLogHdr)
			checkSameProto(t, "span resource and scope", sdkSpanHdr, dirSpanHdr)
			for i := range evs {
				for _, p := range []struct {
					recs  []*logspb.LogRecord
					spans []*tracepb.Span
				}{{sdkRecs, sdkSpans}, {dirRecs, dirSpans}} {
					r, s := p.recs[i], p.spans[i]
					if string(r.TraceId) != string(s.TraceId) || string(r.SpanId) != string(s.SpanId) || len(s.TraceId) != 16 || len(s.SpanId) != 8 {
						t.Errorf("event %d: record IDs %x/%x, span IDs %x/%x", i, r.TraceId, r.SpanId, s.TraceId, s.SpanId)
					}
					r.TraceId, r.SpanId, s.TraceId, s.SpanId = nil, nil, nil, nil
				}
				checkSameProto(t, fmt.Sprintf("event %d's log record", i), sdkRecs[i], dirRecs[i])
				checkSameProto(t, fmt.Sprintf("event %d's span", i), sdkSpans[i], dirSpans[i])
			}
		})
	}
}

func checkSameProto(t *testing.T, what string, sdk, direct proto.Message) {
	t.Helper()
	if !proto.Equal(sdk, direct) {
		t.Errorf("%s differs:\nSDK:    %s\ndirect: %s", what, prototext.Format(sdk), prototext.Format(direct))
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
	f.bodies = append(f.bodies, append([]byte(nil), body...))
	return f.rejected, nil
}

func (f *fakeSender) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	return nil
}

// records decodes every request sent and returns each one's record bodies.
func (f *fakeSender) records(t *testing.T) [][]string {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	var out [][]string
	for _, b := range f.bodies {
		req := &collogspb.ExportLogsServiceRequest{}
		if err := proto.Unmarshal(b, req); err != nil {
			t.Fatalf("request does not decode: %v", err)
		}
		var bodies []string
		for _, rl := range req.GetResourceLogs() {
			for _, sl := range rl.GetScopeLogs() {
				for _, r := range sl.GetLogRecords() {
					bodies = append(bodies, r.GetBody().GetStringValue())
				}
			}
		}
		out = append(out, bodies)
	}
	return out
}

type counts struct {
	mu                       sync.Mutex
	failed, dropped, success int
	errs                     []error
}

func (c *counts) counters() streamCounters {
	return streamCounters{
		failed: func(n int, err error) {
			c.mu.Lock()
			defer c.mu.Unlock()
			c.failed += n
			c.errs = append(c.errs, err)
		},
		succeeded: func() { c.mu.Lock(); c.success++; c.mu.Unlock() },
		dropped:   func(n int) { c.mu.Lock(); c.dropped += n; c.mu.Unlock() },
	}
}

func (c *counts) get() (failed, dropped, success int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.failed, c.dropped, c.success
}

func appendN(s *stream, from, n int) {
	for i := from; i < from+n; i++ {
		s.appendLog(&otlpwire.LogRecord{Body: fmt.Sprint(i), Time: int64(i) + 1})
	}
}

func TestStreamBatches(t *testing.T) {
	for _, tc := range []struct {
		name              string
		batch, queue, n   int
		maxBytes          int
		wantSizes         []int // sizes of the requests sent, in order
		wantFail, wantOK  int
		senderErr         error
		rejected          int64
		wantDropped       int
		block             bool // the sender is stuck until shutdown
		shutdownTimeout   time.Duration
		wantShutdownError bool
	}{
		{name: "full batches then the rest at shutdown", batch: 4, queue: 16, n: 10, wantSizes: []int{4, 4, 2}, wantOK: 3},
		{name: "one batch", batch: 512, queue: 2048, n: 3, wantSizes: []int{3}, wantOK: 1},
		// A record takes 16 bytes here: a batch ends at the first record
		// that takes it to 40 bytes or more.
		{name: "batches end at MaxBatchBytes", batch: 512, queue: 2048, n: 7, maxBytes: 40, wantSizes: []int{3, 3, 1}, wantOK: 3},
		{name: "failures are counted per record", batch: 4, queue: 16, n: 6, senderErr: errors.New("connection refused"), wantFail: 6},
		{name: "rejections are failures", batch: 4, queue: 16, n: 4, rejected: 1, wantSizes: []int{4}, wantFail: 1},
		// A partial success is delivered: only the rejected record is lost.
		{name: "partial success with a message", batch: 4, queue: 16, n: 4, senderErr: &otlpsend.PartialSuccessError{Rejected: 1, Message: "too old"}, wantFail: 1},
		{name: "partial success, nothing rejected", batch: 4, queue: 16, n: 4, senderErr: &otlpsend.PartialSuccessError{Message: "fyi"}, wantOK: 1},
		// The sender is stuck on the first full batch; the next three
		// wait in the queue (16/4-1 slots: the batch being filled counts
		// towards the queue size) and the other six are dropped. Shutdown
		// cannot send the four batches in time.
		{name: "queue full drops whole batches", batch: 4, queue: 16, n: 40, block: true, wantDropped: 24,
			shutdownTimeout: 50 * time.Millisecond, wantFail: 16, wantShutdownError: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := &fakeSender{err: tc.senderErr, rejected: tc.rejected}
			if tc.block {
				fs.block = make(chan struct{})
			}
			var c counts
			s := newStream(otlpwire.Scope{Name: "test"}, otlpwire.FrameLogsRequest, fs,
				BatchOptions{ScheduleDelay: time.Hour, MaxExportBatch: tc.batch, MaxQueueSize: tc.queue, MaxBatchBytes: tc.maxBytes}, c.counters())
			if tc.block {
				// Let the sender take the first batch before the rest.
				appendN(s, 0, tc.batch)
				waitFor(t, func() bool { return len(s.queue) == 0 })
				appendN(s, tc.batch, tc.n-tc.batch)
			} else {
				appendN(s, 0, tc.n)
			}
			timeout := tc.shutdownTimeout
			if timeout == 0 {
				timeout = 5 * time.Second
			}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			err := s.shutdown(ctx)
			if (err != nil) != tc.wantShutdownError {
				t.Errorf("shutdown error = %v, want error %v", err, tc.wantShutdownError)
			}
			got := fs.records(t)
			var sizes []int
			next := 0
			for _, req := range got {
				sizes = append(sizes, len(req))
				for _, body := range req {
					if body != fmt.Sprint(next) {
						t.Errorf("record %q sent where %d was due", body, next)
					}
					next++
				}
			}
			if fmt.Sprint(sizes) != fmt.Sprint(tc.wantSizes) {
				t.Errorf("request sizes %v, want %v", sizes, tc.wantSizes)
			}
			failed, dropped, ok := c.get()
			if failed != tc.wantFail || dropped != tc.wantDropped || ok != tc.wantOK {
				t.Errorf("failed %d dropped %d succeeded %d, want %d %d %d", failed, dropped, ok, tc.wantFail, tc.wantDropped, tc.wantOK)
			}
			if !fs.closed {
				t.Error("shutdown did not close the sender")
			}
			// After shutdown, appending is a no-op and does not panic.
			appendN(s, 0, 1)
		})
	}
}

// TestStreamScheduleDelay: a batch that never fills is sent after the
// schedule delay, without waiting for shutdown.
func TestStreamScheduleDelay(t *testing.T) {
	fs := &fakeSender{}
	var c counts
	s := newStream(otlpwire.Scope{}, otlpwire.FrameLogsRequest, fs,
		BatchOptions{ScheduleDelay: 20 * time.Millisecond, MaxExportBatch: 512}, c.counters())
	defer s.shutdown(context.Background())
	appendN(s, 0, 3)
	waitFor(t, func() bool { _, _, ok := c.get(); return ok == 1 })
	if got := fs.records(t); len(got) != 1 || len(got[0]) != 3 {
		t.Errorf("sent %v, want one request of 3 records", got)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestSampler(t *testing.T) {
	ids := newIDGenerator()
	for _, tc := range []struct {
		name    string
		ratio   float64
		lo, hi  int // sampled out of 10000, bounds
		wantErr bool
	}{
		{name: "always_on", lo: 10000, hi: 10000},
		{name: "", lo: 10000, hi: 10000},
		{name: "parentbased_always_on", lo: 10000, hi: 10000},
		{name: "always_off", lo: 0, hi: 0},
		{name: "parentbased_always_off", lo: 0, hi: 0},
		{name: "traceidratio", ratio: 0.25, lo: 2200, hi: 2800},
		{name: "parentbased_traceidratio", ratio: 0.5, lo: 4600, hi: 5400},
		{name: "traceidratio", ratio: 1, lo: 10000, hi: 10000},
		{name: "traceidratio", ratio: 0, lo: 0, hi: 0},
		{name: "xray", wantErr: true},
	} {
		t.Run(fmt.Sprintf("%s/%v", tc.name, tc.ratio), func(t *testing.T) {
			s, err := newSampler(tc.name, tc.ratio)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			n := 0
			for range 10000 {
				if s(ids.next().trace) {
					n++
				}
			}
			if n < tc.lo || n > tc.hi {
				t.Errorf("sampled %d of 10000, want %d..%d", n, tc.lo, tc.hi)
			}
		})
	}
}

func TestIDsAreUniqueAndValid(t *testing.T) {
	g := newIDGenerator()
	seen := map[[16]byte]bool{}
	for range 10000 {
		ids := g.next()
		if ids.trace == [16]byte{} || ids.span == [8]byte{} || seen[ids.trace] {
			t.Fatalf("bad or repeated IDs %x %x", ids.trace, ids.span)
		}
		seen[ids.trace] = true
	}
}

// TestDirectDiagnostics: a direct stream that cannot reach its collector
// counts what it could not deliver in ExportFailures (hence
// memlock.events.lost{reason=export_failed}) and says so through the
// daemon's logger.
func TestDirectDiagnostics(t *testing.T) {
	cleanOTelEnv(t, "OTEL_METRICS_EXPORTER", "none", "OTEL_TRACES_EXPORTER", "none")
	sink := &logSink{}
	e, err := New(context.Background(), Options{
		Logger: slog.New(sink),
		Direct: &DirectOptions{Logs: &DirectStream{
			Target: OTLPTarget{Protocol: "grpc", Endpoint: "http://" + closedLoopbackPort(t), Timeout: 100 * time.Millisecond},
			Batch:  BatchOptions{ScheduleDelay: 10 * time.Millisecond, ExportTimeout: 200 * time.Millisecond},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ev := sampleEvent()
	for range 5 {
		e.Handle(&ev)
	}
	waitFor(t, func() bool { return e.ExportFailures() == 5 })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = e.Shutdown(ctx)
	var warned bool
	for _, r := range sink.take() {
		if r.Level == slog.LevelWarn && r.Message != "" {
			warned = true
		}
	}
	if !warned {
		t.Error("no warning about the unreachable collector")
	}
}

// closedLoopbackPort returns a loopback address nothing listens on.
func closedLoopbackPort(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	return addr
}

// TestThreadCacheFollowsChanges: the cached encoding of a thread's
// attributes is always what encoding them afresh gives, whichever value
// they are made of changes between two calls of the thread.
func TestThreadCacheFollowsChanges(t *testing.T) {
	base := procfs.Info{ExePath: "/usr/bin/a", CommandArgs: []string{"a", "-x"}, CgroupPath: "/a.scope", ContainerID: "c1", PodUID: "p1", VPID: 3, InPIDNamespace: true}
	for _, tc := range []struct {
		name   string
		change func(ev *bpf.Event, info *procfs.Info) *procfs.Info
	}{
		{"nothing", func(ev *bpf.Event, info *procfs.Info) *procfs.Info { return info }},
		{"parent", func(ev *bpf.Event, info *procfs.Info) *procfs.Info { ev.PPID++; return info }},
		{"thread name", func(ev *bpf.Event, info *procfs.Info) *procfs.Info { ev.Comm = "renamed"; return info }},
		{"executable", func(ev *bpf.Event, info *procfs.Info) *procfs.Info { ev.ExeName = "b"; return info }},
		{"effective uid", func(ev *bpf.Event, info *procfs.Info) *procfs.Info { ev.EUID = 0; return info }},
		{"gid", func(ev *bpf.Event, info *procfs.Info) *procfs.Info { ev.GID = 7; return info }},
		{"cgroup id", func(ev *bpf.Event, info *procfs.Info) *procfs.Info { ev.CgroupID = 99; return info }},
		{"process gone", func(ev *bpf.Event, info *procfs.Info) *procfs.Info { return nil }},
		{"exe path", func(ev *bpf.Event, info *procfs.Info) *procfs.Info { info.ExePath = "/usr/bin/b"; return info }},
		{"arguments", func(ev *bpf.Event, info *procfs.Info) *procfs.Info {
			info.CommandArgs = []string{"a", "-y"}
			return info
		}},
		{"container", func(ev *bpf.Event, info *procfs.Info) *procfs.Info { info.ContainerID = "c2"; return info }},
		{"vpid", func(ev *bpf.Event, info *procfs.Info) *procfs.Info { info.VPID = 4; return info }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c threadCache
			var b recordBuilder
			ev := sampleEvent()
			info := base
			c.get(&b, &ev, &info, true, true)
			next := info
			infoP := tc.change(&ev, &next)
			got := c.get(&b, &ev, infoP, true, true)
			var fresh recordBuilder
			attrs := fresh.appendThreadAttributes(nil, &ev, infoP)
			if !bytes.Equal(got.log, otlpwire.LogAttributes.AppendAll(nil, attrs)) {
				t.Error("log encoding is stale")
			}
			if !bytes.Equal(got.span, otlpwire.SpanAttributes.AppendAll(nil, attrs)) {
				t.Error("span encoding is stale")
			}
		})
	}
}
