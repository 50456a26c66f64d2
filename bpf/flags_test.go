package bpf

import (
	"slices"
	"testing"
)

func TestPagesCovered(t *testing.T) {
	const page = 4096
	tests := []struct {
		name      string
		addr, len uint64
		want      uint64
	}{
		{"zero length", 0x1000, 0, 0},
		{"one aligned page", 0x1000, 4096, 1},
		{"one byte", 0x1000, 1, 1},
		{"two aligned pages", 0x1000, 8192, 2},
		{"aligned, not a page multiple", 0x1000, 4097, 2},
		{"unaligned inside one page", 0x1010, 100, 1},
		{"unaligned crossing a boundary", 0x1000 + 4000, 200, 2},
		{"unaligned, ends on a boundary", 0x1000 + 96, 4000, 1},
		{"last byte of a page plus one", 0x1fff, 2, 2},
		{"huge length wraps", 0x1fff, ^uint64(0), 1 << 52},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := PagesCovered(tt.addr, tt.len, page); got != tt.want {
				t.Errorf("PagesCovered(%#x, %d) = %d, want %d", tt.addr, tt.len, got, tt.want)
			}
		})
	}
}

func TestFlagNames(t *testing.T) {
	tests := []struct {
		syscall Syscall
		flags   uint64
		want    []string
		format  string
	}{
		{SyscallMlock2, 0, nil, "0"},
		{SyscallMlock2, 1, []string{"MLOCK_ONFAULT"}, "MLOCK_ONFAULT"},
		{SyscallMlock2, 2, []string{"0x2"}, "0x2"},
		{SyscallMlock2, 7, []string{"MLOCK_ONFAULT", "0x6"}, "MLOCK_ONFAULT|0x6"},
		{SyscallMlockall, 1, []string{"MCL_CURRENT"}, "MCL_CURRENT"},
		{SyscallMlockall, 3, []string{"MCL_CURRENT", "MCL_FUTURE"}, "MCL_CURRENT|MCL_FUTURE"},
		{SyscallMlockall, 7, []string{"MCL_CURRENT", "MCL_FUTURE", "MCL_ONFAULT"}, "MCL_CURRENT|MCL_FUTURE|MCL_ONFAULT"},
		{SyscallMlockall, 0x18, []string{"0x18"}, "0x18"},
		{SyscallMlock, 1, []string{"0x1"}, "0x1"}, // mlock takes no flags: show raw bits
	}
	for _, tt := range tests {
		if got := FlagNames(tt.syscall, tt.flags); !slices.Equal(got, tt.want) {
			t.Errorf("FlagNames(%s, %#x) = %q, want %q", tt.syscall, tt.flags, got, tt.want)
		}
		if got := FormatFlags(tt.syscall, tt.flags); got != tt.format {
			t.Errorf("FormatFlags(%s, %#x) = %q, want %q", tt.syscall, tt.flags, got, tt.format)
		}
	}
}

func TestErrnoString(t *testing.T) {
	tests := []struct {
		errno Errno
		want  string
	}{
		{1, "EPERM"},
		{11, "EAGAIN"},
		{12, "ENOMEM"},
		{22, "EINVAL"},
		{38, "ENOSYS"},
		{4095, "errno 4095"},
	}
	for _, tt := range tests {
		if got := tt.errno.String(); got != tt.want {
			t.Errorf("Errno(%d).String() = %q, want %q", tt.errno, got, tt.want)
		}
	}
}

func TestEventHelpers(t *testing.T) {
	tests := []struct {
		ev     Event
		failed bool
		errno  Errno
		pages  uint64
	}{
		{Event{Syscall: SyscallMlock, Addr: 0x1000, Len: 4096, Ret: 0}, false, 0, 1},
		{Event{Syscall: SyscallMlock2, Addr: 0x1f00, Len: 512, Ret: -12}, true, 12, 2},
		{Event{Syscall: SyscallMlock2, Addr: 0x1000, Len: 0, Ret: -1}, true, 1, 0},
	}
	for _, tt := range tests {
		if got := tt.ev.Failed(); got != tt.failed {
			t.Errorf("%+v Failed() = %v", tt.ev, got)
		}
		if got := tt.ev.Errno(); got != tt.errno {
			t.Errorf("%+v Errno() = %v", tt.ev, got)
		}
		if PageSize == 4096 {
			if got := tt.ev.Pages(); got != tt.pages {
				t.Errorf("%+v Pages() = %d, want %d", tt.ev, got, tt.pages)
			}
		}
	}
}

func TestNames(t *testing.T) {
	if SyscallMlock2.String() != "mlock2" || SyscallMunlockall.String() != "munlockall" || Syscall(42).String() != "syscall(42)" {
		t.Error("Syscall.String is wrong")
	}
	if ProbeFentry.String() != "fentry" || Probe(9).String() != "probe(9)" {
		t.Error("Probe.String is wrong")
	}
	if Syscall(0).Valid() || !SyscallMlock.Valid() || Syscall(6).Valid() {
		t.Error("Syscall.Valid is wrong")
	}
}

func TestParseSyscall(t *testing.T) {
	for s := SyscallMlock; s.Valid(); s++ {
		got, err := ParseSyscall(s.String())
		if err != nil || got != s {
			t.Errorf("ParseSyscall(%q) = %v, %v", s.String(), got, err)
		}
	}
	for _, bad := range []string{"", "unknown", "MLOCK", "mlock3"} {
		if _, err := ParseSyscall(bad); err == nil {
			t.Errorf("ParseSyscall(%q) succeeded", bad)
		}
	}
}
