package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/memlock-exporter/memlock-exporter/internal/testutil"
)

// TestCapabilities proves the least-privilege set of deploy/CAPABILITIES.md
// (issue #12): the daemon runs fully with CAP_BPF and CAP_PERFMON alone
// (and CAP_SYS_RESOURCE before Linux 5.11), and each of them is needed.
//
// Each row runs the daemon under setpriv. As uid 0, exec gives a process
// its bounding set as its permitted and effective sets, so the bounding set
// is exactly what the daemon holds; the inheritable set is cleared so that
// nothing comes back through it. As another uid, root's implicit powers
// (owning tracefs, ...) are gone too: the capabilities are given as ambient
// ones. Every row runs under a hard RLIMIT_MEMLOCK of 64 KiB, below what
// the daemon's maps take, so that rlimit.RemoveMemlock must either find
// memcg accounting (5.11 and later) or raise the limit, which takes
// CAP_SYS_RESOURCE.
//
// A row that must work starts the daemon with the per-process gauges on
// and the metrics on the console, and runs the workload as nobody from a
// world-readable copy: the daemon must print its calls, and report its
// locked memory from /proc/<pid>/status of a process of another user,
// without DAC or ptrace capabilities. A row that must fail must exit with
// the message an operator would see.
func TestCapabilities(t *testing.T) {
	testutil.RequireRoot(t)
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("needs setpriv (util-linux) to run the daemon with fewer capabilities: " + err.Error())
	}
	prlimit, err := exec.LookPath("prlimit")
	if err != nil {
		t.Skip("needs prlimit (util-linux) to lower the daemon's RLIMIT_MEMLOCK: " + err.Error())
	}

	// Before 5.11 the kernel charges BPF maps to RLIMIT_MEMLOCK, and the
	// daemon must raise it.
	oldKernel := kernelBefore(t, 5, 11)
	minimal := []string{"bpf", "perfmon"}
	if oldKernel {
		minimal = append(minimal, "sys_resource")
	}
	without := func(c string) []string {
		var out []string
		for _, m := range minimal {
			if m != c {
				out = append(out, m)
			}
		}
		return out
	}

	type row struct {
		name string
		caps []string // the capabilities the daemon holds, setpriv's names
		// allBut means every capability but caps, for the row that shows
		// that CAP_SYS_ADMIN is not needed even when all else is there.
		allBut  bool
		nonRoot bool   // run as nobody, with caps as ambient capabilities
		wantErr string // "" for a daemon that must work fully
	}
	rows := []row{
		{name: "minimal", caps: minimal},
		{name: "without CAP_BPF", caps: without("bpf"),
			wantErr: "missing capabilities CAP_BPF (or CAP_SYS_ADMIN)"},
		{name: "without CAP_PERFMON", caps: without("perfmon"),
			wantErr: "missing capabilities CAP_PERFMON (or CAP_SYS_ADMIN)"},
		{name: "all but CAP_SYS_ADMIN", caps: []string{"sys_admin"}, allBut: true},
	}
	if oldKernel {
		rows = append(rows, row{name: "without CAP_SYS_RESOURCE", caps: without("sys_resource"),
			wantErr: "raise RLIMIT_MEMLOCK for BPF maps: failed to set memlock rlimit: operation not permitted"})
	}
	// Not uid 0, the daemon cannot open tracefs, which the kernel makes
	// root's alone (mode 0700), to find the tracepoints' ids; it then takes
	// tracefs for unmounted and fails to mount it. CAP_DAC_READ_SEARCH
	// lets it in.
	if fi, err := os.Stat("/sys/kernel/tracing"); err == nil && fi.Mode().Perm()&0o001 == 0 {
		rows = append(rows,
			row{name: "non-root with CAP_DAC_READ_SEARCH", caps: slices.Concat(minimal, []string{"dac_read_search"}), nonRoot: true},
			row{name: "non-root without CAP_DAC_READ_SEARCH", caps: minimal, nonRoot: true,
				wantErr: "tracefs is not mounted and mounting it at /sys/kernel/tracing failed (operation not permitted)"})
	}

	// Nobody must be able to run both binaries: a directory everyone may
	// enter, under the test's temporary ones, which only root may.
	shared := worldReadableDir(t)
	daemon := copyExecutable(t, buildDaemon(t), filepath.Join(shared, "memlock-exporter"))
	// Named workload still: its comm is what the daemon prints.
	workload := copyExecutable(t, testutil.BuildWorkload(t), filepath.Join(shared, "workload"))

	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			list := "+" + strings.Join(r.caps, ",+")
			args := []string{"--memlock=65536:65536", "--", setpriv}
			switch {
			case r.allBut:
				args = append(args, "--bounding-set", "+all,-"+strings.Join(r.caps, ",-"), "--inh-caps", "-all")
			case r.nonRoot:
				args = append(args, "--reuid=65534", "--regid=65534", "--clear-groups",
					"--inh-caps", "-all,"+list, "--ambient-caps", "-all,"+list, "--bounding-set", "-all,"+list)
			default:
				args = append(args, "--bounding-set", "-all,"+list, "--inh-caps", "-all")
			}
			args = append(args, "--", daemon, "--print")
			cmd := exec.CommandContext(t.Context(), prlimit, args...)
			cmd.Env = append(cmd.Environ(),
				"MEMLOCK_EXPORTER_LOG_LEVEL=debug",
				"MEMLOCK_EXPORTER_FLUSH_INTERVAL=20ms",
				"MEMLOCK_EXPORTER_PROCESS_METRICS=on",
				"OTEL_LOGS_EXPORTER=none",
				"OTEL_TRACES_EXPORTER=none",
				"OTEL_METRICS_EXPORTER=console",
				"OTEL_METRIC_EXPORT_INTERVAL=100",
			)
			if r.wantErr != "" {
				expectStartFailure(t, cmd, r.wantErr)
				return
			}
			expectFullRun(t, cmd, workload, setpriv)
		})
	}
}

// expectStartFailure runs cmd, a daemon that must refuse to start, and
// checks its exit and message.
func expectStartFailure(t *testing.T, cmd *exec.Cmd, wantErr string) {
	t.Helper()
	var stderr strings.Builder
	cmd.Stdout, cmd.Stderr = io.Discard, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// It fails at once; one that started after all is stopped in time.
	stop := time.AfterFunc(10*time.Second, func() { cmd.Process.Kill() })
	defer stop.Stop()
	err := cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != exitFailed {
		t.Fatalf("daemon: %v, want exit code %d\n%s", err, exitFailed, &stderr)
	}
	if !strings.Contains(stderr.String(), "cannot start tracing") || !strings.Contains(stderr.String(), wantErr) {
		t.Errorf("daemon's stderr lacks %q:\n%s", wantErr, &stderr)
	}
}

// expectFullRun runs cmd, a daemon that must work fully: it must attach
// its hooks, print the calls of a workload run as nobody, report that
// process's locked memory, log no error, and exit cleanly on SIGTERM.
func expectFullRun(t *testing.T, cmd *exec.Cmd, workload, setpriv string) {
	t.Helper()
	stdout, stderr := startCommand(t, cmd, "memlock-exporter started")

	// --hold-ms keeps 64 pages locked long enough for a few samples.
	w := testutil.StartWorkload(t, setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--",
		workload, "--hold-ms", "1000")
	pid := w.PID() // setpriv execs the workload: the same process
	waitFor(t, "memlock.process.locked above 0 for the workload (run as nobody)", func() bool {
		return processLocked(stdout.String(), pid) > 0
	})
	calls := w.Wait(t)

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("daemon did not exit cleanly after SIGTERM: %v\n%s", err, stderr)
	}
	// One printed line per call of the workload's threads; children it
	// forks have pids of their own and are counted the same way.
	want := map[string]int{}
	for _, c := range calls {
		want[fmt.Sprintf(" pid=%d tid=%d comm=%q ", c.PID, c.TID, c.Comm)]++
	}
	for line := range strings.Lines(stdout.String()) {
		for prefix := range want {
			if strings.Contains(line, prefix) {
				want[prefix]--
			}
		}
	}
	for prefix, missing := range want {
		if missing != 0 {
			t.Errorf("%d lines fewer than calls for%s\n%s", missing, prefix, stdout)
		}
	}
	for line := range strings.Lines(stderr.String()) {
		if strings.Contains(line, "level=ERROR") {
			t.Errorf("daemon logged an error: %s", line)
		}
	}
}

// processLocked returns the latest memlock.process.locked value for pid in
// the console metrics exporter's output (one JSON document a line, mixed
// with --print's lines), or 0 if there is none. The gauges skip a process
// whose /proc/<pid>/status they cannot read, without a log: the data point
// is the proof that they could.
func processLocked(stdout string, pid int) int64 {
	var last int64
	for line := range strings.Lines(stdout) {
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var doc struct {
			ScopeMetrics []struct {
				Metrics []struct {
					Name string
					Data struct {
						DataPoints []struct {
							Attributes []struct {
								Key   string
								Value struct{ Value json.RawMessage }
							}
							Value json.RawMessage
						}
					}
				}
			}
		}
		if json.Unmarshal([]byte(line), &doc) != nil {
			continue
		}
		for _, sm := range doc.ScopeMetrics {
			for _, m := range sm.Metrics {
				if m.Name != "memlock.process.locked" {
					continue
				}
				for _, dp := range m.Data.DataPoints {
					for _, a := range dp.Attributes {
						if a.Key == "process.pid" && string(a.Value.Value) == strconv.Itoa(pid) {
							if v, err := strconv.ParseInt(string(dp.Value), 10, 64); err == nil {
								last = v
							}
						}
					}
				}
			}
		}
	}
	return last
}

// kernelBefore reports whether the running kernel is older than
// major.minor.
func kernelBefore(t *testing.T, major, minor int) bool {
	t.Helper()
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatal(err)
	}
	release := unix.ByteSliceToString(u.Release[:])
	var maj, min int
	if _, err := fmt.Sscanf(release, "%d.%d", &maj, &min); err != nil {
		t.Fatalf("kernel release %q: %v", release, err)
	}
	return maj < major || maj == major && min < minor
}

// worldReadableDir returns a new temporary directory that every user may
// enter, as may they its parent (t.TempDir makes both root's alone).
func worldReadableDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// copyExecutable copies the executable src to dst, readable and runnable
// by all, and returns dst.
func copyExecutable(t *testing.T, src, dst string) string {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, data, 0o755); err != nil {
		t.Fatal(err)
	}
	return dst
}
