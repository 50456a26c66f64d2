package semconv

import (
	"math"
	"slices"
	"time"

	"go.opentelemetry.io/otel/attribute"
	std "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// ScopeName is the instrumentation scope of every logger, meter and tracer
// the exporter creates.
const ScopeName = "github.com/memlock-exporter/memlock-exporter"

// SchemaURL is the schema of the standard semantic conventions whose keys
// this package re-exports. Set it on the resource and the instrumentation
// scope.
const SchemaURL = std.SchemaURL

// Standard attribute keys, re-exported from the semantic conventions so the
// exporter needs one import for the whole schema.
const (
	// ErrorTypeKey carries the errno name of a failed call ("ENOMEM"); it is
	// set only on failure.
	ErrorTypeKey = std.ErrorTypeKey
	// ProcessPIDKey is the calling process's id (thread-group id).
	ProcessPIDKey = std.ProcessPIDKey
	// ProcessParentPIDKey is the id of the calling process's parent.
	ProcessParentPIDKey = std.ProcessParentPIDKey
	// ThreadIDKey is the kernel thread id (TID) of the calling thread.
	ThreadIDKey = std.ThreadIDKey
	// ThreadNameKey is the calling thread's name (comm).
	ThreadNameKey = std.ThreadNameKey
	// ProcessExecutableNameKey is the base name of the process's executable.
	ProcessExecutableNameKey = std.ProcessExecutableNameKey
	// ProcessExecutablePathKey is the full path of the process's executable,
	// best effort from /proc/<pid>/exe.
	ProcessExecutablePathKey = std.ProcessExecutablePathKey
	// ProcessUserIDKey is the effective user id (EUID).
	ProcessUserIDKey = std.ProcessUserIDKey
	// ProcessRealUserIDKey is the real user id (RUID).
	ProcessRealUserIDKey = std.ProcessRealUserIDKey
	// ProcessLinuxCgroupKey is the process's cgroup, as a line of
	// /proc/<pid>/cgroup shows it.
	ProcessLinuxCgroupKey = std.ProcessLinuxCgroupKey
	// ProcessCommandArgsKey is the process's argument vector, from
	// /proc/<pid>/cmdline.
	ProcessCommandArgsKey = std.ProcessCommandArgsKey
	// ProcessVpidKey is the process's pid in its own PID namespace.
	ProcessVpidKey = std.ProcessVpidKey
	// ProcessCreationTimeKey is when the process started.
	ProcessCreationTimeKey = std.ProcessCreationTimeKey
	// ContainerIDKey is the id of the container the process runs in.
	ContainerIDKey = std.ContainerIDKey
	// K8SPodUIDKey is the UID of the Kubernetes pod the process runs in.
	K8SPodUIDKey = std.K8SPodUIDKey
)

// StandardAttributes lists every standard semantic-convention key this
// schema uses, on records, metrics or the process's resource. Treat it as
// read-only.
var StandardAttributes = []attribute.Key{
	ErrorTypeKey,
	ProcessPIDKey,
	ProcessParentPIDKey,
	ThreadIDKey,
	ThreadNameKey,
	ProcessExecutableNameKey,
	ProcessExecutablePathKey,
	ProcessUserIDKey,
	ProcessRealUserIDKey,
	ProcessLinuxCgroupKey,
	ContainerIDKey,
	K8SPodUIDKey,
	ProcessCommandArgsKey,
	ProcessVpidKey,
	ProcessCreationTimeKey,
}

// ProcessResourceAttributes lists, in order, the attributes of the resource
// a process's log records and spans are grouped under in an export request
// (the entity memlock.process of the registry): the process and container
// identity, beside the exporter's own host, OS and service attributes. A
// collector's k8sattributes processor associates that resource with its pod
// through k8s.pod.uid or container.id. The records themselves carry none of
// these keys. When the daemon did not get a process's identity from the
// kernel, the resource holds only process.pid and process.executable.name.
// Treat it as read-only.
var ProcessResourceAttributes = []attribute.Key{
	ProcessPIDKey,
	ProcessCreationTimeKey,
	ProcessExecutableNameKey,
	ProcessExecutablePathKey,
	ProcessCommandArgsKey,
	ProcessLinuxCgroupKey,
	ProcessVpidKey,
	ContainerIDKey,
	K8SPodUIDKey,
}

// Custom attribute keys, in the "memlock." namespace.
const (
	SyscallKey     = attribute.Key("memlock.syscall")
	AddrKey        = attribute.Key("memlock.addr")
	LenKey         = attribute.Key("memlock.len")
	PagesKey       = attribute.Key("memlock.pages")
	FlagsKey       = attribute.Key("memlock.flags")
	FlagNamesKey   = attribute.Key("memlock.flag_names")
	ReturnValueKey = attribute.Key("memlock.return_value")
	DurationKey    = attribute.Key("memlock.duration")
	ProbeKey       = attribute.Key("memlock.probe")
	ReasonKey      = attribute.Key("memlock.reason")
	CgroupIDKey    = attribute.Key("memlock.cgroup.id")
	// ProcessGroupIDKey and ProcessRealGroupIDKey are custom because
	// semantic conventions v1.43.0 define user ids but no group ids.
	ProcessGroupIDKey     = attribute.Key("memlock.process.group.id")
	ProcessRealGroupIDKey = attribute.Key("memlock.process.real_group.id")
	// KernelDurationKey is the time spent in the kernel function do_mlock.
	KernelDurationKey = attribute.Key("memlock.kernel.duration")
	// LibcFunctionKey is the C library function the call came through.
	LibcFunctionKey = attribute.Key("memlock.libc.function")
	// CallerAddressKey is the return address into the libc function's
	// caller. It is custom because the standard code.* attributes
	// (code.function.name, code.file.path, code.line.number,
	// code.column.number, code.stacktrace in v1.43.0) all describe
	// symbolized source locations, not a raw address.
	CallerAddressKey = attribute.Key("memlock.caller.address")
	// LockedKey and LimitKey are on memlock.limit_near: the bytes a
	// process holds locked and its soft RLIMIT_MEMLOCK.
	LockedKey = attribute.Key("memlock.locked")
	LimitKey  = attribute.Key("memlock.limit")
	// RepeatCountKey, RepeatFirstTimeKey and RepeatLastTimeKey are on a
	// folded record: how many identical calls of one thread it stands
	// for, and when the first and the last of them were made.
	RepeatCountKey     = attribute.Key("memlock.repeat.count")
	RepeatFirstTimeKey = attribute.Key("memlock.repeat.first_time")
	RepeatLastTimeKey  = attribute.Key("memlock.repeat.last_time")
)

// Values of memlock.libc.function: the C library function called.
const (
	LibcMlock    = "mlock"
	LibcMlock2   = "mlock2"
	LibcMlockall = "mlockall"
)

// Values of memlock.syscall: the call's name as the kernel spells it.
const (
	SyscallMlock      = "mlock"
	SyscallMlock2     = "mlock2"
	SyscallMunlock    = "munlock"
	SyscallMlockall   = "mlockall"
	SyscallMunlockall = "munlockall"
)

// Values of memlock.probe: the kind of hook that observed the call.
const (
	ProbeTracepoint = "tracepoint"
	ProbeKprobe     = "kprobe"
	ProbeFentry     = "fentry"
	ProbeUprobe     = "uprobe"
)

// Values of memlock.reason on memlock.events.lost: why events were lost.
const (
	// ReasonRingbufFull: the BPF ring buffer had no room for the record.
	ReasonRingbufFull = "ringbuf_full"
	// ReasonMissedEntry: an exit was seen without its matching entry.
	ReasonMissedEntry = "missed_entry"
	// ReasonEntryMapFull: the per-thread entry map had no room.
	ReasonEntryMapFull = "entry_map_full"
	// ReasonProgramBusy: the kernel skipped the exit program because
	// another run of it was under way on the same CPU.
	ReasonProgramBusy = "program_busy"
	// ReasonRepeatShed: the call repeated its thread's previous call
	// exactly, the 16th time in a row or later, while the BPF ring buffer
	// was more than half full: its record was not written, so that a
	// flood cannot take the room of others' records.
	ReasonRepeatShed = "repeat_shed"
	// ReasonMalformed: a record could not be decoded.
	ReasonMalformed = "malformed"
	// ReasonExportFailed: the collector refused the records for good, or
	// shutdown came before they could be delivered.
	ReasonExportFailed = "export_failed"
	// ReasonQueueFull: the export queue had no room for the records (the
	// collector was down or slower than the calls for too long).
	ReasonQueueFull = "queue_full"
)

// Syscall returns the memlock.syscall attribute.
func Syscall(name string) attribute.KeyValue { return SyscallKey.String(name) }

// Addr returns the memlock.addr attribute. The address's bits are kept:
// an address at or above 1<<63 (never a user-space address) comes out
// negative.
func Addr(addr uint64) attribute.KeyValue { return AddrKey.Int64(int64(addr)) }

// Len returns the memlock.len attribute, the bytes requested. Lengths above
// math.MaxInt64 are reported as math.MaxInt64.
func Len(n uint64) attribute.KeyValue { return LenKey.Int64(clamp(n)) }

// Pages returns the memlock.pages attribute, the pages the kernel covers.
// Counts above math.MaxInt64 are reported as math.MaxInt64.
func Pages(n uint64) attribute.KeyValue { return PagesKey.Int64(clamp(n)) }

// Flags returns the memlock.flags attribute, the raw flags argument. Its
// bits are kept, as for Addr.
func Flags(flags uint64) attribute.KeyValue { return FlagsKey.Int64(int64(flags)) }

// FlagNames returns the memlock.flag_names attribute.
func FlagNames(names ...string) attribute.KeyValue { return FlagNamesKey.StringSlice(names) }

// ReturnValue returns the memlock.return_value attribute: 0 on success,
// -errno on failure.
func ReturnValue(ret int64) attribute.KeyValue { return ReturnValueKey.Int64(ret) }

// Duration returns the memlock.duration attribute, in seconds.
func Duration(d time.Duration) attribute.KeyValue { return DurationKey.Float64(d.Seconds()) }

// Probe returns the memlock.probe attribute.
func Probe(kind string) attribute.KeyValue { return ProbeKey.String(kind) }

// Reason returns the memlock.reason attribute.
func Reason(reason string) attribute.KeyValue { return ReasonKey.String(reason) }

// CgroupID returns the memlock.cgroup.id attribute. Its bits are kept, as
// for Addr.
func CgroupID(id uint64) attribute.KeyValue { return CgroupIDKey.Int64(int64(id)) }

// ProcessGroupID returns the memlock.process.group.id attribute (EGID).
func ProcessGroupID(gid uint32) attribute.KeyValue { return ProcessGroupIDKey.Int64(int64(gid)) }

// ProcessRealGroupID returns the memlock.process.real_group.id attribute
// (RGID).
func ProcessRealGroupID(gid uint32) attribute.KeyValue {
	return ProcessRealGroupIDKey.Int64(int64(gid))
}

// KernelDuration returns the memlock.kernel.duration attribute, in seconds.
func KernelDuration(d time.Duration) attribute.KeyValue {
	return KernelDurationKey.Float64(d.Seconds())
}

// LibcFunction returns the memlock.libc.function attribute.
func LibcFunction(name string) attribute.KeyValue { return LibcFunctionKey.String(name) }

// CallerAddress returns the memlock.caller.address attribute. Its bits are
// kept, as for Addr.
func CallerAddress(addr uint64) attribute.KeyValue { return CallerAddressKey.Int64(int64(addr)) }

// ProcessLinuxCgroup returns the process.linux.cgroup attribute for a
// process whose cgroup path is path. The convention asks for the content of
// /proc/<pid>/cgroup, whose cgroup v2 line is "0::<path>"; the value is that
// line. (A path taken from a cgroup v1 hierarchy is reported in the same
// form: the hierarchy id and controllers are not known here.)
func ProcessLinuxCgroup(path string) attribute.KeyValue {
	return ProcessLinuxCgroupKey.String("0::" + path)
}

// Locked returns the memlock.locked attribute, in bytes. Values above
// math.MaxInt64 are reported as math.MaxInt64.
func Locked(n uint64) attribute.KeyValue { return LockedKey.Int64(clamp(n)) }

// Limit returns the memlock.limit attribute, in bytes. Values above
// math.MaxInt64 are reported as math.MaxInt64.
func Limit(n uint64) attribute.KeyValue { return LimitKey.Int64(clamp(n)) }

// RepeatCount returns the memlock.repeat.count attribute.
func RepeatCount(n int) attribute.KeyValue { return RepeatCountKey.Int(n) }

// RepeatFirstTime returns the memlock.repeat.first_time attribute, in
// RFC 3339 with nanoseconds, in UTC.
func RepeatFirstTime(t time.Time) attribute.KeyValue {
	return RepeatFirstTimeKey.String(t.UTC().Format(time.RFC3339Nano))
}

// RepeatLastTime returns the memlock.repeat.last_time attribute, as
// RepeatFirstTime.
func RepeatLastTime(t time.Time) attribute.KeyValue {
	return RepeatLastTimeKey.String(t.UTC().Format(time.RFC3339Nano))
}

func clamp(n uint64) int64 {
	if n > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(n)
}

// AttrType is an attribute's value type, spelled as in the registry.
type AttrType string

// Attribute value types used by this schema.
const (
	TypeString      AttrType = "string"
	TypeInt         AttrType = "int"
	TypeDouble      AttrType = "double"
	TypeBoolean     AttrType = "boolean"
	TypeStringSlice AttrType = "string[]"
)

// AttributeDef describes one custom attribute; the registry file must
// describe it the same way.
type AttributeDef struct {
	Key  attribute.Key
	Type AttrType
	// Unit is the UCUM unit of a numeric quantity ("By", "s"), empty when
	// the value has none.
	Unit  string
	Brief string
	// Members lists the allowed values of an enumerated attribute (the
	// registry's enum members), nil for open-ended values.
	Members []string
}

// CustomAttributes lists every attribute in the "memlock." namespace. Treat
// it as read-only.
var CustomAttributes = []AttributeDef{
	{Key: SyscallKey, Type: TypeString,
		Brief:   "The mlock-family system call that was made.",
		Members: []string{SyscallMlock, SyscallMlock2, SyscallMunlock, SyscallMlockall, SyscallMunlockall}},
	{Key: AddrKey, Type: TypeInt,
		Brief: "The start address passed to the call."},
	{Key: LenKey, Type: TypeInt, Unit: "By",
		Brief: "The length in bytes passed to the call."},
	{Key: PagesKey, Type: TypeInt,
		Brief: "The number of pages the kernel covers for the requested range."},
	{Key: FlagsKey, Type: TypeInt,
		Brief: "The raw flags argument of the call."},
	{Key: FlagNamesKey, Type: TypeStringSlice,
		Brief: "The names of the flag bits set in the flags argument."},
	{Key: ReturnValueKey, Type: TypeInt,
		Brief: "The call's return value: 0 on success, the negated errno on failure."},
	{Key: DurationKey, Type: TypeDouble, Unit: "s",
		Brief: "The time from entry to exit of the call, in seconds."},
	{Key: ProbeKey, Type: TypeString,
		Brief:   "The kind of hook that observed the call.",
		Members: []string{ProbeTracepoint, ProbeKprobe, ProbeFentry, ProbeUprobe}},
	{Key: ReasonKey, Type: TypeString,
		Brief:   "Why events were lost.",
		Members: []string{ReasonRingbufFull, ReasonMissedEntry, ReasonEntryMapFull, ReasonProgramBusy, ReasonMalformed, ReasonExportFailed, ReasonQueueFull, ReasonRepeatShed}},
	{Key: CgroupIDKey, Type: TypeInt,
		Brief: "The kernel's id of the calling thread's cgroup v2."},
	{Key: ProcessGroupIDKey, Type: TypeInt,
		Brief: "The effective group ID (EGID) of the process."},
	{Key: ProcessRealGroupIDKey, Type: TypeInt,
		Brief: "The real group ID (RGID) of the process."},
	{Key: KernelDurationKey, Type: TypeDouble, Unit: "s",
		Brief: "The time the kernel spent in do_mlock, the function that locks the pages, in seconds."},
	{Key: LibcFunctionKey, Type: TypeString,
		Brief:   "The C library function through which the call was made.",
		Members: []string{LibcMlock, LibcMlock2, LibcMlockall}},
	{Key: CallerAddressKey, Type: TypeInt,
		Brief: "The return address into the code that called the C library function."},
	{Key: RepeatCountKey, Type: TypeInt,
		Brief: "The number of identical calls a folded record stands for."},
	{Key: RepeatFirstTimeKey, Type: TypeString,
		Brief: "When the first of the calls a folded record stands for was made (RFC 3339)."},
	{Key: RepeatLastTimeKey, Type: TypeString,
		Brief: "When the last of the calls a folded record stands for was made (RFC 3339)."},
	{Key: LockedKey, Type: TypeInt, Unit: "By",
		Brief: "The bytes of memory the process holds locked."},
	{Key: LimitKey, Type: TypeInt, Unit: "By",
		Brief: "The process's soft RLIMIT_MEMLOCK, in bytes."},
}

// Event names, one per call of the family (the log record's EventName).
const (
	EventMlock      = "memlock.mlock"
	EventMlock2     = "memlock.mlock2"
	EventMunlock    = "memlock.munlock"
	EventMlockall   = "memlock.mlockall"
	EventMunlockall = "memlock.munlockall"
)

// EventLimitNear is the event of a process holding more than the
// configured fraction of its RLIMIT_MEMLOCK; it is not a call.
const EventLimitNear = "memlock.limit_near"

// EventName returns the event name for a call of the family, named as the
// kernel spells it ("mlock2" -> "memlock.mlock2"), or "" for any other name.
func EventName(syscall string) string {
	switch syscall {
	case SyscallMlock:
		return EventMlock
	case SyscallMlock2:
		return EventMlock2
	case SyscallMunlock:
		return EventMunlock
	case SyscallMlockall:
		return EventMlockall
	case SyscallMunlockall:
		return EventMunlockall
	}
	return ""
}

// EventDef describes one event: its name, the syscall it records (empty for
// an event that is not a call) and the attributes its log record may carry.
// Every event's record sits under its process's resource, whose attributes
// (ProcessResourceAttributes) are not listed here.
type EventDef struct {
	Name       string
	Syscall    string
	Attributes []attribute.Key
}

// callAttributes are on every call's event; rangeAttributes on calls that
// take an address range; flagAttributes on calls that take flags. The
// process itself is named by the record's resource
// (ProcessResourceAttributes), not by these.
var (
	callAttributes = []attribute.Key{
		SyscallKey, ReturnValueKey, DurationKey, ProbeKey, ErrorTypeKey,
		ProcessParentPIDKey, ThreadIDKey, ThreadNameKey,
		ProcessUserIDKey, ProcessRealUserIDKey, ProcessGroupIDKey, ProcessRealGroupIDKey,
		CgroupIDKey,
		RepeatCountKey, RepeatFirstTimeKey, RepeatLastTimeKey,
	}
	rangeAttributes = []attribute.Key{AddrKey, LenKey, PagesKey}
	flagAttributes  = []attribute.Key{FlagsKey, FlagNamesKey}
	// kernelAttributes are on calls that go through do_mlock (mlock,
	// mlock2); libcAttributes on calls the libc uprobes see (mlock,
	// mlock2, mlockall).
	kernelAttributes = []attribute.Key{KernelDurationKey}
	libcAttributes   = []attribute.Key{LibcFunctionKey, CallerAddressKey}
)

// Events lists every event of the schema. Treat it as read-only.
var Events = []EventDef{
	{Name: EventMlock, Syscall: SyscallMlock, Attributes: slices.Concat(callAttributes, rangeAttributes, kernelAttributes, libcAttributes)},
	{Name: EventMlock2, Syscall: SyscallMlock2, Attributes: slices.Concat(callAttributes, rangeAttributes, flagAttributes, kernelAttributes, libcAttributes)},
	{Name: EventMunlock, Syscall: SyscallMunlock, Attributes: slices.Concat(callAttributes, rangeAttributes)},
	{Name: EventMlockall, Syscall: SyscallMlockall, Attributes: slices.Concat(callAttributes, flagAttributes, libcAttributes)},
	{Name: EventMunlockall, Syscall: SyscallMunlockall, Attributes: slices.Clone(callAttributes)},
	{Name: EventLimitNear, Attributes: []attribute.Key{LockedKey, LimitKey}},
}

// Metric names, units and descriptions.
const (
	MetricCalls            = "memlock.calls"
	MetricCallsUnit        = "{call}"
	MetricCallsDescription = "Number of mlock-family calls."

	MetricCallDuration            = "memlock.call.duration"
	MetricCallDurationUnit        = "s"
	MetricCallDurationDescription = "Duration of mlock-family calls, from entry to exit."

	MetricCallSize            = "memlock.call.size"
	MetricCallSizeUnit        = "By"
	MetricCallSizeDescription = "Length in bytes requested by mlock-family calls that take an address range."

	MetricEventsLost            = "memlock.events.lost"
	MetricEventsLostUnit        = "{event}"
	MetricEventsLostDescription = "Number of call events lost between the kernel and the collector."

	MetricSystemLocked            = "memlock.system.locked"
	MetricSystemLockedUnit        = "By"
	MetricSystemLockedDescription = "Memory locked on the whole system (Mlocked in /proc/meminfo)."

	MetricProcessLocked            = "memlock.process.locked"
	MetricProcessLockedUnit        = "By"
	MetricProcessLockedDescription = "Memory a process holds locked (VmLck in /proc/<pid>/status)."

	MetricProcessLimit            = "memlock.process.limit"
	MetricProcessLimitUnit        = "By"
	MetricProcessLimitDescription = "A process's soft RLIMIT_MEMLOCK (/proc/<pid>/limits); not reported when unlimited."

	MetricProcessUntracked            = "memlock.process.untracked"
	MetricProcessUntrackedUnit        = "{event}"
	MetricProcessUntrackedDescription = "Number of call events whose process was not tracked for the process gauges and limit warnings because the most processes allowed were tracked already."
)

// Instrument is a metric's instrument kind, spelled as in the registry.
type Instrument string

// Instrument kinds used by this schema.
const (
	InstrumentCounter   Instrument = "counter"
	InstrumentHistogram Instrument = "histogram"
	InstrumentGauge     Instrument = "gauge"
)

// MetricDef describes one metric; the registry file must describe it the
// same way.
type MetricDef struct {
	Name        string
	Instrument  Instrument
	Unit        string
	Description string
	// Attributes are the only attributes a measurement may carry.
	Attributes []attribute.Key
	// OptIn marks a metric that is off unless configured, because its
	// attributes are high-cardinality (process.pid).
	OptIn bool
}

// Metrics lists every metric of the schema. Treat it as read-only.
var Metrics = []MetricDef{
	{MetricCalls, InstrumentCounter, MetricCallsUnit, MetricCallsDescription,
		[]attribute.Key{SyscallKey, ErrorTypeKey}, false},
	{MetricCallDuration, InstrumentHistogram, MetricCallDurationUnit, MetricCallDurationDescription,
		[]attribute.Key{SyscallKey, ErrorTypeKey}, false},
	{MetricCallSize, InstrumentHistogram, MetricCallSizeUnit, MetricCallSizeDescription,
		[]attribute.Key{SyscallKey, ErrorTypeKey}, false},
	{MetricEventsLost, InstrumentCounter, MetricEventsLostUnit, MetricEventsLostDescription,
		[]attribute.Key{ReasonKey}, false},
	{MetricSystemLocked, InstrumentGauge, MetricSystemLockedUnit, MetricSystemLockedDescription,
		nil, false},
	{MetricProcessLocked, InstrumentGauge, MetricProcessLockedUnit, MetricProcessLockedDescription,
		[]attribute.Key{ProcessPIDKey, ProcessExecutableNameKey}, true},
	{MetricProcessLimit, InstrumentGauge, MetricProcessLimitUnit, MetricProcessLimitDescription,
		[]attribute.Key{ProcessPIDKey, ProcessExecutableNameKey}, true},
	{MetricProcessUntracked, InstrumentCounter, MetricProcessUntrackedUnit, MetricProcessUntrackedDescription,
		nil, false},
}

// CallDurationBuckets returns a fresh copy of the explicit bucket boundaries
// of memlock.call.duration, in seconds: 1 µs to 1 s.
func CallDurationBuckets() []float64 {
	return []float64{
		1e-6, 2.5e-6, 5e-6,
		1e-5, 2.5e-5, 5e-5,
		1e-4, 2.5e-4, 5e-4,
		1e-3, 2.5e-3, 5e-3,
		1e-2, 2.5e-2, 5e-2,
		0.1, 0.25, 0.5,
		1,
	}
}

// CallSizeBuckets returns a fresh copy of the explicit bucket boundaries of
// memlock.call.size, in bytes: powers of four from 4 KiB to 16 GiB.
func CallSizeBuckets() []float64 {
	const (
		kib = 1 << 10
		mib = 1 << 20
		gib = 1 << 30
	)
	return []float64{
		4 * kib, 16 * kib, 64 * kib, 256 * kib,
		1 * mib, 4 * mib, 16 * mib, 64 * mib, 256 * mib,
		1 * gib, 4 * gib, 16 * gib,
	}
}
