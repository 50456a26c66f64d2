package procfs

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// These tests read the real /proc of this machine and need no privilege.

// requireProc skips the test when /proc is not procfs.
func requireProc(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skipf("no procfs at /proc: %v", err)
	}
}

func TestRealReadInfoSelf(t *testing.T) {
	requireProc(t)
	pid := uint32(os.Getpid())
	info, err := ReadInfo("/proc", pid, true)
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if resolved, err := filepath.EvalSymlinks(exe); err == nil {
		exe = resolved
	}
	if info.ExePath != exe || info.ExeDeleted {
		t.Errorf("ExePath = %q (deleted %v), want this test binary %q", info.ExePath, info.ExeDeleted, exe)
	}
	if !slices.Equal(info.CommandArgs, os.Args) {
		t.Errorf("CommandArgs = %q, want os.Args %q", info.CommandArgs, os.Args)
	}
	cgroup, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	if want := ParseCgroupFile(cgroup); info.CgroupPath != want || want == "" {
		t.Errorf("CgroupPath = %q, want %q from /proc/self/cgroup:\n%s", info.CgroupPath, want, cgroup)
	}
	if want := ContainerID(info.CgroupPath); info.ContainerID != want && want != "" {
		t.Errorf("ContainerID = %q, want %q", info.ContainerID, want)
	}
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	nspid, _ := field(status, "NSpid")
	fields := strings.Fields(nspid)
	if len(fields) > 0 && fields[len(fields)-1] != strconv.FormatUint(uint64(info.VPID), 10) {
		t.Errorf("VPID = %d, want the last NSpid value in %q", info.VPID, nspid)
	}
	if info.InPIDNamespace != (len(fields) > 1) {
		t.Errorf("InPIDNamespace = %v with NSpid %q", info.InPIDNamespace, nspid)
	}
	if !info.InPIDNamespace && info.VPID != pid {
		t.Errorf("VPID = %d outside a pid namespace, want the pid %d", info.VPID, pid)
	}
	t.Logf("self: %+v", info)
}

func TestRealReadInfoChild(t *testing.T) {
	requireProc(t)
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skipf("no sleep binary: %v", err)
	}
	cmd := exec.Command(sleep, "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := uint32(cmd.Process.Pid)
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	resolved, err := filepath.EvalSymlinks(sleep)
	if err != nil {
		t.Fatal(err)
	}
	// Start returns once exec has begun; the new image's exe link and
	// arguments can lag a moment behind, so wait for them before caching.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if i, err := ReadInfo("/proc", pid, true); err == nil && i.ExePath == resolved && len(i.CommandArgs) == 2 {
			break
		}
	}
	c, err := NewCache("/proc", 16, 10*NegativeTTL, true)
	if err != nil {
		t.Fatal(err)
	}
	info, ok := c.Get(pid)
	if !ok || info.ExePath != resolved || !slices.Equal(info.CommandArgs, []string{sleep, "30"}) {
		t.Errorf("Get(child %d) = %+v, %v; want %s with arguments [%s 30]", pid, info, ok, resolved, sleep)
	}

	cmd.Process.Kill()
	cmd.Wait()
	if _, err := ReadInfo("/proc", pid, false); !errors.Is(err, ErrNoProcess) {
		t.Errorf("ReadInfo(reaped child) error = %v, want ErrNoProcess", err)
	}
	if _, err := ReadLocked("/proc", pid); !errors.Is(err, ErrNoProcess) {
		t.Errorf("ReadLocked(reaped child) error = %v, want ErrNoProcess", err)
	}
	if _, ok := c.Get(pid); !ok {
		t.Error("Get(reaped child) within ttl = false, want the cached context")
	}
}

func TestRealLockedMemory(t *testing.T) {
	requireProc(t)
	pid := uint32(os.Getpid())
	page := os.Getpagesize()
	mem, err := unix.Mmap(-1, 0, page, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(mem)

	before, err := ReadLocked("/proc", pid)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Mlock(mem); err != nil {
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.ENOMEM) {
			t.Skipf("mlock of one page failed (RLIMIT_MEMLOCK too low and no CAP_IPC_LOCK): %v", err)
		}
		t.Fatal(err)
	}
	defer unix.Munlock(mem)

	after, err := ReadLocked("/proc", pid)
	if err != nil {
		t.Fatal(err)
	}
	if after < before+uint64(page) {
		t.Errorf("VmLck after locking one page = %d bytes, want at least %d + %d", after, before, page)
	}
	system, err := ReadSystemLocked("/proc")
	if err != nil {
		t.Fatal(err)
	}
	if system < uint64(page) {
		t.Errorf("Mlocked = %d bytes with a page locked, want at least %d", system, page)
	}
	t.Logf("VmLck %d -> %d bytes; system Mlocked %d bytes", before, after, system)

	unix.Munlock(mem)
	if unlocked, err := ReadLocked("/proc", pid); err != nil || unlocked != before {
		t.Errorf("VmLck after munlock = %d, %v; want %d", unlocked, err, before)
	}
}

func TestRealMemlockLimit(t *testing.T) {
	requireProc(t)
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_MEMLOCK, &rl); err != nil {
		t.Fatal(err)
	}
	soft, unlimited, err := ReadMemlockLimit("/proc", uint32(os.Getpid()))
	if err != nil {
		t.Fatal(err)
	}
	if soft != rl.Cur || unlimited != (rl.Cur == unix.RLIM_INFINITY) {
		t.Errorf("ReadMemlockLimit = %d, unlimited %v; getrlimit says %d", soft, unlimited, rl.Cur)
	}
}

func TestRealKernelThread(t *testing.T) {
	requireProc(t)
	// kthreadd is pid 2 on the host; in a pid namespace it is not there.
	status, err := os.ReadFile("/proc/2/status")
	if err != nil || !strings.Contains(string(status), "Name:\tkthreadd") {
		t.Skip("kthreadd is not pid 2 here (pid namespace?)")
	}
	info, err := ReadInfo("/proc", 2, true)
	// Without CAP_SYS_PTRACE, readlink of its exe fails with EACCES: a partial read.
	if err != nil && !errors.Is(err, fs.ErrPermission) || info.ExePath != "" || info.CommandArgs != nil || info.VPID != 2 {
		t.Errorf("ReadInfo(kthreadd) = %+v, %v; want no exe, no args, VPID 2, no error but EACCES", info, err)
	}
	if _, err := ReadLocked("/proc", 2); !errors.Is(err, ErrFieldMissing) {
		t.Errorf("ReadLocked(kthreadd) error = %v, want ErrFieldMissing", err)
	}
}

func BenchmarkReadLocked(b *testing.B) {
	pid := uint32(os.Getpid())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ReadLocked("/proc", pid); err != nil {
			b.Fatal(err)
		}
	}
}
