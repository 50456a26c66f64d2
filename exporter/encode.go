package exporter

import (
	"slices"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/memlock-exporter/memlock-exporter/bpf"
	"github.com/memlock-exporter/memlock-exporter/exporter/internal/otlpwire"
	"github.com/memlock-exporter/memlock-exporter/semconv"
)

// event is one thing to export, encoded once for every sink: a call, or a
// memlock.limit_near warning. The sinks copy what they need and keep
// nothing.
type event struct {
	start, end int64 // Unix ns: the call's entry and exit
	observed   int64 // Unix ns: when the daemon read it
	severity   int32 // an OTLP SeverityNumber
	name       string
	body       []byte // strace-like, e.g. "mlock(0x1000, 4096) = 0"
	// attrs are the event's own attributes, thread its thread's (nil for
	// a warning): otlpwire attribute lists, which both a log record and a
	// span carry.
	attrs, thread []byte
	// resource is the process's, under which its records and spans are
	// sent.
	resource *processResource
	trace    traceContext // zero when no span is made
}

// OTLP SeverityNumbers.
const (
	severityInfo = 9
	severityWarn = 13
)

// numSyscalls bounds bpf.Syscall values, for tables indexed by syscall.
const numSyscalls = int(bpf.SyscallMunlockall) + 1

// syscallInfo is what the encoding needs to know about each syscall.
type syscallInfo struct {
	name      string // "mlock2"
	eventName string // "memlock.mlock2"
	hasRange  bool   // takes (addr, len)
	hasFlags  bool   // takes flags
	hasKernel bool   // goes through do_mlock: may carry memlock.kernel.duration
	hasLibc   bool   // the libc uprobes may see it: may carry memlock.libc.function
}

// syscalls is read off the schema (semconv.Events), so which attributes a
// call's record carries is decided in one place.
var syscalls = func() (t [numSyscalls]syscallInfo) {
	for s := bpf.SyscallMlock; s <= bpf.SyscallMunlockall; s++ {
		name := s.String()
		var keys []attribute.Key
		for _, ev := range semconv.Events {
			if ev.Syscall == name {
				keys = ev.Attributes
			}
		}
		t[s] = syscallInfo{
			name:      name,
			eventName: semconv.EventName(name),
			hasRange:  slices.Contains(keys, semconv.AddrKey),
			hasFlags:  slices.Contains(keys, semconv.FlagsKey),
			hasKernel: slices.Contains(keys, semconv.KernelDurationKey),
			hasLibc:   slices.Contains(keys, semconv.LibcFunctionKey),
		}
	}
	return t
}()

// encoder turns calls into events, reusing its buffers from call to call:
// the event it returns is valid until the next call. It is not safe for
// concurrent use.
type encoder struct {
	flags     flagCache
	threads   threadCache
	processes processCache
	ids       *idSource // nil when no sink makes spans
	ev        event
	body      []byte
	attrs     []byte
}

// encode returns the event of call ev, read at observed. errName is the
// name of the call's errno (ignored on success). ev.Syscall must be valid.
func (c *encoder) encode(ev *bpf.Event, errName string, observed time.Time) *event {
	si := &syscalls[ev.Syscall]
	c.body = ev.AppendCall(c.body[:0])
	c.attrs = c.appendCallAttrs(c.attrs[:0], ev, errName)
	start := ev.Time.UnixNano()
	c.ev = event{
		start:    start,
		end:      start + int64(ev.Duration),
		observed: observed.UnixNano(),
		severity: severityInfo,
		name:     si.eventName,
		body:     c.body,
		attrs:    c.attrs,
		thread:   c.threads.get(ev),
		resource: c.processes.get(ev),
	}
	if ev.Ret < 0 {
		c.ev.severity = severityWarn
	}
	if c.ids != nil {
		failure := ""
		if ev.Ret < 0 {
			failure = errName
		}
		c.ev.trace = c.ids.next(si.name, failure)
	}
	return &c.ev
}

// appendCallAttrs appends the attributes that describe the call itself,
// which change from call to call; the thread's follow them. The values are
// converted as semconv's constructors convert them (TestRecords holds the
// two together).
func (c *encoder) appendCallAttrs(dst []byte, ev *bpf.Event, errName string) []byte {
	si := &syscalls[ev.Syscall]
	dst = otlpwire.AppendStringAttr(dst, string(semconv.SyscallKey), si.name)
	if si.hasRange {
		dst = otlpwire.AppendIntAttr(dst, string(semconv.AddrKey), int64(ev.Addr))
		dst = otlpwire.AppendIntAttr(dst, string(semconv.LenKey), clampInt64(ev.Len))
		dst = otlpwire.AppendIntAttr(dst, string(semconv.PagesKey), clampInt64(ev.Pages()))
	}
	if si.hasFlags {
		dst = otlpwire.AppendIntAttr(dst, string(semconv.FlagsKey), int64(ev.Flags))
		dst = append(dst, c.flags.names(ev.Syscall, ev.Flags)...)
	}
	dst = otlpwire.AppendIntAttr(dst, string(semconv.ReturnValueKey), ev.Ret)
	if !ev.Untimed {
		dst = otlpwire.AppendFloatAttr(dst, string(semconv.DurationKey), ev.Duration.Seconds())
	}
	dst = otlpwire.AppendStringAttr(dst, string(semconv.ProbeKey), ev.Probe.String())
	if si.hasKernel && ev.KernelDuration > 0 {
		dst = otlpwire.AppendFloatAttr(dst, string(semconv.KernelDurationKey), ev.KernelDuration.Seconds())
	}
	// An unknown LibcFunc (never decoded from the kernel) is left out: the
	// attribute is an enum.
	if si.hasLibc && ev.LibcFunc != bpf.LibcNone && ev.LibcFunc <= bpf.LibcMlockall {
		dst = otlpwire.AppendStringAttr(dst, string(semconv.LibcFunctionKey), ev.LibcFunc.String())
		dst = otlpwire.AppendIntAttr(dst, string(semconv.CallerAddressKey), int64(ev.CallerAddr))
	}
	if ev.Ret < 0 {
		dst = otlpwire.AppendStringAttr(dst, string(semconv.ErrorTypeKey), errName)
	}
	return dst
}

// flagCache holds the memlock.flag_names attribute of each flags value,
// encoded: a string slice is the costliest attribute to encode, and
// programs pass the same few flags again and again. Values below
// smallFlags are decoded at start-up, others cached as they are seen, up to
// maxFlagCache entries, then encoded per call.
type flagCache struct {
	seen map[flagKey][]byte
}

const (
	smallFlags   = 8
	maxFlagCache = 256
)

type flagKey struct {
	syscall bpf.Syscall
	flags   uint64
}

var smallFlagNames = func() (t [numSyscalls][smallFlags][]byte) {
	for s := range numSyscalls {
		for f := range smallFlags {
			t[s][f] = encodeFlagNames(bpf.Syscall(s), uint64(f))
		}
	}
	return t
}()

// encodeFlagNames returns the memlock.flag_names attribute of flags, as an
// attribute list; nil when no bit is set.
func encodeFlagNames(s bpf.Syscall, flags uint64) []byte {
	names := bpf.FlagNames(s, flags)
	if len(names) == 0 {
		return nil
	}
	return otlpwire.AppendStringSliceAttr(nil, string(semconv.FlagNamesKey), names)
}

// names returns the encoded memlock.flag_names attribute of flags, shared:
// callers must not change it.
func (c *flagCache) names(s bpf.Syscall, flags uint64) []byte {
	if flags < smallFlags {
		return smallFlagNames[s][flags]
	}
	k := flagKey{s, flags}
	if b, ok := c.seen[k]; ok {
		return b
	}
	b := encodeFlagNames(s, flags)
	if c.seen == nil {
		c.seen = make(map[flagKey][]byte)
	}
	if len(c.seen) < maxFlagCache {
		c.seen[k] = b
	}
	return b
}
