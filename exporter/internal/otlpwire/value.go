package otlpwire

import (
	"math"
	"reflect"

	"go.opentelemetry.io/otel/attribute"
	"google.golang.org/protobuf/encoding/protowire"
)

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
)

// invalidValue is what the SDK's exporters send for a Value of a type they
// do not know.
const invalidValue = "INVALID"

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

// appendAttrs writes attrs in order, as given: like the SDK's exporters it
// neither drops empty keys nor removes duplicates, which the SDK does
// before records reach its exporters.
func appendAttrs(b []byte, key byte, attrs []attribute.KeyValue) []byte {
	for i := range attrs {
		b = appendKeyValue(b, key, &attrs[i])
	}
	return b
}

// sizeKeyValue is the size of kv's KeyValue message. The value is always
// present, even when empty, because the SDK always sets it.
func sizeKeyValue(kv *attribute.KeyValue) int {
	var vs int
	switch v := &kv.Value; v.Type() {
	case attribute.STRING:
		vs = sizeLenField(len(v.AsString()))
	case attribute.INT64:
		vs = 1 + sizeVarint(uint64(v.AsInt64()))
	default:
		vs = sizeValue(v)
	}
	return sizeStringField(string(kv.Key)) + sizeLenField(vs)
}

// appendKeyValue writes kv as a field with the given key. Strings and ints,
// nearly all our attributes, and slices are written with a single type
// switch.
func appendKeyValue(b []byte, key byte, kv *attribute.KeyValue) []byte {
	v := &kv.Value
	switch v.Type() {
	case attribute.STRING:
		s := v.AsString()
		b = appendKeyValueHead(b, key, string(kv.Key), sizeLenField(len(s)))
		return appendString(append(b, keyAnyString), s)
	case attribute.INT64:
		x := uint64(v.AsInt64())
		b = appendKeyValueHead(b, key, string(kv.Key), 1+sizeVarint(x))
		return appendVarint(append(b, keyAnyInt), x)
	case attribute.BOOLSLICE, attribute.INT64SLICE, attribute.FLOAT64SLICE, attribute.STRINGSLICE:
		// Reading the elements costs more than anything else here, so once.
		t, a := v.Type(), elems(v)
		as := sizeArray(t, a)
		b = appendKeyValueHead(b, key, string(kv.Key), sizeLenField(as))
		b = appendLen(append(b, keyAnyArray), as)
		return appendArray(b, t, a)
	}
	b = appendKeyValueHead(b, key, string(kv.Key), sizeValue(v))
	return appendValue(b, v)
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
	case attribute.BOOLSLICE, attribute.INT64SLICE, attribute.FLOAT64SLICE, attribute.STRINGSLICE:
		return sizeLenField(sizeArray(v.Type(), elems(v)))
	case attribute.BYTESLICE:
		return sizeLenField(len(byteString(v)))
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
	case attribute.BOOLSLICE, attribute.INT64SLICE, attribute.FLOAT64SLICE, attribute.STRINGSLICE:
		a := elems(v)
		b = appendLen(append(b, keyAnyArray), sizeArray(v.Type(), a))
		return appendArray(b, v.Type(), a)
	case attribute.BYTESLICE:
		return appendString(append(b, keyAnyBytes), byteString(v))
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

// sizeArray is the size of the ArrayValue message holding the elements a of
// a slice Value of type t.
func sizeArray(t attribute.Type, a reflect.Value) int {
	l := a.Len()
	switch t {
	case attribute.BOOLSLICE:
		return l * sizeLenField(2)
	case attribute.FLOAT64SLICE:
		return l * sizeLenField(1+8)
	case attribute.INT64SLICE:
		n := 0
		for i := range l {
			n += sizeLenField(1 + sizeVarint(uint64(a.Index(i).Int())))
		}
		return n
	default: // STRINGSLICE
		n := 0
		for i := range l {
			n += sizeLenField(sizeLenField(a.Index(i).Len()))
		}
		return n
	}
}

func appendArray(b []byte, t attribute.Type, a reflect.Value) []byte {
	l := a.Len()
	switch t {
	case attribute.BOOLSLICE:
		for i := range l {
			b = appendBool(append(b, keyArrayValues, 2), a.Index(i).Bool())
		}
	case attribute.FLOAT64SLICE:
		for i := range l {
			b = append(b, keyArrayValues, 1+8, keyAnyDouble)
			b = protowire.AppendFixed64(b, math.Float64bits(a.Index(i).Float()))
		}
	case attribute.INT64SLICE:
		for i := range l {
			x := uint64(a.Index(i).Int())
			b = appendLen(append(b, keyArrayValues), 1+sizeVarint(x))
			b = appendVarint(append(b, keyAnyInt), x)
		}
	default: // STRINGSLICE
		for i := range l {
			s := a.Index(i).String()
			b = appendLen(append(b, keyArrayValues), sizeLenField(len(s)))
			b = appendString(append(b, keyAnyString), s)
		}
	}
	return b
}

// attribute.Value keeps a slice as an array of the same elements in its
// unexported field "slice", and bytes as a string in "stringly". Its
// accessors (AsStringSlice, AsByteSlice, ...) copy them into a new slice on
// every call, which would be our only per-record allocation (memlock
// records carry a string slice of flag names). Reflection may read
// unexported fields without modifying them and without allocating, so we
// read the arrays in place. The fields are looked up by name and probed
// once, and each read checks kinds, so that a different layout in a future
// attribute version falls back to the accessors instead of misreading;
// TestSliceValuesReadInPlace notices that fallback.
var sliceField, stringlyField = probeFields()

func probeFields() (slice, stringly int) {
	slice = fieldIndex("slice", reflect.Interface)
	stringly = fieldIndex("stringly", reflect.String)
	strs := []string{"a", "b", "c", "d", "e"}
	v := attribute.StringSliceValue(strs)
	if slice >= 0 {
		a := reflect.ValueOf(&v).Elem().Field(slice).Elem()
		if a.Kind() != reflect.Array || a.Len() != len(strs) || a.Index(4).Kind() != reflect.String || a.Index(4).String() != "e" {
			slice = -1
		}
	}
	v = attribute.ByteSliceValue([]byte("bytes"))
	if stringly >= 0 && reflect.ValueOf(&v).Elem().Field(stringly).String() != "bytes" {
		stringly = -1
	}
	return slice, stringly
}

func fieldIndex(name string, kind reflect.Kind) int {
	f, ok := reflect.TypeFor[attribute.Value]().FieldByName(name)
	if !ok || len(f.Index) != 1 || f.Type.Kind() != kind {
		return -1
	}
	return f.Index[0]
}

var elemKinds = [...]reflect.Kind{
	attribute.BOOLSLICE:    reflect.Bool,
	attribute.INT64SLICE:   reflect.Int64,
	attribute.FLOAT64SLICE: reflect.Float64,
	attribute.STRINGSLICE:  reflect.String,
}

// elems returns the elements of v, a slice Value, as an array or a slice,
// read-only.
func elems(v *attribute.Value) reflect.Value {
	t := v.Type()
	if sliceField >= 0 {
		a := reflect.ValueOf(v).Elem().Field(sliceField).Elem()
		if a.Kind() == reflect.Array && a.Type().Elem().Kind() == elemKinds[t] {
			return a
		}
	}
	switch t {
	case attribute.BOOLSLICE:
		return reflect.ValueOf(v.AsBoolSlice())
	case attribute.INT64SLICE:
		return reflect.ValueOf(v.AsInt64Slice())
	case attribute.FLOAT64SLICE:
		return reflect.ValueOf(v.AsFloat64Slice())
	default:
		return reflect.ValueOf(v.AsStringSlice())
	}
}

// byteString returns the bytes of v, a BYTESLICE Value.
func byteString(v *attribute.Value) string {
	if stringlyField >= 0 {
		return reflect.ValueOf(v).Elem().Field(stringlyField).String()
	}
	return string(v.AsByteSlice())
}
