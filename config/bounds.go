package config

import (
	"encoding"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/memlock-exporter/memlock-exporter/bpf"
)

// field is one of our variables: a Config field and what its tags say.
type field struct {
	index int    // in Config
	name  string // the variable: env tag
	def   string // envDefault tag
	help  string // help tag: what it does, one sentence
	typ   reflect.Type
	// min, gt and max are the bounds' tags, "" when absent: min and max
	// are inclusive, gt exclusive. pow2 asks for a power of two.
	min, gt, max string
	pow2         bool
}

// fields lists our variables in Config's field order, which is the order
// Load checks them and Variables lists them.
func fields() []field {
	t := reflect.TypeFor[Config]()
	var fs []field
	for i := range t.NumField() {
		sf := t.Field(i)
		name := sf.Tag.Get("env")
		if name == "" || name == "-" {
			continue
		}
		fs = append(fs, field{
			index: i, name: name, typ: sf.Type,
			def: sf.Tag.Get("envDefault"), help: sf.Tag.Get("help"),
			min: sf.Tag.Get("min"), gt: sf.Tag.Get("gt"), max: sf.Tag.Get("max"),
			pow2: sf.Tag.Get("pow2") == "true",
		})
	}
	return fs
}

// basicAllowed describes the field types that are Go's own, which cannot
// carry an Allowed method.
var basicAllowed = map[reflect.Type]string{
	reflect.TypeFor[time.Duration](): "a duration with a unit",
	reflect.TypeFor[int]():           "a whole number",
	reflect.TypeFor[float64]():       "a number",
}

// typeAllowed says what the field's type accepts.
func (f field) typeAllowed() string {
	if a, ok := reflect.Zero(f.typ).Interface().(interface{ Allowed() string }); ok {
		return a.Allowed()
	}
	if s, ok := basicAllowed[f.typ]; ok {
		return s
	}
	panic("config: no description of type " + f.typ.String() + " of " + f.name)
}

// allowed says what the variable accepts: its type, bounds and rule. c is
// the configuration parsed so far, for a rule's actual values; nil words
// the rule in general, for --help.
func (f field) allowed(c *Config) string {
	s := f.typeAllowed()
	switch {
	case f.min != "" && f.max != "":
		s += " from " + f.min + " to " + f.max
	case f.gt != "" && f.max != "":
		s += " above " + f.gt + " and at most " + f.max
	case f.min != "":
		s += " of at least " + f.min
	case f.gt != "":
		s += " above " + f.gt
	case f.max != "":
		s += " of at most " + f.max
	}
	if f.pow2 {
		s += ", a power of two"
	}
	if r, ok := rules[f.name]; ok {
		s += ", " + r.allowed(c)
	}
	return s
}

// err is the *Error for a bad value raw of f.
func (f field) err(c *Config, raw string) *Error {
	msg := "must be " + f.allowed(c)
	example := f.def
	if r, ok := rules[f.name]; ok && r.example != nil {
		example = r.example(c)
	}
	// An example adds nothing where the values are all listed.
	if example != "" && !slices.Contains(strings.FieldsFunc(msg, func(r rune) bool { return strings.ContainsRune(" ,()", r) }), example) {
		msg += " (e.g. " + example + ")"
	}
	return &Error{Var: f.name, Value: raw, Allowed: msg}
}

// inBounds reports whether v, the field's parsed value, is within its
// bounds. NaN is in none.
func (f field) inBounds(v reflect.Value) bool {
	n := number(v)
	ok := (f.min == "" || n >= f.bound(f.min)) &&
		(f.gt == "" || n > f.bound(f.gt)) &&
		(f.max == "" || n <= f.bound(f.max))
	if f.pow2 {
		i := v.Int()
		ok = ok && i > 0 && i&(i-1) == 0
	}
	return ok
}

// bound parses a bound's tag as a value of the field's own type, so a
// bound is written as a user would write the value ("1ms", "4KiB").
func (f field) bound(tag string) float64 {
	p := reflect.New(f.typ)
	var err error
	switch u := p.Interface().(type) {
	case encoding.TextUnmarshaler:
		err = u.UnmarshalText([]byte(tag))
	case *time.Duration:
		*u, err = time.ParseDuration(tag)
	case *int:
		*u, err = strconv.Atoi(tag)
	case *float64:
		*u, err = strconv.ParseFloat(tag, 64)
	default:
		err = fmt.Errorf("no bounds for type %s", f.typ)
	}
	if err != nil {
		// Only a mistake in Config's tags gets here; TestDefaults sees it.
		panic(fmt.Sprintf("config: bound %q of %s: %v", tag, f.name, err))
	}
	return number(p.Elem())
}

// number returns a numeric field's value for comparison; float64 holds
// every integer we bound (up to 1 GiB, or 5 minutes in nanoseconds)
// exactly.
func number(v reflect.Value) float64 {
	switch v.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return float64(v.Int())
	case reflect.Float32, reflect.Float64:
		return v.Float()
	}
	panic("config: bounds on a non-numeric field of kind " + v.Kind().String())
}

// rule is a check that involves more than the value itself.
type rule struct {
	// allowed words the rule to follow the type and bounds; c is nil for
	// --help.
	allowed func(c *Config) string
	ok      func(c *Config) bool
	// example, if set, replaces the default in the error's "e.g.".
	example func(c *Config) string
}

// wakeupDivisor: WakeupBytes 0 means RingbufSize / wakeupDivisor, early
// enough that the reader drains a busy buffer well before it is full.
const wakeupDivisor = 4

// rules are keyed by variable name and checked, in field order, after the
// bounds; a rule reads only fields declared before its own, already valid.
var rules = map[string]rule{
	"MEMLOCK_EXPORTER_WAKEUP_BYTES": {
		allowed: func(c *Config) string {
			size := "MEMLOCK_EXPORTER_RINGBUF_SIZE"
			if c != nil {
				size = "the ring buffer size " + c.RingbufSize.String()
			}
			return fmt.Sprintf("below %s, or 0 for a quarter of it", size)
		},
		ok:      func(c *Config) bool { return c.WakeupBytes < c.RingbufSize },
		example: func(c *Config) string { return (c.RingbufSize / wakeupDivisor).String() },
	},
	"MEMLOCK_EXPORTER_KERNEL_FUNCTION_HOOK": {
		// do_mlock's time is added to the call in flight, which a call
		// seen at its exit only does not have.
		allowed: func(*Config) string { return "off while MEMLOCK_EXPORTER_CALL_DURATION is off" },
		ok:      func(c *Config) bool { return !bool(c.KernelFunctionHook) || bool(c.CallDuration) },
	},
	"MEMLOCK_EXPORTER_SYSCALLS": {
		allowed: func(*Config) string { return "with mlock wherever mlock2 is" },
		ok: func(c *Config) bool {
			return !slices.Contains(c.Syscalls, bpf.SyscallMlock2) || slices.Contains(c.Syscalls, bpf.SyscallMlock)
		},
	},
}
