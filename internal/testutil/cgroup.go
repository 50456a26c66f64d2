package testutil

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// CgroupV2ID returns the id the kernel reports for this process's cgroup v2
// (bpf_get_current_cgroup_id): the inode number of its cgroupfs directory.
// ok is false when no cgroup2 file system is mounted.
func CgroupV2ID(tb testing.TB) (id uint64, ok bool) {
	tb.Helper()
	mount := cgroup2Mount(tb)
	if mount == "" {
		return 0, false
	}
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		tb.Fatalf("read /proc/self/cgroup: %v", err)
	}
	for line := range strings.Lines(string(data)) {
		if rest, found := strings.CutPrefix(strings.TrimSpace(line), "0::"); found {
			var st syscall.Stat_t
			if err := syscall.Stat(filepath.Join(mount, rest), &st); err != nil {
				tb.Fatalf("stat cgroup directory: %v", err)
			}
			return st.Ino, true
		}
	}
	return 0, false
}

func cgroup2Mount(tb testing.TB) string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		tb.Fatalf("open mountinfo: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// "... mountpoint options - fstype source superoptions"
		left, right, found := strings.Cut(sc.Text(), " - ")
		if !found {
			continue
		}
		if fields := strings.Fields(right); len(fields) > 0 && fields[0] == "cgroup2" {
			if lf := strings.Fields(left); len(lf) >= 5 {
				return lf[4]
			}
		}
	}
	return ""
}
