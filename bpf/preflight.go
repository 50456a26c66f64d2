package bpf

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// Paths the preflight checks look at; variables so tests can point them
// elsewhere.
var (
	btfPath     = "/sys/kernel/btf/vmlinux"
	tracefsPath = "/sys/kernel/tracing"
	debugfsPath = "/sys/kernel/debug/tracing"
)

// Capabilities the tracer needs (linux/capability.h). CAP_BPF and
// CAP_PERFMON exist since Linux 5.8; before that CAP_SYS_ADMIN covered both.
const (
	capSysAdmin = 21
	capPerfmon  = 38
	capBPF      = 39
)

// Preflight checks what loading and attaching need, in the order a person
// would fix them, and returns the first problem as an error that says what
// to do. It mounts tracefs itself when it can.
func Preflight() error {
	if err := checkCapabilities(); err != nil {
		return err
	}
	if _, err := os.Stat(btfPath); err != nil {
		return fmt.Errorf("no kernel BTF at %s (%v): this kernel lacks CONFIG_DEBUG_INFO_BTF=y, which memlock-exporter needs to relocate its programs; run it on a kernel built with BTF", btfPath, errors.Unwrap(err))
	}
	return ensureTracefs()
}

func checkCapabilities() error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("read process capabilities: %w", err)
	}
	has := func(c uint) bool { return data[c/32].Effective&(1<<(c%32)) != 0 }
	if has(capSysAdmin) || (has(capBPF) && has(capPerfmon)) {
		return nil
	}
	var missing []string
	if !has(capBPF) {
		missing = append(missing, "CAP_BPF")
	}
	if !has(capPerfmon) {
		missing = append(missing, "CAP_PERFMON")
	}
	return fmt.Errorf("missing capabilities %s (or CAP_SYS_ADMIN): run memlock-exporter as root, or grant them with `setcap cap_bpf,cap_perfmon+ep` on the binary (euid %d)", strings.Join(missing, " and "), os.Geteuid())
}

// ensureTracefs makes sure the syscall tracepoints can be found: tracefs at
// /sys/kernel/tracing, or the older debugfs location. If neither is there it
// mounts tracefs, which is what an operator would do by hand.
func ensureTracefs() error {
	for _, dir := range []string{tracefsPath, debugfsPath} {
		if _, err := os.Stat(dir + "/events"); err == nil {
			return nil
		}
	}
	if err := unix.Mount("nodev", tracefsPath, "tracefs", 0, ""); err != nil {
		return fmt.Errorf("tracefs is not mounted and mounting it at %s failed (%v): mount it with `mount -t tracefs nodev %s` (in a container, bind-mount the host's /sys/kernel/tracing)", tracefsPath, err, tracefsPath)
	}
	if _, err := os.Stat(tracefsPath + "/events"); err != nil {
		return fmt.Errorf("mounted tracefs at %s but it has no events directory: the kernel lacks CONFIG_FTRACE_SYSCALLS or tracing support", tracefsPath)
	}
	return nil
}
