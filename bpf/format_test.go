package bpf

import "testing"

func TestAppendCall(t *testing.T) {
	tests := []struct {
		ev   Event
		want string
	}{
		{Event{Syscall: SyscallMlock2, Addr: 0x7f3a1c000000, Len: 8192, Flags: 1}, "mlock2(0x7f3a1c000000, 8192, MLOCK_ONFAULT) = 0"},
		{Event{Syscall: SyscallMlock2, Addr: 0x1000, Len: 4096}, "mlock2(0x1000, 4096, 0) = 0"},
		{Event{Syscall: SyscallMlock2, Addr: 0x1000, Len: 4096, Flags: 2, Ret: -22}, "mlock2(0x1000, 4096, 0x2) = -1 EINVAL"},
		{Event{Syscall: SyscallMlock2, Addr: 0x1000, Len: 4096, Flags: 3, Ret: -22}, "mlock2(0x1000, 4096, MLOCK_ONFAULT|0x2) = -1 EINVAL"},
		{Event{Syscall: SyscallMlock, Addr: 0x1000, Len: 4096, Ret: -12}, "mlock(0x1000, 4096) = -1 ENOMEM"},
		{Event{Syscall: SyscallMunlock, Addr: 0x2000, Len: 1}, "munlock(0x2000, 1) = 0"},
		{Event{Syscall: SyscallMlockall, Flags: 3, Ret: -1}, "mlockall(MCL_CURRENT|MCL_FUTURE) = -1 EPERM"},
		{Event{Syscall: SyscallMunlockall}, "munlockall() = 0"},
	}
	for _, tt := range tests {
		if got := string(tt.ev.AppendCall(nil)); got != tt.want {
			t.Errorf("AppendCall = %q, want %q", got, tt.want)
		}
		if got := FormatFlags(tt.ev.Syscall, tt.ev.Flags); tt.ev.Syscall == SyscallMlock2 && string(appendFlags(nil, tt.ev.Syscall, tt.ev.Flags)) != got {
			t.Errorf("appendFlags and FormatFlags disagree on %#x: %q", tt.ev.Flags, got)
		}
	}
}

func BenchmarkAppendCall(b *testing.B) {
	ev := Event{Syscall: SyscallMlock2, Addr: 0x7f3a1c000000, Len: 8192, Flags: 3, Ret: -22}
	buf := make([]byte, 0, 128)
	b.ReportAllocs()
	for b.Loop() {
		buf = ev.AppendCall(buf[:0])
	}
}
