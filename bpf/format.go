package bpf

import (
	"strconv"
)

// AppendCall appends the call as strace would show it, e.g.
// `mlock2(0x7f3a1c000000, 8192, MLOCK_ONFAULT) = 0` or
// `mlock(0x1000, 4096) = -1 ENOMEM`, and returns the extended buffer. It
// allocates nothing when b has room.
func (e *Event) AppendCall(b []byte) []byte {
	b = append(b, e.Syscall.String()...)
	b = append(b, '(')
	switch e.Syscall {
	case SyscallMlock, SyscallMunlock:
		b = appendRange(b, e.Addr, e.Len)
	case SyscallMlock2:
		b = appendRange(b, e.Addr, e.Len)
		b = append(b, ", "...)
		b = appendFlags(b, e.Syscall, e.Flags)
	case SyscallMlockall:
		b = appendFlags(b, e.Syscall, e.Flags)
	}
	b = append(b, ") = "...)
	if e.Ret < 0 {
		b = append(b, "-1 "...)
		return e.Errno().AppendName(b)
	}
	return strconv.AppendInt(b, e.Ret, 10)
}

func appendRange(b []byte, addr, length uint64) []byte {
	b = append(b, "0x"...)
	b = strconv.AppendUint(b, addr, 16)
	b = append(b, ", "...)
	return strconv.AppendUint(b, length, 10)
}

func appendFlags(b []byte, s Syscall, flags uint64) []byte {
	if flags == 0 {
		return append(b, '0')
	}
	first := true
	rest := flags
	for _, f := range flagTable(s) {
		if flags&f.bit == 0 {
			continue
		}
		if !first {
			b = append(b, '|')
		}
		b = append(b, f.name...)
		rest &^= f.bit
		first = false
	}
	if rest != 0 {
		if !first {
			b = append(b, '|')
		}
		b = append(b, "0x"...)
		b = strconv.AppendUint(b, rest, 16)
	}
	return b
}
