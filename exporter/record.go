package exporter

import (
	"slices"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/log"

	"github.com/memlock-exporter/memlock-exporter/bpf"
	"github.com/memlock-exporter/memlock-exporter/exporter/internal/otlpwire"
	"github.com/memlock-exporter/memlock-exporter/procfs"
	"github.com/memlock-exporter/memlock-exporter/semconv"
)

// maxRecordAttributes is the most attributes one record (or span) carries.
const maxRecordAttributes = 29

// numSyscalls bounds bpf.Syscall values, for tables indexed by syscall.
const numSyscalls = int(bpf.SyscallMunlockall) + 1

// syscallInfo is what the conversion needs to know about each syscall.
type syscallInfo struct {
	name      string // "mlock2"
	eventName string // "memlock.mlock2"
	hasRange  bool   // takes (addr, len)
	hasFlags  bool   // takes flags
	hasKernel bool   // goes through do_mlock: may carry memlock.kernel.duration
	hasLibc   bool   // the libc uprobes may see it: may carry memlock.libc.function
	attr      attribute.KeyValue
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
			attr:      semconv.Syscall(name),
		}
	}
	return t
}()

var probeAttrs = func() (t [bpf.ProbeUprobe + 1]attribute.KeyValue) {
	for p := range t {
		t[p] = semconv.Probe(bpf.Probe(p).String())
	}
	return t
}()

// libcAttrs are the memlock.libc.function attributes by bpf.LibcFunc;
// the zero KeyValue (no key) for LibcNone.
var libcAttrs = func() (t [bpf.LibcMlockall + 1]attribute.KeyValue) {
	for f := bpf.LibcMlock; f <= bpf.LibcMlockall; f++ {
		t[f] = semconv.LibcFunction(f.String())
	}
	return t
}()

// flagInfo is a flags argument decoded once: its memlock.flag_names
// attribute (none when no bit is set).
type flagInfo struct {
	names    attribute.KeyValue
	hasNames bool
	// The attribute encoded for the direct pipeline's log records, once:
	// a string slice is the costliest attribute to encode.
	encodedNames []byte
}

func newFlagInfo(s bpf.Syscall, flags uint64) flagInfo {
	var fi flagInfo
	if names := bpf.FlagNames(s, flags); len(names) > 0 {
		fi.names, fi.hasNames = semconv.FlagNames(names...), true
		fi.encodedNames = otlpwire.LogAttributes.Append(nil, fi.names)
	}
	return fi
}

// Flag values below smallFlags are decoded once at start-up; others are
// cached as they are seen, up to maxFlagCache entries, then decoded per call.
const (
	smallFlags   = 8
	maxFlagCache = 256
)

var smallFlagInfo = func() (t [numSyscalls][smallFlags]flagInfo) {
	for s := range numSyscalls {
		for f := range smallFlags {
			t[s][f] = newFlagInfo(bpf.Syscall(s), uint64(f))
		}
	}
	return t
}()

type flagKey struct {
	syscall bpf.Syscall
	flags   uint64
}

// recordBuilder converts events to log records and to the attributes their
// spans share with them, reusing its buffers from call to call. It is not
// safe for concurrent use.
type recordBuilder struct {
	body  []byte
	attrs []attribute.KeyValue
	// A call's attributes encoded for the direct pipeline's log record
	// and span.
	logAttrs, spanAttrs []byte
	flagCache           map[flagKey]*flagInfo
	proc                processAttrs
}

// flags returns the decoded flags, shared: callers must not change it.
func (b *recordBuilder) flags(s bpf.Syscall, flags uint64) *flagInfo {
	if flags < smallFlags && int(s) < numSyscalls {
		return &smallFlagInfo[s][flags]
	}
	k := flagKey{s, flags}
	if fi, ok := b.flagCache[k]; ok {
		return fi
	}
	fi := newFlagInfo(s, flags)
	if b.flagCache == nil {
		b.flagCache = make(map[flagKey]*flagInfo)
	}
	if len(b.flagCache) < maxFlagCache {
		b.flagCache[k] = &fi
	}
	return &fi
}

// build returns the log record of one call, observed at observed. info is
// the calling process's context from procfs, nil when unknown. errName is
// the name of the call's errno (ignored on success). ev.Syscall must be
// valid. The record shares no memory with ev or b's buffers.
func (b *recordBuilder) build(ev *bpf.Event, info *procfs.Info, errName string, observed time.Time) log.Record {
	return b.record(ev, b.attributes(ev, info, errName), observed)
}

// record returns the log record of one call, observed at observed, with
// attrs, the call's attributes (from b.attributes). The record copies
// attrs and shares no memory with ev or b's buffers.
func (b *recordBuilder) record(ev *bpf.Event, attrs []attribute.KeyValue, observed time.Time) log.Record {
	var r log.Record
	r.SetEventName(syscalls[ev.Syscall].eventName)
	r.SetTimestamp(ev.Time)
	r.SetObservedTimestamp(observed)
	if ev.Ret < 0 {
		r.SetSeverity(log.SeverityWarn)
	} else {
		r.SetSeverity(log.SeverityInfo)
	}
	r.SetBody(attribute.StringValue(b.formatBody(ev)))
	// One call, so the record grows its attribute storage once.
	r.AddAttributes(attrs...)
	return r
}

// attributes returns the attributes of one call: those of its log record,
// which its span carries too. info is the calling process's context from
// procfs, nil when unknown (no Processes, or the process is gone). errName
// is the name of the call's errno (ignored on success). ev.Syscall must be valid. The slice is b's buffer:
// it is valid until the next call, and its users must copy it (the log
// record and the span do).
func (b *recordBuilder) attributes(ev *bpf.Event, info *procfs.Info, errName string) []attribute.KeyValue {
	a := b.appendThreadAttributes(b.appendCallAttributes(b.attrs[:0], ev, errName), ev, info)
	b.attrs = a[:0]
	return a
}

// appendCallAttributes appends the attributes that describe the call
// itself, which change from call to call: the first part of a record's.
func (b *recordBuilder) appendCallAttributes(a []attribute.KeyValue, ev *bpf.Event, errName string) []attribute.KeyValue {
	si := &syscalls[ev.Syscall]
	a = append(a, si.attr)
	if si.hasRange {
		a = append(a, semconv.Addr(ev.Addr), semconv.Len(ev.Len), semconv.Pages(ev.Pages()))
	}
	if si.hasFlags {
		a = append(a, semconv.Flags(ev.Flags))
		if fi := b.flags(ev.Syscall, ev.Flags); fi.hasNames {
			a = append(a, fi.names)
		}
	}
	a = append(a,
		semconv.ReturnValue(ev.Ret),
		semconv.Duration(ev.Duration),
		probeAttr(ev.Probe),
	)
	if si.hasKernel && ev.KernelDuration > 0 {
		a = append(a, semconv.KernelDuration(ev.KernelDuration))
	}
	// An unknown LibcFunc (never decoded from the kernel) is left out: the
	// attribute is an enum.
	if si.hasLibc && ev.LibcFunc != bpf.LibcNone && int(ev.LibcFunc) < len(libcAttrs) {
		a = append(a, libcAttrs[ev.LibcFunc], semconv.CallerAddress(ev.CallerAddr))
	}
	if ev.Ret < 0 {
		a = append(a, semconv.ErrorTypeKey.String(errName))
	}
	return a
}

// appendEncodedCallAttributes appends the attributes appendCallAttributes
// returns, encoded as log record attributes, as
// otlpwire.LogAttributes.AppendAll would write them, without building a
// slice of them first (TestEncodedCallAttributes).
func (b *recordBuilder) appendEncodedCallAttributes(dst []byte, ev *bpf.Event, errName string) []byte {
	const f = otlpwire.LogAttributes
	// The values are converted as semconv's constructors convert them
	// (TestEncodedCallAttributes holds the two together); building the
	// KeyValues just to read them back cost a third of this function.
	si := &syscalls[ev.Syscall]
	dst = f.AppendString(dst, string(semconv.SyscallKey), si.name)
	if si.hasRange {
		dst = f.AppendInt(dst, string(semconv.AddrKey), int64(ev.Addr))
		dst = f.AppendInt(dst, string(semconv.LenKey), clampInt64(ev.Len))
		dst = f.AppendInt(dst, string(semconv.PagesKey), clampInt64(ev.Pages()))
	}
	if si.hasFlags {
		dst = f.AppendInt(dst, string(semconv.FlagsKey), int64(ev.Flags))
		if fi := b.flags(ev.Syscall, ev.Flags); fi.hasNames {
			dst = append(dst, fi.encodedNames...)
		}
	}
	dst = f.AppendInt(dst, string(semconv.ReturnValueKey), ev.Ret)
	dst = f.AppendFloat(dst, string(semconv.DurationKey), ev.Duration.Seconds())
	dst = f.Append(dst, probeAttr(ev.Probe))
	if si.hasKernel && ev.KernelDuration > 0 {
		dst = f.AppendFloat(dst, string(semconv.KernelDurationKey), ev.KernelDuration.Seconds())
	}
	if si.hasLibc && ev.LibcFunc != bpf.LibcNone && int(ev.LibcFunc) < len(libcAttrs) {
		dst = f.Append(dst, libcAttrs[ev.LibcFunc])
		dst = f.AppendInt(dst, string(semconv.CallerAddressKey), int64(ev.CallerAddr))
	}
	if ev.Ret < 0 {
		dst = f.AppendString(dst, string(semconv.ErrorTypeKey), errName)
	}
	return dst
}

// appendThreadAttributes appends the attributes of the calling thread and
// its process, the second part of a record's: they stay the same from one
// call of a thread to the next, which lets the direct pipeline reuse their
// encoding (threadCache).
func (b *recordBuilder) appendThreadAttributes(a []attribute.KeyValue, ev *bpf.Event, info *procfs.Info) []attribute.KeyValue {
	a = append(a,
		semconv.ProcessPIDKey.Int64(int64(ev.PID)),
		semconv.ProcessParentPIDKey.Int64(int64(ev.PPID)),
		semconv.ThreadIDKey.Int64(int64(ev.TID)),
	)
	if ev.Comm != "" {
		a = append(a, semconv.ThreadNameKey.String(ev.Comm))
	}
	if ev.ExeName != "" {
		a = append(a, semconv.ProcessExecutableNameKey.String(ev.ExeName))
	}
	a = append(a,
		semconv.ProcessUserIDKey.Int64(int64(ev.EUID)),
		semconv.ProcessRealUserIDKey.Int64(int64(ev.UID)),
		semconv.ProcessGroupID(ev.EGID),
		semconv.ProcessRealGroupID(ev.GID),
	)
	if ev.CgroupID != 0 {
		a = append(a, semconv.CgroupID(ev.CgroupID))
	}
	if info != nil {
		a = b.proc.append(a, info)
	}
	return a
}

func probeAttr(p bpf.Probe) attribute.KeyValue {
	if int(p) < len(probeAttrs) {
		return probeAttrs[p]
	}
	return semconv.Probe(p.String())
}

// formatBody renders the call the way strace does (bpf.Event.AppendCall),
// e.g. `mlock(0x1000, 4096) = -1 ENOMEM`. It returns a new string; the
// buffer it writes into is reused.
func (b *recordBuilder) formatBody(ev *bpf.Event) string {
	b.body = ev.AppendCall(b.body[:0])
	return string(b.body)
}
