package exporter

import (
	"bytes"
	"context"
	"math"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/log"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/memlock-exporter/memlock-exporter/bpf"
	"github.com/memlock-exporter/memlock-exporter/exporter/internal/otlpwire"
	"github.com/memlock-exporter/memlock-exporter/semconv"
)

// memProcessor keeps a copy of every record emitted.
type memProcessor struct {
	mu      sync.Mutex
	records []sdklog.Record
}

func (p *memProcessor) Enabled(context.Context, sdklog.EnabledParameters) bool { return true }
func (p *memProcessor) Shutdown(context.Context) error                         { return nil }
func (p *memProcessor) ForceFlush(context.Context) error                       { return nil }
func (p *memProcessor) OnEmit(_ context.Context, r *sdklog.Record) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.records = append(p.records, r.Clone())
	return nil
}

func (p *memProcessor) Records() []sdklog.Record {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.records)
}

var observedAt = time.Date(2026, 11, 5, 10, 0, 1, 0, time.UTC)

type testRig struct {
	exp    *Exporter
	logs   *memProcessor
	reader *sdkmetric.ManualReader
	spans  *tracetest.SpanRecorder // nil without spans
}

// newRig returns an Exporter that emits into in-memory providers, spans
// included (as New does unless OTEL_TRACES_EXPORTER=none).
func newRig(t testing.TB, opts Options) *testRig {
	t.Helper()
	spans := tracetest.NewSpanRecorder()
	rig := newRigWith(t, opts, sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans)))
	rig.spans = spans
	return rig
}

// newRigWith is newRig with the given tracer provider (nil: no spans).
func newRigWith(t testing.TB, opts Options, tp trace.TracerProvider) *testRig {
	t.Helper()
	logs := &memProcessor{}
	var readerOpts []sdkmetric.ManualReaderOption
	if opts.Histograms != nil {
		readerOpts = append(readerOpts, sdkmetric.WithProducer(opts.Histograms))
	}
	reader := sdkmetric.NewManualReader(readerOpts...)
	lp := sdklog.NewLoggerProvider(sdklog.WithProcessor(logs), sdklog.WithAllowKeyDuplication())
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	e, err := NewWithProviders(lp, mp, tp, opts)
	if err != nil {
		t.Fatal(err)
	}
	e.now = func() time.Time { return observedAt }
	t.Cleanup(func() { _ = e.Shutdown(context.Background()) })
	return &testRig{exp: e, logs: logs, reader: reader}
}

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

type attrs map[attribute.Key]attribute.Value

// process are the attributes of sampleEvent's process and thread.
func process() attrs {
	return attrs{
		semconv.ProcessPIDKey:            attribute.Int64Value(4242),
		semconv.ProcessParentPIDKey:      attribute.Int64Value(1),
		semconv.ThreadIDKey:              attribute.Int64Value(4242),
		semconv.ThreadNameKey:            attribute.StringValue("gpg-agent"),
		semconv.ProcessExecutableNameKey: attribute.StringValue("gpg-agent"),
		semconv.ProcessUserIDKey:         attribute.Int64Value(1001),
		semconv.ProcessRealUserIDKey:     attribute.Int64Value(1000),
		semconv.ProcessGroupIDKey:        attribute.Int64Value(101),
		semconv.ProcessRealGroupIDKey:    attribute.Int64Value(100),
		semconv.CgroupIDKey:              attribute.Int64Value(7788),
	}
}

func (a attrs) with(b attrs) attrs {
	out := attrs{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

func (a attrs) without(keys ...attribute.Key) attrs {
	out := a.with(nil)
	for _, k := range keys {
		delete(out, k)
	}
	return out
}

var recordCases = []struct {
	name     string
	mod      func(*bpf.Event)
	event    string
	severity log.Severity
	body     string
	attrs    attrs
}{
	{
		name:     "mlock2 onfault success",
		event:    "memlock.mlock2",
		severity: log.SeverityInfo,
		body:     "mlock2(0x7f3a1c000000, 8192, MLOCK_ONFAULT) = 0",
		attrs: process().with(attrs{
			semconv.SyscallKey:     attribute.StringValue("mlock2"),
			semconv.AddrKey:        attribute.Int64Value(0x7f3a1c000000),
			semconv.LenKey:         attribute.Int64Value(8192),
			semconv.PagesKey:       attribute.Int64Value(2),
			semconv.FlagsKey:       attribute.Int64Value(1),
			semconv.FlagNamesKey:   attribute.StringSliceValue([]string{"MLOCK_ONFAULT"}),
			semconv.ReturnValueKey: attribute.Int64Value(0),
			semconv.DurationKey:    attribute.Float64Value(4.2e-6),
			semconv.ProbeKey:       attribute.StringValue("tracepoint"),
		}),
	},
	{
		name: "mlock2 no flags, unaligned range",
		mod: func(e *bpf.Event) {
			e.Flags, e.Addr, e.Len, e.Probe = 0, 0x1001, 4096, bpf.ProbeFentry
		},
		event:    "memlock.mlock2",
		severity: log.SeverityInfo,
		body:     "mlock2(0x1001, 4096, 0) = 0",
		attrs: process().with(attrs{
			semconv.SyscallKey:     attribute.StringValue("mlock2"),
			semconv.AddrKey:        attribute.Int64Value(0x1001),
			semconv.LenKey:         attribute.Int64Value(4096),
			semconv.PagesKey:       attribute.Int64Value(2),
			semconv.FlagsKey:       attribute.Int64Value(0),
			semconv.ReturnValueKey: attribute.Int64Value(0),
			semconv.DurationKey:    attribute.Float64Value(4.2e-6),
			semconv.ProbeKey:       attribute.StringValue("fentry"),
		}),
	},
	{
		name: "mlock2 unknown flag bits rejected",
		mod: func(e *bpf.Event) {
			e.Flags, e.Addr, e.Len, e.Ret = 3, 0x1000, 4096, -22
		},
		event:    "memlock.mlock2",
		severity: log.SeverityWarn,
		body:     "mlock2(0x1000, 4096, MLOCK_ONFAULT|0x2) = -1 EINVAL",
		attrs: process().with(attrs{
			semconv.SyscallKey:     attribute.StringValue("mlock2"),
			semconv.AddrKey:        attribute.Int64Value(0x1000),
			semconv.LenKey:         attribute.Int64Value(4096),
			semconv.PagesKey:       attribute.Int64Value(1),
			semconv.FlagsKey:       attribute.Int64Value(3),
			semconv.FlagNamesKey:   attribute.StringSliceValue([]string{"MLOCK_ONFAULT", "0x2"}),
			semconv.ReturnValueKey: attribute.Int64Value(-22),
			semconv.DurationKey:    attribute.Float64Value(4.2e-6),
			semconv.ProbeKey:       attribute.StringValue("tracepoint"),
			semconv.ErrorTypeKey:   attribute.StringValue("EINVAL"),
		}),
	},
	{
		name: "mlock2 only unknown bits, large value",
		mod: func(e *bpf.Event) {
			e.Flags, e.Addr, e.Len, e.Ret = 0x100, 0x1000, 4096, -22
		},
		event:    "memlock.mlock2",
		severity: log.SeverityWarn,
		body:     "mlock2(0x1000, 4096, 0x100) = -1 EINVAL",
		attrs: process().with(attrs{
			semconv.SyscallKey:     attribute.StringValue("mlock2"),
			semconv.AddrKey:        attribute.Int64Value(0x1000),
			semconv.LenKey:         attribute.Int64Value(4096),
			semconv.PagesKey:       attribute.Int64Value(1),
			semconv.FlagsKey:       attribute.Int64Value(0x100),
			semconv.FlagNamesKey:   attribute.StringSliceValue([]string{"0x100"}),
			semconv.ReturnValueKey: attribute.Int64Value(-22),
			semconv.DurationKey:    attribute.Float64Value(4.2e-6),
			semconv.ProbeKey:       attribute.StringValue("tracepoint"),
			semconv.ErrorTypeKey:   attribute.StringValue("EINVAL"),
		}),
	},
	{
		name: "mlock failure ENOMEM",
		mod: func(e *bpf.Event) {
			e.Syscall, e.Flags, e.Addr, e.Len, e.Ret = bpf.SyscallMlock, 0, 0x1000, 4096, -12
			e.Duration = 1500 * time.Microsecond
		},
		event:    "memlock.mlock",
		severity: log.SeverityWarn,
		body:     "mlock(0x1000, 4096) = -1 ENOMEM",
		attrs: process().with(attrs{
			semconv.SyscallKey:     attribute.StringValue("mlock"),
			semconv.AddrKey:        attribute.Int64Value(0x1000),
			semconv.LenKey:         attribute.Int64Value(4096),
			semconv.PagesKey:       attribute.Int64Value(1),
			semconv.ReturnValueKey: attribute.Int64Value(-12),
			semconv.DurationKey:    attribute.Float64Value(0.0015),
			semconv.ProbeKey:       attribute.StringValue("tracepoint"),
			semconv.ErrorTypeKey:   attribute.StringValue("ENOMEM"),
		}),
	},
	{
		name: "thread of a process, empty exe, no cgroup",
		mod: func(e *bpf.Event) {
			e.Syscall, e.Flags, e.Addr, e.Len = bpf.SyscallMlock, 0, 0x2000, 0
			e.TID, e.Comm, e.ExeName, e.CgroupID = 4250, "worker-3", "", 0
		},
		event:    "memlock.mlock",
		severity: log.SeverityInfo,
		body:     "mlock(0x2000, 0) = 0",
		attrs: process().without(semconv.ProcessExecutableNameKey, semconv.CgroupIDKey).with(attrs{
			semconv.ThreadIDKey:    attribute.Int64Value(4250),
			semconv.ThreadNameKey:  attribute.StringValue("worker-3"),
			semconv.SyscallKey:     attribute.StringValue("mlock"),
			semconv.AddrKey:        attribute.Int64Value(0x2000),
			semconv.LenKey:         attribute.Int64Value(0),
			semconv.PagesKey:       attribute.Int64Value(0),
			semconv.ReturnValueKey: attribute.Int64Value(0),
			semconv.DurationKey:    attribute.Float64Value(4.2e-6),
			semconv.ProbeKey:       attribute.StringValue("tracepoint"),
		}),
	},
	{
		name: "munlock",
		mod: func(e *bpf.Event) {
			e.Syscall, e.Flags, e.Probe = bpf.SyscallMunlock, 0, bpf.ProbeKprobe
		},
		event:    "memlock.munlock",
		severity: log.SeverityInfo,
		body:     "munlock(0x7f3a1c000000, 8192) = 0",
		attrs: process().with(attrs{
			semconv.SyscallKey:     attribute.StringValue("munlock"),
			semconv.AddrKey:        attribute.Int64Value(0x7f3a1c000000),
			semconv.LenKey:         attribute.Int64Value(8192),
			semconv.PagesKey:       attribute.Int64Value(2),
			semconv.ReturnValueKey: attribute.Int64Value(0),
			semconv.DurationKey:    attribute.Float64Value(4.2e-6),
			semconv.ProbeKey:       attribute.StringValue("kprobe"),
		}),
	},
	{
		name: "mlockall failure EPERM",
		mod: func(e *bpf.Event) {
			e.Syscall, e.Flags, e.Addr, e.Len, e.Ret = bpf.SyscallMlockall, 3, 0, 0, -1
			e.Probe = bpf.ProbeUprobe
		},
		event:    "memlock.mlockall",
		severity: log.SeverityWarn,
		body:     "mlockall(MCL_CURRENT|MCL_FUTURE) = -1 EPERM",
		attrs: process().with(attrs{
			semconv.SyscallKey:     attribute.StringValue("mlockall"),
			semconv.FlagsKey:       attribute.Int64Value(3),
			semconv.FlagNamesKey:   attribute.StringSliceValue([]string{"MCL_CURRENT", "MCL_FUTURE"}),
			semconv.ReturnValueKey: attribute.Int64Value(-1),
			semconv.DurationKey:    attribute.Float64Value(4.2e-6),
			semconv.ProbeKey:       attribute.StringValue("uprobe"),
			semconv.ErrorTypeKey:   attribute.StringValue("EPERM"),
		}),
	},
	{
		name: "munlockall",
		mod: func(e *bpf.Event) {
			e.Syscall, e.Flags, e.Addr, e.Len = bpf.SyscallMunlockall, 0, 0, 0
		},
		event:    "memlock.munlockall",
		severity: log.SeverityInfo,
		body:     "munlockall() = 0",
		attrs: process().with(attrs{
			semconv.SyscallKey:     attribute.StringValue("munlockall"),
			semconv.ReturnValueKey: attribute.Int64Value(0),
			semconv.DurationKey:    attribute.Float64Value(4.2e-6),
			semconv.ProbeKey:       attribute.StringValue("tracepoint"),
		}),
	},
	{
		name: "mlock2 with the kernel-function and libc views",
		mod: func(e *bpf.Event) {
			e.KernelDuration = 3100 * time.Nanosecond
			e.LibcFunc, e.CallerAddr = bpf.LibcMlock2, 0x55d0c0de1234
		},
		event:    "memlock.mlock2",
		severity: log.SeverityInfo,
		body:     "mlock2(0x7f3a1c000000, 8192, MLOCK_ONFAULT) = 0",
		attrs: process().with(attrs{
			semconv.SyscallKey:        attribute.StringValue("mlock2"),
			semconv.AddrKey:           attribute.Int64Value(0x7f3a1c000000),
			semconv.LenKey:            attribute.Int64Value(8192),
			semconv.PagesKey:          attribute.Int64Value(2),
			semconv.FlagsKey:          attribute.Int64Value(1),
			semconv.FlagNamesKey:      attribute.StringSliceValue([]string{"MLOCK_ONFAULT"}),
			semconv.ReturnValueKey:    attribute.Int64Value(0),
			semconv.DurationKey:       attribute.Float64Value(4.2e-6),
			semconv.ProbeKey:          attribute.StringValue("tracepoint"),
			semconv.KernelDurationKey: attribute.Float64Value(3.1e-6),
			semconv.LibcFunctionKey:   attribute.StringValue("mlock2"),
			semconv.CallerAddressKey:  attribute.Int64Value(0x55d0c0de1234),
		}),
	},
	{
		// glibc's mlock2(addr, len, 0) issues the mlock syscall.
		name: "glibc mlock2 without flags arrives as mlock",
		mod: func(e *bpf.Event) {
			e.Syscall, e.Flags = bpf.SyscallMlock, 0
			e.KernelDuration = 2 * time.Microsecond
			e.LibcFunc, e.CallerAddr = bpf.LibcMlock2, 0x401136
		},
		event:    "memlock.mlock",
		severity: log.SeverityInfo,
		body:     "mlock(0x7f3a1c000000, 8192) = 0",
		attrs: process().with(attrs{
			semconv.SyscallKey:        attribute.StringValue("mlock"),
			semconv.AddrKey:           attribute.Int64Value(0x7f3a1c000000),
			semconv.LenKey:            attribute.Int64Value(8192),
			semconv.PagesKey:          attribute.Int64Value(2),
			semconv.ReturnValueKey:    attribute.Int64Value(0),
			semconv.DurationKey:       attribute.Float64Value(4.2e-6),
			semconv.ProbeKey:          attribute.StringValue("tracepoint"),
			semconv.KernelDurationKey: attribute.Float64Value(2e-6),
			semconv.LibcFunctionKey:   attribute.StringValue("mlock2"),
			semconv.CallerAddressKey:  attribute.Int64Value(0x401136),
		}),
	},
	{
		name: "mlockall through libc",
		mod: func(e *bpf.Event) {
			e.Syscall, e.Flags, e.Addr, e.Len = bpf.SyscallMlockall, 1, 0, 0
			e.LibcFunc, e.CallerAddr = bpf.LibcMlockall, 0x7ffff7a1b2c3
		},
		event:    "memlock.mlockall",
		severity: log.SeverityInfo,
		body:     "mlockall(MCL_CURRENT) = 0",
		attrs: process().with(attrs{
			semconv.SyscallKey:       attribute.StringValue("mlockall"),
			semconv.FlagsKey:         attribute.Int64Value(1),
			semconv.FlagNamesKey:     attribute.StringSliceValue([]string{"MCL_CURRENT"}),
			semconv.ReturnValueKey:   attribute.Int64Value(0),
			semconv.DurationKey:      attribute.Float64Value(4.2e-6),
			semconv.ProbeKey:         attribute.StringValue("tracepoint"),
			semconv.LibcFunctionKey:  attribute.StringValue("mlockall"),
			semconv.CallerAddressKey: attribute.Int64Value(0x7ffff7a1b2c3),
		}),
	},
	{
		// The kernel only fills these for mlock, mlock2 (and mlockall);
		// stray values on other calls must not leak into the schema.
		name: "munlock ignores kernel and libc fields",
		mod: func(e *bpf.Event) {
			e.Syscall, e.Flags = bpf.SyscallMunlock, 0
			e.KernelDuration = time.Microsecond
			e.LibcFunc, e.CallerAddr = bpf.LibcMlock, 0x401136
		},
		event:    "memlock.munlock",
		severity: log.SeverityInfo,
		body:     "munlock(0x7f3a1c000000, 8192) = 0",
		attrs: process().with(attrs{
			semconv.SyscallKey:     attribute.StringValue("munlock"),
			semconv.AddrKey:        attribute.Int64Value(0x7f3a1c000000),
			semconv.LenKey:         attribute.Int64Value(8192),
			semconv.PagesKey:       attribute.Int64Value(2),
			semconv.ReturnValueKey: attribute.Int64Value(0),
			semconv.DurationKey:    attribute.Float64Value(4.2e-6),
			semconv.ProbeKey:       attribute.StringValue("tracepoint"),
		}),
	},
	{
		name: "errno without a name",
		mod: func(e *bpf.Event) {
			e.Syscall, e.Flags, e.Addr, e.Len, e.Ret = bpf.SyscallMlock, 0, 0x1000, 4096, -4000
		},
		event:    "memlock.mlock",
		severity: log.SeverityWarn,
		body:     "mlock(0x1000, 4096) = -1 errno 4000",
		attrs: process().with(attrs{
			semconv.SyscallKey:     attribute.StringValue("mlock"),
			semconv.AddrKey:        attribute.Int64Value(0x1000),
			semconv.LenKey:         attribute.Int64Value(4096),
			semconv.PagesKey:       attribute.Int64Value(1),
			semconv.ReturnValueKey: attribute.Int64Value(-4000),
			semconv.DurationKey:    attribute.Float64Value(4.2e-6),
			semconv.ProbeKey:       attribute.StringValue("tracepoint"),
			semconv.ErrorTypeKey:   attribute.StringValue("errno 4000"),
		}),
	},
}

func needPageSize4K(t testing.TB) {
	if bpf.PageSize != 4096 {
		t.Skipf("expected page counts assume 4096-byte pages; this host has %d", bpf.PageSize)
	}
}

func recordAttrs(r *sdklog.Record) attrs {
	out := attrs{}
	r.WalkAttributes(func(kv attribute.KeyValue) bool {
		if _, dup := out[kv.Key]; dup {
			out[kv.Key+" (duplicate)"] = kv.Value
		}
		out[kv.Key] = kv.Value
		return true
	})
	return out
}

func TestRecords(t *testing.T) {
	needPageSize4K(t)
	for _, tc := range recordCases {
		t.Run(tc.name, func(t *testing.T) {
			rig := newRig(t, Options{ServiceVersion: "1.2.3"})
			ev := sampleEvent()
			if tc.mod != nil {
				tc.mod(&ev)
			}
			rig.exp.Handle(&ev)
			ev = bpf.Event{} // Handle must not retain ev

			recs := rig.logs.Records()
			if len(recs) != 1 {
				t.Fatalf("got %d records, want 1", len(recs))
			}
			r := &recs[0]
			if got := r.EventName(); got != tc.event {
				t.Errorf("EventName = %q, want %q", got, tc.event)
			}
			if got, want := r.Timestamp(), sampleEvent().Time; !got.Equal(want) {
				t.Errorf("Timestamp = %v, want %v", got, want)
			}
			if got := r.ObservedTimestamp(); !got.Equal(observedAt) {
				t.Errorf("ObservedTimestamp = %v, want %v", got, observedAt)
			}
			if got := r.Severity(); got != tc.severity {
				t.Errorf("Severity = %v, want %v", got, tc.severity)
			}
			if got := r.SeverityText(); got != "" {
				t.Errorf("SeverityText = %q, want none", got)
			}
			if got := r.Body(); got.Type() != attribute.STRING || got.AsString() != tc.body {
				t.Errorf("Body = %v, want %q", got, tc.body)
			}
			got := recordAttrs(r)
			for k, want := range tc.attrs {
				g, ok := got[k]
				if !ok {
					t.Errorf("attribute %s missing, want %v", k, want.Emit())
					continue
				}
				if g.Type() != want.Type() || !reflect.DeepEqual(g.AsInterface(), want.AsInterface()) {
					t.Errorf("attribute %s = %s %v, want %s %v", k, g.Type(), g.Emit(), want.Type(), want.Emit())
				}
			}
			for k, v := range got {
				if _, ok := tc.attrs[k]; !ok {
					t.Errorf("unexpected attribute %s = %v", k, v.Emit())
				}
			}
			if n := r.DroppedAttributes(); n != 0 {
				t.Errorf("%d attributes dropped", n)
			}
			scope := r.InstrumentationScope()
			if scope.Name != semconv.ScopeName || scope.SchemaURL != semconv.SchemaURL || scope.Version != "1.2.3" {
				t.Errorf("scope = %+v, want %s %s 1.2.3", scope, semconv.ScopeName, semconv.SchemaURL)
			}
		})
	}
}

// TestRecordsMatchSchema checks every record against semconv: its event is
// defined, it carries only the attributes the event defines, each with the
// type the schema gives it, and the record builder never exceeds its
// attribute budget.
func TestRecordsMatchSchema(t *testing.T) {
	events := map[string]semconv.EventDef{}
	for _, d := range semconv.Events {
		events[d.Name] = d
	}
	types := map[attribute.Key]semconv.AttrType{}
	for _, d := range semconv.CustomAttributes {
		types[d.Key] = d.Type
	}
	rig := newRig(t, Options{})
	for _, tc := range recordCases {
		ev := sampleEvent()
		if tc.mod != nil {
			tc.mod(&ev)
		}
		rig.exp.Handle(&ev)
	}
	recs := rig.logs.Records()
	if len(recs) != len(recordCases) {
		t.Fatalf("got %d records, want %d", len(recs), len(recordCases))
	}
	seen := map[string]bool{}
	for i := range recs {
		r := &recs[i]
		def, ok := events[r.EventName()]
		if !ok {
			t.Errorf("record %d: event %q is not in semconv.Events", i, r.EventName())
			continue
		}
		seen[def.Name] = true
		if r.AttributesLen() > maxRecordAttributes {
			t.Errorf("record %d: %d attributes, budget %d", i, r.AttributesLen(), maxRecordAttributes)
		}
		for k, v := range recordAttrs(r) {
			if !slices.Contains(def.Attributes, k) {
				t.Errorf("%s carries %s, which its EventDef does not list", def.Name, k)
			}
			if want, ok := types[k]; ok && typeName(v.Type()) != want {
				t.Errorf("%s: %s is %s, schema says %s", def.Name, k, v.Type(), want)
			}
		}
	}
	for _, d := range semconv.Events {
		if !seen[d.Name] && d.Syscall != "" { // memlock.limit_near: TestLimitNear
			t.Errorf("no test record for event %s", d.Name)
		}
	}
}

func typeName(t attribute.Type) semconv.AttrType {
	switch t {
	case attribute.STRING:
		return semconv.TypeString
	case attribute.INT64:
		return semconv.TypeInt
	case attribute.FLOAT64:
		return semconv.TypeDouble
	case attribute.BOOL:
		return semconv.TypeBoolean
	case attribute.STRINGSLICE:
		return semconv.TypeStringSlice
	}
	return semconv.AttrType(t.String())
}

func TestInvalidSyscallIsCountedNotExported(t *testing.T) {
	rig := newRig(t, Options{})
	ev := sampleEvent()
	ev.Syscall = bpf.SyscallUnknown
	rig.exp.Handle(&ev)
	ev.Syscall = 99
	rig.exp.Handle(&ev)
	if n := len(rig.logs.Records()); n != 0 {
		t.Errorf("got %d records for invalid events, want 0", n)
	}
	if got := rig.exp.invalid.Load(); got != 2 {
		t.Errorf("invalid = %d, want 2", got)
	}
}

func TestHandleAfterShutdown(t *testing.T) {
	rig := newRig(t, Options{})
	if err := rig.exp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	ev := sampleEvent()
	rig.exp.Handle(&ev)
	if n := len(rig.logs.Records()); n != 0 {
		t.Errorf("got %d records after Shutdown, want 0", n)
	}
	if err := rig.exp.Shutdown(context.Background()); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
}

// TestBuildAllocations pins the conversion's allocations: the body string
// and the record's attribute storage beyond its five inline slots.
func TestBuildAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under the race detector")
	}
	var b recordBuilder
	ev := sampleEvent()
	ev.Flags = 0x300 // cached after the first call
	b.build(&ev, nil, "", observedAt)
	for _, tc := range recordCases {
		ev := sampleEvent()
		if tc.mod != nil {
			tc.mod(&ev)
		}
		errName := ""
		if ev.Ret < 0 {
			errName = ev.Errno().String()
		}
		b.build(&ev, nil, errName, observedAt) // warm the caches
		if got := testing.AllocsPerRun(100, func() { b.build(&ev, nil, errName, observedAt) }); got > 2 {
			t.Errorf("%s: %.0f allocations per record, want at most 2", tc.name, got)
		}
	}
}

// TestEncodedCallAttributes: the direct pipeline's encoding of a call's
// attributes is byte for byte the encoding of the attributes the SDK gets.
func TestEncodedCallAttributes(t *testing.T) {
	var b recordBuilder
	// Also flags beyond the precomputed table, known bits and not.
	odd := sampleEvent()
	odd.Flags = 0x11
	many := sampleEvent()
	many.Syscall, many.Flags, many.Ret = bpf.SyscallMlockall, 0x7|0x400, -1
	// Values at the ends of their ranges, which semconv clamps or wraps.
	big := sampleEvent()
	big.Addr, big.Len, big.Flags, big.CallerAddr, big.LibcFunc = math.MaxUint64, math.MaxUint64, math.MaxUint64, math.MaxUint64, bpf.LibcMlock
	big.Duration, big.KernelDuration = math.MaxInt64, math.MaxInt64
	for i, ev := range append(equivalenceEvents(), odd, many, big) {
		errName := ""
		if ev.Ret < 0 {
			errName = ev.Errno().String()
		}
		attrs := b.appendCallAttributes(nil, &ev, errName)
		want := otlpwire.LogAttributes.AppendAll(nil, attrs)
		got := b.appendEncodedCallAttributes([]byte("prefix"), &ev, errName)
		if !bytes.Equal(got[len("prefix"):], want) || string(got[:len("prefix")]) != "prefix" {
			t.Errorf("event %d (%s): encoded\n%x\nwant\n%x", i, ev.Syscall, got, want)
		}
	}
}
