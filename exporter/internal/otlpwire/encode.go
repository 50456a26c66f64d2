package otlpwire

import (
	"slices"

	"go.opentelemetry.io/otel/attribute"
	"google.golang.org/protobuf/encoding/protowire"
)

// Scope is the resource and instrumentation scope shared by all items of a request.
type Scope struct {
	Resource          []attribute.KeyValue
	ResourceSchemaURL string
	Name, Version     string // instrumentation scope
	SchemaURL         string // the scope's schema URL (ScopeLogs.schema_url / ScopeSpans.schema_url)
}

// LogRecord is one OTLP LogRecord (opentelemetry/proto/logs/v1/logs.proto).
type LogRecord struct {
	Time, ObservedTime int64 // Unix nanoseconds; 0 = field left out
	Severity           int32 // SeverityNumber, e.g. 9 INFO, 13 WARN; 0 = left out
	SeverityText       string
	EventName          string
	Body               []byte // a string AnyValue; empty = no body
	// Attributes and then MoreAttributes are attribute lists (Append*Attr):
	// two, so that a part that repeats from record to record can be
	// encoded once and kept.
	Attributes, MoreAttributes []byte
	TraceID                    [16]byte // all-zero = left out
	SpanID                     [8]byte  // all-zero = left out
	TraceFlags                 uint8    // LogRecord.flags (fixed32), 0 = left out
}

// Span is one OTLP Span (opentelemetry/proto/trace/v1/trace.proto).
type Span struct {
	TraceID      [16]byte
	SpanID       [8]byte
	ParentSpanID [8]byte // all-zero = left out
	TraceState   string
	Flags        uint32 // Span.flags (fixed32) exactly as given
	Name         string
	Kind         int32 // SpanKind: 1 internal ...
	Start, End   int64 // Unix nanoseconds
	// Attributes and then MoreAttributes are attribute lists, as in
	// LogRecord.
	Attributes, MoreAttributes []byte
	StatusCode                 int32 // 0 unset, 1 ok, 2 error
	StatusMessage              string
}

// Keys of the fields of requests and of opentelemetry.proto.logs.v1 and
// opentelemetry.proto.trace.v1 messages that we write; all one byte (see
// the common ones in attr.go) except Span.flags.
const (
	// ExportLogsServiceRequest.resource_logs, ExportTraceServiceRequest.resource_spans.
	keyRequestResource = byte(1<<3 | protowire.BytesType)
	// ResourceLogs and ResourceSpans.
	keyResource       = byte(1<<3 | protowire.BytesType) // resource
	keyResourceScopes = byte(2<<3 | protowire.BytesType) // scope_logs, scope_spans
	keyResourceSchema = byte(3<<3 | protowire.BytesType) // schema_url
	// ScopeLogs and ScopeSpans.
	keyScope       = byte(1<<3 | protowire.BytesType) // scope
	keyScopeItems  = byte(2<<3 | protowire.BytesType) // log_records, spans
	keyScopeSchema = byte(3<<3 | protowire.BytesType) // schema_url
	// Resource.
	keyResourceAttrs = byte(1<<3 | protowire.BytesType) // attributes

	// LogRecord.
	keyLogTime         = byte(1<<3 | protowire.Fixed64Type)  // time_unix_nano
	keyLogSeverity     = byte(2<<3 | protowire.VarintType)   // severity_number
	keyLogSeverityText = byte(3<<3 | protowire.BytesType)    // severity_text
	keyLogBody         = byte(5<<3 | protowire.BytesType)    // body
	keyLogAttrs        = byte(6<<3 | protowire.BytesType)    // attributes
	keyLogFlags        = byte(8<<3 | protowire.Fixed32Type)  // flags
	keyLogTraceID      = byte(9<<3 | protowire.BytesType)    // trace_id
	keyLogSpanID       = byte(10<<3 | protowire.BytesType)   // span_id
	keyLogObserved     = byte(11<<3 | protowire.Fixed64Type) // observed_time_unix_nano
	keyLogEventName    = byte(12<<3 | protowire.BytesType)   // event_name

	// Span.
	keySpanTraceID    = byte(1<<3 | protowire.BytesType)   // trace_id
	keySpanID         = byte(2<<3 | protowire.BytesType)   // span_id
	keySpanTraceState = byte(3<<3 | protowire.BytesType)   // trace_state
	keySpanParentID   = byte(4<<3 | protowire.BytesType)   // parent_span_id
	keySpanName       = byte(5<<3 | protowire.BytesType)   // name
	keySpanKind       = byte(6<<3 | protowire.VarintType)  // kind
	keySpanStart      = byte(7<<3 | protowire.Fixed64Type) // start_time_unix_nano
	keySpanEnd        = byte(8<<3 | protowire.Fixed64Type) // end_time_unix_nano
	keySpanAttrs      = byte(9<<3 | protowire.BytesType)   // attributes
	keySpanStatus     = byte(15<<3 | protowire.BytesType)  // status
	spanFlagsNum      = 16                                 // flags (fixed32): a two-byte key

	// Status.
	keyStatusMessage = byte(2<<3 | protowire.BytesType)  // message
	keyStatusCode    = byte(3<<3 | protowire.VarintType) // code
)

// sizeTime is the size of a fixed64 timestamp field. The SDK's exporters
// clamp times before 1970 to 0, and proto3 leaves 0 out.
func sizeTime(t int64) int {
	if t <= 0 {
		return 0
	}
	return 1 + 8
}

func appendTime(b []byte, key byte, t int64) []byte {
	if t <= 0 {
		return b
	}
	return protowire.AppendFixed64(append(b, key), uint64(t))
}

// sizeEnum is the size of an enum field. Negative values take ten bytes:
// enums are sign-extended to 64 bits on the wire.
func sizeEnum(v int32) int {
	if v == 0 {
		return 0
	}
	return 1 + protowire.SizeVarint(uint64(v))
}

func appendEnum(b []byte, key byte, v int32) []byte {
	if v == 0 {
		return b
	}
	return protowire.AppendVarint(append(b, key), uint64(v))
}

// sizeID is the size of an ID field that is left out when all zero, as
// the SDK's exporters leave out invalid IDs.
func sizeID(id []byte) int {
	if isZero(id) {
		return 0
	}
	return sizeLenField(len(id))
}

func appendID(b []byte, key byte, id []byte) []byte {
	if isZero(id) {
		return b
	}
	return append(appendLen(append(b, key), len(id)), id...)
}

func isZero(id []byte) bool {
	for _, c := range id {
		if c != 0 {
			return false
		}
	}
	return true
}

// sizeBody is the size of the body's AnyValue. The SDK sends an empty
// AnyValue for a record without a body, so "" gives an empty message
// rather than no field.
func sizeBody(s []byte) int {
	if len(s) == 0 {
		return 0
	}
	return sizeLenField(len(s))
}

// AppendLogRecord appends r as one ScopeLogs.log_records entry (field tag + length + LogRecord message).
//
// It writes what the SDK's OTLP log exporters write for the same record:
// times before 1970 are left out like 0, an empty Body is sent as an empty
// AnyValue, and the attributes go in order, as given (see AppendAttrs). It
// allocates only if dst lacks room, and then once.
func AppendLogRecord(dst []byte, r *LogRecord) []byte {
	dst, start := beginMessage(dst, keyScopeItems)

	// Fields go in field-number order, as proto.Marshal writes them.
	dst = appendTime(dst, keyLogTime, r.Time)
	dst = appendEnum(dst, keyLogSeverity, r.Severity)
	dst = appendStringField(dst, keyLogSeverityText, r.SeverityText)
	dst = appendLen(append(dst, keyLogBody), sizeBody(r.Body))
	if len(r.Body) > 0 {
		dst = append(appendLen(append(dst, keyAnyString), len(r.Body)), r.Body...)
	}
	dst = appendList(dst, keyLogAttrs, r.Attributes)
	dst = appendList(dst, keyLogAttrs, r.MoreAttributes)
	if r.TraceFlags != 0 {
		dst = protowire.AppendFixed32(append(dst, keyLogFlags), uint32(r.TraceFlags))
	}
	dst = appendID(dst, keyLogTraceID, r.TraceID[:])
	dst = appendID(dst, keyLogSpanID, r.SpanID[:])
	dst = appendTime(dst, keyLogObserved, r.ObservedTime)
	dst = appendStringField(dst, keyLogEventName, r.EventName)
	return endMessage(dst, start)
}

// A record or span is written before its length is known, rather than
// sized first: sizing walked every attribute a second time. beginMessage
// writes the key and reserves lenReserve bytes for the length, which fit
// every message from 128 bytes to 16 KiB, where nearly all ours are;
// endMessage writes the length and, for the rare message of another size,
// moves the message to close up or widen the gap, so that the length is
// the shortest varint, as proto.Marshal writes it.
const lenReserve = 2

func beginMessage(dst []byte, key byte) ([]byte, int) {
	dst = append(dst, key, 0, 0)
	return dst, len(dst)
}

func endMessage(dst []byte, start int) []byte {
	n := len(dst) - start
	size := sizeVarint(uint64(n))
	if size != lenReserve {
		// Move the message to leave exactly size bytes before it.
		from := start
		to := start - lenReserve + size
		if to > from {
			dst = slices.Grow(dst, to-from)[:len(dst)+to-from]
		}
		copy(dst[to:], dst[from:from+n])
		dst = dst[:to+n]
		start = to
	}
	protowire.AppendVarint(dst[start-size:start-size], uint64(n))
	return dst
}

// sizeStatus is the size of the Status message, which the SDK always sends,
// even for an unset status.
func sizeStatus(s *Span) int {
	return sizeStringField(s.StatusMessage) + sizeEnum(s.StatusCode)
}

// AppendSpan appends s as one ScopeSpans.spans entry (tag + length + Span).
//
// It writes what the SDK's OTLP trace exporters write for the same span:
// both IDs and the status always, even when zero, times before 1970 left
// out like 0; Flags, Kind and StatusCode go as given. It allocates as
// AppendLogRecord does.
func AppendSpan(dst []byte, s *Span) []byte {
	dst, start := beginMessage(dst, keyScopeItems)

	// The SDK always sends both IDs, valid or not.
	dst = append(appendLen(append(dst, keySpanTraceID), len(s.TraceID)), s.TraceID[:]...)
	dst = append(appendLen(append(dst, keySpanID), len(s.SpanID)), s.SpanID[:]...)
	dst = appendStringField(dst, keySpanTraceState, s.TraceState)
	dst = appendID(dst, keySpanParentID, s.ParentSpanID[:])
	dst = appendStringField(dst, keySpanName, s.Name)
	dst = appendEnum(dst, keySpanKind, s.Kind)
	dst = appendTime(dst, keySpanStart, s.Start)
	dst = appendTime(dst, keySpanEnd, s.End)
	dst = appendList(dst, keySpanAttrs, s.Attributes)
	dst = appendList(dst, keySpanAttrs, s.MoreAttributes)
	dst = appendLen(append(dst, keySpanStatus), sizeStatus(s))
	dst = appendStringField(dst, keyStatusMessage, s.StatusMessage)
	dst = appendEnum(dst, keyStatusCode, s.StatusCode)
	if s.Flags != 0 {
		dst = protowire.AppendTag(dst, spanFlagsNum, protowire.Fixed32Type)
		dst = protowire.AppendFixed32(dst, s.Flags)
	}
	return endMessage(dst, start)
}

// AppendLogsRequest appends an ExportLogsServiceRequest with one ResourceLogs
// (resource from sc, schema_url) holding one ScopeLogs (scope name/version,
// schema_url) whose log_records are records: the concatenation of
// AppendLogRecord outputs, copied verbatim.
//
// With no records it appends nothing, the empty request, as the SDK's
// exporters have nothing to send then. The resource is written in the order
// the SDK's resource.Resource keeps it, whatever the order of sc.Resource:
// sorted by key, the last of duplicate keys winning, empty keys dropped; it
// is left out when that leaves no attribute, as the SDK's log exporters do.
func AppendLogsRequest(dst []byte, sc *Scope, records []byte) []byte {
	return AppendLogsGroup(dst, sc, records, AppendResourceAttrs(nil, sc.Resource))
}

// AppendTracesRequest appends an ExportTraceServiceRequest with one
// ResourceSpans holding one ScopeSpans whose spans are spans: the
// concatenation of AppendSpan outputs, copied verbatim.
//
// It treats sc as AppendLogsRequest does, except that, like the SDK's trace
// exporters, it always sends the resource, if need be empty.
func AppendTracesRequest(dst []byte, sc *Scope, spans []byte) []byte {
	return AppendTracesGroup(dst, sc, spans, AppendResourceAttrs(nil, sc.Resource))
}

// A request is nothing but its resource_logs (resource_spans) entries, one
// after the other: requests whose items come from several resources (one
// per process) are the concatenation of AppendLogsGroup (AppendTracesGroup)
// outputs, one per resource.

// AppendLogsGroup appends one ExportLogsServiceRequest.resource_logs entry:
// a ResourceLogs whose resource holds the attribute lists resource, one
// after the other, with sc's schema URLs and one ScopeLogs of sc's scope
// holding records. sc.Resource is not used: pass it as a list made by
// AppendResourceAttrs, so that it is encoded once, not per request. With no
// records it appends nothing; with no resource attributes it leaves the
// resource out, as AppendLogsRequest does.
func AppendLogsGroup(dst []byte, sc *Scope, records []byte, resource ...[]byte) []byte {
	return appendGroup(dst, sc, records, resource, false)
}

// AppendTracesGroup is AppendLogsGroup for spans (AppendSpan outputs): an
// ExportTraceServiceRequest.resource_spans entry, whose resource is sent
// even when empty.
func AppendTracesGroup(dst []byte, sc *Scope, spans []byte, resource ...[]byte) []byte {
	return appendGroup(dst, sc, spans, resource, true)
}

// AppendResourceAttrs appends attrs to the list dst as a resource holds
// them, in the SDK's attribute.Set order: sorted by key, the last of
// duplicate keys winning, empty keys dropped.
func AppendResourceAttrs(dst []byte, attrs []attribute.KeyValue) []byte {
	if isCanonical(attrs) {
		return appendAttrs(dst, keyListEntry, attrs)
	}
	for i := nextAttr(attrs, ""); i >= 0; i = nextAttr(attrs, attrs[i].Key) {
		dst = appendKeyValue(dst, keyListEntry, &attrs[i])
	}
	return dst
}

// AppendLogsGroupHead appends what AppendLogsGroup writes before the
// records, for records of itemsLen bytes in all (itemsLen > 0). The caller
// then appends the records and AppendGroupTail: for records that do not
// lie in one slice.
func AppendLogsGroupHead(dst []byte, sc *Scope, itemsLen int, resource ...[]byte) []byte {
	return appendGroupHead(dst, sc, itemsLen, resource, false)
}

// AppendTracesGroupHead is AppendLogsGroupHead for spans.
func AppendTracesGroupHead(dst []byte, sc *Scope, itemsLen int, resource ...[]byte) []byte {
	return appendGroupHead(dst, sc, itemsLen, resource, true)
}

// AppendGroupTail appends what comes after a group's items.
func AppendGroupTail(dst []byte, sc *Scope) []byte {
	dst = appendStringField(dst, keyScopeSchema, sc.SchemaURL)
	return appendStringField(dst, keyResourceSchema, sc.ResourceSchemaURL)
}

// appendGroup writes either entry: the two share their field numbers and
// differ only in whether an empty resource is sent.
func appendGroup(dst []byte, sc *Scope, items []byte, resource [][]byte, emptyResource bool) []byte {
	if len(items) == 0 {
		return dst
	}
	dst = appendGroupHead(dst, sc, len(items), resource, emptyResource)
	dst = append(dst, items...)
	return AppendGroupTail(dst, sc)
}

func appendGroupHead(dst []byte, sc *Scope, itemsLen int, resource [][]byte, emptyResource bool) []byte {
	resSize := 0
	for _, l := range resource {
		resSize += len(l)
	}
	// The SDK leaves out the scope (and so its schema URL) when it is the
	// zero instrumentation.Scope.
	hasScope := sc.Name != "" || sc.Version != "" || sc.SchemaURL != ""
	scopeSize := sizeStringField(sc.Name) + sizeStringField(sc.Version)
	scopeItemsSize := itemsLen + sizeStringField(sc.SchemaURL)
	if hasScope {
		scopeItemsSize += sizeLenField(scopeSize)
	}
	hasResource := emptyResource || resSize > 0
	groupSize := sizeLenField(scopeItemsSize) + sizeStringField(sc.ResourceSchemaURL)
	if hasResource {
		groupSize += sizeLenField(resSize)
	}
	dst = slices.Grow(dst, sizeLenField(groupSize))

	dst = appendLen(append(dst, keyRequestResource), groupSize)
	if hasResource {
		dst = appendLen(append(dst, keyResource), resSize)
		for _, l := range resource {
			dst = appendList(dst, keyResourceAttrs, l)
		}
	}
	dst = appendLen(append(dst, keyResourceScopes), scopeItemsSize)
	if hasScope {
		dst = appendLen(append(dst, keyScope), scopeSize)
		dst = appendStringField(dst, keyScopeName, sc.Name)
		dst = appendStringField(dst, keyScopeVersion, sc.Version)
	}
	return dst
}

// The SDK's exporters see a resource as an attribute.Set: sorted by key,
// without duplicates (the last value wins) and, as resource.New filters
// them, without empty keys. Resources are usually built that way already
// (resource.Resource.Attributes returns them so); others we walk in that
// order by selection, which allocates nothing and, for the dozen attributes
// of a resource encoded once, costs little.

// isCanonical reports whether attrs are in attribute.Set order.
func isCanonical(attrs []attribute.KeyValue) bool {
	for i := range attrs {
		if attrs[i].Key == "" || i > 0 && attrs[i].Key <= attrs[i-1].Key {
			return false
		}
	}
	return true
}

// nextAttr returns the index of the attribute that follows key in
// attribute.Set order: the last of those with the smallest key above key,
// or -1. After "", it returns the first.
func nextAttr(attrs []attribute.KeyValue, key attribute.Key) int {
	next := -1
	for i := range attrs {
		if k := attrs[i].Key; k > key && (next < 0 || k <= attrs[next].Key) {
			next = i
		}
	}
	return next
}
