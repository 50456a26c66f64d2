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
	"strconv"
	"strings"
	"testing"
)

// modulePath identifies the repository root among the go.mod files met while
// walking up; e2e/otelcol has a go.mod of its own that must be walked past.
const modulePath = "github.com/memlock-exporter/memlock-exporter"

// WorkloadCall is one line of the workload's output: one mlock or mlock2 call
// as the workload made it and as the kernel answered it.
type WorkloadCall struct {
	// Step names the step of the script, e.g. "libc_mlock2_zero".
	Step string `json:"step"`
	// Syscall is the syscall the kernel saw: "mlock" or "mlock2".
	Syscall string `json:"syscall"`
	// Libc is what user space called: "mlock", "mlock2", or "syscall" for a
	// raw syscall(2). glibc's mlock2 with flags 0 issues the mlock syscall.
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

	// Addr, Len and Flags are the arguments exactly as passed to the kernel.
	Addr  uint64 `json:"addr"`
	Len   uint64 `json:"len"`
	Flags uint64 `json:"flags"`

	// Ret is what the kernel returned: 0 or -errno.
	Ret int64 `json:"ret"`
	// Expect is the return the workload's script expected.
	Expect int64 `json:"expect"`
}

// workloadKeys are the JSON keys every line must carry, read from the struct
// tags so that the two cannot drift apart.
var workloadKeys = func() []string {
	t := reflect.TypeFor[WorkloadCall]()
	keys := make([]string, 0, t.NumField())
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		keys = append(keys, name)
	}
	return keys
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
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(tb.Context(), bin, args...)
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		tb.Fatalf("run workload %s: %v\nstderr:\n%s", strings.Join(cmd.Args, " "), err, stderr.Bytes())
	}
	if stderr.Len() > 0 {
		// Not an error: e.g. the note that steps needing root were skipped.
		tb.Logf("workload stderr:\n%s", stderr.Bytes())
	}
	calls, err := ParseWorkloadOutput(&stdout)
	if err != nil {
		tb.Fatalf("run workload %s: %v", strings.Join(cmd.Args, " "), err)
	}
	if len(calls) == 0 {
		tb.Fatalf("run workload %s: it reported no calls", strings.Join(cmd.Args, " "))
	}
	return calls
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

	if call.Step == "" {
		return WorkloadCall{}, errors.New("empty step")
	}
	if call.Syscall != "mlock" && call.Syscall != "mlock2" {
		return WorkloadCall{}, fmt.Errorf("syscall %q: want \"mlock\" or \"mlock2\"", call.Syscall)
	}
	if call.Libc != "mlock" && call.Libc != "mlock2" && call.Libc != "syscall" {
		return WorkloadCall{}, fmt.Errorf("libc %q: want \"mlock\", \"mlock2\" or \"syscall\"", call.Libc)
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
