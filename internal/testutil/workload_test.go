package testutil

import (
	"fmt"
	"os"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

const (
	goodLineA = `{"step":"libc_mlock2_zero","pid":123,"tid":123,"ppid":1,"uid":0,"euid":0,"gid":0,"egid":0,"comm":"workload","syscall":"mlock","libc":"mlock2","addr":140000000000,"len":4096,"flags":0,"ret":0,"expect":0}`
	goodLineB = `{"step":"thread_raw_mlock2_onfault","pid":123,"tid":124,"ppid":1,"uid":1000,"euid":1001,"gid":1002,"egid":1003,"comm":"wl-\"thread","syscall":"mlock2","libc":"syscall","addr":18446744073709547520,"len":200,"flags":1,"ret":-12,"expect":-22}`
	goodLineC = `{"step":"libc_mlock2_zero_munlock","pid":123,"tid":123,"ppid":1,"uid":0,"euid":0,"gid":0,"egid":0,"comm":"workload","syscall":"munlock","libc":"munlock","addr":140000000000,"len":4096,"flags":0,"ret":0,"expect":0}`
	goodLineD = `{"step":"libc_mlockall_current_future","pid":123,"tid":123,"ppid":1,"uid":0,"euid":0,"gid":0,"egid":0,"comm":"workload","syscall":"mlockall","libc":"mlockall","addr":0,"len":0,"flags":3,"ret":0,"expect":0}`
	goodLineE = `{"step":"libc_mlockall_current_future_munlockall","pid":123,"tid":123,"ppid":1,"uid":0,"euid":0,"gid":0,"egid":0,"comm":"workload","syscall":"munlockall","libc":"munlockall","addr":0,"len":0,"flags":0,"ret":0,"expect":0}`
	// The line --flood prints for all its calls.
	goodLineF = `{"step":"flood_mlock2_bad_flags","pid":125,"tid":125,"ppid":1,"uid":0,"euid":0,"gid":0,"egid":0,"comm":"workload","syscall":"mlock2","libc":"syscall","addr":140000000000,"len":4096,"flags":57005,"ret":-22,"expect":-22,"count":2500000}`
)

var (
	goodCallA = WorkloadCall{
		Step: "libc_mlock2_zero", Syscall: "mlock", Libc: "mlock2", Comm: "workload",
		PID: 123, TID: 123, PPID: 1,
		Addr: 140000000000, Len: 4096,
	}
	goodCallB = WorkloadCall{
		Step: "thread_raw_mlock2_onfault", Syscall: "mlock2", Libc: "syscall", Comm: `wl-"thread`,
		PID: 123, TID: 124, PPID: 1, UID: 1000, EUID: 1001, GID: 1002, EGID: 1003,
		Addr: 1<<64 - 4096, Len: 200, Flags: 1, Ret: -12, Expect: -22,
	}
	goodCallC = WorkloadCall{
		Step: "libc_mlock2_zero_munlock", Syscall: "munlock", Libc: "munlock", Comm: "workload",
		PID: 123, TID: 123, PPID: 1,
		Addr: 140000000000, Len: 4096,
	}
	goodCallD = WorkloadCall{
		Step: "libc_mlockall_current_future", Syscall: "mlockall", Libc: "mlockall", Comm: "workload",
		PID: 123, TID: 123, PPID: 1, Flags: 3,
	}
	goodCallE = WorkloadCall{
		Step: "libc_mlockall_current_future_munlockall", Syscall: "munlockall", Libc: "munlockall", Comm: "workload",
		PID: 123, TID: 123, PPID: 1,
	}
	goodCallF = WorkloadCall{
		Step: WorkloadFloodStep, Syscall: "mlock2", Libc: "syscall", Comm: "workload",
		PID: 125, TID: 125, PPID: 1,
		Addr: 140000000000, Len: 4096, Flags: WorkloadFloodFlags, Ret: -22, Expect: -22, Count: 2500000,
	}
)

func TestParseWorkloadOutput(t *testing.T) {
	for _, tt := range []struct {
		name    string
		in      string
		want    []WorkloadCall
		wantErr string // substring of the error; "" means no error
	}{
		{name: "empty", in: "", want: nil},
		{name: "one line", in: goodLineA + "\n", want: []WorkloadCall{goodCallA}},
		{name: "no final newline", in: goodLineA, want: []WorkloadCall{goodCallA}},
		{name: "two lines", in: goodLineA + "\n" + goodLineB + "\n", want: []WorkloadCall{goodCallA, goodCallB}},
		{
			name: "the whole family",
			in:   goodLineA + "\n" + goodLineC + "\n" + goodLineD + "\n" + goodLineE + "\n",
			want: []WorkloadCall{goodCallA, goodCallC, goodCallD, goodCallE},
		},
		{name: "malformed line", in: goodLineA + "\nmlock(0x1000, 4096) = 0\n", wantErr: "line 2"},
		{name: "truncated line", in: goodLineA[:len(goodLineA)-1] + "\n", wantErr: "line 1"},
		{name: "empty line", in: goodLineA + "\n\n" + goodLineB + "\n", wantErr: "line 2"},
		{name: "unknown field", in: strings.Replace(goodLineA, `"step"`, `"extra":1,"step"`, 1), wantErr: `unknown field "extra"`},
		{name: "missing field", in: strings.Replace(goodLineA, `"ret":0,`, ``, 1), wantErr: `missing field "ret"`},
		{name: "null field", in: strings.Replace(goodLineA, `"ret":0`, `"ret":null`, 1), wantErr: `field "ret" is null`},
		{name: "data after object", in: goodLineA + ` {}`, wantErr: "after the JSON object"},
		{name: "two objects on a line", in: goodLineA + goodLineA, wantErr: "after the JSON object"},
		{name: "negative pid", in: strings.Replace(goodLineA, `"pid":123`, `"pid":-1`, 1), wantErr: "line 1"},
		{name: "string for number", in: strings.Replace(goodLineA, `"len":4096`, `"len":"4096"`, 1), wantErr: "line 1"},
		{name: "unknown syscall", in: strings.Replace(goodLineA, `"syscall":"mlock"`, `"syscall":"mmap"`, 1), wantErr: `syscall "mmap"`},
		{name: "raw syscall as syscall", in: strings.Replace(goodLineA, `"syscall":"mlock"`, `"syscall":"syscall"`, 1), wantErr: `syscall "syscall"`},
		{name: "unknown libc", in: strings.Replace(goodLineA, `"libc":"mlock2"`, `"libc":"munmap"`, 1), wantErr: `libc "munmap"`},
		{name: "empty libc", in: strings.Replace(goodLineE, `"libc":"munlockall"`, `"libc":""`, 1), wantErr: `libc ""`},
		{name: "empty step", in: strings.Replace(goodLineA, `"step":"libc_mlock2_zero"`, `"step":""`, 1), wantErr: "empty step"},
		{name: "a line for many calls", in: goodLineA + "\n" + goodLineF + "\n", want: []WorkloadCall{goodCallA, goodCallF}},
		{name: "count of one", in: strings.Replace(goodLineF, `"count":2500000`, `"count":1`, 1), want: []WorkloadCall{{
			Step: goodCallF.Step, Syscall: "mlock2", Libc: "syscall", Comm: "workload", PID: 125, TID: 125, PPID: 1,
			Addr: goodCallF.Addr, Len: 4096, Flags: WorkloadFloodFlags, Ret: -22, Expect: -22, Count: 1,
		}}},
		{name: "count of none", in: strings.Replace(goodLineF, `"count":2500000`, `"count":0`, 1), wantErr: "count 0"},
		{name: "null count", in: strings.Replace(goodLineF, `"count":2500000`, `"count":null`, 1), wantErr: `field "count" is null`},
		{name: "negative count", in: strings.Replace(goodLineF, `"count":2500000`, `"count":-1`, 1), wantErr: "line 1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseWorkloadOutput(strings.NewReader(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseWorkloadOutput() error = %v, want one containing %q (calls %+v)", err, tt.wantErr, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseWorkloadOutput() error = %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("ParseWorkloadOutput() =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func TestWorkloadCallCalls(t *testing.T) {
	if got := goodCallA.Calls(); got != 1 {
		t.Errorf("a line without a count stands for %d calls, want 1", got)
	}
	if got := goodCallF.Calls(); got != 2500000 {
		t.Errorf("the flood's line stands for %d calls, want its count, 2500000", got)
	}
}

func TestDeclaresModule(t *testing.T) {
	for _, tt := range []struct {
		gomod string
		want  bool
	}{
		{"module " + modulePath + "\n\ngo 1.26.0\n", true},
		{"// comment\nmodule\t\"" + modulePath + "\" // quoted\n", true},
		{"module " + modulePath + "/e2e/otelcol\n", false},
		{"modulex " + modulePath + "\n", false},
		{"go 1.26.0\n", false},
	} {
		if got := declaresModule([]byte(tt.gomod), modulePath); got != tt.want {
			t.Errorf("declaresModule(%q) = %v, want %v", tt.gomod, got, tt.want)
		}
	}
}

// Where a step's addr must point.
const (
	atBuf     = iota // the buffer the script shares
	atBuf4000        // the buffer + 4000
	atHole           // a range with no mapping: page-aligned, outside the buffer
	atOwn            // a mapping of its own: page-aligned
	atNone           // 0: the call takes no address
)

// Which thread must make a step's call.
const (
	inMain   = iota // the main thread of the workload
	inThread        // a second thread of it
	inChild1        // the first child, nobody under a 64 KiB RLIMIT_MEMLOCK
	inChild2        // the second child, nobody under RLIMIT_MEMLOCK 0
)

// workloadStep is what the script promises for one step, in script order.
type workloadStep struct {
	step, syscall, libc string
	len, flags          uint64
	expect              int64
	addr, thread        int
}

// errno is the kernel's return for a failure with e: -e.
func errno(e syscall.Errno) int64 { return -int64(e) }

// workloadScript is one run of the workload's script as root. A step named
// X_munlock or X_munlockall undoes step X, which comes right before it.
var workloadScript = []workloadStep{
	{"libc_mlock2_zero", "mlock", "mlock2", 4096, 0, 0, atBuf, inMain}, // glibc: flags 0 -> mlock syscall
	{"libc_mlock2_zero_munlock", "munlock", "munlock", 4096, 0, 0, atBuf, inMain},
	{"raw_mlock2_zero", "mlock2", "syscall", 4096, 0, 0, atBuf, inMain},
	{"raw_mlock2_zero_munlock", "munlock", "munlock", 4096, 0, 0, atBuf, inMain},
	{"libc_mlock", "mlock", "mlock", 8192, 0, 0, atBuf, inMain},
	{"libc_mlock_munlock", "munlock", "munlock", 8192, 0, 0, atBuf, inMain},
	{"libc_mlock2_onfault", "mlock2", "mlock2", 4096, 1, 0, atBuf, inMain},
	{"libc_mlock2_onfault_munlock", "munlock", "munlock", 4096, 0, 0, atBuf, inMain},
	{"raw_mlock2_bad_flag", "mlock2", "syscall", 4096, 2, errno(syscall.EINVAL), atBuf, inMain},
	{"libc_mlock_unmapped", "mlock", "mlock", 8192, 0, errno(syscall.ENOMEM), atHole, inMain}, // no mapping
	{"libc_munlock_unmapped", "munlock", "munlock", 8192, 0, errno(syscall.ENOMEM), atHole, inMain},
	{"libc_mlock2_unaligned", "mlock2", "mlock2", 200, 1, 0, atBuf4000, inMain}, // buf+4000: 2 pages
	{"libc_mlock2_unaligned_munlock", "munlock", "munlock", 200, 0, 0, atBuf4000, inMain},
	{"libc_mlockall_current", "mlockall", "mlockall", 0, 1, 0, atNone, inMain},
	{"libc_mlockall_current_munlockall", "munlockall", "munlockall", 0, 0, 0, atNone, inMain},
	{"libc_mlockall_future", "mlockall", "mlockall", 0, 2, 0, atNone, inMain},
	{"libc_mlockall_future_munlockall", "munlockall", "munlockall", 0, 0, 0, atNone, inMain},
	{"libc_mlockall_current_future", "mlockall", "mlockall", 0, 3, 0, atNone, inMain},
	{"libc_mlockall_current_future_munlockall", "munlockall", "munlockall", 0, 0, 0, atNone, inMain},
	{"libc_mlockall_current_onfault", "mlockall", "mlockall", 0, 5, 0, atNone, inMain},
	{"libc_mlockall_current_onfault_munlockall", "munlockall", "munlockall", 0, 0, 0, atNone, inMain},
	{"libc_mlockall_future_onfault", "mlockall", "mlockall", 0, 6, 0, atNone, inMain},
	{"libc_mlockall_future_onfault_munlockall", "munlockall", "munlockall", 0, 0, 0, atNone, inMain},
	{"libc_mlockall_current_future_onfault", "mlockall", "mlockall", 0, 7, 0, atNone, inMain},
	{"libc_mlockall_current_future_onfault_munlockall", "munlockall", "munlockall", 0, 0, 0, atNone, inMain},
	{"libc_mlockall_zero", "mlockall", "mlockall", 0, 0, errno(syscall.EINVAL), atNone, inMain},
	{"libc_mlockall_onfault_only", "mlockall", "mlockall", 0, 4, errno(syscall.EINVAL), atNone, inMain}, // MCL_ONFAULT alone
	{"libc_mlockall_bad_flag", "mlockall", "mlockall", 0, 8, errno(syscall.EINVAL), atNone, inMain},
	{"thread_raw_mlock2_onfault", "mlock2", "syscall", 4096, 1, 0, atBuf, inThread},
	{"thread_raw_mlock2_onfault_munlock", "munlock", "munlock", 4096, 0, 0, atBuf, inThread},
	{"child_mlock_over_limit", "mlock", "mlock", 1 << 20, 0, errno(syscall.ENOMEM), atOwn, inChild1}, // over RLIMIT_MEMLOCK
	{"child_mlock_zero_limit", "mlock", "mlock", 4096, 0, errno(syscall.EPERM), atBuf, inChild2},     // RLIMIT_MEMLOCK 0
	{"child_mlockall_zero_limit", "mlockall", "mlockall", 0, 1, errno(syscall.EPERM), atNone, inChild2},
}

// bufLen is the size of the buffer the script shares (BUF_LEN).
const bufLen = 4 * 4096

func TestWorkload(t *testing.T) {
	RequireRoot(t)
	bin := BuildWorkload(t)

	t.Run("once", func(t *testing.T) {
		checkWorkloadRun(t, RunWorkload(t, bin))
	})
	t.Run("repeat", func(t *testing.T) {
		calls := RunWorkload(t, bin, "--repeat", "2", "--sleep-ms", "10")
		if len(calls) != 2*len(workloadScript) {
			t.Fatalf("got %d calls, want %d", len(calls), 2*len(workloadScript))
		}
		checkWorkloadRun(t, calls[:len(workloadScript)])
		checkWorkloadRun(t, calls[len(workloadScript):])
	})
	t.Run("pause", func(t *testing.T) {
		const pauseMs = 150
		start := time.Now()
		calls := RunWorkload(t, bin, "--repeat", "3", "--pause-ms", strconv.Itoa(pauseMs))
		took := time.Since(start)
		if len(calls) != 3*len(workloadScript) {
			t.Fatalf("got %d calls, want %d", len(calls), 3*len(workloadScript))
		}
		for i := range 3 {
			checkWorkloadRun(t, calls[i*len(workloadScript):(i+1)*len(workloadScript)])
		}
		// Two pauses, between the three runs.
		if took < 2*pauseMs*time.Millisecond {
			t.Errorf("three runs with --pause-ms %d took %v, want at least two pauses", pauseMs, took)
		}
	})
	t.Run("for", func(t *testing.T) {
		const forMs, pauseMs = 600, 100
		start := time.Now()
		calls := RunWorkload(t, bin, "--for-ms", strconv.Itoa(forMs), "--pause-ms", strconv.Itoa(pauseMs))
		took := time.Since(start)
		runs := len(calls) / len(workloadScript)
		if len(calls)%len(workloadScript) != 0 || runs < 2 {
			t.Fatalf("got %d calls, want whole runs of %d, at least two in %d ms", len(calls), len(workloadScript), forMs)
		}
		for i := range runs {
			checkWorkloadRun(t, calls[i*len(workloadScript):(i+1)*len(workloadScript)])
		}
		// No run starts after forMs: the last ends a run's length later.
		if took < forMs*time.Millisecond {
			t.Errorf("--for-ms %d ended after %v", forMs, took)
		}
		if most := forMs/pauseMs + 1; runs > most {
			t.Errorf("%d runs in %d ms with %d ms between them, want at most %d", runs, forMs, pauseMs, most)
		}
		// --repeat bounds it too.
		if calls := RunWorkload(t, bin, "--for-ms", "60000", "--repeat", "2"); len(calls) != 2*len(workloadScript) {
			t.Errorf("--for-ms 60000 --repeat 2: %d calls, want two runs' %d", len(calls), 2*len(workloadScript))
		}
	})
	t.Run("flood", func(t *testing.T) {
		const n = 100000
		start := time.Now()
		calls := RunWorkload(t, bin, "--flood", strconv.Itoa(n))
		took := time.Since(start)
		if len(calls) != 1 {
			t.Fatalf("--flood %d printed %d lines, want one for all its calls: %+v", n, len(calls), calls)
		}
		c := calls[0]
		want := WorkloadCall{
			Step: WorkloadFloodStep, Syscall: "mlock2", Libc: "syscall", Comm: "workload",
			PID: c.PID, TID: c.PID, PPID: uint32(os.Getpid()),
			Addr: c.Addr, Len: 4096, Flags: WorkloadFloodFlags, Ret: errno(syscall.EINVAL), Expect: errno(syscall.EINVAL), Count: n,
		}
		if c != want {
			t.Errorf("--flood %d printed\n%+v\nwant\n%+v", n, c, want)
		}
		if c.Addr == 0 || c.Addr%4096 != 0 {
			t.Errorf("addr %#x is not a page-aligned mapping", c.Addr)
		}
		if c.Calls() != n {
			t.Errorf("the line stands for %d calls, want %d", c.Calls(), n)
		}
		t.Logf("%d calls in %v: %.0f calls/s", n, took, n/took.Seconds())
	})
	t.Run("every call reported", func(t *testing.T) {
		// Every syscall of the family, and every libc wrapper of it but
		// munlock's and munlockall's (which have no other caller), appears.
		syscalls, libcs := map[string]bool{}, map[string]bool{}
		for _, s := range workloadScript {
			syscalls[s.syscall], libcs[s.libc] = true, true
		}
		for _, name := range WorkloadSyscalls {
			if !syscalls[name] || !libcs[name] {
				t.Errorf("the script has no %s syscall (%v) or no libc %s call (%v)", name, syscalls[name], name, libcs[name])
			}
		}
	})
	t.Run("hold", func(t *testing.T) {
		const holdMs = 1000
		w := StartWorkload(t, bin, "--hold-ms", strconv.Itoa(holdMs))
		var calls []WorkloadCall
		for {
			c, ok := w.Next(t)
			if !ok {
				t.Fatalf("output ended after %d calls without a %s step", len(calls), WorkloadHoldStep)
			}
			calls = append(calls, c)
			if c.Step == WorkloadHoldStep {
				break
			}
		}
		seen := time.Now()
		// While it holds the lock: exactly those pages are locked, under
		// the limit the workload inherited from us.
		pid := w.PID()
		if got, want := procStatusKB(t, pid, "VmLck"), uint64(WorkloadHoldPages*4096/1024); got != want {
			t.Errorf("VmLck of the holding workload = %d kB, want %d kB (%d pages)", got, want, WorkloadHoldPages)
		}
		var rl syscall.Rlimit
		if err := syscall.Getrlimit(unix.RLIMIT_MEMLOCK, &rl); err != nil {
			t.Fatal(err)
		}
		if got, want := procMemlockLimit(t, pid), rl.Cur; got != want {
			t.Errorf("soft RLIMIT_MEMLOCK in /proc/%d/limits = %d, want ours, %d", pid, got, want)
		}

		all := w.Wait(t)
		held := time.Since(seen)
		if len(all) != len(calls) {
			t.Errorf("%d calls after %s: %+v", len(all)-len(calls), WorkloadHoldStep, all[len(calls):])
		}
		if held < holdMs/2*time.Millisecond {
			t.Errorf("workload exited %v after reporting %s, want about %d ms", held, WorkloadHoldStep, holdMs)
		}
		if len(calls) != len(workloadScript)+1 {
			t.Fatalf("got %d calls, want the script's %d and %s", len(calls), len(workloadScript), WorkloadHoldStep)
		}
		checkWorkloadRun(t, calls[:len(workloadScript)])
		h, main := calls[len(workloadScript)], calls[0]
		if h.Syscall != "mlock" || h.Libc != "mlock" || h.Len != WorkloadHoldPages*4096 || h.Flags != 0 || h.Ret != 0 || h.Expect != 0 {
			t.Errorf("%s: %+v, want mlock of %d pages returning 0", h.Step, h, WorkloadHoldPages)
		}
		if h.Addr == 0 || h.Addr%4096 != 0 || h.PID != main.PID || h.TID != main.PID {
			t.Errorf("%s: addr %#x pid %d tid %d, want a page-aligned mapping in the main thread (%d)", h.Step, h.Addr, h.PID, h.TID, main.PID)
		}
	})
}

// procStatusKB returns the field (such as "VmLck") of /proc/<pid>/status,
// in kB.
func procStatusKB(t *testing.T, pid int, field string) uint64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(data)) {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			num, unit, _ := strings.Cut(strings.TrimSpace(rest), " ")
			n, err := strconv.ParseUint(num, 10, 64)
			if err != nil || unit != "kB" {
				t.Fatalf("/proc/%d/status: %q", pid, line)
			}
			return n
		}
	}
	t.Fatalf("/proc/%d/status has no %s", pid, field)
	return 0
}

// procMemlockLimit returns the soft "Max locked memory" of /proc/<pid>/limits
// in bytes, RLIM_INFINITY for "unlimited".
func procMemlockLimit(t *testing.T, pid int) uint64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(data)) {
		if rest, ok := strings.CutPrefix(line, "Max locked memory"); ok {
			soft := strings.Fields(rest)[0]
			if soft == "unlimited" {
				return unix.RLIM_INFINITY
			}
			n, err := strconv.ParseUint(soft, 10, 64)
			if err != nil {
				t.Fatalf("/proc/%d/limits: %q", pid, line)
			}
			return n
		}
	}
	t.Fatalf("/proc/%d/limits has no Max locked memory", pid)
	return 0
}

// checkWorkloadRun checks the calls of one run of the script.
func checkWorkloadRun(t *testing.T, calls []WorkloadCall) {
	t.Helper()
	if len(calls) != len(workloadScript) {
		t.Fatalf("got %d calls, want %d: %+v", len(calls), len(workloadScript), calls)
	}

	parent := calls[0]
	buf := parent.Addr
	if buf == 0 || buf%4096 != 0 {
		t.Errorf("buffer address %#x is not a page-aligned mapping", buf)
	}
	// The first call of each thread, which the others of it must match.
	first := map[int]WorkloadCall{}

	for i, want := range workloadScript {
		c := calls[i]
		if c.Step != want.step {
			t.Errorf("call %d: step %q, want %q", i, c.Step, want.step)
			continue
		}
		if c.Syscall != want.syscall || c.Libc != want.libc {
			t.Errorf("%s: syscall %q libc %q, want syscall %q libc %q", c.Step, c.Syscall, c.Libc, want.syscall, want.libc)
		}
		if c.Len != want.len || c.Flags != want.flags {
			t.Errorf("%s: len %d flags %d, want len %d flags %d", c.Step, c.Len, c.Flags, want.len, want.flags)
		}
		if c.Expect != want.expect || c.Ret != c.Expect {
			t.Errorf("%s: ret %d expect %d, want both %d", c.Step, c.Ret, c.Expect, want.expect)
		}

		switch want.addr {
		case atBuf:
			if c.Addr != buf {
				t.Errorf("%s: addr %#x, want the buffer %#x", c.Step, c.Addr, buf)
			}
		case atBuf4000:
			if c.Addr != buf+4000 {
				t.Errorf("%s: addr %#x, want buffer+4000 = %#x", c.Step, c.Addr, buf+4000)
			}
		case atHole:
			if c.Addr == 0 || c.Addr%4096 != 0 || (c.Addr+c.Len > buf && c.Addr < buf+bufLen) {
				t.Errorf("%s: addr %#x, want a page-aligned range outside the buffer %#x", c.Step, c.Addr, buf)
			}
		case atOwn:
			if c.Addr == 0 || c.Addr%4096 != 0 {
				t.Errorf("%s: addr %#x is not a page-aligned mapping", c.Step, c.Addr)
			}
		case atNone:
			if c.Addr != 0 {
				t.Errorf("%s: addr %#x, want 0", c.Step, c.Addr)
			}
		}
		// An undo names the lock it undoes, which comes right before it
		// and was given the same range.
		for _, suffix := range []string{"_munlock", "_munlockall"} {
			if lock, ok := strings.CutSuffix(c.Step, suffix); ok && suffix == "_"+c.Syscall {
				prev := calls[i-1]
				if prev.Step != lock || prev.TID != c.TID || prev.Addr != c.Addr || prev.Len != c.Len {
					t.Errorf("%s: follows %s (tid %d, addr %#x, len %d), want %s in tid %d with addr %#x, len %d",
						c.Step, prev.Step, prev.TID, prev.Addr, prev.Len, lock, c.TID, c.Addr, c.Len)
				}
			}
		}

		if f, ok := first[want.thread]; !ok {
			first[want.thread] = c
		} else if c.PID != f.PID || c.TID != f.TID || c.Comm != f.Comm {
			t.Errorf("%s: pid %d tid %d comm %q, want those of %s: pid %d tid %d comm %q",
				c.Step, c.PID, c.TID, c.Comm, f.Step, f.PID, f.TID, f.Comm)
		}
		switch want.thread {
		case inThread:
			if c.PID != parent.PID || c.TID == c.PID || c.Comm != "wl-thread" {
				t.Errorf("%s: pid %d tid %d comm %q, want pid %d, another tid, comm \"wl-thread\"", c.Step, c.PID, c.TID, c.Comm, parent.PID)
			}
		case inChild1, inChild2:
			if c.PID == parent.PID || c.TID != c.PID || c.PPID != parent.PID || c.Comm != "workload" {
				t.Errorf("%s: pid %d tid %d ppid %d comm %q, want a child of %d with tid = pid and comm \"workload\"",
					c.Step, c.PID, c.TID, c.PPID, c.Comm, parent.PID)
			}
			if c.UID != 65534 || c.EUID != 65534 || c.GID != 65534 || c.EGID != 65534 {
				t.Errorf("%s: uid %d euid %d gid %d egid %d, want nobody (65534) for all", c.Step, c.UID, c.EUID, c.GID, c.EGID)
			}
		default:
			if c.PID != parent.PID || c.TID != c.PID || c.PPID != parent.PPID || c.Comm != "workload" {
				t.Errorf("%s: pid %d tid %d ppid %d comm %q, want the main thread: pid = tid = %d, ppid %d, comm \"workload\"",
					c.Step, c.PID, c.TID, c.PPID, c.Comm, parent.PID, parent.PPID)
			}
			if c.UID != 0 || c.EUID != 0 {
				t.Errorf("%s: uid %d euid %d, want root", c.Step, c.UID, c.EUID)
			}
		}
	}
	if c1, c2 := first[inChild1], first[inChild2]; c1.PID == c2.PID {
		t.Errorf("both child steps ran in pid %d, want two children", c1.PID)
	}
}
