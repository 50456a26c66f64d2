package otlpwire

import (
	"testing"

	"go.opentelemetry.io/otel/attribute"
	cpb "go.opentelemetry.io/proto/otlp/common/v1"
	lpb "go.opentelemetry.io/proto/otlp/logs/v1"
	tpb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// benchAttrs are the 25 attributes of a typical memlock record: 10 strings,
// 14 ints and a double.
var benchAttrs = []attribute.KeyValue{
	attribute.String("memlock.syscall", "mlock2"),
	attribute.String("memlock.probe", "fentry"),
	attribute.String("memlock.libc.function", "mlock2"),
	attribute.String("error.type", "ENOMEM"),
	attribute.String("thread.name", "workload"),
	attribute.String("process.executable.name", "workload"),
	attribute.String("process.executable.path", "/usr/local/bin/workload"),
	attribute.String("process.linux.cgroup", "0::/system.slice/workload.service"),
	attribute.String("container.id", "a3bf90e006b2ea7e5e3ad8fbc1d2b0a6c2f7a0d7e1b9c8d4f6e2a1b3c5d7e9f1"),
	attribute.String("k8s.pod.uid", "275ecb36-5aa8-4c2a-9c47-d8bb681b9aff"),
	attribute.Int64("memlock.addr", 0x7f3a1c000000),
	attribute.Int64("memlock.len", 8192),
	attribute.Int64("memlock.pages", 2),
	attribute.Int64("memlock.flags", 1),
	attribute.Int64("memlock.return_value", 0),
	attribute.Int64("memlock.kernel.duration", 1830),
	attribute.Int64("process.pid", 48213),
	attribute.Int64("process.parent_pid", 1),
	attribute.Int64("thread.id", 48217),
	attribute.Int64("process.user.id", 1000),
	attribute.Int64("process.real_user.id", 1000),
	attribute.Int64("process.group.id", 1000),
	attribute.Int64("process.real_group.id", 1000),
	attribute.Int64("memlock.rlimit", 8388608),
	attribute.Float64("memlock.duration", 0.0000042),
}

var benchFlagNames = attribute.StringSlice("memlock.flag_names", []string{"MLOCK_ONFAULT"})

func benchRecord(attrs []attribute.KeyValue) *testRecord {
	return &testRecord{
		Time:         t0,
		ObservedTime: t0 + 35000,
		Severity:     9,
		EventName:    "memlock.mlock2",
		Body:         "mlock2(0x7f3a1c000000, 8192, MLOCK_ONFAULT) = 0",
		Attributes:   attrs,
		TraceID:      traceID,
		SpanID:       spanID,
		TraceFlags:   1,
	}
}

func benchSpan(attrs []attribute.KeyValue) *testSpan {
	return &testSpan{
		TraceID:    traceID,
		SpanID:     spanID,
		Flags:      sdkRootFlags,
		Name:       "mlock2",
		Kind:       1,
		Start:      t0,
		End:        t0 + 4200,
		Attributes: attrs,
	}
}

var benchVariants = []struct {
	name  string
	attrs []attribute.KeyValue
}{
	{"25attrs", benchAttrs},
	{"26attrs_with_string_slice", append(append([]attribute.KeyValue(nil), benchAttrs...), benchFlagNames)},
}

func BenchmarkAppendLogRecord(b *testing.B) {
	for _, v := range benchVariants {
		b.Run(v.name, func(b *testing.B) {
			// The attributes are encoded each time, as an event's are.
			r := benchRecord(v.attrs).wire()
			buf := AppendLogRecord(nil, r)
			b.SetBytes(int64(len(buf)))
			b.ReportAllocs()
			for b.Loop() {
				r.Attributes = AppendAttrs(r.Attributes[:0], v.attrs...)
				buf = AppendLogRecord(buf[:0], r)
			}
		})
	}
}

func BenchmarkAppendSpan(b *testing.B) {
	for _, v := range benchVariants {
		b.Run(v.name, func(b *testing.B) {
			// The attributes come encoded for the log record: the span
			// copies them under its own key.
			s := benchSpan(v.attrs).wire()
			buf := AppendSpan(nil, s)
			b.SetBytes(int64(len(buf)))
			b.ReportAllocs()
			for b.Loop() {
				buf = AppendSpan(buf[:0], s)
			}
		})
	}
}

// BenchmarkAppendLogsRequest wraps a batch of 512 records: mostly copying.
func BenchmarkAppendLogsRequest(b *testing.B) {
	var records []byte
	for range 512 {
		records = AppendLogRecord(records, benchRecord(benchAttrs).wire())
	}
	buf := AppendLogsRequest(nil, &testScope, records)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendLogsRequest(buf[:0], &testScope, records)
	}
}

// For comparison, the same messages through the generated OTLP types, as
// the SDK's exporters build them: "build" converts each item and marshals
// it, "marshal" only marshals a message built beforehand.

func BenchmarkProtoMarshalLogRecord(b *testing.B) {
	for _, v := range benchVariants {
		r := benchRecord(v.attrs)
		b.Run(v.name+"/build", func(b *testing.B) {
			var buf []byte
			b.ReportAllocs()
			for b.Loop() {
				var err error
				buf, err = proto.MarshalOptions{}.MarshalAppend(buf[:0], logRecordPB(r))
				if err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(v.name+"/marshal", func(b *testing.B) {
			m := logRecordPB(r)
			var buf []byte
			b.ReportAllocs()
			for b.Loop() {
				var err error
				buf, err = proto.MarshalOptions{}.MarshalAppend(buf[:0], m)
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkProtoMarshalSpan(b *testing.B) {
	s := benchSpan(benchAttrs)
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		var err error
		buf, err = proto.MarshalOptions{}.MarshalAppend(buf[:0], spanPB(s))
		if err != nil {
			b.Fatal(err)
		}
	}
}

func logRecordPB(r *testRecord) *lpb.LogRecord {
	return &lpb.LogRecord{
		TimeUnixNano:         uint64(r.Time),
		ObservedTimeUnixNano: uint64(r.ObservedTime),
		SeverityNumber:       lpb.SeverityNumber(r.Severity),
		EventName:            r.EventName,
		Body:                 str(r.Body),
		Attributes:           attrsPB(r.Attributes),
		TraceId:              r.TraceID[:],
		SpanId:               r.SpanID[:],
		Flags:                uint32(r.TraceFlags),
	}
}

func spanPB(s *testSpan) *tpb.Span {
	return &tpb.Span{
		TraceId:           s.TraceID[:],
		SpanId:            s.SpanID[:],
		Flags:             s.Flags,
		Name:              s.Name,
		Kind:              tpb.Span_SpanKind(s.Kind),
		StartTimeUnixNano: uint64(s.Start),
		EndTimeUnixNano:   uint64(s.End),
		Attributes:        attrsPB(s.Attributes),
		Status:            &tpb.Status{},
	}
}

// attrsPB converts the attribute types the benchmarks use.
func attrsPB(attrs []attribute.KeyValue) []*cpb.KeyValue {
	out := make([]*cpb.KeyValue, len(attrs))
	for i, a := range attrs {
		var v *cpb.AnyValue
		switch a.Value.Type() {
		case attribute.STRING:
			v = str(a.Value.AsString())
		case attribute.INT64:
			v = i64(a.Value.AsInt64())
		case attribute.FLOAT64:
			v = dbl(a.Value.AsFloat64())
		case attribute.STRINGSLICE:
			ss := a.Value.AsStringSlice()
			vs := make([]*cpb.AnyValue, len(ss))
			for j, s := range ss {
				vs[j] = str(s)
			}
			v = array(vs...)
		default:
			panic("attrsPB: unexpected " + a.Value.Type().String())
		}
		out[i] = kv(string(a.Key), v)
	}
	return out
}

// TestBenchmarkMessagesMatch keeps the comparison fair: both sides of the
// benchmarks encode the same message.
func TestBenchmarkMessagesMatch(t *testing.T) {
	for _, v := range benchVariants {
		checkLogs(t, AppendLogsRequest(nil, &testScope, AppendLogRecord(nil, benchRecord(v.attrs).wire())),
			testLogsRequest(logRecordPB(benchRecord(v.attrs))))
		checkTraces(t, AppendTracesRequest(nil, &testScope, AppendSpan(nil, benchSpan(v.attrs).wire())),
			testTracesRequest(spanPB(benchSpan(v.attrs))))
	}
}
