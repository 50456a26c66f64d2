package bpf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"time"
)

// Layout of struct event in c/memlock.h. decode_test.go checks these
// offsets against the type bpf2go generated from the compiled object, so
// the C and Go sides cannot drift apart silently.
const (
	offEntryNs    = 0
	offDurationNs = 8
	offAddr       = 16
	offLen        = 24
	offFlags      = 32
	offRet        = 40
	offCgroupID   = 48
	offKernelNs   = 56
	offCallerAddr = 64
	offStartNs    = 72
	offPID        = 80
	offTID        = 84
	offPPID       = 88
	offUID        = 92
	offEUID       = 96
	offGID        = 100
	offEGID       = 104
	offSyscall    = 108
	offProbe      = 112
	offLibcFn     = 116
	offComm       = 120
	offExeName    = offComm + CommLen

	// CommLen and ExeNameMax are the sizes of the record's string fields,
	// NUL terminator included.
	CommLen    = 16
	ExeNameMax = 64

	// RecordSize is the exact size of a full call record (struct event)
	// in the ring buffer.
	RecordSize = offExeName + ExeNameMax
)

// Layout of struct call_record in c/memlock.h: the short record of a call,
// without the kernel-function and libc views and the executable's name.
// decode_test.go checks these offsets against the generated type too.
const (
	offCallEntryNs    = 0
	offCallDurationNs = 8
	offCallAddr       = 16
	offCallLen        = 24
	offCallRet        = 32
	offCallCgroupID   = 40
	offCallStartNs    = 48
	offCallFlags      = 56
	offCallPID        = 60
	offCallTID        = 64
	offCallPPID       = 68
	offCallUID        = 72
	offCallEUID       = 76
	offCallGID        = 80
	offCallEGID       = 84
	offCallSyscall    = 88
	offCallProbe      = 90
	offCallReserved   = 92
	offCallComm       = 96

	// CallRecordSize is the exact size of a short call record in the
	// ring buffer, the kind the kernel writes for most calls.
	CallRecordSize = offCallComm + CommLen
)

// Sentinel decode errors; they are values, not formatted strings, so that a
// stream of malformed records costs no allocations.
var (
	ErrRecordSize      = errors.New("record has the wrong size")
	ErrUnknownSyscall  = errors.New("record names an unknown syscall")
	ErrUnknownProbe    = errors.New("record names an unknown probe")
	ErrUnknownLibcFunc = errors.New("record names an unknown libc function")
)

// Decoder turns raw ring-buffer records into Events. It interns the short
// strings (comm, executable name) that repeat from call to call, so decoding
// a record of a process seen before allocates nothing. A Decoder is not safe
// for concurrent use.
type Decoder struct {
	clock *BootClock
	comms internTable
	exes  internTable
}

// NewDecoder returns a decoder that converts boot-clock timestamps to wall
// time with clock. A nil clock leaves Event.Time zero.
func NewDecoder(clock *BootClock) *Decoder {
	return &Decoder{clock: clock}
}

// Decode fills ev from one raw call record, full (RecordSize) or short
// (CallRecordSize). On error ev is left partly written and must not be
// used; the record should be counted as malformed.
func (d *Decoder) Decode(raw []byte, ev *Event) error {
	var err error
	switch len(raw) {
	case RecordSize:
		err = d.decodeFull(raw, ev)
	case CallRecordSize:
		err = d.decodeShort(raw, ev)
	default:
		return ErrRecordSize
	}
	if err != nil {
		return err
	}
	ev.Process = nil // the reader joins the identity
	if d.clock != nil {
		ev.Time = d.clock.WallTime(ev.BootNs)
	} else {
		ev.Time = time.Time{}
	}
	return nil
}

// decodeFull decodes a struct event.
func (d *Decoder) decodeFull(raw []byte, ev *Event) error {
	le := binary.LittleEndian
	syscall := Syscall(le.Uint32(raw[offSyscall:]))
	if !syscall.Valid() {
		return ErrUnknownSyscall
	}
	probe := Probe(le.Uint32(raw[offProbe:]))
	if !probe.Valid() {
		return ErrUnknownProbe
	}
	libcFn := LibcFunc(le.Uint32(raw[offLibcFn:]))
	if libcFn > LibcMlockall {
		return ErrUnknownLibcFunc
	}

	ev.Syscall = syscall
	ev.Probe = probe
	ev.BootNs = le.Uint64(raw[offEntryNs:])
	ev.Duration, ev.Untimed = decodeDuration(le.Uint64(raw[offDurationNs:]))
	ev.Addr = le.Uint64(raw[offAddr:])
	ev.Len = le.Uint64(raw[offLen:])
	ev.Flags = le.Uint64(raw[offFlags:])
	ev.Ret = int64(le.Uint64(raw[offRet:]))
	ev.CgroupID = le.Uint64(raw[offCgroupID:])
	ev.KernelDuration = time.Duration(le.Uint64(raw[offKernelNs:]))
	ev.CallerAddr = le.Uint64(raw[offCallerAddr:])
	ev.StartNs = le.Uint64(raw[offStartNs:])
	ev.LibcFunc = libcFn
	ev.PID = le.Uint32(raw[offPID:])
	ev.TID = le.Uint32(raw[offTID:])
	ev.PPID = le.Uint32(raw[offPPID:])
	ev.UID = le.Uint32(raw[offUID:])
	ev.EUID = le.Uint32(raw[offEUID:])
	ev.GID = le.Uint32(raw[offGID:])
	ev.EGID = le.Uint32(raw[offEGID:])
	ev.Comm = d.comms.intern(raw[offComm : offComm+CommLen])
	ev.ExeName = d.exes.intern(raw[offExeName : offExeName+ExeNameMax])
	return nil
}

// decodeShort decodes a struct call_record: what it leaves out is zero,
// and the executable's name is the reader's to join from the identity.
func (d *Decoder) decodeShort(raw []byte, ev *Event) error {
	le := binary.LittleEndian
	syscall := Syscall(le.Uint16(raw[offCallSyscall:]))
	if !syscall.Valid() {
		return ErrUnknownSyscall
	}
	probe := Probe(le.Uint16(raw[offCallProbe:]))
	if !probe.Valid() {
		return ErrUnknownProbe
	}

	ev.Syscall = syscall
	ev.Probe = probe
	ev.BootNs = le.Uint64(raw[offCallEntryNs:])
	ev.Duration, ev.Untimed = decodeDuration(le.Uint64(raw[offCallDurationNs:]))
	ev.Addr = le.Uint64(raw[offCallAddr:])
	ev.Len = le.Uint64(raw[offCallLen:])
	ev.Flags = uint64(le.Uint32(raw[offCallFlags:]))
	ev.Ret = int64(le.Uint64(raw[offCallRet:]))
	ev.CgroupID = le.Uint64(raw[offCallCgroupID:])
	ev.KernelDuration = 0
	ev.CallerAddr = 0
	ev.StartNs = le.Uint64(raw[offCallStartNs:])
	ev.LibcFunc = LibcNone
	ev.PID = le.Uint32(raw[offCallPID:])
	ev.TID = le.Uint32(raw[offCallTID:])
	ev.PPID = le.Uint32(raw[offCallPPID:])
	ev.UID = le.Uint32(raw[offCallUID:])
	ev.EUID = le.Uint32(raw[offCallEUID:])
	ev.GID = le.Uint32(raw[offCallGID:])
	ev.EGID = le.Uint32(raw[offCallEGID:])
	ev.Comm = d.comms.intern(raw[offCallComm : offCallComm+CommLen])
	ev.ExeName = ""
	return nil
}

// durationUnknown is the kernel's duration_ns of a call seen at its exit
// only (memlock.h, DURATION_UNKNOWN).
const durationUnknown = ^uint64(0)

// decodeDuration reads a record's duration_ns: the duration, or untimed
// for a call seen at its exit only. A value past the largest Duration (no
// call lasts 292 years: a corrupt record) is clamped to it.
func decodeDuration(ns uint64) (d time.Duration, untimed bool) {
	switch {
	case ns == durationUnknown:
		return 0, true
	case ns > math.MaxInt64:
		return math.MaxInt64, false
	}
	return time.Duration(ns), false
}

// internLimit bounds each intern table; past it the table starts afresh,
// which costs a few allocations but never unbounded memory.
const internLimit = 4096

// internTable maps the bytes of a C string to one shared Go string. Looking
// up m[string(b)] does not allocate, so a hit is free.
type internTable struct {
	m map[string]string
}

func (t *internTable) intern(field []byte) string {
	b := cBytes(field)
	if s, ok := t.m[string(b)]; ok {
		return s
	}
	if t.m == nil || len(t.m) >= internLimit {
		t.m = make(map[string]string, 64)
	}
	s := string(b)
	t.m[s] = s
	return s
}

// cBytes returns b up to its first NUL (all of b if none). The kernel
// NUL-terminates comm and the executable name, but a record from a damaged
// or foreign producer might not be, and that must not crash us.
func cBytes(b []byte) []byte {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		return b[:i]
	}
	return b
}
