package bpf

import (
	"os"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// PageSize is the host's page size, used to compute the pages a call covers.
var PageSize = uint64(os.Getpagesize())

// PagesCovered returns the number of pages the kernel locks or unlocks for a
// range: it rounds the start down and the end up to page boundaries, so the
// count is PAGE_ALIGN(len + addr%pageSize) / pageSize. A zero length covers
// nothing, exactly as in the kernel's do_mlock.
func PagesCovered(addr, length, pageSize uint64) uint64 {
	if length == 0 || pageSize == 0 {
		return 0
	}
	span := length + addr%pageSize
	if span < length { // wrapped: the kernel would reject such a range
		return (^uint64(0))/pageSize + 1
	}
	return (span + pageSize - 1) / pageSize
}

type flagBit struct {
	bit  uint64
	name string
}

var (
	mlock2Flags   = []flagBit{{unix.MLOCK_ONFAULT, "MLOCK_ONFAULT"}}
	mlockallFlags = []flagBit{
		{unix.MCL_CURRENT, "MCL_CURRENT"},
		{unix.MCL_FUTURE, "MCL_FUTURE"},
		{unix.MCL_ONFAULT, "MCL_ONFAULT"},
	}
)

func flagTable(s Syscall) []flagBit {
	switch s {
	case SyscallMlock2:
		return mlock2Flags
	case SyscallMlockall:
		return mlockallFlags
	}
	return nil
}

// FlagNames decodes a syscall's flags argument into names, in bit order.
// Bits the syscall does not define are reported as one hexadecimal value
// ("0x6"), so nothing the caller passed is hidden. Zero flags give nil.
func FlagNames(s Syscall, flags uint64) []string {
	if flags == 0 {
		return nil
	}
	var names []string
	rest := flags
	for _, f := range flagTable(s) {
		if flags&f.bit != 0 {
			names = append(names, f.name)
			rest &^= f.bit
		}
	}
	if rest != 0 {
		names = append(names, "0x"+strconv.FormatUint(rest, 16))
	}
	return names
}

// FormatFlags renders flags the way strace does: names joined by "|", or "0".
func FormatFlags(s Syscall, flags uint64) string {
	return string(appendFlags(nil, s, flags))
}

// Errno is a positive Linux error number as returned (negated) by a syscall.
type Errno uint32

// String returns the error's symbolic name ("ENOMEM"), or "errno N" for a
// number Linux does not define.
func (e Errno) String() string {
	if name := unix.ErrnoName(syscall.Errno(e)); name != "" {
		return name
	}
	return string(e.AppendName(nil))
}

// AppendName appends what String returns, without allocating when b has
// room.
func (e Errno) AppendName(b []byte) []byte {
	if name := unix.ErrnoName(syscall.Errno(e)); name != "" {
		return append(b, name...)
	}
	return strconv.AppendUint(append(b, "errno "...), uint64(e), 10)
}
