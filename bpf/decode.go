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

	// RecordSize is the exact size of one record in the ring buffer.
	RecordSize = offExeName + ExeNameMax
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

// Decode fills ev from one raw record. On error ev is left partly written
// and must not be used; the record should be counted as malformed.
func (d *Decoder) Decode(raw []byte, ev *Event) error {
	if len(raw) != RecordSize {
		return ErrRecordSize
	}
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
	ev.Process = nil // the reader joins the identity
	if d.clock != nil {
		ev.Time = d.clock.WallTime(ev.BootNs)
	} else {
		ev.Time = time.Time{}
	}
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
