package otlpwire

import (
	"math"

	"go.opentelemetry.io/otel/attribute"
	"google.golang.org/protobuf/encoding/protowire"
)

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

// AppendInt appends the attribute key = v, as Append(attribute.Int64(key, v)).
func (f AttrField) AppendInt(dst []byte, key string, v int64) []byte {
	x := uint64(v)
	dst = appendKeyValueHead(dst, byte(f), key, 1+sizeVarint(x))
	return appendVarint(append(dst, keyAnyInt), x)
}

// AppendFloat appends the attribute key = v, as Append(attribute.Float64(key, v)).
func (f AttrField) AppendFloat(dst []byte, key string, v float64) []byte {
	dst = appendKeyValueHead(dst, byte(f), key, 1+8)
	return protowire.AppendFixed64(append(dst, keyAnyDouble), math.Float64bits(v))
}

// AppendString appends the attribute key = v, as Append(attribute.String(key, v)).
func (f AttrField) AppendString(dst []byte, key, v string) []byte {
	dst = appendKeyValueHead(dst, byte(f), key, sizeLenField(len(v)))
	return appendString(append(dst, keyAnyString), v)
}

// Rekey appends src, attributes encoded for another AttrField, as
// attributes of f: the same bytes but for each field's key, which is much
// cheaper than encoding them again. Malformed input is copied up to the
// first field that does not parse.
func (f AttrField) Rekey(dst, src []byte) []byte {
	start := len(dst)
	dst = append(dst, src...)
	for i := start; i < len(dst); {
		n, size := protowire.ConsumeVarint(dst[i+1:])
		if size < 0 || uint64(len(dst)-i-1-size) < n {
			return dst[:i]
		}
		dst[i] = byte(f)
		i += 1 + size + int(n)
	}
	return dst
}
