package otlpwire

import (
	"math"

	"go.opentelemetry.io/otel/attribute"
	"google.golang.org/protobuf/encoding/protowire"
)

// Attribute lists.
//
// Log records, spans and resources all carry their attributes as a repeated
// KeyValue field. The KeyValue messages are the same in all three; only the
// field's one-byte key differs. An attribute list is those entries encoded
// once, each under the log record's key: AppendLogRecord copies a list as it
// is, and AppendSpan (and a request's resource) copy it writing each entry
// under their own key. So an event's attributes are encoded once, whatever
// messages carry them.
//
// The Append*Attr functions append one entry to a list, exactly as
// proto.Marshal would write that attribute.

// Keys of the opentelemetry.proto.common.v1 fields we write. Every field
// number here is below 16, so each key is one byte; the conversion to byte
// fails to compile should that ever stop being true.
const (
	keyAnyString = byte(1<<3 | protowire.BytesType)   // AnyValue.string_value
	keyAnyBool   = byte(2<<3 | protowire.VarintType)  // AnyValue.bool_value
	keyAnyInt    = byte(3<<3 | protowire.VarintType)  // AnyValue.int_value
	keyAnyDouble = byte(4<<3 | protowire.Fixed64Type) // AnyValue.double_value
	keyAnyArray  = byte(5<<3 | protowire.BytesType)   // AnyValue.array_value
	keyAnyKvlist = byte(6<<3 | protowire.BytesType)   // AnyValue.kvlist_value
	keyAnyBytes  = byte(7<<3 | protowire.BytesType)   // AnyValue.bytes_value

	keyArrayValues  = byte(1<<3 | protowire.BytesType) // ArrayValue.values
	keyKvlistValues = byte(1<<3 | protowire.BytesType) // KeyValueList.values

	keyKVKey   = byte(1<<3 | protowire.BytesType) // KeyValue.key
	keyKVValue = byte(2<<3 | protowire.BytesType) // KeyValue.value

	keyScopeName    = byte(1<<3 | protowire.BytesType) // InstrumentationScope.name
	keyScopeVersion = byte(2<<3 | protowire.BytesType) // InstrumentationScope.version

	// keyListEntry is the key an attribute list's entries are stored
	// under: LogRecord.attributes (see encode.go).
	keyListEntry = keyLogAttrs
)

// invalidValue is what the SDK's exporters send for a Value of a type they
// do not know.
const invalidValue = "INVALID"

// AppendStringAttr appends the attribute key = v to the list dst.
func AppendStringAttr(dst []byte, key, v string) []byte {
	dst = appendKeyValueHead(dst, keyListEntry, key, sizeLenField(len(v)))
	return appendString(append(dst, keyAnyString), v)
}

// AppendIntAttr appends the attribute key = v to the list dst.
func AppendIntAttr(dst []byte, key string, v int64) []byte {
	x := uint64(v)
	dst = appendKeyValueHead(dst, keyListEntry, key, 1+sizeVarint(x))
	return appendVarint(append(dst, keyAnyInt), x)
}

// AppendFloatAttr appends the attribute key = v to the list dst.
func AppendFloatAttr(dst []byte, key string, v float64) []byte {
	dst = appendKeyValueHead(dst, keyListEntry, key, 1+8)
	return protowire.AppendFixed64(append(dst, keyAnyDouble), math.Float64bits(v))
}

// AppendStringSliceAttr appends the attribute key = v, an array of
// strings, to the list dst.
func AppendStringSliceAttr(dst []byte, key string, v []string) []byte {
	as := sizeStrings(v)
	dst = appendKeyValueHead(dst, keyListEntry, key, sizeLenField(as))
	dst = appendLen(append(dst, keyAnyArray), as)
	return appendStrings(dst, v)
}

// AppendAttrs appends attrs to the list dst, in order, as given: like the
// SDK's exporters it neither drops empty keys nor removes duplicates, which
// the SDK does before records reach its exporters. Slice values cost an
// allocation each (attribute.Value hands out copies of its elements):
// encode them once and keep the bytes.
func AppendAttrs(dst []byte, attrs ...attribute.KeyValue) []byte {
	return appendAttrs(dst, keyListEntry, attrs)
}

// appendList copies the attribute list l into dst as entries of the field
// key: verbatim when key is the list's own, else entry by entry with the
// key rewritten. A malformed list (never one made by this package) is
// copied up to its first entry that does not parse.
func appendList(dst []byte, key byte, l []byte) []byte {
	start := len(dst)
	dst = append(dst, l...)
	if key == keyListEntry {
		return dst
	}
	for i := start; i < len(dst); {
		n, size := protowire.ConsumeVarint(dst[i+1:])
		if size < 0 || uint64(len(dst)-i-1-size) < n {
			return dst[:i]
		}
		dst[i] = key
		i += 1 + size + int(n)
	}
	return dst
}

// appendLen appends a length prefix. Nearly every length we write is below
// 128, so the one-byte case is kept inlinable.
func appendLen(b []byte, n int) []byte {
	if n < 0x80 {
		return append(b, byte(n))
	}
	return protowire.AppendVarint(b, uint64(n))
}

func appendString(b []byte, s string) []byte {
	return append(appendLen(b, len(s)), s...)
}

// appendVarint and sizeVarint keep the common one-byte case inline.
func appendVarint(b []byte, x uint64) []byte {
	if x < 0x80 {
		return append(b, byte(x))
	}
	return protowire.AppendVarint(b, x)
}

func sizeVarint(x uint64) int {
	if x < 0x80 {
		return 1
	}
	return protowire.SizeVarint(x)
}

// sizeLenField is the size of a length-delimited field with a one-byte key
// and an n-byte payload.
func sizeLenField(n int) int {
	if n < 0x80 {
		return 2 + n
	}
	return 1 + protowire.SizeBytes(n)
}

// sizeStringField is the size of a proto3 string field with a one-byte key,
// which is left out when empty.
func sizeStringField(s string) int {
	if s == "" {
		return 0
	}
	return sizeLenField(len(s))
}

func appendStringField(b []byte, key byte, s string) []byte {
	if s == "" {
		return b
	}
	return appendString(append(b, key), s)
}

// sizeAttrs is the size of attrs as a repeated KeyValue field with a one-byte
// key.
func sizeAttrs(attrs []attribute.KeyValue) int {
	n := 0
	for i := range attrs {
		n += sizeLenField(sizeKeyValue(&attrs[i]))
	}
	return n
}

func appendAttrs(b []byte, key byte, attrs []attribute.KeyValue) []byte {
	for i := range attrs {
		b = appendKeyValue(b, key, &attrs[i])
	}
	return b
}

// sizeKeyValue is the size of kv's KeyValue message. The value is always
// present, even when empty, because the SDK always sets it.
func sizeKeyValue(kv *attribute.KeyValue) int {
	return sizeStringField(string(kv.Key)) + sizeLenField(sizeValue(&kv.Value))
}

// appendKeyValue writes kv as a field with the given key.
func appendKeyValue(b []byte, key byte, kv *attribute.KeyValue) []byte {
	b = appendKeyValueHead(b, key, string(kv.Key), sizeValue(&kv.Value))
	return appendValue(b, &kv.Value)
}

// appendKeyValueHead writes a KeyValue up to its value's AnyValue message,
// which is vs bytes long.
func appendKeyValueHead(b []byte, key byte, k string, vs int) []byte {
	b = appendLen(append(b, key), sizeStringField(k)+sizeLenField(vs))
	if k != "" {
		b = appendString(append(b, keyKVKey), k)
	}
	return appendLen(append(b, keyKVValue), vs)
}

// sizeValue is the size of v's AnyValue message. Every oneof member is
// written even when it holds its zero value, as proto3 requires.
func sizeValue(v *attribute.Value) int {
	switch v.Type() {
	case attribute.EMPTY:
		return 0
	case attribute.BOOL:
		return 2
	case attribute.INT64:
		return 1 + sizeVarint(uint64(v.AsInt64()))
	case attribute.FLOAT64:
		return 1 + 8
	case attribute.STRING:
		return sizeLenField(len(v.AsString()))
	case attribute.BOOLSLICE:
		return sizeLenField(len(v.AsBoolSlice()) * sizeLenField(2))
	case attribute.INT64SLICE:
		return sizeLenField(sizeInts(v.AsInt64Slice()))
	case attribute.FLOAT64SLICE:
		return sizeLenField(len(v.AsFloat64Slice()) * sizeLenField(1+8))
	case attribute.STRINGSLICE:
		return sizeLenField(sizeStrings(v.AsStringSlice()))
	case attribute.BYTESLICE:
		return sizeLenField(len(v.AsByteSlice()))
	case attribute.SLICE:
		return sizeLenField(sizeValues(v.AsSlice()))
	case attribute.MAP:
		return sizeLenField(sizeAttrs(v.AsMap()))
	default:
		return sizeLenField(len(invalidValue))
	}
}

func appendValue(b []byte, v *attribute.Value) []byte {
	switch v.Type() {
	case attribute.EMPTY:
		return b
	case attribute.BOOL:
		return appendBool(b, v.AsBool())
	case attribute.INT64:
		return appendVarint(append(b, keyAnyInt), uint64(v.AsInt64()))
	case attribute.FLOAT64:
		return protowire.AppendFixed64(append(b, keyAnyDouble), math.Float64bits(v.AsFloat64()))
	case attribute.STRING:
		return appendString(append(b, keyAnyString), v.AsString())
	case attribute.BOOLSLICE:
		a := v.AsBoolSlice()
		b = appendLen(append(b, keyAnyArray), len(a)*sizeLenField(2))
		for _, x := range a {
			b = appendBool(append(b, keyArrayValues, 2), x)
		}
		return b
	case attribute.INT64SLICE:
		a := v.AsInt64Slice()
		b = appendLen(append(b, keyAnyArray), sizeInts(a))
		for _, x := range a {
			b = appendLen(append(b, keyArrayValues), 1+sizeVarint(uint64(x)))
			b = appendVarint(append(b, keyAnyInt), uint64(x))
		}
		return b
	case attribute.FLOAT64SLICE:
		a := v.AsFloat64Slice()
		b = appendLen(append(b, keyAnyArray), len(a)*sizeLenField(1+8))
		for _, x := range a {
			b = append(b, keyArrayValues, 1+8, keyAnyDouble)
			b = protowire.AppendFixed64(b, math.Float64bits(x))
		}
		return b
	case attribute.STRINGSLICE:
		a := v.AsStringSlice()
		b = appendLen(append(b, keyAnyArray), sizeStrings(a))
		return appendStrings(b, a)
	case attribute.BYTESLICE:
		return appendString(append(b, keyAnyBytes), string(v.AsByteSlice()))
	case attribute.SLICE:
		vals := v.AsSlice()
		b = appendLen(append(b, keyAnyArray), sizeValues(vals))
		for i := range vals {
			b = appendLen(append(b, keyArrayValues), sizeValue(&vals[i]))
			b = appendValue(b, &vals[i])
		}
		return b
	case attribute.MAP:
		kvs := v.AsMap()
		b = appendLen(append(b, keyAnyKvlist), sizeAttrs(kvs))
		return appendAttrs(b, keyKvlistValues, kvs)
	default:
		return appendString(append(b, keyAnyString), invalidValue)
	}
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, keyAnyBool, 1)
	}
	return append(b, keyAnyBool, 0)
}

func sizeValues(vals []attribute.Value) int {
	n := 0
	for i := range vals {
		n += sizeLenField(sizeValue(&vals[i]))
	}
	return n
}

// sizeInts is the size of the ArrayValue message of the integers a.
func sizeInts(a []int64) int {
	n := 0
	for _, x := range a {
		n += sizeLenField(1 + sizeVarint(uint64(x)))
	}
	return n
}

// sizeStrings is the size of the ArrayValue message of the strings a.
func sizeStrings(a []string) int {
	n := 0
	for _, s := range a {
		n += sizeLenField(sizeLenField(len(s)))
	}
	return n
}

// appendStrings writes the elements of the ArrayValue of the strings a.
func appendStrings(b []byte, a []string) []byte {
	for _, s := range a {
		b = appendLen(append(b, keyArrayValues), sizeLenField(len(s)))
		b = appendString(append(b, keyAnyString), s)
	}
	return b
}
