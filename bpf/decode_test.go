package bpf

import (
	"encoding/binary"
	"errors"
	"math"
	"reflect"
	"testing"
	"time"
	"unsafe"
)

// TestRecordLayoutMatchesCompiledObject ties decode.go's offsets to the
// struct bpf2go generated from the compiled BPF object: if the C struct
// changes and decode.go does not, this fails.
func TestRecordLayoutMatchesCompiledObject(t *testing.T) {
	var gen memlockEvent
	if got := int(unsafe.Sizeof(gen)); got != RecordSize {
		t.Fatalf("generated struct event is %d bytes, decoder expects %d", got, RecordSize)
	}
	tests := []struct {
		field string
		off   int
	}{
		{"EntryNs", offEntryNs}, {"DurationNs", offDurationNs}, {"Addr", offAddr},
		{"Len", offLen}, {"Flags", offFlags}, {"Ret", offRet}, {"CgroupId", offCgroupID},
		{"KernelNs", offKernelNs}, {"CallerAddr", offCallerAddr}, {"StartNs", offStartNs},
		{"Pid", offPID}, {"Tid", offTID}, {"Ppid", offPPID}, {"Uid", offUID},
		{"Euid", offEUID}, {"Gid", offGID}, {"Egid", offEGID}, {"Syscall", offSyscall},
		{"Probe", offProbe}, {"LibcFn", offLibcFn}, {"Comm", offComm}, {"ExeName", offExeName},
	}
	typ := reflect.TypeOf(gen)
	seen := 0
	for _, tt := range tests {
		f, ok := typ.FieldByName(tt.field)
		if !ok {
			t.Errorf("generated struct has no field %s", tt.field)
			continue
		}
		seen++
		if int(f.Offset) != tt.off {
			t.Errorf("field %s at offset %d in the object, decoder reads %d", tt.field, f.Offset, tt.off)
		}
	}
	// Every named field of the generated struct must be decoded.
	named := 0
	for i := range typ.NumField() {
		if typ.Field(i).Name != "_" {
			named++
		}
	}
	if named != seen {
		t.Errorf("generated struct has %d fields, the decoder knows %d", named, seen)
	}
}

// TestCallRecordLayoutMatchesCompiledObject does the same for the short
// call record.
func TestCallRecordLayoutMatchesCompiledObject(t *testing.T) {
	typ := reflect.TypeFor[memlockCallRecord]()
	if got := int(typ.Size()); got != CallRecordSize {
		t.Fatalf("generated struct call_record is %d bytes, decoder expects %d", got, CallRecordSize)
	}
	offsets := map[string]int{
		"EntryNs": offCallEntryNs, "DurationNs": offCallDurationNs, "Addr": offCallAddr, "Len": offCallLen,
		"Ret": offCallRet, "CgroupId": offCallCgroupID, "StartNs": offCallStartNs, "Flags": offCallFlags,
		"Pid": offCallPID, "Tid": offCallTID, "Ppid": offCallPPID, "Uid": offCallUID, "Euid": offCallEUID,
		"Gid": offCallGID, "Egid": offCallEGID, "Syscall": offCallSyscall, "Probe": offCallProbe,
		"Reserved": offCallReserved, "Comm": offCallComm,
	}
	named := 0
	for i := range typ.NumField() {
		f := typ.Field(i)
		if f.Name == "_" {
			continue
		}
		named++
		if off, ok := offsets[f.Name]; !ok || off != int(f.Offset) {
			t.Errorf("call_record.%s at offset %d in the object, decoder reads %d (known %v)", f.Name, f.Offset, off, ok)
		}
	}
	if named != len(offsets) {
		t.Errorf("generated struct has %d fields, the decoder knows %d", named, len(offsets))
	}
}

// shortBytes lays r out as a short call record, as the kernel writes one:
// what the short record has no room for is dropped.
func (r record) shortBytes() []byte {
	b := make([]byte, CallRecordSize)
	le := binary.LittleEndian
	le.PutUint64(b[offCallEntryNs:], r.entryNs)
	le.PutUint64(b[offCallDurationNs:], r.durationNs)
	le.PutUint64(b[offCallAddr:], r.addr)
	le.PutUint64(b[offCallLen:], r.length)
	le.PutUint64(b[offCallRet:], uint64(r.ret))
	le.PutUint64(b[offCallCgroupID:], r.cgroupID)
	le.PutUint64(b[offCallStartNs:], r.startNs)
	le.PutUint32(b[offCallFlags:], uint32(r.flags))
	le.PutUint32(b[offCallPID:], r.pid)
	le.PutUint32(b[offCallTID:], r.tid)
	le.PutUint32(b[offCallPPID:], r.ppid)
	le.PutUint32(b[offCallUID:], r.uid)
	le.PutUint32(b[offCallEUID:], r.euid)
	le.PutUint32(b[offCallGID:], r.gid)
	le.PutUint32(b[offCallEGID:], r.egid)
	le.PutUint16(b[offCallSyscall:], uint16(r.syscall))
	le.PutUint16(b[offCallProbe:], uint16(r.probe))
	copy(b[offCallComm:offCallComm+CommLen], r.comm)
	return b
}

// record builds a raw record the way the kernel lays it out.
type record struct {
	entryNs, durationNs, addr, length, flags uint64
	ret                                      int64
	cgroupID, kernelNs, callerAddr, startNs  uint64
	pid, tid, ppid, uid, euid, gid, egid     uint32
	syscall, probe, libcFn                   uint32
	comm, exe                                string
}

func (r record) bytes() []byte {
	b := make([]byte, RecordSize)
	le := binary.LittleEndian
	le.PutUint64(b[offEntryNs:], r.entryNs)
	le.PutUint64(b[offDurationNs:], r.durationNs)
	le.PutUint64(b[offAddr:], r.addr)
	le.PutUint64(b[offLen:], r.length)
	le.PutUint64(b[offFlags:], r.flags)
	le.PutUint64(b[offRet:], uint64(r.ret))
	le.PutUint64(b[offCgroupID:], r.cgroupID)
	le.PutUint64(b[offKernelNs:], r.kernelNs)
	le.PutUint64(b[offCallerAddr:], r.callerAddr)
	le.PutUint64(b[offStartNs:], r.startNs)
	le.PutUint32(b[offPID:], r.pid)
	le.PutUint32(b[offTID:], r.tid)
	le.PutUint32(b[offPPID:], r.ppid)
	le.PutUint32(b[offUID:], r.uid)
	le.PutUint32(b[offEUID:], r.euid)
	le.PutUint32(b[offGID:], r.gid)
	le.PutUint32(b[offEGID:], r.egid)
	le.PutUint32(b[offSyscall:], r.syscall)
	le.PutUint32(b[offProbe:], r.probe)
	le.PutUint32(b[offLibcFn:], r.libcFn)
	copy(b[offComm:offComm+CommLen], r.comm)
	copy(b[offExeName:offExeName+ExeNameMax], r.exe)
	return b
}

var sampleRecord = record{
	entryNs: 5_000_000_000, durationNs: 4200, addr: 0x7f3a1c000000, length: 8192, flags: 1,
	ret: -12, cgroupID: 4242, pid: 100, tid: 101, ppid: 1, uid: 1000, euid: 0, gid: 1001, egid: 1002,
	syscall: uint32(SyscallMlock2), probe: uint32(ProbeTracepoint), comm: "gpg-agent", exe: "gpg-agent-bin",
	kernelNs: 1500, callerAddr: 0x55aa00001234, libcFn: uint32(LibcMlock2), startNs: 4_000_000_000,
}

func TestDecode(t *testing.T) {
	clock := &BootClock{}
	clock.SetOffset(time.Duration(1_700_000_000) * time.Second)

	long := sampleRecord
	long.comm = "0123456789abcdef" // fills comm: no NUL inside the field
	long.exe = "x"

	tests := []struct {
		name    string
		raw     []byte
		want    Event
		wantErr error
	}{
		{
			name: "failed mlock2",
			raw:  sampleRecord.bytes(),
			want: Event{
				Time: time.Unix(1_700_000_005, 0), BootNs: 5_000_000_000, Duration: 4200 * time.Nanosecond,
				Syscall: SyscallMlock2, Probe: ProbeTracepoint, PID: 100, TID: 101, PPID: 1,
				UID: 1000, EUID: 0, GID: 1001, EGID: 1002, Comm: "gpg-agent", ExeName: "gpg-agent-bin",
				CgroupID: 4242, Addr: 0x7f3a1c000000, Len: 8192, Flags: 1, Ret: -12,
				KernelDuration: 1500, LibcFunc: LibcMlock2, CallerAddr: 0x55aa00001234, StartNs: 4_000_000_000,
			},
		},
		{
			name: "unterminated comm is cut at the field's end",
			raw:  long.bytes(),
			want: Event{
				Time: time.Unix(1_700_000_005, 0), BootNs: 5_000_000_000, Duration: 4200 * time.Nanosecond,
				Syscall: SyscallMlock2, Probe: ProbeTracepoint, PID: 100, TID: 101, PPID: 1,
				UID: 1000, EUID: 0, GID: 1001, EGID: 1002, Comm: "0123456789abcdef", ExeName: "x",
				CgroupID: 4242, Addr: 0x7f3a1c000000, Len: 8192, Flags: 1, Ret: -12,
				KernelDuration: 1500, LibcFunc: LibcMlock2, CallerAddr: 0x55aa00001234, StartNs: 4_000_000_000,
			},
		},
		{
			name: "exit-only call: untimed",
			raw:  func() []byte { r := sampleRecord; r.durationNs = ^uint64(0); return r.bytes() }(),
			want: Event{
				Time: time.Unix(1_700_000_005, 0), BootNs: 5_000_000_000, Untimed: true,
				Syscall: SyscallMlock2, Probe: ProbeTracepoint, PID: 100, TID: 101, PPID: 1,
				UID: 1000, EUID: 0, GID: 1001, EGID: 1002, Comm: "gpg-agent", ExeName: "gpg-agent-bin",
				CgroupID: 4242, Addr: 0x7f3a1c000000, Len: 8192, Flags: 1, Ret: -12,
				KernelDuration: 1500, LibcFunc: LibcMlock2, CallerAddr: 0x55aa00001234, StartNs: 4_000_000_000,
			},
		},
		{
			name: "short record: no kernel-function or libc view, no executable name",
			raw:  sampleRecord.shortBytes(),
			want: Event{
				Time: time.Unix(1_700_000_005, 0), BootNs: 5_000_000_000, Duration: 4200 * time.Nanosecond,
				Syscall: SyscallMlock2, Probe: ProbeTracepoint, PID: 100, TID: 101, PPID: 1,
				UID: 1000, EUID: 0, GID: 1001, EGID: 1002, Comm: "gpg-agent",
				CgroupID: 4242, Addr: 0x7f3a1c000000, Len: 8192, Flags: 1, Ret: -12, StartNs: 4_000_000_000,
			},
		},
		{
			name: "short record of an exit-only mlockall",
			raw: func() []byte {
				r := sampleRecord
				r.durationNs, r.syscall, r.addr, r.length, r.flags, r.ret = ^uint64(0), uint32(SyscallMlockall), 0, 0, 3, 0
				r.comm = "0123456789abcdef"
				return r.shortBytes()
			}(),
			want: Event{
				Time: time.Unix(1_700_000_005, 0), BootNs: 5_000_000_000, Untimed: true,
				Syscall: SyscallMlockall, Probe: ProbeTracepoint, PID: 100, TID: 101, PPID: 1,
				UID: 1000, EUID: 0, GID: 1001, EGID: 1002, Comm: "0123456789abcdef",
				CgroupID: 4242, Flags: 3, StartNs: 4_000_000_000,
			},
		},
		{name: "empty", raw: nil, wantErr: ErrRecordSize},
		{name: "short record short by one", raw: sampleRecord.shortBytes()[:CallRecordSize-1], wantErr: ErrRecordSize},
		{name: "short record long by one", raw: append(sampleRecord.shortBytes(), 0), wantErr: ErrRecordSize},
		{name: "short record, syscall out of range", raw: func() []byte { r := sampleRecord; r.syscall = 6; return r.shortBytes() }(), wantErr: ErrUnknownSyscall},
		{name: "short record, probe out of range", raw: func() []byte { r := sampleRecord; r.probe = 5; return r.shortBytes() }(), wantErr: ErrUnknownProbe},
		{name: "short by one", raw: sampleRecord.bytes()[:RecordSize-1], wantErr: ErrRecordSize},
		{name: "long by one", raw: append(sampleRecord.bytes(), 0), wantErr: ErrRecordSize},
		{name: "syscall zero", raw: func() []byte { r := sampleRecord; r.syscall = 0; return r.bytes() }(), wantErr: ErrUnknownSyscall},
		{name: "syscall out of range", raw: func() []byte { r := sampleRecord; r.syscall = 99; return r.bytes() }(), wantErr: ErrUnknownSyscall},
		{name: "probe zero", raw: func() []byte { r := sampleRecord; r.probe = 0; return r.bytes() }(), wantErr: ErrUnknownProbe},
		{name: "libc function out of range", raw: func() []byte { r := sampleRecord; r.libcFn = 4; return r.bytes() }(), wantErr: ErrUnknownLibcFunc},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got Event
			err := NewDecoder(clock).Decode(tt.raw, &got)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Decode error = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr != nil {
				return
			}
			if !got.Time.Equal(tt.want.Time) {
				t.Errorf("Time = %v, want %v", got.Time, tt.want.Time)
			}
			got.Time, tt.want.Time = time.Time{}, time.Time{}
			if got != tt.want {
				t.Errorf("Decode =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func TestDecoderReusesInternedStrings(t *testing.T) {
	d := NewDecoder(nil)
	var a, b Event
	raw := sampleRecord.bytes()
	if err := d.Decode(raw, &a); err != nil {
		t.Fatal(err)
	}
	if err := d.Decode(raw, &b); err != nil {
		t.Fatal(err)
	}
	if unsafe.StringData(a.Comm) != unsafe.StringData(b.Comm) {
		t.Error("the same comm decoded twice gave two strings: interning is not working")
	}
	if !a.Time.IsZero() {
		t.Errorf("a decoder without a clock set Time = %v", a.Time)
	}
	// Past the table's limit it starts afresh instead of growing.
	for i := range internLimit + 10 {
		r := sampleRecord
		r.comm = string(rune('a'+i%26)) + string(rune('a'+(i/26)%26)) + string(rune('a'+(i/676)%26))
		if err := d.Decode(r.bytes(), &a); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(d.comms.m); n > internLimit {
		t.Errorf("intern table holds %d strings, limit %d", n, internLimit)
	}
}

func TestBootClock(t *testing.T) {
	c, err := NewBootClock()
	if err != nil {
		t.Fatal(err)
	}
	// A boot timestamp of "now" must convert to about the wall clock's now.
	var ts = monotonicBootNs(t)
	got := c.WallTime(ts)
	if d := time.Since(got); d < -time.Second || d > time.Second {
		t.Errorf("boot-clock now converts to %v, %v away from the wall clock", got, d)
	}
	c.SetOffset(time.Hour)
	if got := c.WallTime(0); !got.Equal(time.Unix(3600, 0)) {
		t.Errorf("WallTime(0) with offset 1h = %v", got)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(sampleRecord.bytes())
	f.Add([]byte{})
	f.Add(make([]byte, RecordSize))
	f.Add(sampleRecord.shortBytes())
	f.Add(make([]byte, CallRecordSize))
	d := NewDecoder(&BootClock{})
	f.Fuzz(func(t *testing.T, raw []byte) {
		var ev Event
		err := d.Decode(raw, &ev)
		if len(raw) != RecordSize && len(raw) != CallRecordSize && err == nil {
			t.Fatalf("decoded a %d-byte record", len(raw))
		}
		if err == nil {
			if !ev.Syscall.Valid() || !ev.Probe.Valid() {
				t.Fatalf("decoded an invalid syscall %d or probe %d", ev.Syscall, ev.Probe)
			}
			if len(ev.Comm) >= CommLen+1 || len(ev.ExeName) > ExeNameMax {
				t.Fatalf("string fields too long: %q %q", ev.Comm, ev.ExeName)
			}
			_ = ev.FlagNames()
			_ = ev.Pages()
			_ = ev.Errno().String()
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	d := NewDecoder(&BootClock{})
	raw := sampleRecord.bytes()
	var ev Event
	b.ReportAllocs()
	b.SetBytes(RecordSize)
	for b.Loop() {
		if err := d.Decode(raw, &ev); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeMalformed(b *testing.B) {
	d := NewDecoder(&BootClock{})
	raw := sampleRecord.bytes()[:RecordSize-8]
	var ev Event
	b.ReportAllocs()
	for b.Loop() {
		if err := d.Decode(raw, &ev); err == nil {
			b.Fatal("short record decoded")
		}
	}
}

func TestDecodeDuration(t *testing.T) {
	tests := []struct {
		ns          uint64
		want        time.Duration
		wantUntimed bool
	}{
		{0, 0, false},
		{4200, 4200, false},
		{math.MaxInt64, math.MaxInt64, false},
		{math.MaxInt64 + 1, math.MaxInt64, false}, // corrupt: clamped, never negative
		{^uint64(0) - 1, math.MaxInt64, false},
		{^uint64(0), 0, true}, // DURATION_UNKNOWN
	}
	for _, tt := range tests {
		got, untimed := decodeDuration(tt.ns)
		if got != tt.want || untimed != tt.wantUntimed {
			t.Errorf("decodeDuration(%d) = %v, %v; want %v, %v", tt.ns, got, untimed, tt.want, tt.wantUntimed)
		}
	}
}
