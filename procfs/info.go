package procfs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// MaxCommandBytes bounds how much of /proc/<pid>/cmdline ReadInfo reads, so a
// process with megabytes of arguments cannot bloat the cache; the arguments
// beyond it are dropped and the last one kept may be cut short.
const MaxCommandBytes = 16 << 10

// deletedSuffix is what the kernel appends to the exe link of a process whose
// executable file was removed or replaced after it started.
const deletedSuffix = " (deleted)"

// Info is the context of one process as procfs shows it.
// Fields that could not be read are left zero.
type Info struct {
	// ExePath is the absolute path of the executable (/proc/<pid>/exe), without
	// the kernel's " (deleted)" mark; empty for kernel threads and zombies.
	ExePath string
	// ExeDeleted reports that the executable file was deleted or replaced
	// since the process started (an upgraded binary, or one hiding itself).
	ExeDeleted bool
	// CommandArgs is the argument vector (/proc/<pid>/cmdline), read only when
	// asked for; it is shared with the cache and must not be modified.
	CommandArgs []string
	// CgroupPath is the path ParseCgroupFile picks from /proc/<pid>/cgroup.
	CgroupPath string
	// ContainerID is the container id in CgroupPath or, in cgroup v1/v2
	// hybrid mode, in the path of another line of the cgroup file.
	ContainerID string
	// PodUID is the Kubernetes pod UID, found the same way as ContainerID.
	PodUID string
	// VPID is the pid in the process's own PID namespace (the last NSpid
	// value); the pid itself when it is in the namespace of procRoot's mount.
	VPID uint32
	// InPIDNamespace reports that the process is in a PID namespace nested
	// below that of procRoot's mount (NSpid has more than one value).
	InPIDNamespace bool
}

// ReadInfo reads the context of process pid from procRoot (normally "/proc"),
// with its arguments only when withArgs is set (they can hold secrets).
// A process that is not in procfs yields an error wrapping ErrNoProcess.
// Otherwise Info holds every field that could be read, and a non-nil error
// lists the fields that could not (e.g. the executable of another user's
// process without CAP_SYS_PTRACE); the Info is still worth using.
func ReadInfo(procRoot string, pid uint32, withArgs bool) (Info, error) {
	info, _, err := readInfo(procRoot, pid, withArgs)
	return info, err
}

// readInfo is ReadInfo that also reports whether the process was found,
// which a non-nil error alone does not tell.
func readInfo(procRoot string, pid uint32, withArgs bool) (info Info, found bool, err error) {
	status, err := readProcFile(procRoot, pid, "status")
	if err != nil {
		return Info{}, false, fmt.Errorf("read process %d: %w", pid, err)
	}
	info.VPID = pid
	if nspid, ok := parseNSpid(status); ok {
		info.VPID = nspid[len(nspid)-1]
		info.InPIDNamespace = len(nspid) > 1
	}

	var errs []error
	if exe, err := os.Readlink(procPath(procRoot, pid, "exe")); err == nil {
		info.ExePath, info.ExeDeleted = strings.CutSuffix(exe, deletedSuffix)
	} else if !isGone(err) { // gone: a kernel thread, a zombie, or it just exited
		errs = append(errs, fmt.Errorf("read executable: %w", err))
	}
	if cgroup, err := readProcFile(procRoot, pid, "cgroup"); err == nil {
		info.CgroupPath = ParseCgroupFile(cgroup)
		info.ContainerID = fromCgroupFile(cgroup, info.CgroupPath, ContainerID)
		info.PodUID = fromCgroupFile(cgroup, info.CgroupPath, PodUID)
	} else if !errors.Is(err, ErrNoProcess) {
		errs = append(errs, err)
	}
	if withArgs {
		args, err := readCommandArgs(procRoot, pid)
		if err != nil && !errors.Is(err, ErrNoProcess) {
			errs = append(errs, err)
		}
		info.CommandArgs = args
	}
	if len(errs) > 0 {
		return info, true, fmt.Errorf("read process %d: %w", pid, errors.Join(errs...))
	}
	return info, true, nil
}

// parseNSpid returns the values of the NSpid line of a status file, outermost
// namespace first; false when the line is missing (kernels before 4.1) or bad.
func parseNSpid(status []byte) ([]uint32, bool) {
	v, ok := field(status, "NSpid")
	if !ok {
		return nil, false
	}
	fields := strings.Fields(v)
	if len(fields) == 0 {
		return nil, false
	}
	pids := make([]uint32, len(fields))
	for i, f := range fields {
		n, err := strconv.ParseUint(f, 10, 32)
		if err != nil {
			return nil, false
		}
		pids[i] = uint32(n)
	}
	return pids, true
}

// fromCgroupFile applies extract to the chosen cgroup path and, failing that,
// to the path of every line: in hybrid mode the container may show only in
// a v1 hierarchy other than the one chosen.
func fromCgroupFile(data []byte, chosen string, extract func(string) string) string {
	if v := extract(chosen); v != "" {
		return v
	}
	for line := range bytes.Lines(data) {
		if _, _, p, ok := splitCgroupLine(line); ok && p != chosen {
			if v := extract(p); v != "" {
				return v
			}
		}
	}
	return ""
}

// readCommandArgs reads at most MaxCommandBytes of /proc/<pid>/cmdline and
// splits it at NUL bytes; nil for kernel threads and zombies.
func readCommandArgs(procRoot string, pid uint32) ([]string, error) {
	path := procPath(procRoot, pid, "cmdline")
	f, err := os.Open(path)
	if err != nil {
		return nil, processError(procRoot, path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxCommandBytes))
	if err != nil {
		return nil, processError(procRoot, path, err)
	}
	return splitCommandLine(data), nil
}

// splitCommandLine splits the content of /proc/<pid>/cmdline into arguments:
// they are separated and ended by NUL bytes; a missing final NUL (a process
// that rewrote its arguments, or a cut read) keeps the last argument.
func splitCommandLine(data []byte) []string {
	data = bytes.TrimSuffix(data, []byte{0})
	if len(data) == 0 {
		return nil
	}
	args := make([]string, 0, bytes.Count(data, []byte{0})+1)
	for a := range bytes.SplitSeq(data, []byte{0}) {
		args = append(args, string(a))
	}
	return args
}
