package testutil

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// modulePath identifies the repository root among the go.mod files met while
// walking up; e2e/otelcol has a go.mod of its own that must be walked past.
const modulePath = "github.com/memlock-exporter/memlock-exporter"

// WorkloadCall is one line of the workload's output: one call of the mlock
// family as the workload made it and as the kernel answered it. The
// workload reports every such call it makes, the munlock and munlockall
// that undo its locks included.
type WorkloadCall struct {
	// Step names the step of the script, e.g. "libc_mlock2_zero"; the
	// munlock that undoes it is "libc_mlock2_zero_munlock".
	Step string `json:"step"`
	// Syscall is the syscall the kernel saw: one of WorkloadSyscalls.
	Syscall string `json:"syscall"`
	// Libc is what user space called: one of WorkloadSyscalls, or
	// "syscall" for a raw syscall(2). glibc's mlock2 with flags 0 issues
	// the mlock syscall; its other wrappers issue the syscall of their name.
	Libc string `json:"libc"`
	// Comm is the calling thread's name.
	Comm string `json:"comm"`

	PID  uint32 `json:"pid"`
	TID  uint32 `json:"tid"`
	PPID uint32 `json:"ppid"`
	UID  uint32 `json:"uid"`
	EUID uint32 `json:"euid"`
	GID  uint32 `json:"gid"`
	EGID uint32 `json:"egid"`

	// Addr, Len and Flags are the arguments exactly as passed to the kernel,
	// zero for those the call does not take: mlockall has only Flags,
	// munlockall none, mlock and munlock no Flags.
	Addr  uint64 `json:"addr"`
	Len   uint64 `json:"len"`
	Flags uint64 `json:"flags"`

	// Ret is what the kernel returned: 0 or -errno.
	Ret int64 `json:"ret"`
	// Expect is the return the workload's script expected.
	Expect int64 `json:"expect"`

	// Count is how many identical calls the line stands for, on the one
	// line --flood prints for all its calls; 0 (the key absent) on a line
	// of one call. Calls says how many calls a line stands for either way.
	Count uint64 `json:"count,omitempty"`
}

// Calls is how many calls c stands for: Count, or 1 for a line without it.
func (c WorkloadCall) Calls() uint64 {
	if c.Count == 0 {
		return 1
	}
	return c.Count
}

// WorkloadFloodStep is the step of the line --flood prints for all its
// calls: raw mlock2 calls with WorkloadFloodFlags, which fail with EINVAL.
const (
	WorkloadFloodStep  = "flood_mlock2_bad_flags"
	WorkloadFloodFlags = 0xdead
)

// WorkloadSyscalls are the syscalls the workload makes and reports, as the
// kernel names them: the whole mlock family.
var WorkloadSyscalls = []string{"mlock", "mlock2", "munlock", "mlockall", "munlockall"}

// WorkloadHoldStep is the step --hold-ms adds after the script: an mlock of
// WorkloadHoldPages fresh pages that stay locked, with nothing printed after
// it, until the workload exits.
const (
	WorkloadHoldStep  = "hold_mlock"
	WorkloadHoldPages = 64
)

// workloadKeys are the JSON keys every line must carry, and optionalKeys
// those only some lines carry (the omitempty fields), read from the struct
// tags so that the two cannot drift apart.
var workloadKeys, optionalKeys = func() (required, optional []string) {
	t := reflect.TypeFor[WorkloadCall]()
	for f := range t.Fields() {
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if opts == "omitempty" {
			optional = append(optional, name)
		} else {
			required = append(required, name)
		}
	}
	return required, optional
}()

// RequireRoot skips the test unless it runs as root.
func RequireRoot(tb testing.TB) {
	tb.Helper()
	if euid := os.Geteuid(); euid != 0 {
		tb.Skipf("needs root: loading BPF programs, and the workload's steps that drop "+
			"a child to nobody under a lowered RLIMIT_MEMLOCK, require it (running as euid %d)", euid)
	}
}

// WorkloadBinEnv names the environment variable that points the tests at a
// prebuilt workload binary instead of compiling one. make vmtest sets it
// inside its virtual machines, which have no compiler; the binary there is
// built with gcc -static and is also named "workload".
const WorkloadBinEnv = "MEMLOCK_WORKLOAD_BIN"

// BuildWorkload compiles workload/workload.c with gcc into a temporary
// directory of tb and returns the path of the binary. The binary is named
// "workload", which is therefore the comm of its calls.
//
// If the environment variable MEMLOCK_WORKLOAD_BIN is set, it returns that
// path instead, after checking that it is an executable file, and compiles
// nothing.
func BuildWorkload(tb testing.TB) string {
	tb.Helper()
	if bin, ok := os.LookupEnv(WorkloadBinEnv); ok {
		fi, err := os.Stat(bin)
		if err != nil {
			tb.Fatalf("prebuilt workload named by %s: %v", WorkloadBinEnv, err)
		}
		if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
			tb.Fatalf("prebuilt workload named by %s: %s is not an executable file (mode %s)", WorkloadBinEnv, bin, fi.Mode())
		}
		return bin
	}
	root, err := repoRoot()
	if err != nil {
		tb.Fatalf("build workload: %v", err)
	}
	src := filepath.Join(root, "workload", "workload.c")
	bin := filepath.Join(tb.TempDir(), "workload")
	cmd := exec.CommandContext(tb.Context(), "gcc",
		"-O2", "-Wall", "-Wextra", "-Werror", "-pthread", "-o", bin, src)
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("build workload: %s: %v\n%s", strings.Join(cmd.Args, " "), err, out)
	}
	return bin
}

// RunWorkload runs the workload binary bin with args (such as "--repeat",
// "3") until it exits and returns the calls it reported. A non-zero exit, a
// line that does not parse strictly, or no calls at all fail the test.
func RunWorkload(tb testing.TB, bin string, args ...string) []WorkloadCall {
	tb.Helper()
	return StartWorkload(tb, bin, args...).Wait(tb)
}

// Workload is a running workload process, started by StartWorkload, whose
// calls can be read as it reports them: for a test that must look at the
// process while it runs, e.g. at /proc/<pid>/status while --hold-ms holds
// its lock.
type Workload struct {
	cmd    *exec.Cmd
	lines  *bufio.Scanner
	stderr SyncBuffer
	calls  []WorkloadCall
	line   int
}

// StartWorkload starts the workload binary bin with args. The process is
// killed when the test ends, if it is still running then.
func StartWorkload(tb testing.TB, bin string, args ...string) *Workload {
	tb.Helper()
	return startWorkload(tb, nil, bin, args)
}

// RunWorkload is RunWorkload with the workload, and so every process it
// forks, started in cg: all its calls carry cg.ID.
func (cg *Cgroup) RunWorkload(tb testing.TB, bin string, args ...string) []WorkloadCall {
	tb.Helper()
	return startWorkload(tb, cg, bin, args).Wait(tb)
}

// StartWorkload is StartWorkload with the workload started in cg.
func (cg *Cgroup) StartWorkload(tb testing.TB, bin string, args ...string) *Workload {
	tb.Helper()
	return startWorkload(tb, cg, bin, args)
}

// WorkloadCommand returns a command that runs the workload binary bin with
// args in cg, for a test that must run it away from the test's goroutine
// (where RunWorkload's failures could not stop the test): the caller runs
// it, and parses its output with ParseWorkloadOutput.
func (cg *Cgroup) WorkloadCommand(bin string, args ...string) *exec.Cmd {
	cmd := exec.Command(bin, args...)
	cmd.SysProcAttr = cg.sysProcAttr()
	return cmd
}

func startWorkload(tb testing.TB, cg *Cgroup, bin string, args []string) *Workload {
	tb.Helper()
	w := &Workload{cmd: exec.CommandContext(tb.Context(), bin, args...)}
	if cg != nil {
		w.cmd.SysProcAttr = cg.sysProcAttr()
	}
	w.cmd.Stderr = &w.stderr
	stdout, err := w.cmd.StdoutPipe()
	if err != nil {
		tb.Fatalf("start workload: %v", err)
	}
	if err := w.cmd.Start(); err != nil {
		tb.Fatalf("start workload %s: %v", strings.Join(w.cmd.Args, " "), err)
	}
	w.lines = bufio.NewScanner(stdout)
	tb.Cleanup(func() {
		if w.cmd.ProcessState == nil {
			w.cmd.Process.Kill()
			w.cmd.Wait()
		}
	})
	return w
}

// PID returns the workload's process id.
func (w *Workload) PID() int { return w.cmd.Process.Pid }

// Next blocks until the workload reports its next call and returns it; ok
// is false once its output has ended. A line that does not parse strictly
// fails the test, so Next, like Wait, must be called from the test's
// goroutine.
func (w *Workload) Next(tb testing.TB) (call WorkloadCall, ok bool) {
	tb.Helper()
	if !w.lines.Scan() {
		if err := w.lines.Err(); err != nil {
			tb.Fatalf("read workload output: %v", err)
		}
		return WorkloadCall{}, false
	}
	w.line++
	call, err := parseWorkloadLine(w.lines.Bytes())
	if err != nil {
		tb.Fatalf("parse workload line %d %q: %v", w.line, w.lines.Bytes(), err)
	}
	w.calls = append(w.calls, call)
	return call, true
}

// Wait reads the rest of the workload's output, waits for it to exit and
// returns every call it reported, those already returned by Next included.
// A non-zero exit, a line that does not parse strictly, or no calls at all
// fail the test.
func (w *Workload) Wait(tb testing.TB) []WorkloadCall {
	tb.Helper()
	for {
		if _, ok := w.Next(tb); !ok {
			break
		}
	}
	if err := w.cmd.Wait(); err != nil {
		tb.Fatalf("run workload %s: %v\nstderr:\n%s", strings.Join(w.cmd.Args, " "), err, w.stderr.String())
	}
	if stderr := w.stderr.String(); stderr != "" {
		// Not an error: e.g. the note that steps needing root were skipped.
		tb.Logf("workload stderr:\n%s", stderr)
	}
	if len(w.calls) == 0 {
		tb.Fatalf("run workload %s: it reported no calls", strings.Join(w.cmd.Args, " "))
	}
	return w.calls
}

// ParseWorkloadOutput parses the workload's stdout: one JSON object per line,
// each with exactly the keys of WorkloadCall, none null, and nothing after
// the object. Empty input gives no calls and no error; an empty line is an
// error like any other malformed line.
func ParseWorkloadOutput(r io.Reader) ([]WorkloadCall, error) {
	var calls []WorkloadCall
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		call, err := parseWorkloadLine(sc.Bytes())
		if err != nil {
			return nil, fmt.Errorf("parse workload line %d %q: %w", n, sc.Bytes(), err)
		}
		calls = append(calls, call)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read workload output: %w", err)
	}
	return calls, nil
}

func parseWorkloadLine(line []byte) (WorkloadCall, error) {
	var call WorkloadCall
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&call); err != nil {
		return WorkloadCall{}, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return WorkloadCall{}, errors.New("unexpected data after the JSON object")
	}

	// Decoding into the struct silently leaves a missing or null field at
	// zero, and zero is a plausible value for every one of them.
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(line, &raw); err != nil {
		return WorkloadCall{}, err
	}
	for _, k := range workloadKeys {
		v, ok := raw[k]
		if !ok {
			return WorkloadCall{}, fmt.Errorf("missing field %q", k)
		}
		if string(v) == "null" {
			return WorkloadCall{}, fmt.Errorf("field %q is null", k)
		}
	}
	for _, k := range optionalKeys {
		if v, ok := raw[k]; ok && string(v) == "null" {
			return WorkloadCall{}, fmt.Errorf("field %q is null", k)
		}
	}
	if _, ok := raw["count"]; ok && call.Count == 0 {
		return WorkloadCall{}, errors.New("count 0: a line stands for at least one call")
	}

	if call.Step == "" {
		return WorkloadCall{}, errors.New("empty step")
	}
	if !slices.Contains(WorkloadSyscalls, call.Syscall) {
		return WorkloadCall{}, fmt.Errorf("syscall %q: want one of %q", call.Syscall, WorkloadSyscalls)
	}
	if call.Libc != "syscall" && !slices.Contains(WorkloadSyscalls, call.Libc) {
		return WorkloadCall{}, fmt.Errorf("libc %q: want \"syscall\" or one of %q", call.Libc, WorkloadSyscalls)
	}
	return call, nil
}

// repoRoot walks up from the current directory to the one whose go.mod
// declares this module.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find repository root: %w", err)
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && declaresModule(data, modulePath) {
			return dir, nil
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("find repository root: %w", err)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("find repository root: no go.mod declaring module %s above the current directory", modulePath)
		}
		dir = parent
	}
}

// declaresModule reports whether the go.mod content gomod has the module
// directive "module path", possibly quoted or followed by a comment.
func declaresModule(gomod []byte, path string) bool {
	for line := range strings.Lines(string(gomod)) {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "module")
		if !ok || rest == "" || (rest[0] != ' ' && rest[0] != '\t' && rest[0] != '"') {
			continue
		}
		rest, _, _ = strings.Cut(rest, "//")
		name := strings.TrimSpace(rest)
		if unq, err := strconv.Unquote(name); err == nil {
			name = unq
		}
		return name == path
	}
	return false
}
