package bpf

import "testing"

func TestSyscallUnmarshalText(t *testing.T) {
	tests := []struct {
		in      string
		want    Syscall
		wantErr bool
	}{
		{"mlock", SyscallMlock, false},
		{"mlock2", SyscallMlock2, false},
		{"munlock", SyscallMunlock, false},
		{"mlockall", SyscallMlockall, false},
		{"munlockall", SyscallMunlockall, false},
		{"MLOCK2", SyscallMlock2, false},
		{"MunlockAll", SyscallMunlockall, false},
		{" mlock ", SyscallMlock, false},
		{"\tmlockall\n", SyscallMlockall, false},
		{"", 0, true},
		{" ", 0, true},
		{"unknown", 0, true},
		{"mlock3", 0, true},
		{"m lock", 0, true},
		{"mlock,mlock2", 0, true},
	}
	for _, tt := range tests {
		s := SyscallMunlock // must stay as is on error
		err := s.UnmarshalText([]byte(tt.in))
		switch {
		case tt.wantErr && err == nil:
			t.Errorf("UnmarshalText(%q) = %v, want an error", tt.in, s)
		case tt.wantErr && s != SyscallMunlock:
			t.Errorf("UnmarshalText(%q) failed but changed the value to %v", tt.in, s)
		case !tt.wantErr && (err != nil || s != tt.want):
			t.Errorf("UnmarshalText(%q) = %v, %v; want %v", tt.in, s, err, tt.want)
		}
	}
}
