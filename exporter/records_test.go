package exporter

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/memlock-exporter/memlock-exporter/bpf"
	"github.com/memlock-exporter/memlock-exporter/semconv"
)

// thread are the record attributes of sampleEvent's thread.
func thread() attrs {
	return attrs{
		semconv.ProcessParentPIDKey:   attribute.Int64Value(1),
		semconv.ThreadIDKey:           attribute.Int64Value(4242),
		semconv.ThreadNameKey:         attribute.StringValue("gpg-agent"),
		semconv.ProcessUserIDKey:      attribute.Int64Value(1001),
		semconv.ProcessRealUserIDKey:  attribute.Int64Value(1000),
		semconv.ProcessGroupIDKey:     attribute.Int64Value(101),
		semconv.ProcessRealGroupIDKey: attribute.Int64Value(100),
		semconv.CgroupIDKey:           attribute.Int64Value(7788),
	}
}

// identity are the resource attributes of sampleEvent's process, whose
// identity the kernel did not give (Process nil).
func identity() attrs {
	return attrs{
		semconv.ProcessPIDKey:            attribute.Int64Value(4242),
		semconv.ProcessExecutableNameKey: attribute.StringValue("gpg-agent"),
	}
}

// identityOf returns the process identity attributes of a resource: those
// of semconv.ProcessResourceAttributes it holds.
func identityOf(res attrs) attrs {
	out := attrs{}
	for _, k := range semconv.ProcessResourceAttributes {
		if v, ok := res[k]; ok {
			out[k] = v
		}
	}
	return out
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
	severity int32
	body     string
	attrs    attrs
	identity attrs // nil: identity()
}{
	{
		name:     "mlock2 onfault success",
		event:    "memlock.mlock2",
		severity: severityInfo,
		body:     "mlock2(0x7f3a1c000000, 8192, MLOCK_ONFAULT) = 0",
		attrs: thread().with(attrs{
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
		severity: severityInfo,
		body:     "mlock2(0x1001, 4096, 0) = 0",
		attrs: thread().with(attrs{
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
		name: "mlock2 seen at its exit only: no duration",
		mod: func(e *bpf.Event) {
			e.Duration, e.Untimed = 0, true
		},
		event:    "memlock.mlock2",
		severity: severityInfo,
		body:     "mlock2(0x7f3a1c000000, 8192, MLOCK_ONFAULT) = 0",
		attrs: thread().with(attrs{
			semconv.SyscallKey:     attribute.StringValue("mlock2"),
			semconv.AddrKey:        attribute.Int64Value(0x7f3a1c000000),
			semconv.LenKey:         attribute.Int64Value(8192),
			semconv.PagesKey:       attribute.Int64Value(2),
			semconv.FlagsKey:       attribute.Int64Value(1),
			semconv.FlagNamesKey:   attribute.StringSliceValue([]string{"MLOCK_ONFAULT"}),
			semconv.ReturnValueKey: attribute.Int64Value(0),
			semconv.ProbeKey:       attribute.StringValue("tracepoint"),
		}),
	},
	{
		name: "mlock2 unknown flag bits rejected",
		mod: func(e *bpf.Event) {
			e.Flags, e.Addr, e.Len, e.Ret = 3, 0x1000, 4096, -22
		},
		event:    "memlock.mlock2",
		severity: severityWarn,
		body:     "mlock2(0x1000, 4096, MLOCK_ONFAULT|0x2) = -1 EINVAL",
		attrs: thread().with(attrs{
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
		severity: severityWarn,
		body:     "mlock2(0x1000, 4096, 0x100) = -1 EINVAL",
		attrs: thread().with(attrs{
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
		severity: severityWarn,
		body:     "mlock(0x1000, 4096) = -1 ENOMEM",
		attrs: thread().with(attrs{
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
		severity: severityInfo,
		body:     "mlock(0x2000, 0) = 0",
		identity: identity().without(semconv.ProcessExecutableNameKey),
		attrs: thread().without(semconv.CgroupIDKey).with(attrs{
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
		severity: severityInfo,
		body:     "munlock(0x7f3a1c000000, 8192) = 0",
		attrs: thread().with(attrs{
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
		severity: severityWarn,
		body:     "mlockall(MCL_CURRENT|MCL_FUTURE) = -1 EPERM",
		attrs: thread().with(attrs{
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
		severity: severityInfo,
		body:     "munlockall() = 0",
		attrs: thread().with(attrs{
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
		severity: severityInfo,
		body:     "mlock2(0x7f3a1c000000, 8192, MLOCK_ONFAULT) = 0",
		attrs: thread().with(attrs{
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
		severity: severityInfo,
		body:     "mlock(0x7f3a1c000000, 8192) = 0",
		attrs: thread().with(attrs{
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
		severity: severityInfo,
		body:     "mlockall(MCL_CURRENT) = 0",
		attrs: thread().with(attrs{
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
		severity: severityInfo,
		body:     "munlock(0x7f3a1c000000, 8192) = 0",
		attrs: thread().with(attrs{
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
		severity: severityWarn,
		body:     "mlock(0x1000, 4096) = -1 errno 4000",
		attrs: thread().with(attrs{
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

// handleCase runs one record case through a rig and returns what it sent.
func handleCase(t *testing.T, mod func(*bpf.Event), opts Options) (bpf.Event, []received, []receivedSpan) {
	t.Helper()
	rig := newRig(t, on(opts))
	ev := sampleEvent()
	if mod != nil {
		mod(&ev)
	}
	sent := ev
	rig.exp.Handle(&ev)
	ev = bpf.Event{} // Handle must not retain ev
	return sent, rig.records(t), rig.sentSpans(t)
}

// TestObservedIsReadAt: a record's ObservedTimestamp is when the reader
// read the call, when it says so (else the exporter's clock, which
// TestRecords checks).
func TestObservedIsReadAt(t *testing.T) {
	readAt := observedAt.Add(-3 * time.Millisecond)
	_, recs, _ := handleCase(t, func(ev *bpf.Event) { ev.ReadAt = readAt }, Options{})
	if len(recs) != 1 {
		t.Fatalf("got %d records, want 1", len(recs))
	}
	if got := recs[0].record.GetObservedTimeUnixNano(); got != uint64(readAt.UnixNano()) {
		t.Errorf("ObservedTimestamp = %d, want ReadAt %d", got, readAt.UnixNano())
	}
}

// TestRecords: every call is one log record with the event name, times,
// severity, body and attributes the schema gives it, under our resource
// and scope.
func TestRecords(t *testing.T) {
	needPageSize4K(t)
	for _, tc := range recordCases {
		t.Run(tc.name, func(t *testing.T) {
			_, recs, _ := handleCase(t, tc.mod, Options{ServiceVersion: "1.2.3"})
			if len(recs) != 1 {
				t.Fatalf("got %d records, want 1", len(recs))
			}
			r := recs[0].record
			if got := r.GetEventName(); got != tc.event {
				t.Errorf("EventName = %q, want %q", got, tc.event)
			}
			if got, want := r.GetTimeUnixNano(), uint64(sampleEvent().Time.UnixNano()); got != want {
				t.Errorf("Timestamp = %d, want %d", got, want)
			}
			if got := r.GetObservedTimeUnixNano(); got != uint64(observedAt.UnixNano()) {
				t.Errorf("ObservedTimestamp = %d, want %d", got, observedAt.UnixNano())
			}
			if got := int32(r.GetSeverityNumber()); got != tc.severity {
				t.Errorf("Severity = %v, want %v", got, tc.severity)
			}
			if got := r.GetSeverityText(); got != "" {
				t.Errorf("SeverityText = %q, want none", got)
			}
			if got := r.GetBody().GetStringValue(); got != tc.body {
				t.Errorf("Body = %q, want %q", got, tc.body)
			}
			for _, d := range diffAttrs(attrsOf(t, r.GetAttributes()), tc.attrs) {
				t.Errorf("attribute: %s", d)
			}
			want := tc.identity
			if want == nil {
				want = identity()
			}
			res := attrsOf(t, recs[0].resource.GetAttributes())
			for _, d := range diffAttrs(identityOf(res), want) {
				t.Errorf("resource: %s", d)
			}
			checkOurResource(t, res, "1.2.3")
			if n := r.GetDroppedAttributesCount(); n != 0 {
				t.Errorf("%d attributes dropped", n)
			}
			scope := recs[0].scope
			if scope.GetName() != semconv.ScopeName || scope.GetVersion() != "1.2.3" {
				t.Errorf("scope = %v, want %s 1.2.3", scope, semconv.ScopeName)
			}
		})
	}
}

// TestRecordsMatchSchema checks every record against semconv: its event is
// defined, and it carries only the attributes the event defines, each with
// the type the schema gives it; its resource names its process with the
// attributes of semconv.ProcessResourceAttributes, all of them when the
// kernel gave the identity.
func TestRecordsMatchSchema(t *testing.T) {
	events := map[string]semconv.EventDef{}
	for _, d := range semconv.Events {
		events[d.Name] = d
	}
	types := map[attribute.Key]semconv.AttrType{}
	for _, d := range semconv.CustomAttributes {
		types[d.Key] = d.Type
	}
	for _, withProcess := range []bool{false, true} {
		rig := newRig(t, on(Options{}))
		for _, tc := range recordCases {
			ev := sampleEvent()
			if tc.mod != nil {
				tc.mod(&ev)
			}
			if withProcess {
				ev.Process = containerProcess()
			}
			rig.exp.Handle(&ev)
		}
		recs := rig.records(t)
		if len(recs) != len(recordCases) {
			t.Fatalf("got %d records, want %d", len(recs), len(recordCases))
		}
		seen := map[string]bool{}
		for i, rec := range recs {
			r := rec.record
			def, ok := events[r.GetEventName()]
			if !ok {
				t.Errorf("record %d: event %q is not in semconv.Events", i, r.GetEventName())
				continue
			}
			seen[def.Name] = true
			got := attrsOf(t, r.GetAttributes())
			for k, v := range got {
				if !slices.Contains(def.Attributes, k) {
					t.Errorf("%s carries %s, which its EventDef does not list", def.Name, k)
				}
				if want, ok := types[k]; ok && typeName(v.Type()) != want {
					t.Errorf("%s: %s is %s, schema says %s", def.Name, k, v.Type(), want)
				}
			}
			res := attrsOf(t, rec.resource.GetAttributes())
			for _, k := range semconv.ProcessResourceAttributes {
				v, ok := res[k]
				if !ok {
					if withProcess || k == semconv.ProcessPIDKey {
						t.Errorf("%s: the resource lacks %s", def.Name, k)
					}
					continue
				}
				if want, ok := types[k]; ok && typeName(v.Type()) != want {
					t.Errorf("%s: resource %s is %s, schema says %s", def.Name, k, v.Type(), want)
				}
			}
		}
		for _, d := range semconv.Events {
			if !seen[d.Name] && d.Syscall != "" { // memlock.limit_near: TestLimitNear
				t.Errorf("no test record for event %s", d.Name)
			}
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

// TestSpans: every call is one root span named after the syscall, of kind
// internal, from the call's entry to its exit, with exactly the attributes
// of its log record and an error status on failure; its log record carries
// its trace and span IDs, and each call is a trace of its own.
func TestSpans(t *testing.T) {
	needPageSize4K(t)
	traceIDs := map[string]string{}
	for _, tc := range recordCases {
		t.Run(tc.name, func(t *testing.T) {
			want, recs, spans := handleCase(t, tc.mod, Options{ServiceVersion: "1.2.3"})
			if len(spans) != 1 || len(recs) != 1 {
				t.Fatalf("got %d spans and %d records, want 1 each", len(spans), len(recs))
			}
			s, r := spans[0].span, recs[0].record
			if got, want := s.GetName(), strings.TrimPrefix(tc.event, "memlock."); got != want {
				t.Errorf("Name = %q, want %q", got, want)
			}
			if got := s.GetKind(); got != tracepb.Span_SPAN_KIND_INTERNAL {
				t.Errorf("Kind = %v, want internal", got)
			}
			if got := s.GetStartTimeUnixNano(); got != uint64(want.Time.UnixNano()) || got != r.GetTimeUnixNano() {
				t.Errorf("start %d, want the call's entry %d (the record's time)", got, want.Time.UnixNano())
			}
			if got, wantEnd := s.GetEndTimeUnixNano(), uint64(want.Time.Add(want.Duration).UnixNano()); got != wantEnd {
				t.Errorf("end %d, want the call's exit %d", got, wantEnd)
			}
			wantStatus := &tracepb.Status{}
			if want.Ret < 0 {
				wantStatus = &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR, Message: tc.attrs[semconv.ErrorTypeKey].AsString()}
			}
			if got := s.GetStatus(); got.GetCode() != wantStatus.Code || got.GetMessage() != wantStatus.Message {
				t.Errorf("Status = %v, want %v", got, wantStatus)
			}
			got := attrsOf(t, s.GetAttributes())
			for _, d := range diffAttrs(got, attrsOf(t, r.GetAttributes())) {
				t.Errorf("span attribute differs from the record's: %s", d)
			}
			if len(s.GetEvents()) != 0 || len(s.GetLinks()) != 0 || len(s.GetParentSpanId()) != 0 {
				t.Errorf("span has events, links or a parent: %v", s)
			}
			// Sampled, parent known not to be remote, as the SDK sets it.
			if s.GetFlags() != 0x101 {
				t.Errorf("flags %#x, want 0x101", s.GetFlags())
			}
			if len(s.GetTraceId()) != 16 || len(s.GetSpanId()) != 8 ||
				string(r.GetTraceId()) != string(s.GetTraceId()) || string(r.GetSpanId()) != string(s.GetSpanId()) || r.GetFlags() != 1 {
				t.Errorf("record's trace context %x/%x/%d, span's %x/%x", r.GetTraceId(), r.GetSpanId(), r.GetFlags(), s.GetTraceId(), s.GetSpanId())
			}
			if prev, dup := traceIDs[string(s.GetTraceId())]; dup {
				t.Errorf("trace ID %x already used by %q: each call must be its own trace", s.GetTraceId(), prev)
			}
			traceIDs[string(s.GetTraceId())] = tc.name
			if spans[0].scope.GetName() != semconv.ScopeName || spans[0].scope.GetVersion() != "1.2.3" {
				t.Errorf("span scope = %v", spans[0].scope)
			}
		})
	}
}

// TestSignalsApart: each signal goes without the other; without spans, the
// records carry no trace context.
func TestSignalsApart(t *testing.T) {
	ev := sampleEvent()

	spansOnly := newRig(t, Options{Spans: Destination{Kind: ToOTLP}})
	spansOnly.exp.Handle(&ev)
	if n := len(spansOnly.sentSpans(t)); n != 1 {
		t.Errorf("spans only: %d spans, want 1", n)
	}
	if len(spansOnly.exp.sinks) != 1 {
		t.Errorf("spans only: %d sinks, want 1", len(spansOnly.exp.sinks))
	}

	logsOnly := newRig(t, Options{Logs: Destination{Kind: ToOTLP}})
	logsOnly.exp.Handle(&ev)
	recs := logsOnly.records(t)
	if len(recs) != 1 {
		t.Fatalf("logs only: %d records, want 1", len(recs))
	}
	if r := recs[0].record; len(r.GetTraceId()) != 0 || len(r.GetSpanId()) != 0 || r.GetFlags() != 0 {
		t.Errorf("logs only: the record carries a trace context %x/%x/%d", r.GetTraceId(), r.GetSpanId(), r.GetFlags())
	}
	if logsOnly.exp.enc.ids != nil {
		t.Error("logs only: trace IDs are made")
	}
}

func TestInvalidSyscallIsCountedNotExported(t *testing.T) {
	rig := newRig(t, on(Options{}))
	ev := sampleEvent()
	ev.Syscall = bpf.SyscallUnknown
	rig.exp.Handle(&ev)
	ev.Syscall = 99
	rig.exp.Handle(&ev)
	if n := len(rig.records(t)); n != 0 {
		t.Errorf("got %d records for invalid events, want 0", n)
	}
	if got := rig.exp.invalid.Load(); got != 2 {
		t.Errorf("invalid = %d, want 2", got)
	}
}

func TestHandleAfterShutdown(t *testing.T) {
	rig := newRig(t, on(Options{}))
	if err := rig.exp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	ev := sampleEvent()
	rig.exp.Handle(&ev)
	if n := len(rig.records(t)); n != 0 {
		t.Errorf("got %d records after Shutdown, want 0", n)
	}
	if err := rig.exp.Shutdown(context.Background()); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
}

// TestHandleAllocations: in the steady state (caches warm, batch buffers
// grown) Handle allocates nothing, whatever the signals and the process
// context.
func TestHandleAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under the race detector")
	}
	for _, tc := range []struct {
		name    string
		opts    Options
		process *bpf.Process
	}{
		{"logs and spans", on(Options{}), nil},
		{"logs and spans with the process's identity", on(Options{}), containerProcess()},
		{"logs only", Options{Logs: Destination{Kind: ToOTLP}}, nil},
		{"metrics only", Options{}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Logs.Batch.MaxExportBatch = 1 << 20
			tc.opts.Spans.Batch.MaxExportBatch = 1 << 20
			rig := newRig(t, tc.opts)
			evs := make([]bpf.Event, len(recordCases))
			for i, c := range recordCases {
				evs[i] = sampleEvent()
				evs[i].Process = tc.process
				if c.mod != nil {
					c.mod(&evs[i])
				}
				// Each case a process of its own: one process's executable
				// name does not flip from call to call.
				evs[i].PID += uint32(i)
			}
			for range 100 { // warm the caches and grow the batch
				for i := range evs {
					rig.exp.Handle(&evs[i])
				}
			}
			i := 0
			if n := testing.AllocsPerRun(1000, func() {
				rig.exp.Handle(&evs[i%len(evs)])
				i++
			}); n != 0 {
				t.Errorf("Handle allocates %.2f times per event", n)
			}
		})
	}
}

const (
	testContainerID = "4f1e2d3c4b5a69788796a5b4c3d2e1f04f1e2d3c4b5a69788796a5b4c3d2e1f0"
	testPodUID      = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
	testCgroupPath  = "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1a2b3c4d_5e6f_4a7b_8c9d_0e1f2a3b4c5d.slice/cri-containerd-" + testContainerID + ".scope"
)

// containerProcess is gpg-agent (sampleEvent's pid 4242) in a Kubernetes
// pod, pid 7 in its own PID namespace, on a hybrid host whose memory
// hierarchy names the pod too.
func containerProcess() *bpf.Process {
	return &bpf.Process{
		PID:            4242,
		StartNs:        500_000_000,
		StartTime:      time.Date(2026, 11, 5, 9, 59, 0, 250_000_000, time.UTC),
		VPID:           7,
		InPIDNamespace: true,
		ExePath:        "/usr/bin/gpg-agent",
		Args:           []string{"gpg-agent", "--daemon"},
		CgroupID:       7788,
		Cgroups: []bpf.Cgroup{
			{Hierarchy: 4, Controllers: "memory", ID: 90, Path: testCgroupPath},
			{Hierarchy: 0, ID: 7788, Path: testCgroupPath},
		},
	}
}

// mlock2Attrs are the record attributes of sampleEvent.
func mlock2Attrs() attrs { return recordCases[0].attrs }

// TestProcessContext: the process's identity, as the kernel read it, is the
// resource of its records and spans, which carry only the call's and the
// thread's attributes, whatever the identity.
func TestProcessContext(t *testing.T) {
	needPageSize4K(t)
	hostProcess := &bpf.Process{
		PID: 4242, StartTime: time.Date(2026, 11, 5, 9, 0, 0, 0, time.UTC), ExePath: "/usr/bin/gpg-agent",
		Cgroups: []bpf.Cgroup{{Hierarchy: 0, Path: "/user.slice/user-1000.slice/user@1000.service/app.slice/gpg-agent.service"}},
	}
	v1Only := &bpf.Process{
		PID: 4242, StartTime: time.Date(2026, 11, 5, 9, 0, 0, 0, time.UTC), ExePath: "/usr/bin/gpg-agent",
		Cgroups: []bpf.Cgroup{
			{Hierarchy: 4, Controllers: "memory", Path: "/docker/" + testContainerID},
			{Hierarchy: 0, Path: "/"},
		},
	}
	tests := []struct {
		name     string
		process  *bpf.Process // nil: the reader did not know it
		identity attrs
	}{
		{
			name:    "container in a pod, with arguments",
			process: containerProcess(),
			identity: identity().with(attrs{
				semconv.ProcessCreationTimeKey:   attribute.StringValue("2026-11-05T09:59:00.25Z"),
				semconv.ProcessExecutablePathKey: attribute.StringValue("/usr/bin/gpg-agent"),
				semconv.ProcessCommandArgsKey:    attribute.StringSliceValue([]string{"gpg-agent", "--daemon"}),
				semconv.ProcessLinuxCgroupKey:    attribute.StringValue("4:memory:" + testCgroupPath + "\n0::" + testCgroupPath),
				semconv.ContainerIDKey:           attribute.StringValue(testContainerID),
				semconv.K8SPodUIDKey:             attribute.StringValue(testPodUID),
				semconv.ProcessVpidKey:           attribute.Int64Value(7),
			}),
		},
		{
			name:    "host process, arguments off",
			process: hostProcess,
			identity: identity().with(attrs{
				semconv.ProcessCreationTimeKey:   attribute.StringValue("2026-11-05T09:00:00Z"),
				semconv.ProcessExecutablePathKey: attribute.StringValue("/usr/bin/gpg-agent"),
				semconv.ProcessLinuxCgroupKey:    attribute.StringValue("0::/user.slice/user-1000.slice/user@1000.service/app.slice/gpg-agent.service"),
			}),
		},
		{
			// A hybrid host whose container runtime names the
			// container in a v1 hierarchy only.
			name:    "container named in cgroup v1 only",
			process: v1Only,
			identity: identity().with(attrs{
				semconv.ProcessCreationTimeKey:   attribute.StringValue("2026-11-05T09:00:00Z"),
				semconv.ProcessExecutablePathKey: attribute.StringValue("/usr/bin/gpg-agent"),
				semconv.ProcessLinuxCgroupKey:    attribute.StringValue("4:memory:/docker/" + testContainerID + "\n0::/"),
				semconv.ContainerIDKey:           attribute.StringValue(testContainerID),
			}),
		},
		{
			// The comm the kernel gives is cut at 15 bytes; the path's
			// base name is the executable's name.
			name:    "name longer than a comm",
			process: &bpf.Process{PID: 4242, StartTime: time.Date(2026, 11, 5, 9, 0, 0, 0, time.UTC), ExePath: "/opt/bin/memory-hungry-database"},
			identity: identity().with(attrs{
				semconv.ProcessCreationTimeKey:   attribute.StringValue("2026-11-05T09:00:00Z"),
				semconv.ProcessExecutablePathKey: attribute.StringValue("/opt/bin/memory-hungry-database"),
				semconv.ProcessExecutableNameKey: attribute.StringValue("memory-hungry-database"),
			}),
		},
		{
			name:     "identity unknown",
			process:  nil,
			identity: identity(),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, recs, spans := handleCase(t, func(ev *bpf.Event) { ev.Process = tc.process }, Options{})
			if len(recs) != 1 || len(spans) != 1 {
				t.Fatalf("got %d records and %d spans, want 1 each", len(recs), len(spans))
			}
			for _, d := range diffAttrs(attrsOf(t, recs[0].record.GetAttributes()), mlock2Attrs()) {
				t.Errorf("record: %s", d)
			}
			for _, d := range diffAttrs(attrsOf(t, spans[0].span.GetAttributes()), mlock2Attrs()) {
				t.Errorf("span: %s", d)
			}
			for what, res := range map[string]attrs{
				"record": attrsOf(t, recs[0].resource.GetAttributes()),
				"span":   attrsOf(t, spans[0].resource.GetAttributes()),
			} {
				for _, d := range diffAttrs(identityOf(res), tc.identity) {
					t.Errorf("%s's resource: %s", what, d)
				}
				checkOurResource(t, res, "")
			}
		})
	}
}

// TestThreadCacheFollowsChanges: the cached encoding of a thread's
// attributes is always what encoding them afresh gives, whichever value
// they are made of changes between two calls of the thread.
func TestThreadCacheFollowsChanges(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(ev *bpf.Event)
	}{
		{"nothing", func(ev *bpf.Event) {}},
		{"parent", func(ev *bpf.Event) { ev.PPID++ }},
		{"thread name", func(ev *bpf.Event) { ev.Comm = "renamed" }},
		{"effective uid", func(ev *bpf.Event) { ev.EUID = 0 }},
		{"gid", func(ev *bpf.Event) { ev.GID = 7 }},
		{"cgroup id", func(ev *bpf.Event) { ev.CgroupID = 99 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c threadCache
			ev := sampleEvent()
			ev.Process = containerProcess()
			c.get(&ev)
			tc.change(&ev)
			got := c.get(&ev)
			if want := appendThreadAttrs(nil, &ev); string(got) != string(want) {
				t.Error("the cached encoding is stale")
			}
		})
	}
}

// TestThreadCacheIsBounded: a full cache starts afresh and still answers
// right.
func TestThreadCacheIsBounded(t *testing.T) {
	var c threadCache
	ev := sampleEvent()
	for tid := range uint32(3 * maxThreadCache) {
		ev.TID = tid
		if got, want := c.get(&ev), appendThreadAttrs(nil, &ev); string(got) != string(want) {
			t.Fatalf("tid %d: wrong attributes", tid)
		}
	}
	if len(c.m) > maxThreadCache {
		t.Errorf("%d threads cached, bound %d", len(c.m), maxThreadCache)
	}
}

// TestFlagCache: flags beyond the precomputed table are encoded right,
// cached up to the bound, and right beyond it too.
func TestFlagCache(t *testing.T) {
	var c flagCache
	for f := uint64(0); f < 3*maxFlagCache; f++ {
		got := c.names(bpf.SyscallMlockall, f)
		want := encodeFlagNames(bpf.SyscallMlockall, f)
		if string(got) != string(want) {
			t.Fatalf("flags %#x: %x, want %x", f, got, want)
		}
	}
	if len(c.seen) > maxFlagCache {
		t.Errorf("%d flag values cached, bound %d", len(c.seen), maxFlagCache)
	}
	_ = time.Now
}
