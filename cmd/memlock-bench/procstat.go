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

// readPeakRSS returns VmHWM from /proc/<pid>/status in bytes: the most
// resident memory the process has had since it started.
func readPeakRSS(pid int) (uint64, error) {
	path := fmt.Sprintf("/proc/%d/status", pid)
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("read peak rss: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:")
		if !ok {
			continue
		}
		kb, ok := strings.CutSuffix(strings.TrimSpace(rest), " kB")
		if !ok {
			return 0, fmt.Errorf("parse VmHWM in %s: unexpected unit in %q", path, rest)
		}
		n, err := strconv.ParseUint(kb, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse VmHWM in %s: %w", path, err)
		}
		return n << 10, nil
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	return 0, fmt.Errorf("parse %s: no VmHWM line", path)
}
