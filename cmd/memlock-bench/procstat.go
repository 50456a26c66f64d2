package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// atClkTck is AT_CLKTCK from <linux/auxvec.h>: the kernel tells every
// process its USER_HZ in the auxiliary vector, which is what sysconf
// (_SC_CLK_TCK) reads too. golang.org/x/sys has no constant for it.
const atClkTck = 17

// clockTicks returns USER_HZ, the unit of utime and stime in
// /proc/<pid>/stat. It is 100 on every mainstream architecture, which is the
// fallback should the auxiliary vector be unreadable.
func clockTicks() int64 {
	auxv, err := unix.Auxv()
	if err == nil {
		for _, kv := range auxv {
			if kv[0] == atClkTck && kv[1] > 0 {
				return int64(kv[1])
			}
		}
	}
	return 100
}

// cpuTimes is the CPU time a whole process (all its threads, live or exited)
// has used so far, as /proc/<pid>/stat reports it.
type cpuTimes struct {
	user, sys time.Duration
}

func (c cpuTimes) total() time.Duration { return c.user + c.sys }

func (c cpuTimes) sub(d cpuTimes) cpuTimes {
	return cpuTimes{user: c.user - d.user, sys: c.sys - d.sys}
}

// readCPUTimes reads utime and stime (fields 14 and 15 of
// /proc/<pid>/stat) and converts them from clock ticks. The command name
// (field 2) may hold spaces and parentheses, so the fields are counted from
// the last ')'.
func readCPUTimes(pid int, hz int64) (cpuTimes, error) {
	path := fmt.Sprintf("/proc/%d/stat", pid)
	data, err := os.ReadFile(path)
	if err != nil {
		return cpuTimes{}, fmt.Errorf("read cpu times: %w", err)
	}
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return cpuTimes{}, fmt.Errorf("parse %s: no ')' after the command name", path)
	}
	// After ")": field 3 (state) is fields[0], so field n is fields[n-3].
	fields := strings.Fields(string(data[i+1:]))
	if len(fields) < 13 {
		return cpuTimes{}, fmt.Errorf("parse %s: %d fields after the command name, want at least 13", path, len(fields))
	}
	utime, err := strconv.ParseInt(fields[14-3], 10, 64)
	if err != nil {
		return cpuTimes{}, fmt.Errorf("parse utime in %s: %w", path, err)
	}
	stime, err := strconv.ParseInt(fields[15-3], 10, 64)
	if err != nil {
		return cpuTimes{}, fmt.Errorf("parse stime in %s: %w", path, err)
	}
	tick := time.Second / time.Duration(hz)
	return cpuTimes{user: time.Duration(utime) * tick, sys: time.Duration(stime) * tick}, nil
}

// memStatus is a process's resident memory as /proc/<pid>/status reports
// it, in bytes. RSS is anon + file + shmem: the Go heap and stacks are
// anonymous; the binary's text, and the BPF ring buffer's pages (which the
// kernel maps into the reader, data area twice), are file pages.
type memStatus struct {
	rss, hwm, anon, file, shmem uint64
}

// memStatusFields are the lines of /proc/<pid>/status readMemStatus needs.
var memStatusFields = []struct {
	key string
	val func(*memStatus) *uint64
}{
	{"VmHWM:", func(m *memStatus) *uint64 { return &m.hwm }},
	{"VmRSS:", func(m *memStatus) *uint64 { return &m.rss }},
	{"RssAnon:", func(m *memStatus) *uint64 { return &m.anon }},
	{"RssFile:", func(m *memStatus) *uint64 { return &m.file }},
	{"RssShmem:", func(m *memStatus) *uint64 { return &m.shmem }},
}

// readMemStatus reads VmHWM, VmRSS and its split from /proc/<pid>/status.
func readMemStatus(pid int) (memStatus, error) {
	path := fmt.Sprintf("/proc/%d/status", pid)
	data, err := os.ReadFile(path)
	if err != nil {
		return memStatus{}, fmt.Errorf("read memory status: %w", err)
	}
	m, err := parseMemStatus(data)
	if err != nil {
		return memStatus{}, fmt.Errorf("parse %s: %w", path, err)
	}
	return m, nil
}

// parseMemStatus reads the memStatusFields, all in kB, from the text of
// /proc/<pid>/status.
func parseMemStatus(data []byte) (memStatus, error) {
	var m memStatus
	found := 0
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		for _, f := range memStatusFields {
			rest, ok := strings.CutPrefix(sc.Text(), f.key)
			if !ok {
				continue
			}
			kb, ok := strings.CutSuffix(strings.TrimSpace(rest), " kB")
			if !ok {
				return memStatus{}, fmt.Errorf("%s unexpected unit in %q", f.key, rest)
			}
			n, err := strconv.ParseUint(kb, 10, 64)
			if err != nil {
				return memStatus{}, fmt.Errorf("%s %w", f.key, err)
			}
			*f.val(&m) = n << 10
			found++
		}
	}
	if err := sc.Err(); err != nil {
		return memStatus{}, err
	}
	if found != len(memStatusFields) {
		return memStatus{}, fmt.Errorf("found %d of the %d lines VmHWM, VmRSS, RssAnon, RssFile and RssShmem", found, len(memStatusFields))
	}
	return m, nil
}

// readPeakRSS returns VmHWM from /proc/<pid>/status in bytes: the most
// resident memory the process has had since it started.
func readPeakRSS(pid int) (uint64, error) {
	m, err := readMemStatus(pid)
	return m.hwm, err
}
