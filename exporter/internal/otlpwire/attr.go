package otlpwire

import "go.opentelemetry.io/otel/attribute"

// AttrField is the repeated KeyValue field of a message that attributes
// are written as: for a LogRecord's EncodedAttributes or a Span's.
type AttrField byte

const (
	LogAttributes  = AttrField(keyLogAttrs)
	SpanAttributes = AttrField(keySpanAttrs)
)

// Append appends kv as one attribute, exactly as it would be written in
// LogRecord.Attributes or Span.Attributes. Writing attributes one by one
// spares the caller a slice of them.
func (f AttrField) Append(dst []byte, kv attribute.KeyValue) []byte {
	return appendKeyValue(dst, byte(f), &kv)
}

// AppendAll appends attrs in order, as Append would one by one.
func (f AttrField) AppendAll(dst []byte, attrs []attribute.KeyValue) []byte {
	return appendAttrs(dst, byte(f), attrs)
}
