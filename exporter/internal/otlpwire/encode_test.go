package otlpwire

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otellog "go.opentelemetry.io/otel/log"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	cpb "go.opentelemetry.io/proto/otlp/common/v1"
	lpb "go.opentelemetry.io/proto/otlp/logs/v1"
	rpb "go.opentelemetry.io/proto/otlp/resource/v1"
	tpb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
)

// Expected values, built with the generated OTLP types.

func str(s string) *cpb.AnyValue {
	return &cpb.AnyValue{Value: &cpb.AnyValue_StringValue{StringValue: s}}
}

func i64(v int64) *cpb.AnyValue {
	return &cpb.AnyValue{Value: &cpb.AnyValue_IntValue{IntValue: v}}
}

func boolean(v bool) *cpb.AnyValue {
	return &cpb.AnyValue{Value: &cpb.AnyValue_BoolValue{BoolValue: v}}
}

func dbl(v float64) *cpb.AnyValue {
	return &cpb.AnyValue{Value: &cpb.AnyValue_DoubleValue{DoubleValue: v}}
}

func bytesv(b []byte) *cpb.AnyValue {
	return &cpb.AnyValue{Value: &cpb.AnyValue_BytesValue{BytesValue: b}}
}

func array(vs ...*cpb.AnyValue) *cpb.AnyValue {
	return &cpb.AnyValue{Value: &cpb.AnyValue_ArrayValue{ArrayValue: &cpb.ArrayValue{Values: vs}}}
}

func kvlist(kvs ...*cpb.KeyValue) *cpb.AnyValue {
	return &cpb.AnyValue{Value: &cpb.AnyValue_KvlistValue{KvlistValue: &cpb.KeyValueList{Values: kvs}}}
}

func kv(k string, v *cpb.AnyValue) *cpb.KeyValue {
	return &cpb.KeyValue{Key: k, Value: v}
}

var (
	traceID  = [16]byte{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
	spanID   = [8]byte{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7}
	parentID = [8]byte{0x53, 0x99, 0x5c, 0x3f, 0x42, 0xcd, 0x8a, 0xd8}
	zeroTID  [16]byte
	zeroSID  [8]byte

	t0 = time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.UTC).UnixNano()

	long     = strings.Repeat("long-", 40) // 200 bytes: two-byte lengths
	huge     = strings.Repeat("ü", 10000)  // 20000 bytes: three-byte lengths
	wide     = strings.Repeat("界", 50)     // 150 bytes of three-byte runes
	rawBytes = []byte{0, 1, 2, 0x7f, 0x80, 0xff}
)

// allTypes holds every attribute.Type, including zero values, empty slices,
// slices short enough for attribute's fixed-array fast path and longer ones.
var allTypes = []attribute.KeyValue{
	attribute.Bool("bool.true", true),
	attribute.Bool("bool.false", false),
	attribute.Int64("int.zero", 0),
	attribute.Int64("int.negative", -1),
	attribute.Int64("int.max", math.MaxInt64),
	attribute.Int64("int.min", math.MinInt64),
	attribute.Float64("float.zero", 0),
	attribute.Float64("float.duration", 0.0000042),
	attribute.Float64("float.negative", -1.5),
	attribute.Float64("float.inf", math.Inf(1)),
	attribute.Float64("float.nan", math.NaN()),
	attribute.String("string.empty", ""),
	attribute.String("string", "mlock2"),
	attribute.BoolSlice("bools", []bool{true, false}),
	attribute.BoolSlice("bools.empty", []bool{}),
	attribute.Int64Slice("ints", []int64{1, -2, 300}),
	attribute.Int64Slice("ints.long", []int64{0, 1, 127, 128, math.MinInt64}),
	attribute.Float64Slice("floats", []float64{0.5, -2, 1e300, 0, 7}),
	attribute.StringSlice("strings", []string{"MLOCK_ONFAULT"}),
	attribute.StringSlice("strings.long", []string{"a", "", "ü", long, "e"}),
	attribute.StringSlice("strings.empty", nil),
	{Key: "bytes", Value: attribute.ByteSliceValue(rawBytes)},
	{Key: "bytes.empty", Value: attribute.ByteSliceValue(nil)},
	{Key: "slice", Value: attribute.SliceValue(
		attribute.StringValue("a"), attribute.Int64Value(1), attribute.Value{},
		attribute.SliceValue(attribute.BoolValue(true)), attribute.StringSliceValue([]string{"x", "y"}),
	)},
	{Key: "map", Value: attribute.MapValue(
		attribute.String("b", "x"), attribute.Int("a", 1), attribute.Map("c", attribute.Float64("d", 1)),
	)},
	{Key: "empty"}, // attribute.EMPTY, the former INVALID
}

var allTypesPB = []*cpb.KeyValue{
	kv("bool.true", boolean(true)),
	kv("bool.false", boolean(false)),
	kv("int.zero", i64(0)),
	kv("int.negative", i64(-1)),
	kv("int.max", i64(math.MaxInt64)),
	kv("int.min", i64(math.MinInt64)),
	kv("float.zero", dbl(0)),
	kv("float.duration", dbl(0.0000042)),
	kv("float.negative", dbl(-1.5)),
	kv("float.inf", dbl(math.Inf(1))),
	kv("float.nan", dbl(math.NaN())),
	kv("string.empty", str("")),
	kv("string", str("mlock2")),
	kv("bools", array(boolean(true), boolean(false))),
	kv("bools.empty", array()),
	kv("ints", array(i64(1), i64(-2), i64(300))),
	kv("ints.long", array(i64(0), i64(1), i64(127), i64(128), i64(math.MinInt64))),
	kv("floats", array(dbl(0.5), dbl(-2), dbl(1e300), dbl(0), dbl(7))),
	kv("strings", array(str("MLOCK_ONFAULT"))),
	kv("strings.long", array(str("a"), str(""), str("ü"), str(long), str("e"))),
	kv("strings.empty", array()),
	kv("bytes", bytesv(rawBytes)),
	kv("bytes.empty", bytesv(nil)),
	kv("slice", array(str("a"), i64(1), &cpb.AnyValue{}, array(boolean(true)), array(str("x"), str("y")))),
	kv("map", kvlist(kv("a", i64(1)), kv("b", str("x")), kv("c", kvlist(kv("d", dbl(1)))))),
	kv("empty", &cpb.AnyValue{}),
}

// manyAttrs returns n attributes with value-long string values, and their
// expected encoding.
func manyAttrs(n int, value string) ([]attribute.KeyValue, []*cpb.KeyValue) {
	attrs := make([]attribute.KeyValue, n)
	want := make([]*cpb.KeyValue, n)
	for i := range n {
		k := "attr." + strings.Repeat("k", i)
		attrs[i] = attribute.String(k, value)
		want[i] = kv(k, str(value))
	}
	return attrs, want
}

var (
	bigAttrs, bigAttrsPB = manyAttrs(100, long)
)

// testScope is the scope the record and span tables are sent with.
var (
	testScope = Scope{
		Resource: []attribute.KeyValue{
			attribute.String("host.name", "node-1"),
			attribute.String("service.name", "memlock-exporter"),
			attribute.String("service.version", "1.2.3"),
		},
		ResourceSchemaURL: "https://opentelemetry.io/schemas/1.37.0",
		Name:              "github.com/memlock-exporter/memlock-exporter",
		Version:           "1.2.3",
		SchemaURL:         "https://opentelemetry.io/schemas/1.38.0",
	}
	testResourcePB = []*cpb.KeyValue{
		kv("host.name", str("node-1")),
		kv("service.name", str("memlock-exporter")),
		kv("service.version", str("1.2.3")),
	}
	testScopePB = &cpb.InstrumentationScope{Name: testScope.Name, Version: testScope.Version}
)

func testLogsRequest(records ...*lpb.LogRecord) *collogspb.ExportLogsServiceRequest {
	return &collogspb.ExportLogsServiceRequest{ResourceLogs: []*lpb.ResourceLogs{{
		Resource: &rpb.Resource{Attributes: testResourcePB},
		ScopeLogs: []*lpb.ScopeLogs{{
			Scope:      testScopePB,
			LogRecords: records,
			SchemaUrl:  testScope.SchemaURL,
		}},
		SchemaUrl: testScope.ResourceSchemaURL,
	}}}
}

func testTracesRequest(spans ...*tpb.Span) *coltracepb.ExportTraceServiceRequest {
	return &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tpb.ResourceSpans{{
		Resource: &rpb.Resource{Attributes: testResourcePB},
		ScopeSpans: []*tpb.ScopeSpans{{
			Scope:     testScopePB,
			Spans:     spans,
			SchemaUrl: testScope.SchemaURL,
		}},
		SchemaUrl: testScope.ResourceSchemaURL,
	}}}
}

type logCase struct {
	name  string
	rec   testRecord
	want  *lpb.LogRecord
	noSDK string // why the SDK cannot emit rec, if it cannot
}

var logCases = []logCase{{
	name: "success",
	rec: testRecord{
		Time:         t0,
		ObservedTime: t0 + 1500,
		Severity:     9,
		EventName:    "memlock.mlock2",
		Body:         "mlock2(0x7f3a1c000000, 8192, MLOCK_ONFAULT) = 0",
		Attributes: []attribute.KeyValue{
			attribute.String("memlock.syscall", "mlock2"),
			attribute.Int64("memlock.addr", 0x7f3a1c000000),
			attribute.Int64("memlock.len", 8192),
			attribute.Int64("memlock.flags", 1),
			attribute.StringSlice("memlock.flag_names", []string{"MLOCK_ONFAULT"}),
			attribute.Int64("memlock.return_value", 0),
			attribute.Float64("memlock.duration", 0.0000042),
			attribute.Int64("process.pid", 4242),
			attribute.String("thread.name", "workload"),
		},
	},
	want: &lpb.LogRecord{
		TimeUnixNano:         uint64(t0),
		ObservedTimeUnixNano: uint64(t0 + 1500),
		SeverityNumber:       lpb.SeverityNumber_SEVERITY_NUMBER_INFO,
		EventName:            "memlock.mlock2",
		Body:                 str("mlock2(0x7f3a1c000000, 8192, MLOCK_ONFAULT) = 0"),
		Attributes: []*cpb.KeyValue{
			kv("memlock.syscall", str("mlock2")),
			kv("memlock.addr", i64(0x7f3a1c000000)),
			kv("memlock.len", i64(8192)),
			kv("memlock.flags", i64(1)),
			kv("memlock.flag_names", array(str("MLOCK_ONFAULT"))),
			kv("memlock.return_value", i64(0)),
			kv("memlock.duration", dbl(0.0000042)),
			kv("process.pid", i64(4242)),
			kv("thread.name", str("workload")),
		},
	},
}, {
	name: "failure in a sampled span",
	rec: testRecord{
		Time:         t0,
		ObservedTime: t0,
		Severity:     13,
		EventName:    "memlock.mlock",
		Body:         "mlock(0x1000, 4096) = -12 ENOMEM",
		Attributes: []attribute.KeyValue{
			attribute.Int64("memlock.return_value", -12),
			attribute.String("error.type", "ENOMEM"),
		},
		TraceID:    traceID,
		SpanID:     spanID,
		TraceFlags: 1,
	},
	want: &lpb.LogRecord{
		TimeUnixNano:         uint64(t0),
		ObservedTimeUnixNano: uint64(t0),
		SeverityNumber:       lpb.SeverityNumber_SEVERITY_NUMBER_WARN,
		EventName:            "memlock.mlock",
		Body:                 str("mlock(0x1000, 4096) = -12 ENOMEM"),
		Attributes: []*cpb.KeyValue{
			kv("memlock.return_value", i64(-12)),
			kv("error.type", str("ENOMEM")),
		},
		TraceId: traceID[:],
		SpanId:  spanID[:],
		Flags:   1,
	},
}, {
	// The SDK sends an empty body for a record without one.
	name:  "zero record",
	rec:   testRecord{},
	want:  &lpb.LogRecord{Body: &cpb.AnyValue{}},
	noSDK: "the SDK sets a missing observed time to now",
}, {
	name: "no body, trace flags without IDs",
	rec:  testRecord{ObservedTime: 1, TraceFlags: 1},
	want: &lpb.LogRecord{ObservedTimeUnixNano: 1, Body: &cpb.AnyValue{}, Flags: 1},
}, {
	name: "span ID without trace ID",
	rec:  testRecord{ObservedTime: t0, SpanID: spanID, TraceFlags: 0xff},
	want: &lpb.LogRecord{ObservedTimeUnixNano: uint64(t0), Body: &cpb.AnyValue{}, SpanId: spanID[:], Flags: 0xff},
}, {
	name: "trace ID without span ID",
	rec:  testRecord{ObservedTime: t0, TraceID: traceID},
	want: &lpb.LogRecord{ObservedTimeUnixNano: uint64(t0), Body: &cpb.AnyValue{}, TraceId: traceID[:]},
}, {
	name: "every attribute type",
	rec:  testRecord{Time: t0, ObservedTime: t0, Severity: 9, Attributes: allTypes},
	want: &lpb.LogRecord{
		TimeUnixNano:         uint64(t0),
		ObservedTimeUnixNano: uint64(t0),
		SeverityNumber:       9,
		Body:                 &cpb.AnyValue{},
		Attributes:           allTypesPB,
	},
}, {
	name: "severity text, highest severity",
	rec:  testRecord{ObservedTime: t0, Severity: 24, SeverityText: "FATAL4", Body: "b"},
	want: &lpb.LogRecord{ObservedTimeUnixNano: uint64(t0), SeverityNumber: 24, SeverityText: "FATAL4", Body: str("b")},
}, {
	name:  "unknown severity passes through",
	rec:   testRecord{ObservedTime: t0, Severity: -3},
	want:  &lpb.LogRecord{ObservedTimeUnixNano: uint64(t0), SeverityNumber: -3, Body: &cpb.AnyValue{}},
	noSDK: "the SDK maps unknown severities to 0",
}, {
	name: "times before 1970 are left out",
	rec:  testRecord{Time: -1, ObservedTime: -5_000_000_000, Body: "x"},
	want: &lpb.LogRecord{Body: str("x")},
}, {
	name: "largest times",
	rec:  testRecord{Time: math.MaxInt64, ObservedTime: math.MaxInt64},
	want: &lpb.LogRecord{TimeUnixNano: math.MaxInt64, ObservedTimeUnixNano: math.MaxInt64, Body: &cpb.AnyValue{}},
}, {
	name: "unicode",
	rec: testRecord{
		ObservedTime: t0,
		SeverityText: "警告",
		EventName:    "memlock.mlock2.ñ",
		Body:         "mlock2(…) = -1 → ENOMEM ✗ 🦀",
		Attributes: []attribute.KeyValue{
			attribute.String("thread.name", "wörker-🧵"),
			attribute.String("ключ", "значение"),
			attribute.StringSlice("process.command_args", []string{"/usr/bin/gpg-agent", "--homedir", "/home/jürgen/.gnupg"}),
		},
	},
	want: &lpb.LogRecord{
		ObservedTimeUnixNano: uint64(t0),
		SeverityText:         "警告",
		EventName:            "memlock.mlock2.ñ",
		Body:                 str("mlock2(…) = -1 → ENOMEM ✗ 🦀"),
		Attributes: []*cpb.KeyValue{
			kv("thread.name", str("wörker-🧵")),
			kv("ключ", str("значение")),
			kv("process.command_args", array(str("/usr/bin/gpg-agent"), str("--homedir"), str("/home/jürgen/.gnupg"))),
		},
	},
}, {
	name: "strings over 127 bytes",
	rec: testRecord{
		ObservedTime: t0,
		SeverityText: long,
		EventName:    wide,
		Body:         long,
		Attributes: []attribute.KeyValue{
			attribute.String(long, wide),
			attribute.StringSlice("args", []string{long, wide}),
		},
	},
	want: &lpb.LogRecord{
		ObservedTimeUnixNano: uint64(t0),
		SeverityText:         long,
		EventName:            wide,
		Body:                 str(long),
		Attributes: []*cpb.KeyValue{
			kv(long, str(wide)),
			kv("args", array(str(long), str(wide))),
		},
	},
}, {
	name: "over 16 KiB",
	rec: testRecord{
		Time:         t0,
		ObservedTime: t0,
		Severity:     9,
		Body:         huge,
		Attributes:   append([]attribute.KeyValue{attribute.String("huge", huge)}, bigAttrs...),
		TraceID:      traceID,
		SpanID:       spanID,
	},
	want: &lpb.LogRecord{
		TimeUnixNano:         uint64(t0),
		ObservedTimeUnixNano: uint64(t0),
		SeverityNumber:       9,
		Body:                 str(huge),
		Attributes:           append([]*cpb.KeyValue{kv("huge", str(huge))}, bigAttrsPB...),
		TraceId:              traceID[:],
		SpanId:               spanID[:],
	},
}, {
	name: "empty key and duplicate keys are encoded as given",
	rec: testRecord{ObservedTime: t0, Attributes: []attribute.KeyValue{
		attribute.String("", "no key"), attribute.Int("k", 1), attribute.Int("k", 2),
	}},
	want: &lpb.LogRecord{ObservedTimeUnixNano: uint64(t0), Body: &cpb.AnyValue{}, Attributes: []*cpb.KeyValue{
		kv("", str("no key")), kv("k", i64(1)), kv("k", i64(2)),
	}},
	noSDK: "the SDK drops empty keys and duplicates before its exporters",
}}

type spanCase struct {
	name  string
	span  testSpan
	want  *tpb.Span
	noSDK string
}

// Span flags the SDK sets: sampled, and whether the parent is remote is known.
const (
	sdkRootFlags   = 0x101
	sdkRemoteFlags = 0x301
)

var spanCases = []spanCase{{
	name: "root span",
	span: testSpan{
		TraceID: traceID,
		SpanID:  spanID,
		Flags:   sdkRootFlags,
		Name:    "mlock2",
		Kind:    1,
		Start:   t0,
		End:     t0 + 4200,
		Attributes: []attribute.KeyValue{
			attribute.String("memlock.syscall", "mlock2"),
			attribute.Int64("memlock.len", 8192),
			attribute.StringSlice("memlock.flag_names", []string{"MLOCK_ONFAULT"}),
		},
	},
	want: &tpb.Span{
		TraceId:           traceID[:],
		SpanId:            spanID[:],
		Flags:             sdkRootFlags,
		Name:              "mlock2",
		Kind:              tpb.Span_SPAN_KIND_INTERNAL,
		StartTimeUnixNano: uint64(t0),
		EndTimeUnixNano:   uint64(t0 + 4200),
		Attributes: []*cpb.KeyValue{
			kv("memlock.syscall", str("mlock2")),
			kv("memlock.len", i64(8192)),
			kv("memlock.flag_names", array(str("MLOCK_ONFAULT"))),
		},
		Status: &tpb.Status{},
	},
}, {
	name: "error status",
	span: testSpan{
		TraceID: traceID, SpanID: spanID, Flags: sdkRootFlags, Name: "mlock", Kind: 1, Start: t0, End: t0 + 1,
		Attributes: []attribute.KeyValue{attribute.String("error.type", "ENOMEM")},
		StatusCode: 2, StatusMessage: "ENOMEM",
	},
	want: &tpb.Span{
		TraceId: traceID[:], SpanId: spanID[:], Flags: sdkRootFlags, Name: "mlock", Kind: 1,
		StartTimeUnixNano: uint64(t0), EndTimeUnixNano: uint64(t0 + 1),
		Attributes: []*cpb.KeyValue{kv("error.type", str("ENOMEM"))},
		Status:     &tpb.Status{Code: tpb.Status_STATUS_CODE_ERROR, Message: "ENOMEM"},
	},
}, {
	name: "ok status, client",
	span: testSpan{TraceID: traceID, SpanID: spanID, Flags: sdkRootFlags, Name: "n", Kind: 3, Start: t0, End: t0, StatusCode: 1},
	want: &tpb.Span{
		TraceId: traceID[:], SpanId: spanID[:], Flags: sdkRootFlags, Name: "n", Kind: tpb.Span_SPAN_KIND_CLIENT,
		StartTimeUnixNano: uint64(t0), EndTimeUnixNano: uint64(t0), Status: &tpb.Status{Code: tpb.Status_STATUS_CODE_OK},
	},
}, {
	// The SDK always sends both IDs and the status.
	name:  "zero span",
	span:  testSpan{},
	want:  &tpb.Span{TraceId: zeroTID[:], SpanId: zeroSID[:], Status: &tpb.Status{}},
	noSDK: "the SDK sets missing times to now",
}, {
	name: "remote parent with trace state, server",
	span: testSpan{
		TraceID: traceID, SpanID: spanID, ParentSpanID: parentID, TraceState: "vendor=value,other=1",
		Flags: sdkRemoteFlags, Name: "mlockall", Kind: 2, Start: t0, End: t0 + 10,
	},
	want: &tpb.Span{
		TraceId: traceID[:], SpanId: spanID[:], ParentSpanId: parentID[:], TraceState: "vendor=value,other=1",
		Flags: sdkRemoteFlags, Name: "mlockall", Kind: tpb.Span_SPAN_KIND_SERVER,
		StartTimeUnixNano: uint64(t0), EndTimeUnixNano: uint64(t0 + 10), Status: &tpb.Status{},
	},
}, {
	name: "every attribute type, producer",
	span: testSpan{TraceID: traceID, SpanID: spanID, Flags: sdkRootFlags, Name: "x", Kind: 4, Start: t0, End: t0, Attributes: allTypes},
	want: &tpb.Span{
		TraceId: traceID[:], SpanId: spanID[:], Flags: sdkRootFlags, Name: "x", Kind: tpb.Span_SPAN_KIND_PRODUCER,
		StartTimeUnixNano: uint64(t0), EndTimeUnixNano: uint64(t0), Attributes: allTypesPB, Status: &tpb.Status{},
	},
}, {
	name: "unicode and strings over 127 bytes, consumer",
	span: testSpan{
		TraceID: traceID, SpanID: spanID, Flags: sdkRootFlags, Name: wide, Kind: 5, Start: t0, End: t0,
		Attributes: []attribute.KeyValue{attribute.String(long, "wörker-🧵"), attribute.String("k", long)},
		StatusCode: 2, StatusMessage: long,
	},
	want: &tpb.Span{
		TraceId: traceID[:], SpanId: spanID[:], Flags: sdkRootFlags, Name: wide, Kind: tpb.Span_SPAN_KIND_CONSUMER,
		StartTimeUnixNano: uint64(t0), EndTimeUnixNano: uint64(t0),
		Attributes: []*cpb.KeyValue{kv(long, str("wörker-🧵")), kv("k", str(long))},
		Status:     &tpb.Status{Code: tpb.Status_STATUS_CODE_ERROR, Message: long},
	},
}, {
	name: "over 16 KiB",
	span: testSpan{
		TraceID: traceID, SpanID: spanID, Flags: sdkRootFlags, Name: huge, Kind: 1, Start: t0, End: t0,
		Attributes: append([]attribute.KeyValue{attribute.String("huge", huge)}, bigAttrs...),
	},
	want: &tpb.Span{
		TraceId: traceID[:], SpanId: spanID[:], Flags: sdkRootFlags, Name: huge, Kind: 1,
		StartTimeUnixNano: uint64(t0), EndTimeUnixNano: uint64(t0),
		Attributes: append([]*cpb.KeyValue{kv("huge", str(huge))}, bigAttrsPB...), Status: &tpb.Status{},
	},
}, {
	name: "times before 1970 are left out",
	span: testSpan{TraceID: traceID, SpanID: spanID, Flags: sdkRootFlags, Name: "x", Kind: 1, Start: -1, End: -1},
	want: &tpb.Span{TraceId: traceID[:], SpanId: spanID[:], Flags: sdkRootFlags, Name: "x", Kind: 1, Status: &tpb.Status{}},
}, {
	name: "flags, kind and status pass through as given",
	span: testSpan{
		TraceID: traceID, SpanID: spanID, Flags: 0xffffffff, Kind: -1, Start: math.MaxInt64, End: 1,
		StatusCode: 7, StatusMessage: "m",
	},
	want: &tpb.Span{
		TraceId: traceID[:], SpanId: spanID[:], Flags: 0xffffffff, Kind: -1,
		StartTimeUnixNano: math.MaxInt64, EndTimeUnixNano: 1, Status: &tpb.Status{Code: 7, Message: "m"},
	},
	noSDK: "the SDK computes flags and knows only its own kinds and codes",
}}

// checkLogs decodes b as an ExportLogsServiceRequest and compares it to
// want, as messages and as bytes: proto.Marshal writes fields in number
// order with minimal varints, as we mean to.
func checkLogs(t *testing.T, b []byte, want *collogspb.ExportLogsServiceRequest) {
	t.Helper()
	got := new(collogspb.ExportLogsServiceRequest)
	if err := proto.Unmarshal(b, got); err != nil {
		t.Fatalf("proto.Unmarshal: %v", err)
	}
	if !proto.Equal(got, want) {
		t.Fatalf("decoded request differs (-got +want):\n%s", diff(got, want))
	}
	checkBytes(t, b, want)
}

func checkTraces(t *testing.T, b []byte, want *coltracepb.ExportTraceServiceRequest) {
	t.Helper()
	got := new(coltracepb.ExportTraceServiceRequest)
	if err := proto.Unmarshal(b, got); err != nil {
		t.Fatalf("proto.Unmarshal: %v", err)
	}
	if !proto.Equal(got, want) {
		t.Fatalf("decoded request differs (-got +want):\n%s", diff(got, want))
	}
	checkBytes(t, b, want)
}

func checkBytes(t *testing.T, b []byte, want proto.Message) {
	t.Helper()
	wantBytes, err := proto.MarshalOptions{Deterministic: true}.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	if !bytesEqual(b, wantBytes) {
		t.Fatalf("bytes differ from proto.Marshal's:\n got %x\nwant %x", head(b), head(wantBytes))
	}
}

// diff shows where two messages first differ, in text format.
func diff(got, want proto.Message) string {
	opts := prototext.MarshalOptions{Multiline: true}
	g := strings.Split(opts.Format(got), "\n")
	w := strings.Split(opts.Format(want), "\n")
	i := 0
	for i < len(g) && i < len(w) && g[i] == w[i] {
		i++
	}
	from := max(0, i-8)
	clip := func(l []string) string { return strings.Join(l[min(from, len(l)):min(i+8, len(l))], "\n") }
	return "first difference at line " + strconv.Itoa(i+1) + "\ngot:\n" + clip(g) + "\nwant:\n" + clip(w)
}

func bytesEqual(a, b []byte) bool { return string(a) == string(b) }

func head(b []byte) []byte { return b[:min(len(b), 256)] }

func TestAppendLogRecord(t *testing.T) {
	for _, tc := range logCases {
		t.Run(tc.name, func(t *testing.T) {
			b := AppendLogsRequest(nil, &testScope, AppendLogRecord(nil, tc.rec.wire()))
			checkLogs(t, b, testLogsRequest(tc.want))
		})
	}
}

func TestAppendSpan(t *testing.T) {
	for _, tc := range spanCases {
		t.Run(tc.name, func(t *testing.T) {
			b := AppendTracesRequest(nil, &testScope, AppendSpan(nil, tc.span.wire()))
			checkTraces(t, b, testTracesRequest(tc.want))
		})
	}
}

// TestSeveral puts every case of the tables in one request, in order.
func TestSeveral(t *testing.T) {
	var records []byte
	var wantRecords []*lpb.LogRecord
	for i := range logCases {
		records = AppendLogRecord(records, logCases[i].rec.wire())
		wantRecords = append(wantRecords, logCases[i].want)
	}
	checkLogs(t, AppendLogsRequest(nil, &testScope, records), testLogsRequest(wantRecords...))

	var spans []byte
	var wantSpans []*tpb.Span
	for i := range spanCases {
		spans = AppendSpan(spans, spanCases[i].span.wire())
		wantSpans = append(wantSpans, spanCases[i].want)
	}
	checkTraces(t, AppendTracesRequest(nil, &testScope, spans), testTracesRequest(wantSpans...))
}

// TestAppendKeepsDst checks that appending leaves what dst holds alone,
// whether or not dst has room.
func TestAppendKeepsDst(t *testing.T) {
	rec := logCases[0].rec.wire()
	span := spanCases[0].span.wire()
	records := AppendLogRecord(nil, rec)
	spans := AppendSpan(nil, span)
	encoders := map[string]func([]byte) []byte{
		"AppendLogRecord":     func(b []byte) []byte { return AppendLogRecord(b, rec) },
		"AppendSpan":          func(b []byte) []byte { return AppendSpan(b, span) },
		"AppendLogsRequest":   func(b []byte) []byte { return AppendLogsRequest(b, &testScope, records) },
		"AppendTracesRequest": func(b []byte) []byte { return AppendTracesRequest(b, &testScope, spans) },
	}
	prefix := []byte("prefix")
	for name, enc := range encoders {
		want := enc(nil)
		for _, room := range []int{0, 1, len(want), 2 * len(want)} {
			dst := append(make([]byte, 0, len(prefix)+room), prefix...)
			got := enc(dst)
			if !bytesEqual(got[:len(prefix)], prefix) || !bytesEqual(got[len(prefix):], want) {
				t.Errorf("%s with %d bytes of room: got %x, want %x%x", name, room, got, prefix, want)
			}
		}
	}
}

type scopeCase struct {
	name      string
	sc        Scope
	resource  []*cpb.KeyValue // expected resource attributes, in order
	scope     *cpb.InstrumentationScope
	schemaURL string
	resSchema string
}

var scopeCases = []scopeCase{{
	name:      "full",
	sc:        testScope,
	resource:  testResourcePB,
	scope:     testScopePB,
	schemaURL: testScope.SchemaURL,
	resSchema: testScope.ResourceSchemaURL,
}, {
	// The SDK leaves out an empty resource from logs but not from traces,
	// and leaves out the zero scope from both.
	name: "empty",
	sc:   Scope{},
}, {
	name:      "scope schema URL only",
	sc:        Scope{SchemaURL: "https://s"},
	scope:     &cpb.InstrumentationScope{},
	schemaURL: "https://s",
}, {
	name:  "scope name only",
	sc:    Scope{Name: "n"},
	scope: &cpb.InstrumentationScope{Name: "n"},
}, {
	name:  "scope version only",
	sc:    Scope{Version: "v"},
	scope: &cpb.InstrumentationScope{Version: "v"},
}, {
	name:      "resource schema URL only",
	sc:        Scope{ResourceSchemaURL: "https://r"},
	resSchema: "https://r",
}, {
	// As resource.NewWithAttributes keeps them: sorted, the last duplicate
	// winning, without empty keys.
	name: "resource unsorted with duplicates and empty keys",
	sc: Scope{Resource: []attribute.KeyValue{
		attribute.String("service.name", "first"),
		attribute.String("", "no key"),
		attribute.Int("os.type", 1),
		attribute.String("service.name", "second"),
		attribute.StringSlice("a.list", []string{"x", long}),
		attribute.String("", "no key again"),
		attribute.Bool("host.arch", true),
		attribute.String("service.name", "last"),
		attribute.Int("os.type", 2),
	}},
	resource: []*cpb.KeyValue{
		kv("a.list", array(str("x"), str(long))),
		kv("host.arch", boolean(true)),
		kv("os.type", i64(2)),
		kv("service.name", str("last")),
	},
}, {
	name: "resource sorted with a duplicate",
	sc: Scope{Resource: []attribute.KeyValue{
		attribute.String("a", "1"), attribute.String("b", "1"), attribute.String("b", "2"),
	}},
	resource: []*cpb.KeyValue{kv("a", str("1")), kv("b", str("2"))},
}, {
	name: "resource of empty keys only",
	sc:   Scope{Resource: []attribute.KeyValue{attribute.String("", "x"), attribute.Int("", 1)}},
}, {
	name:      "long values",
	sc:        Scope{Resource: bigAttrs, ResourceSchemaURL: long, Name: long, Version: wide, SchemaURL: huge},
	resource:  bigAttrsPB,
	scope:     &cpb.InstrumentationScope{Name: long, Version: wide},
	schemaURL: huge,
	resSchema: long,
}}

func (c *scopeCase) wantLogs(records ...*lpb.LogRecord) *collogspb.ExportLogsServiceRequest {
	var res *rpb.Resource
	if len(c.resource) > 0 {
		res = &rpb.Resource{Attributes: c.resource}
	}
	return &collogspb.ExportLogsServiceRequest{ResourceLogs: []*lpb.ResourceLogs{{
		Resource:  res,
		ScopeLogs: []*lpb.ScopeLogs{{Scope: c.scope, LogRecords: records, SchemaUrl: c.schemaURL}},
		SchemaUrl: c.resSchema,
	}}}
}

func (c *scopeCase) wantTraces(spans ...*tpb.Span) *coltracepb.ExportTraceServiceRequest {
	return &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tpb.ResourceSpans{{
		Resource:   &rpb.Resource{Attributes: c.resource},
		ScopeSpans: []*tpb.ScopeSpans{{Scope: c.scope, Spans: spans, SchemaUrl: c.schemaURL}},
		SchemaUrl:  c.resSchema,
	}}}
}

func TestRequestScope(t *testing.T) {
	rec, wantRec := logCases[0].rec.wire(), logCases[0].want
	span, wantSpan := spanCases[0].span.wire(), spanCases[0].want
	for _, tc := range scopeCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Run("logs", func(t *testing.T) {
				checkLogs(t, AppendLogsRequest(nil, &tc.sc, AppendLogRecord(nil, rec)), tc.wantLogs(wantRec))
			})
			t.Run("traces", func(t *testing.T) {
				checkTraces(t, AppendTracesRequest(nil, &tc.sc, AppendSpan(nil, span)), tc.wantTraces(wantSpan))
			})
		})
	}
}

// TestEmptyRequest: with nothing to send, the SDK sends nothing, and we
// append nothing, which decodes as the empty request.
func TestEmptyRequest(t *testing.T) {
	dst := []byte("x")
	if got := AppendLogsRequest(dst, &testScope, nil); !bytesEqual(got, dst) {
		t.Errorf("AppendLogsRequest with no records appended %x", got[len(dst):])
	}
	if got := AppendTracesRequest(dst, &testScope, []byte{}); !bytesEqual(got, dst) {
		t.Errorf("AppendTracesRequest with no spans appended %x", got[len(dst):])
	}
}

// TestPdata decodes our requests as the collector does.
func TestPdata(t *testing.T) {
	t.Run("logs", func(t *testing.T) {
		var records []byte
		for _, i := range []int{0, 1} {
			records = AppendLogRecord(records, logCases[i].rec.wire())
		}
		req := plogotlp.NewExportRequest()
		if err := req.UnmarshalProto(AppendLogsRequest(nil, &testScope, records)); err != nil {
			t.Fatal(err)
		}
		rls := req.Logs().ResourceLogs()
		if rls.Len() != 1 || rls.At(0).ScopeLogs().Len() != 1 {
			t.Fatalf("got %d ResourceLogs", rls.Len())
		}
		rl := rls.At(0)
		if v, ok := rl.Resource().Attributes().Get("service.name"); !ok || v.Str() != "memlock-exporter" {
			t.Errorf("service.name = %v, %v", v.AsRaw(), ok)
		}
		if rl.SchemaUrl() != testScope.ResourceSchemaURL {
			t.Errorf("resource schema URL = %q", rl.SchemaUrl())
		}
		sl := rl.ScopeLogs().At(0)
		if sl.Scope().Name() != testScope.Name || sl.Scope().Version() != testScope.Version || sl.SchemaUrl() != testScope.SchemaURL {
			t.Errorf("scope = %q %q %q", sl.Scope().Name(), sl.Scope().Version(), sl.SchemaUrl())
		}
		lrs := sl.LogRecords()
		if lrs.Len() != 2 {
			t.Fatalf("got %d records, want 2", lrs.Len())
		}
		ok := lrs.At(0)
		if ok.EventName() != "memlock.mlock2" || ok.Body().Str() != logCases[0].rec.Body ||
			ok.SeverityNumber() != 9 || int64(ok.Timestamp()) != t0 || int64(ok.ObservedTimestamp()) != t0+1500 {
			t.Errorf("record 0: %q %q %v %v %v", ok.EventName(), ok.Body().Str(), ok.SeverityNumber(), ok.Timestamp(), ok.ObservedTimestamp())
		}
		if v, _ := ok.Attributes().Get("memlock.addr"); v.Int() != 0x7f3a1c000000 {
			t.Errorf("memlock.addr = %v", v.AsRaw())
		}
		if v, _ := ok.Attributes().Get("memlock.flag_names"); v.Slice().Len() != 1 || v.Slice().At(0).Str() != "MLOCK_ONFAULT" {
			t.Errorf("memlock.flag_names = %v", v.AsRaw())
		}
		if v, _ := ok.Attributes().Get("memlock.duration"); v.Double() != 0.0000042 {
			t.Errorf("memlock.duration = %v", v.AsRaw())
		}
		if ok.Attributes().Len() != len(logCases[0].rec.Attributes) {
			t.Errorf("%d attributes, want %d", ok.Attributes().Len(), len(logCases[0].rec.Attributes))
		}
		fail := lrs.At(1)
		if [16]byte(fail.TraceID()) != traceID || [8]byte(fail.SpanID()) != spanID || fail.Flags() != 1 || fail.SeverityNumber() != 13 {
			t.Errorf("record 1: %v %v %v %v", fail.TraceID(), fail.SpanID(), fail.Flags(), fail.SeverityNumber())
		}
		if v, _ := fail.Attributes().Get("error.type"); v.Str() != "ENOMEM" {
			t.Errorf("error.type = %v", v.AsRaw())
		}
	})
	t.Run("traces", func(t *testing.T) {
		var spans []byte
		for _, i := range []int{0, 1, 4} {
			spans = AppendSpan(spans, spanCases[i].span.wire())
		}
		req := ptraceotlp.NewExportRequest()
		if err := req.UnmarshalProto(AppendTracesRequest(nil, &testScope, spans)); err != nil {
			t.Fatal(err)
		}
		rs := req.Traces().ResourceSpans()
		if rs.Len() != 1 || rs.At(0).ScopeSpans().Len() != 1 {
			t.Fatalf("got %d ResourceSpans", rs.Len())
		}
		if v, ok := rs.At(0).Resource().Attributes().Get("host.name"); !ok || v.Str() != "node-1" {
			t.Errorf("host.name = %v, %v", v.AsRaw(), ok)
		}
		ss := rs.At(0).ScopeSpans().At(0)
		if ss.Scope().Name() != testScope.Name || ss.SchemaUrl() != testScope.SchemaURL {
			t.Errorf("scope = %q %q", ss.Scope().Name(), ss.SchemaUrl())
		}
		if ss.Spans().Len() != 3 {
			t.Fatalf("got %d spans, want 3", ss.Spans().Len())
		}
		root := ss.Spans().At(0)
		if root.Name() != "mlock2" || [16]byte(root.TraceID()) != traceID || [8]byte(root.SpanID()) != spanID ||
			!root.ParentSpanID().IsEmpty() || root.Kind() != 1 || root.Flags() != sdkRootFlags ||
			int64(root.StartTimestamp()) != t0 || int64(root.EndTimestamp()) != t0+4200 {
			t.Errorf("span 0: %q %v %v %v %v %v", root.Name(), root.TraceID(), root.SpanID(), root.ParentSpanID(), root.Kind(), root.Flags())
		}
		if v, _ := root.Attributes().Get("memlock.len"); v.Int() != 8192 {
			t.Errorf("memlock.len = %v", v.AsRaw())
		}
		if st := ss.Spans().At(1).Status(); st.Code() != 2 || st.Message() != "ENOMEM" {
			t.Errorf("span 1 status = %v %q", st.Code(), st.Message())
		}
		child := ss.Spans().At(2)
		if [8]byte(child.ParentSpanID()) != parentID || child.TraceState().AsRaw() != "vendor=value,other=1" || child.Kind() != 2 {
			t.Errorf("span 2: %v %q %v", child.ParentSpanID(), child.TraceState().AsRaw(), child.Kind())
		}
	})
}

// zeroAllocRecord carries every attribute type, encoded beforehand as the
// exporter encodes what repeats.
var zeroAllocRecord = LogRecord{
	Time: t0, ObservedTime: t0, Severity: 13, EventName: "memlock.mlock2", Body: []byte("mlock2(...) = -12"),
	Attributes: AppendAttrs(nil, allTypes...),
	TraceID:    traceID, SpanID: spanID, TraceFlags: 1,
}

func TestZeroAllocs(t *testing.T) {
	span := Span{
		TraceID: traceID, SpanID: spanID, ParentSpanID: parentID, TraceState: "a=b", Flags: sdkRootFlags,
		Name: "mlock2", Kind: 1, Start: t0, End: t0 + 1, Attributes: zeroAllocRecord.Attributes,
		StatusCode: 2, StatusMessage: "ENOMEM",
	}
	unsorted := []attribute.KeyValue{
		attribute.String("z", "1"), attribute.String("", "x"), attribute.String("a", "2"), attribute.String("z", "3"),
	}
	host := AppendResourceAttrs(nil, testScope.Resource)
	proc := AppendIntAttr(nil, "process.pid", 7)
	records := AppendLogRecord(nil, &zeroAllocRecord)
	spans := AppendSpan(nil, &span)
	buf := make([]byte, 0, 1<<16)
	args := []string{"/usr/bin/gpg-agent", "--homedir", "/home/u/.gnupg"}
	for _, tc := range []struct {
		name string
		f    func()
	}{
		{"AppendLogRecord", func() { buf = AppendLogRecord(buf[:0], &zeroAllocRecord) }},
		{"AppendSpan", func() { buf = AppendSpan(buf[:0], &span) }},
		{"AppendLogsGroup", func() { buf = AppendLogsGroup(buf[:0], &testScope, records, host, proc) }},
		{"AppendTracesGroup", func() { buf = AppendTracesGroup(buf[:0], &testScope, spans, host, proc) }},
		{"AppendResourceAttrs unsorted", func() { buf = AppendResourceAttrs(buf[:0], unsorted) }},
		{"typed attributes", func() {
			buf = AppendStringAttr(buf[:0], "memlock.syscall", "mlock2")
			buf = AppendIntAttr(buf, "memlock.len", 8192)
			buf = AppendFloatAttr(buf, "memlock.duration", 4.2e-6)
			buf = AppendStringSliceAttr(buf, "process.command_args", args)
		}},
	} {
		if n := testing.AllocsPerRun(100, tc.f); n != 0 {
			t.Errorf("%s: %v allocations per call, want 0", tc.name, n)
		}
	}
}

// TestTypedAttributes: the typed appenders write what AppendAttrs writes
// for the same attribute.
func TestTypedAttributes(t *testing.T) {
	for _, tc := range []struct {
		name      string
		got, want []byte
	}{
		{"string", AppendStringAttr(nil, "k", "v"), AppendAttrs(nil, attribute.String("k", "v"))},
		{"long string", AppendStringAttr(nil, long, huge), AppendAttrs(nil, attribute.String(long, huge))},
		{"empty key and value", AppendStringAttr(nil, "", ""), AppendAttrs(nil, attribute.String("", ""))},
		{"int", AppendIntAttr(nil, "k", -12), AppendAttrs(nil, attribute.Int64("k", -12))},
		{"big int", AppendIntAttr(nil, "k", math.MaxInt64), AppendAttrs(nil, attribute.Int64("k", math.MaxInt64))},
		{"float", AppendFloatAttr(nil, "k", 4.2e-6), AppendAttrs(nil, attribute.Float64("k", 4.2e-6))},
		{"strings", AppendStringSliceAttr(nil, "k", []string{"a", long, ""}), AppendAttrs(nil, attribute.StringSlice("k", []string{"a", long, ""}))},
		{"no strings", AppendStringSliceAttr(nil, "k", nil), AppendAttrs(nil, attribute.StringSlice("k", nil))},
	} {
		if !bytes.Equal(tc.got, tc.want) {
			t.Errorf("%s: %x, want %x", tc.name, tc.got, tc.want)
		}
	}
}

// The SDK's own output, for comparison: its OTLP/HTTP exporters send to a
// local server that keeps the request bodies.

type capture struct {
	mu     sync.Mutex
	bodies [][]byte
}

func newCapture(t *testing.T) (*capture, string) {
	c := new(capture)
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
		b, err := io.ReadAll(body)
		if err != nil || r.Header.Get("Content-Type") != "application/x-protobuf" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		c.mu.Lock()
		c.bodies = append(c.bodies, b)
		c.mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	t.Cleanup(srv.Close)
	return c, srv.URL
}

func (c *capture) take(t *testing.T) []byte {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.bodies) != 1 {
		t.Fatalf("the SDK sent %d requests, want 1", len(c.bodies))
	}
	b := c.bodies[0]
	c.bodies = nil
	return b
}

func sdkResource(sc *Scope) *resource.Resource {
	return resource.NewWithAttributes(sc.ResourceSchemaURL, sc.Resource...)
}

// sdkLogs returns the request the SDK sends for recs, emitted in one batch.
func sdkLogs(t *testing.T, sc *Scope, recs ...*testRecord) []byte {
	t.Helper()
	ctx := context.Background()
	c, url := newCapture(t)
	exp, err := otlploghttp.New(ctx,
		otlploghttp.WithEndpointURL(url+"/v1/logs"),
		otlploghttp.WithCompression(otlploghttp.NoCompression),
		otlploghttp.WithRetry(otlploghttp.RetryConfig{Enabled: false}))
	if err != nil {
		t.Fatal(err)
	}
	proc := sdklog.NewBatchProcessor(exp, sdklog.WithExportInterval(time.Hour), sdklog.WithExportMaxBatchSize(len(recs)))
	lp := sdklog.NewLoggerProvider(
		sdklog.WithResource(sdkResource(sc)),
		sdklog.WithProcessor(proc),
		sdklog.WithAttributeCountLimit(-1),
		sdklog.WithAttributeValueLengthLimit(-1))
	defer func() { _ = lp.Shutdown(ctx) }()
	logger := lp.Logger(sc.Name, otellog.WithInstrumentationVersion(sc.Version), otellog.WithSchemaURL(sc.SchemaURL))
	for _, r := range recs {
		var rec otellog.Record
		if r.Time != 0 {
			rec.SetTimestamp(time.Unix(0, r.Time))
		}
		rec.SetObservedTimestamp(time.Unix(0, r.ObservedTime))
		rec.SetSeverity(otellog.Severity(r.Severity))
		rec.SetSeverityText(r.SeverityText)
		rec.SetEventName(r.EventName)
		if r.Body != "" {
			rec.SetBody(attribute.StringValue(r.Body))
		}
		rec.AddAttributes(r.Attributes...)
		sctx := trace.ContextWithSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: r.TraceID, SpanID: r.SpanID, TraceFlags: trace.TraceFlags(r.TraceFlags),
		}))
		logger.Emit(sctx, rec)
	}
	if err := lp.ForceFlush(ctx); err != nil {
		t.Fatal(err)
	}
	return c.take(t)
}

// fixedIDs makes the SDK use the IDs of the span being compared.
type fixedIDs struct {
	tid trace.TraceID
	sid trace.SpanID
}

func (g *fixedIDs) NewIDs(context.Context) (trace.TraceID, trace.SpanID)  { return g.tid, g.sid }
func (g *fixedIDs) NewSpanID(context.Context, trace.TraceID) trace.SpanID { return g.sid }

// sdkTraces returns the request the SDK sends for s.
func sdkTraces(t *testing.T, sc *Scope, s *testSpan) []byte {
	t.Helper()
	ctx := context.Background()
	c, url := newCapture(t)
	exp, err := otlptracehttp.New(ctx,
		otlptracehttp.WithEndpointURL(url+"/v1/traces"),
		otlptracehttp.WithCompression(otlptracehttp.NoCompression),
		otlptracehttp.WithEncoding(otlptracehttp.EncodingProtobuf),
		otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}))
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithSyncer(exp),
		sdktrace.WithResource(sdkResource(sc)),
		sdktrace.WithIDGenerator(&fixedIDs{s.TraceID, s.SpanID}),
		sdktrace.WithSampler(sdktrace.AlwaysSample()),
		sdktrace.WithRawSpanLimits(sdktrace.SpanLimits{
			AttributeValueLengthLimit: -1, AttributeCountLimit: -1, EventCountLimit: -1,
			LinkCountLimit: -1, AttributePerEventCountLimit: -1, AttributePerLinkCountLimit: -1,
		}))
	defer func() { _ = tp.Shutdown(ctx) }()
	tracer := tp.Tracer(sc.Name, trace.WithInstrumentationVersion(sc.Version), trace.WithSchemaURL(sc.SchemaURL))
	if s.ParentSpanID != zeroSID {
		ts, err := trace.ParseTraceState(s.TraceState)
		if err != nil {
			t.Fatal(err)
		}
		ctx = trace.ContextWithRemoteSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: s.TraceID, SpanID: s.ParentSpanID, TraceFlags: trace.FlagsSampled, TraceState: ts, Remote: true,
		}))
	}
	_, span := tracer.Start(ctx, s.Name,
		trace.WithTimestamp(time.Unix(0, s.Start)),
		trace.WithSpanKind(trace.SpanKind(s.Kind)),
		trace.WithAttributes(s.Attributes...))
	switch s.StatusCode {
	case 1:
		span.SetStatus(codes.Ok, s.StatusMessage)
	case 2:
		span.SetStatus(codes.Error, s.StatusMessage)
	}
	span.End(trace.WithTimestamp(time.Unix(0, s.End)))
	return c.take(t)
}

func decodeLogs(t *testing.T, b []byte) *collogspb.ExportLogsServiceRequest {
	t.Helper()
	m := new(collogspb.ExportLogsServiceRequest)
	if err := proto.Unmarshal(b, m); err != nil {
		t.Fatal(err)
	}
	return m
}

func decodeTraces(t *testing.T, b []byte) *coltracepb.ExportTraceServiceRequest {
	t.Helper()
	m := new(coltracepb.ExportTraceServiceRequest)
	if err := proto.Unmarshal(b, m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestMatchesSDK sends the tables' records, spans and scopes through the
// Go SDK's OTLP exporters and through us, and compares the requests.
func TestMatchesSDK(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the SDK over local HTTP")
	}
	compareLogs := func(t *testing.T, sc *Scope, recs ...*testRecord) {
		t.Helper()
		var records []byte
		for _, r := range recs {
			records = AppendLogRecord(records, r.wire())
		}
		ours := AppendLogsRequest(nil, sc, records)
		sdk := sdkLogs(t, sc, recs...)
		if got, want := decodeLogs(t, ours), decodeLogs(t, sdk); !proto.Equal(got, want) {
			t.Fatalf("ours differs from the SDK's (got: ours, want: the SDK's):\n%s", diff(got, want))
		}
		if !bytesEqual(ours, sdk) {
			t.Errorf("same message, different bytes:\n ours %x\n  sdk %x", head(ours), head(sdk))
		}
	}
	compareTraces := func(t *testing.T, sc *Scope, s *testSpan) {
		t.Helper()
		ours := AppendTracesRequest(nil, sc, AppendSpan(nil, s.wire()))
		sdk := sdkTraces(t, sc, s)
		if got, want := decodeTraces(t, ours), decodeTraces(t, sdk); !proto.Equal(got, want) {
			t.Fatalf("ours differs from the SDK's (got: ours, want: the SDK's):\n%s", diff(got, want))
		}
		if !bytesEqual(ours, sdk) {
			t.Errorf("same message, different bytes:\n ours %x\n  sdk %x", head(ours), head(sdk))
		}
	}

	var batch []*testRecord
	for i, tc := range logCases {
		if tc.noSDK != "" {
			continue
		}
		batch = append(batch, &logCases[i].rec)
		t.Run("log/"+tc.name, func(t *testing.T) { compareLogs(t, &testScope, &logCases[i].rec) })
	}
	t.Run("log/batch", func(t *testing.T) { compareLogs(t, &testScope, batch...) })
	for i, tc := range spanCases {
		if tc.noSDK != "" {
			continue
		}
		t.Run("span/"+tc.name, func(t *testing.T) { compareTraces(t, &testScope, &spanCases[i].span) })
	}
	for i, tc := range scopeCases {
		t.Run("scope/"+tc.name+"/logs", func(t *testing.T) { compareLogs(t, &scopeCases[i].sc, &logCases[0].rec) })
		t.Run("scope/"+tc.name+"/traces", func(t *testing.T) {
			sc := scopeCases[i].sc
			if sc.Name == "" {
				// The SDK's TracerProvider names unnamed tracers so, and
				// cannot send the zero scope.
				sc.Name = "go.opentelemetry.io/otel/sdk/tracer"
			}
			compareTraces(t, &sc, &spanCases[0].span)
		})
	}
}

// TestAttributeParts: a record's or span's attributes split between
// Attributes and MoreAttributes give the same bytes wherever the list is
// split.
func TestAttributeParts(t *testing.T) {
	attrs := []attribute.KeyValue{
		attribute.String("memlock.syscall", "mlock2"),
		attribute.Int64("memlock.len", 8192),
		attribute.Bool("b", true),
		attribute.Float64("memlock.duration", 4.2e-6),
		attribute.StringSlice("memlock.flag_names", []string{"MLOCK_ONFAULT"}),
		attribute.Int64("process.pid", 4242),
		attribute.String("thread.name", "gpg-agent"),
	}
	for split := 0; split <= len(attrs); split++ {
		first, rest := AppendAttrs(nil, attrs[:split]...), AppendAttrs(nil, attrs[split:]...)
		whole := AppendLogRecord(nil, &LogRecord{Time: 1, Body: []byte("x"), Attributes: AppendAttrs(nil, attrs...), TraceID: [16]byte{1}, SpanID: [8]byte{2}})
		parts := AppendLogRecord(nil, &LogRecord{Time: 1, Body: []byte("x"), Attributes: first, MoreAttributes: rest, TraceID: [16]byte{1}, SpanID: [8]byte{2}})
		if !bytes.Equal(whole, parts) {
			t.Errorf("log record split at %d: bytes differ", split)
		}
		wholeSpan := AppendSpan(nil, &Span{Name: "mlock2", Attributes: AppendAttrs(nil, attrs...), StatusCode: 2, StatusMessage: "ENOMEM"})
		partsSpan := AppendSpan(nil, &Span{Name: "mlock2", Attributes: first, MoreAttributes: rest, StatusCode: 2, StatusMessage: "ENOMEM"})
		if !bytes.Equal(wholeSpan, partsSpan) {
			t.Errorf("span split at %d: bytes differ", split)
		}
	}
}

// TestGroups: a request of several resources is the concatenation of one
// group per resource, each with the host's attributes and then the
// process's, decoding to (and encoded as proto.Marshal encodes) one
// ResourceLogs or ResourceSpans per group, in order.
func TestGroups(t *testing.T) {
	rec, recPB := logCases[0].rec.wire(), logCases[0].want
	span, spanPB := spanCases[0].span.wire(), spanCases[0].want
	host := AppendResourceAttrs(nil, testScope.Resource)
	procs := []struct {
		list []byte
		pb   []*cpb.KeyValue
	}{
		{AppendIntAttr(AppendStringAttr(nil, "container.id", "c1"), "process.pid", 7),
			[]*cpb.KeyValue{kv("container.id", str("c1")), kv("process.pid", i64(7))}},
		{AppendIntAttr(nil, "process.pid", 8), []*cpb.KeyValue{kv("process.pid", i64(8))}},
		{nil, nil}, // only the host's
	}
	for _, copies := range []int{1, 3, 300} { // lengths of one to three varint bytes
		var logs, traces []byte
		wantLogs := &collogspb.ExportLogsServiceRequest{}
		wantTraces := &coltracepb.ExportTraceServiceRequest{}
		for _, p := range procs {
			logs = AppendLogsGroup(logs, &testScope, bytes.Repeat(AppendLogRecord(nil, rec), copies), host, p.list)
			traces = AppendTracesGroup(traces, &testScope, bytes.Repeat(AppendSpan(nil, span), copies), host, p.list)
			res := &rpb.Resource{Attributes: slices.Concat(testResourcePB, p.pb)}
			wantLogs.ResourceLogs = append(wantLogs.ResourceLogs, &lpb.ResourceLogs{
				Resource:  res,
				ScopeLogs: []*lpb.ScopeLogs{{Scope: testScopePB, LogRecords: slices.Repeat([]*lpb.LogRecord{recPB}, copies), SchemaUrl: testScope.SchemaURL}},
				SchemaUrl: testScope.ResourceSchemaURL,
			})
			wantTraces.ResourceSpans = append(wantTraces.ResourceSpans, &tpb.ResourceSpans{
				Resource:   res,
				ScopeSpans: []*tpb.ScopeSpans{{Scope: testScopePB, Spans: slices.Repeat([]*tpb.Span{spanPB}, copies), SchemaUrl: testScope.SchemaURL}},
				SchemaUrl:  testScope.ResourceSchemaURL,
			})
		}
		checkLogs(t, logs, wantLogs)
		checkTraces(t, traces, wantTraces)
	}
	// A group of the request's own resource is the request.
	items := AppendLogRecord(nil, rec)
	if got, want := AppendLogsGroup(nil, &testScope, items, host), AppendLogsRequest(nil, &testScope, items); !bytes.Equal(got, want) {
		t.Error("a group with the scope's resource differs from AppendLogsRequest")
	}
	if got := AppendLogsGroup([]byte("x"), &testScope, nil, host); string(got) != "x" {
		t.Errorf("a group without items appended %q", got[1:])
	}
}

// TestAppendList: a list written under another field's key is the same
// attributes encoded for that field; a truncated list loses only its
// broken last entry.
func TestAppendList(t *testing.T) {
	attrs := append([]attribute.KeyValue{attribute.String("huge", huge), attribute.StringSlice("s", []string{"a", "b"})}, bigAttrs...)
	list := AppendAttrs(nil, attrs...)
	if got, want := appendList([]byte("x"), keySpanAttrs, list), appendAttrs([]byte("x"), keySpanAttrs, attrs); !bytes.Equal(got, want) {
		t.Error("the list written as span attributes differs from the attributes encoded as span attributes")
	}
	if got := appendList(nil, keyLogAttrs, list); !bytes.Equal(got, list) {
		t.Error("the list written as log record attributes is not copied verbatim")
	}
	first := AppendAttrs(nil, attrs[0])
	if got := appendList(nil, keySpanAttrs, list[:len(first)+3]); !bytes.Equal(got, appendAttrs(nil, keySpanAttrs, attrs[:1])) {
		t.Errorf("truncated list: got %d bytes, want the first attribute only", len(got))
	}
}

// testRecord is a LogRecord whose attributes are KeyValues, which the
// SDK can be given too (TestMatchesSDK).
type testRecord struct {
	Time, ObservedTime      int64
	Severity                int32
	SeverityText, EventName string
	Body                    string
	Attributes              []attribute.KeyValue
	TraceID                 [16]byte
	SpanID                  [8]byte
	TraceFlags              uint8
}

func (r *testRecord) wire() *LogRecord {
	return &LogRecord{
		Time: r.Time, ObservedTime: r.ObservedTime, Severity: r.Severity,
		SeverityText: r.SeverityText, EventName: r.EventName, Body: []byte(r.Body),
		Attributes: AppendAttrs(nil, r.Attributes...),
		TraceID:    r.TraceID, SpanID: r.SpanID, TraceFlags: r.TraceFlags,
	}
}

// testSpan is a Span whose attributes are KeyValues.
type testSpan struct {
	TraceID       [16]byte
	SpanID        [8]byte
	ParentSpanID  [8]byte
	TraceState    string
	Flags         uint32
	Name          string
	Kind          int32
	Start, End    int64
	Attributes    []attribute.KeyValue
	StatusCode    int32
	StatusMessage string
}

func (s *testSpan) wire() *Span {
	return &Span{
		TraceID: s.TraceID, SpanID: s.SpanID, ParentSpanID: s.ParentSpanID, TraceState: s.TraceState,
		Flags: s.Flags, Name: s.Name, Kind: s.Kind, Start: s.Start, End: s.End,
		Attributes: AppendAttrs(nil, s.Attributes...),
		StatusCode: s.StatusCode, StatusMessage: s.StatusMessage,
	}
}
