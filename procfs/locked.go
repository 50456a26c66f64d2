package procfs

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ReadLocked returns how many bytes process pid holds locked in memory:
// VmLck in /proc/<pid>/status, which the kernel gives in kB. Kernel threads
// have no VmLck: their error wraps ErrFieldMissing.
func ReadLocked(procRoot string, pid uint32) (lockedBytes uint64, err error) {
	status, err := readProcFile(procRoot, pid, "status")
	if err != nil {
		return 0, fmt.Errorf("read locked memory of process %d: %w", pid, err)
	}
	n, err := kBField(status, "VmLck")
	if err != nil {
		return 0, fmt.Errorf("read locked memory of process %d from %s: %w", pid, procPath(procRoot, pid, "status"), err)
	}
	return n, nil
}

// ReadMemlockLimit returns the soft RLIMIT_MEMLOCK of process pid in bytes,
// from "Max locked memory" in /proc/<pid>/limits. When the limit is
// "unlimited", soft is math.MaxUint64 (RLIM_INFINITY) and unlimited is true.
// Processes with CAP_IPC_LOCK may lock past this limit.
func ReadMemlockLimit(procRoot string, pid uint32) (soft uint64, unlimited bool, err error) {
	limits, err := readProcFile(procRoot, pid, "limits")
	if err != nil {
		return 0, false, fmt.Errorf("read memlock limit of process %d: %w", pid, err)
	}
	soft, unlimited, err = parseLimit(limits, "Max locked memory", "bytes")
	if err != nil {
		return 0, false, fmt.Errorf("read memlock limit of process %d from %s: %w", pid, procPath(procRoot, pid, "limits"), err)
	}
	return soft, unlimited, nil
}

// ReadSystemLocked returns how many bytes the whole system holds locked in
// memory: Mlocked in /proc/meminfo, which the kernel gives in kB.
func ReadSystemLocked(procRoot string) (uint64, error) {
	path := filepath.Join(procRoot, "meminfo")
	meminfo, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read system locked memory: %w", err)
	}
	n, err := kBField(meminfo, "Mlocked")
	if err != nil {
		return 0, fmt.Errorf("read system locked memory from %s: %w", path, err)
	}
	return n, nil
}

// kBField returns the "key: <n> kB" field of a status or meminfo file in bytes.
func kBField(data []byte, key string) (uint64, error) {
	v, ok := field(data, key)
	if !ok {
		return 0, fmt.Errorf("%s: %w", key, ErrFieldMissing)
	}
	num, unit, _ := strings.Cut(v, " ")
	if strings.TrimSpace(unit) != "kB" {
		return 0, fmt.Errorf("parse %s %q: unit is not kB", key, v)
	}
	n, err := strconv.ParseUint(num, 10, 64)
	if err != nil || n > math.MaxUint64/1024 {
		return 0, fmt.Errorf("parse %s %q: not a size in kB", key, v)
	}
	return n * 1024, nil
}

// parseLimit returns the soft value of the named limit in a limits file:
// "<name>  <soft>  <hard>  <unit>", where soft may be "unlimited".
func parseLimit(data []byte, name, unit string) (soft uint64, unlimited bool, err error) {
	for line := range bytes.Lines(data) {
		rest, ok := bytes.CutPrefix(line, []byte(name))
		if !ok || len(rest) == 0 || rest[0] != ' ' {
			continue
		}
		f := strings.Fields(string(rest))
		if len(f) != 3 || f[2] != unit {
			return 0, false, fmt.Errorf("parse %q: want soft, hard and %s", bytes.TrimSpace(line), unit)
		}
		if f[0] == "unlimited" {
			return math.MaxUint64, true, nil
		}
		soft, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return 0, false, fmt.Errorf("parse %q: soft limit %q is not a number", bytes.TrimSpace(line), f[0])
		}
		return soft, false, nil
	}
	return 0, false, fmt.Errorf("%s: %w", name, ErrFieldMissing)
}

// Locked reads the locked-memory figures of the procfs mounted at Root
// (the exporter's LockedMemory).
type Locked struct{ Root string }

// SystemLocked is ReadSystemLocked(Root).
func (l Locked) SystemLocked() (uint64, error) { return ReadSystemLocked(l.Root) }

// ProcessLocked is ReadLocked(Root, pid).
func (l Locked) ProcessLocked(pid uint32) (uint64, error) { return ReadLocked(l.Root, pid) }

// MemlockLimit is ReadMemlockLimit(Root, pid).
func (l Locked) MemlockLimit(pid uint32) (uint64, bool, error) {
	return ReadMemlockLimit(l.Root, pid)
}
