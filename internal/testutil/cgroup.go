package testutil

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
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

// Cgroup is a cgroup v2 of one test's own. The processes a test starts in
// it, and their children and threads, are the only ones whose calls carry
// its ID, so a test that filters what a tracer saw by that ID sees its own
// workload whatever else runs on the host, whatever pids are reused.
type Cgroup struct {
	// Path is its directory in the cgroup2 file system.
	Path string
	// HierarchyPath is its path from the cgroup2 hierarchy's root, as the
	// cgroup v2 line of /proc/<pid>/cgroup ("0::/memlock-test-…") names it.
	HierarchyPath string
	// ID is what bpf_get_current_cgroup_id returns in its processes (and
	// memlock.cgroup.id says): the inode number of Path.
	ID      uint64
	fd      int // Path, opened for clone3's CLONE_INTO_CGROUP
	removed bool
}

// NewCgroup creates an empty cgroup v2 at the root of the cgroup2 hierarchy
// (/sys/fs/cgroup/unified on a hybrid host such as this project's, the
// mount point itself on a unified one), named after the test, and removes
// it when the test ends. It returns ok false, and says why in the test's
// log, where there is no cgroup2 file system or it cannot be written (not
// root, read-only): the caller then tells its processes apart by pid.
func NewCgroup(tb testing.TB) (cg *Cgroup, ok bool) {
	tb.Helper()
	var suffix [6]byte
	rand.Read(suffix[:])
	return NewNamedCgroup(tb, "memlock-test-"+sanitize(tb.Name())+"-"+hex.EncodeToString(suffix[:]))
}

// NewNamedCgroup is NewCgroup with the cgroup's name given, e.g. like a
// container runtime's ("docker-<64 hex>.scope").
func NewNamedCgroup(tb testing.TB, name string) (cg *Cgroup, ok bool) {
	tb.Helper()
	mount := cgroup2Mount(tb)
	if mount == "" {
		tb.Log("no cgroup2 file system mounted: processes are told apart by pid only")
		return nil, false
	}
	path := filepath.Join(mount, name)
	if err := os.Mkdir(path, 0o755); err != nil {
		tb.Logf("cannot create a cgroup of the test's own (%v): processes are told apart by pid only", err)
		return nil, false
	}
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		os.Remove(path)
		tb.Fatalf("open cgroup %s: %v", path, err)
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		syscall.Close(fd)
		os.Remove(path)
		tb.Fatalf("stat cgroup %s: %v", path, err)
	}
	cg = &Cgroup{Path: path, HierarchyPath: "/" + name, ID: st.Ino, fd: fd}
	// Registered before the test's processes are started, so it runs after
	// the clean-ups that kill and reap them.
	tb.Cleanup(func() { cg.Remove(tb) })
	return cg, true
}

// Remove kills what is left in the cgroup and removes it, as a container
// runtime does once the container's processes are gone; the test's end
// does it anyway. A process is gone from cgroup.procs a moment after it
// exits, so rmdir is retried.
func (cg *Cgroup) Remove(tb testing.TB) {
	tb.Helper()
	if cg.removed {
		return
	}
	cg.removed = true
	defer syscall.Close(cg.fd)
	_ = os.WriteFile(filepath.Join(cg.Path, "cgroup.kill"), []byte("1"), 0) // Linux >= 5.14
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := syscall.Rmdir(cg.Path)
		if err == nil || errors.Is(err, syscall.ENOENT) {
			return
		}
		if !errors.Is(err, syscall.EBUSY) || time.Now().After(deadline) {
			procs, _ := os.ReadFile(filepath.Join(cg.Path, "cgroup.procs"))
			tb.Errorf("remove the test's cgroup %s: %v (processes in it: %q)", cg.Path, err, procs)
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// sysProcAttr starts a process straight into the cgroup (clone3 with
// CLONE_INTO_CGROUP), so that even its first call is made there.
func (cg *Cgroup) sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: cg.fd}
}

// sanitize makes a test's name usable in a cgroup's name.
func sanitize(name string) string {
	b := []byte(name)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			b[i] = '_'
		}
	}
	if len(b) > 64 {
		b = b[:64]
	}
	return string(b)
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
