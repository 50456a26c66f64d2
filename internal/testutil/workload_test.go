package testutil

import (
	"reflect"
	"strings"
	"syscall"
	"testing"
)

const (
	goodLineA = `{"step":"libc_mlock2_zero","pid":123,"tid":123,"ppid":1,"uid":0,"euid":0,"gid":0,"egid":0,"comm":"workload","syscall":"mlock","libc":"mlock2","addr":140000000000,"len":4096,"flags":0,"ret":0,"expect":0}`
	goodLineB = `{"step":"thread_raw_mlock2_onfault","pid":123,"tid":124,"ppid":1,"uid":1000,"euid":1001,"gid":1002,"egid":1003,"comm":"wl-\"thread","syscall":"mlock2","libc":"syscall","addr":18446744073709547520,"len":200,"flags":1,"ret":-12,"expect":-22}`
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
		{name: "unknown syscall", in: strings.Replace(goodLineA, `"syscall":"mlock"`, `"syscall":"munlock"`, 1), wantErr: `syscall "munlock"`},
		{name: "unknown libc", in: strings.Replace(goodLineA, `"libc":"mlock2"`, `"libc":"mlockall"`, 1), wantErr: `libc "mlockall"`},
		{name: "empty step", in: strings.Replace(goodLineA, `"step":"libc_mlock2_zero"`, `"step":""`, 1), wantErr: "empty step"},
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

// workloadStep is what the script promises for one step, in script order.
type workloadStep struct {
	step, syscall, libc string
	len, flags          uint64
	expect              int64
}

// errno is the kernel's return for a failure with e: -e.
func errno(e syscall.Errno) int64 { return -int64(e) }

var workloadScript = []workloadStep{
	{"libc_mlock2_zero", "mlock", "mlock2", 4096, 0, 0}, // glibc: flags 0 -> mlock syscall
	{"raw_mlock2_zero", "mlock2", "syscall", 4096, 0, 0},
	{"libc_mlock", "mlock", "mlock", 8192, 0, 0},
	{"libc_mlock2_onfault", "mlock2", "mlock2", 4096, 1, 0},
	{"raw_mlock2_bad_flag", "mlock2", "syscall", 4096, 2, errno(syscall.EINVAL)},
	{"libc_mlock_unmapped", "mlock", "mlock", 8192, 0, errno(syscall.ENOMEM)}, // no mapping
	{"libc_mlock2_unaligned", "mlock2", "mlock2", 200, 1, 0},                  // buf+4000: 2 pages
	{"thread_raw_mlock2_onfault", "mlock2", "syscall", 4096, 1, 0},
	{"child_mlock_over_limit", "mlock", "mlock", 1 << 20, 0, errno(syscall.ENOMEM)}, // over RLIMIT_MEMLOCK
	{"child_mlock_zero_limit", "mlock", "mlock", 4096, 0, errno(syscall.EPERM)},     // RLIMIT_MEMLOCK 0
}

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

		switch c.Step {
		case "libc_mlock_unmapped", "child_mlock_over_limit":
			// Their own mappings.
		case "libc_mlock2_unaligned":
			if c.Addr != buf+4000 {
				t.Errorf("%s: addr %#x, want buffer+4000 = %#x", c.Step, c.Addr, buf+4000)
			}
		default:
			if c.Addr != buf {
				t.Errorf("%s: addr %#x, want the buffer %#x", c.Step, c.Addr, buf)
			}
		}

		switch c.Step {
		case "thread_raw_mlock2_onfault":
			if c.PID != parent.PID || c.TID == c.PID || c.Comm != "wl-thread" {
				t.Errorf("%s: pid %d tid %d comm %q, want pid %d, another tid, comm \"wl-thread\"", c.Step, c.PID, c.TID, c.Comm, parent.PID)
			}
		case "child_mlock_over_limit", "child_mlock_zero_limit":
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
	if calls[8].PID == calls[9].PID {
		t.Errorf("both child steps ran in pid %d, want two children", calls[8].PID)
	}
}
