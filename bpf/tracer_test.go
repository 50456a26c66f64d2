package bpf_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/memlock-exporter/memlock-exporter/bpf"
	"github.com/memlock-exporter/memlock-exporter/internal/testutil"
	"golang.org/x/sys/unix"
)

// collector gathers events from a reader running in the background.
type collector struct {
	mu     sync.Mutex
	events []bpf.Event
}

func (c *collector) add(ev *bpf.Event) {
	c.mu.Lock()
	c.events = append(c.events, *ev)
	c.mu.Unlock()
}

func (c *collector) snapshot() []bpf.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]bpf.Event(nil), c.events...)
}

// startTracer loads and attaches the real programs and runs a reader. stop
// ends the reader, which first hands over every record already in the ring
// buffer: after a workload has exited, the collector then holds all its
// events, with no waiting. stop may be called more than once.
func startTracer(t *testing.T, opts bpf.Options) (tr *bpf.Tracer, r *bpf.Reader, c *collector, stop func()) {
	t.Helper()
	testutil.RequireRoot(t)
	tr, err := bpf.Open(opts)
	if err != nil {
		t.Fatalf("open tracer: %v", err)
	}
	t.Cleanup(func() {
		if err := tr.Close(); err != nil {
			t.Errorf("close tracer: %v", err)
		}
	})
	r, err = tr.NewReader(bpf.ReaderOptions{
		FlushInterval: 20 * time.Millisecond,
		OnMalformed:   func(err error, _ []byte) { t.Errorf("malformed record: %v", err) },
	})
	if err != nil {
		t.Fatalf("open reader: %v", err)
	}
	c = &collector{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, c.add) }()
	stop = sync.OnceFunc(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("reader: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("reader did not return within 10s of its context's end")
		}
	})
	t.Cleanup(func() {
		stop()
		r.Close()
	})
	return tr, r, c, stop
}

// availableHooks tries every kind of hook alone and returns those this
// kernel accepts, in preference order. MEMLOCK_TEST_EXPECT_HOOKS (a comma
// list, set by make vmtest for each kernel) makes a missing kind a failure
// instead of a fact to report. The answer is found once per test binary:
// under make vmtest's emulation each try costs seconds.
func availableHooks(t *testing.T) []bpf.Probe {
	t.Helper()
	testutil.RequireRoot(t)
	hooksMu.Lock()
	defer hooksMu.Unlock()
	if hooksFound == nil {
		hooksFound = findHooks(t)
	} else {
		t.Logf("hooks that attach on this kernel (found before): %v", hooksFound)
	}
	return slices.Clone(hooksFound)
}

var (
	hooksMu    sync.Mutex
	hooksFound []bpf.Probe
)

func findHooks(t *testing.T) []bpf.Probe {
	t.Helper()
	var ok []bpf.Probe
	for _, kind := range bpf.HookPreference {
		tr, err := bpf.Open(bpf.Options{Hooks: []bpf.Probe{kind}})
		if err != nil {
			t.Logf("%s: not available here: %v", kind, err)
			continue
		}
		tr.Close()
		ok = append(ok, kind)
	}
	if want := os.Getenv("MEMLOCK_TEST_EXPECT_HOOKS"); want != "" {
		for _, name := range strings.Split(want, ",") {
			if !slices.ContainsFunc(ok, func(p bpf.Probe) bool { return p.String() == name }) {
				t.Errorf("MEMLOCK_TEST_EXPECT_HOOKS lists %s, but it does not attach on this kernel", name)
			}
		}
	}
	if len(ok) == 0 {
		t.Fatal("no kind of hook attaches on this kernel")
	}
	return ok
}

// TestAutoPicksBestHook: with no preference given, every syscall gets the
// best kind of hook that works on this kernel, and the plan says why the
// better ones were skipped.
func TestAutoPicksBestHook(t *testing.T) {
	avail := availableHooks(t)
	t.Logf("hooks that attach on this kernel: %v", avail)
	tr, _, _, _ := startTracer(t, bpf.Options{})
	hooks := tr.Hooks()
	if len(hooks) != len(bpf.DefaultSyscalls) {
		t.Fatalf("got %d hooks, want one per default syscall: %v", len(hooks), hooks)
	}
	// The kinds are probed with one syscall; another may take a better
	// one (on 5.10 fentry attaches to munlockall, which reads no
	// argument, but not to the others), never a worse one.
	best := avail[0]
	for i, h := range hooks {
		rank := slices.Index(bpf.HookPreference, h.Probe)
		if h.Syscall != bpf.DefaultSyscalls[i] || rank < 0 || rank > slices.Index(bpf.HookPreference, best) || h.Err != nil {
			t.Errorf("hook %d = %v, want %s attached with %s or better", i, h, bpf.DefaultSyscalls[i], best)
		}
		if len(h.Skipped) != rank {
			t.Errorf("%s: skipped %q, want one reason for each of the %d better kinds", h.Syscall, h.Skipped, rank)
		}
	}
	t.Logf("plan:\n%s", tr.Plan())
}

// allSyscalls is the whole mlock family, which the workload calls and
// reports in full.
var allSyscalls = func() []bpf.Syscall {
	var all []bpf.Syscall
	for s := bpf.SyscallMlock; s <= bpf.SyscallMunlockall; s++ {
		all = append(all, s)
	}
	return all
}()

// TestWorkloadEventsExact runs a workload whose every call of the mlock
// family is known, with all five syscalls traced, and checks that each
// produced exactly one event with every field right, and that nothing else
// was reported for its processes. Another process calls mlock2 all along
// (besides whatever else runs on the host): the tracer sees it too, and the
// test must see only its own workload, which it runs in a cgroup of its own
// where it can (else it tells it apart by pid).
func TestWorkloadEventsExact(t *testing.T) {
	testutil.RequireRoot(t)
	bin := testutil.BuildWorkload(t)
	noise := testutil.StartNoise(t, bin, 2*time.Millisecond)
	type tcase struct {
		name string
		opts bpf.Options
	}
	var cases []tcase
	// Every kind of hook this kernel supports must deliver the same events.
	for _, kind := range availableHooks(t) {
		cases = append(cases,
			tcase{kind.String() + "/wake-up per record", bpf.Options{Hooks: []bpf.Probe{kind}}},
			tcase{kind.String() + "/batched wake-ups", bpf.Options{Hooks: []bpf.Probe{kind}, WakeupBytes: 64 << 10}},
			tcase{kind.String() + "/legacy task access", bpf.Options{Hooks: []bpf.Probe{kind}, WakeupBytes: 64 << 10, LegacyTaskAccess: true}},
			tcase{kind.String() + "/libc uprobes + do_mlock", bpf.Options{Hooks: []bpf.Probe{kind}, Uprobes: true, KernelFunctionHook: true}},
			tcase{kind.String() + "/libc uprobes + do_mlock, legacy task access", bpf.Options{Hooks: []bpf.Probe{kind}, Uprobes: true, KernelFunctionHook: true, LegacyTaskAccess: true}},
			tcase{kind.String() + "/exit-only", bpf.Options{Hooks: []bpf.Probe{kind}, WakeupBytes: 64 << 10, ExitOnly: true}},
			tcase{kind.String() + "/exit-only + libc uprobes", bpf.Options{Hooks: []bpf.Probe{kind}, Uprobes: true, ExitOnly: true}},
		)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.opts.ExitOnly && !exitOnlyExpected(t) {
				return
			}
			testWorkloadEventsExact(t, bin, noise, tc.opts)
		})
	}
}

// exitOnlyExpected says whether exit-only tracing must work on this
// kernel (5.15+, where bpf_task_pt_regs is). On an older one it checks
// that Open refuses it with ErrExitOnlyUnsupported, and reports false.
func exitOnlyExpected(t *testing.T) bool {
	t.Helper()
	testutil.RequireRoot(t)
	if kernelAtLeast(t, 5, 15) {
		return true
	}
	tr, err := bpf.Open(bpf.Options{ExitOnly: true, Syscalls: []bpf.Syscall{bpf.SyscallMlock2}})
	if err == nil {
		tr.Close()
		t.Fatal("exit-only tracing opened on a kernel before 5.15, which lacks bpf_task_pt_regs")
	}
	if !errors.Is(err, bpf.ErrExitOnlyUnsupported) {
		t.Fatalf("exit-only before 5.15: Open error = %v, want ErrExitOnlyUnsupported", err)
	}
	t.Logf("kernel before 5.15: exit-only refused as it should be: %v", err)
	return false
}

// kernelAtLeast reports whether the running kernel is major.minor or later.
func kernelAtLeast(t *testing.T, major, minor int) bool {
	t.Helper()
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatal(err)
	}
	var maj, min int
	if _, err := fmt.Sscanf(unix.ByteSliceToString(u.Release[:]), "%d.%d", &maj, &min); err != nil {
		t.Fatalf("kernel release %q: %v", unix.ByteSliceToString(u.Release[:]), err)
	}
	return maj > major || maj == major && min >= minor
}

// TestExitOnlyRefusals: exit-only tracing keeps no call in flight, so it
// cannot carry do_mlock's time, and it needs task BTF.
func TestExitOnlyRefusals(t *testing.T) {
	testutil.RequireRoot(t)
	tests := []struct {
		name string
		opts bpf.Options
		want string
	}{
		{"with the kernel-function hook", bpf.Options{ExitOnly: true, KernelFunctionHook: true}, "kernel-function hook"},
		{"with legacy task access", bpf.Options{ExitOnly: true, LegacyTaskAccess: true}, "5.15"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Syscalls = []bpf.Syscall{bpf.SyscallMlock2}
			tr, err := bpf.Open(tt.opts)
			if err == nil {
				tr.Close()
				t.Fatal("Open succeeded, want a refusal")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Open error = %v, want one that mentions %q", err, tt.want)
			}
		})
	}
}

func testWorkloadEventsExact(t *testing.T, bin string, noise *testutil.Noise, opts bpf.Options) {
	cg, inCgroup := testutil.NewCgroup(t)
	// Room for seconds of the noise's calls: under QEMU's emulation the
	// reader can fall that far behind the uprobe-slowed workload and the
	// noise; losing none of them is this test's business, not
	// throughput's.
	opts.RingbufSize = 4 << 20
	opts.Syscalls = allSyscalls
	tr, reader, col, stop := startTracer(t, opts)
	t.Logf("task access: %s; plan:\n%s", tr.TaskAccess(), tr.Plan())
	if hooks := tr.Hooks(); len(hooks) != len(allSyscalls) {
		t.Fatalf("got %d hooks, want one per syscall of the family: %v", len(hooks), hooks)
	}
	for i, h := range tr.Hooks() {
		if h.Syscall != allSyscalls[i] || h.Probe != opts.Hooks[0] || h.Err != nil {
			t.Errorf("hook %d = %v, want %s attached with %s", i, h, allSyscalls[i], opts.Hooks[0])
		}
	}
	want := expectations{probe: tr.Hooks()[0].Probe, exe: filepath.Base(bin), uprobes: opts.Uprobes, untimed: opts.ExitOnly}
	if tr.ExitOnly() != opts.ExitOnly {
		t.Errorf("ExitOnly() = %v, want %v", tr.ExitOnly(), opts.ExitOnly)
	}
	if opts.ExitOnly {
		for _, h := range tr.Hooks() {
			if strings.Contains(h.Target, "enter") {
				t.Errorf("exit-only, yet %s", h)
			}
		}
	}
	for _, x := range tr.Extras() {
		switch {
		case x.Probe == bpf.ProbeUprobe && x.Err != nil:
			t.Errorf("libc uprobes requested but not attached: %v", x)
		case x.Target == "do_mlock" && x.Err == nil:
			want.kernelTime = true
		case x.Target == "do_mlock":
			t.Logf("do_mlock not hooked here: %v", x.Err)
			if strings.Contains(os.Getenv("MEMLOCK_TEST_EXPECT_HOOKS"), "fentry") || strings.Contains(os.Getenv("MEMLOCK_TEST_EXPECT_HOOKS"), "kprobe") {
				t.Errorf("do_mlock must attach where fentry or kprobes work: %v", x.Err)
			}
		}
	}
	if opts.Uprobes && len(bpf.FindLibcs(nil)) == 0 {
		t.Fatal("no libc found on this host")
	}

	start := time.Now()
	var calls []testutil.WorkloadCall
	if inCgroup {
		calls = cg.RunWorkload(t, bin, "--repeat", "2")
	} else {
		calls = testutil.RunWorkload(t, bin, "--repeat", "2")
	}
	end := time.Now()
	mainPID := calls[0].PID
	pids := map[uint32]bool{}
	for _, c := range calls {
		pids[c.PID] = true
	}
	ours := func(ev *bpf.Event) bool {
		if inCgroup {
			return ev.CgroupID == cg.ID
		}
		return pids[ev.PID] || ev.PPID == mainPID
	}
	noisePID := uint32(noise.PID())
	// The running reader hands the events over within its flush interval,
	// with or without the kernel's wake-ups; the noise's show that there
	// were others' to leave out. (The workload's are not awaited: one may
	// be lost, counted, to a preempted fentry program; see below.)
	waitForEvents(t, col, 1, "the noise's", func(ev *bpf.Event) bool { return ev.PID == noisePID })
	// The workload has exited, and each of its calls was in the ring
	// buffer before it returned: the reader hands over what is left as it
	// stops, and nothing of the workload's can come after.
	stop()
	var got []bpf.Event
	others := map[uint32]int{}
	for _, ev := range col.snapshot() {
		if ours(&ev) {
			got = append(got, ev)
		} else {
			others[ev.PID]++
		}
	}
	noiseEvents := others[noisePID]
	delete(others, noisePID)
	rest := 0
	for _, n := range others {
		rest += n
	}
	t.Logf("%d events of the workload's processes; left out %d of the noise (pid %d) and %d of %d other processes",
		len(got), noiseEvents, noisePID, rest, len(others))

	wantCgroup, haveCgroup := testutil.CgroupV2ID(t)
	if inCgroup {
		wantCgroup, haveCgroup = cg.ID, true
	}
	if !haveCgroup {
		t.Log("no cgroup2 mount: cgroup ids not compared")
	}

	// Events of one thread arrive in call order; group both sides by tid.
	byTID := map[uint32][]bpf.Event{}
	for _, ev := range got {
		byTID[ev.TID] = append(byTID[ev.TID], ev)
	}
	callsByTID := map[uint32][]testutil.WorkloadCall{}
	for _, c := range calls {
		callsByTID[c.TID] = append(callsByTID[c.TID], c)
	}
	for tid, events := range byTID {
		if _, ok := callsByTID[tid]; !ok {
			t.Errorf("%d events for tid %d, which the workload did not report: %+v", len(events), tid, events)
		}
	}
	// Match each thread's calls to its events in order. A call without its
	// event is only tolerated where the kernel counts it lost (below).
	matched, missing := 0, 0
	for tid, wantCalls := range callsByTID {
		have := byTID[tid]
		j := 0
		for i := range wantCalls {
			if j < len(have) {
				diffs := compare(&have[j], &wantCalls[i], want, start, end, wantCgroup, haveCgroup)
				if len(diffs) == 0 {
					for _, d := range checkIdentity(&have[j], bin, start, cg, inCgroup) {
						t.Errorf("tid %d call %d (%s): identity: %s", tid, i, wantCalls[i].Step, d)
					}
					matched++
					j++
					continue
				}
				if i+1 == len(wantCalls) || len(compare(&have[j], &wantCalls[i+1], want, start, end, wantCgroup, haveCgroup)) > 0 {
					// Not the next call's event either: a wrong field.
					t.Errorf("tid %d call %d (%s): %v\n event %+v", tid, i, wantCalls[i].Step, diffs, have[j])
					j++
					continue
				}
			}
			missing++
			t.Logf("tid %d call %d (%s): no event", tid, i, wantCalls[i].Step)
		}
		if j < len(have) {
			t.Errorf("tid %d: %d events more than the workload's %d calls: %+v", tid, len(have)-j, len(wantCalls), have[j:])
		}
	}
	t.Logf("%d workload calls, %d events matched field by field", len(calls), matched)

	losses, err := reader.Losses()
	if err != nil {
		t.Fatal(err)
	}
	// The counters are the whole host's. An exit without its entry is
	// mostly a call that was already under way when the hooks were
	// attached (the noise's, or a long mlockall of another test's
	// workload). But where BPF programs run preemptible (fentry; and on
	// Debian sid's 7.2 kernel, with lazy preemption, the syscall
	// tracepoints too), a preempted program makes the kernel skip that
	// program for the next task on the same CPU: the noise's calls and the
	// workload's collide now and then. Such a call is lost but counted
	// (program_busy for a skipped exit, missed_entry for a skipped entry);
	// a loss the kernel did not count fails.
	if missing > 0 {
		if counted := losses.ProgramBusy + losses.MissedEntry; uint64(missing) > counted {
			t.Errorf("%d workload calls have no event; the kernel counted %d losses (%+v)", missing, counted, losses)
		} else {
			t.Logf("%d workload calls lost to skipped %s programs, counted: %+v", missing, want.probe, losses)
		}
	}
	if losses.RingbufFull != 0 || losses.EntryMapFull != 0 {
		t.Errorf("kernel reported losses: %+v", losses)
	} else if losses.MissedEntry != 0 || losses.ProgramBusy != 0 {
		t.Logf("%d calls of other processes under way when the hooks were attached were missed, %d exits skipped", losses.MissedEntry, losses.ProgramBusy)
	}
	if m := reader.Malformed(); m != 0 {
		t.Errorf("%d malformed records", m)
	}
}

// checkIdentity compares an event's Process with what the kernel knows of
// the workload: the executable's real path, the process's start, and its
// cgroup v2 (the test's own, when it has one).
func checkIdentity(ev *bpf.Event, bin string, start time.Time, cg *testutil.Cgroup, inCgroup bool) []string {
	p := ev.Process
	if p == nil {
		return []string{"no identity"}
	}
	var diffs []string
	wantExe, err := filepath.EvalSymlinks(bin)
	if err != nil {
		wantExe = bin
	}
	if p.ExePath != wantExe || p.ExePathTruncated {
		diffs = append(diffs, fmt.Sprintf("executable %q (truncated %v), want %q", p.ExePath, p.ExePathTruncated, wantExe))
	}
	if p.PID != ev.PID || p.StartNs != ev.StartNs || p.StartNs == 0 {
		diffs = append(diffs, fmt.Sprintf("pid %d started %d, the call's %d started %d", p.PID, p.StartNs, ev.PID, ev.StartNs))
	}
	// The workload starts after the test does (the clock conversion may
	// be a few ms off); its first call ends the window at once.
	if p.StartTime.Before(start.Add(-time.Second)) || p.StartTime.After(ev.Time) {
		diffs = append(diffs, fmt.Sprintf("started at %v, want between the test's start %v and the call %v", p.StartTime, start, ev.Time))
	}
	if p.CgroupID != ev.CgroupID {
		diffs = append(diffs, fmt.Sprintf("cgroup v2 %d, the call's %d", p.CgroupID, ev.CgroupID))
	}
	v2 := p.Cgroups[len(p.Cgroups)-1]
	if v2.Hierarchy != 0 || v2.ID != ev.CgroupID || v2.Path == "" {
		diffs = append(diffs, fmt.Sprintf("last cgroup %+v, want cgroup v2's, with its path", v2))
	}
	if inCgroup && v2.Path != cg.HierarchyPath {
		diffs = append(diffs, fmt.Sprintf("cgroup v2 path %q, want the test's %q", v2.Path, cg.HierarchyPath))
	}
	return diffs
}

// waitForEvents waits until the collector holds n events that match
// accepts, and fails the test if they do not come within 10s.
func waitForEvents(t *testing.T, col *collector, n int, what string, match func(*bpf.Event) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := 0
		for _, ev := range col.snapshot() {
			if match(&ev) {
				got++
			}
		}
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d events of %s within 10s, want %d", got, what, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// expectations are what every event of a run must show beyond the call.
type expectations struct {
	probe      bpf.Probe
	exe        string
	uprobes    bool // libc function and caller expected for calls of hooked libc functions
	kernelTime bool // do_mlock hooked: kernel time expected where do_mlock ran
	untimed    bool // exit-only: no duration, the time is the exit's
}

// uprobedLibc are the libc functions the uprobes hook; munlock and
// munlockall have none, so their calls carry no libc function.
var uprobedLibc = map[string]bool{"mlock": true, "mlock2": true, "mlockall": true}

func compare(ev *bpf.Event, c *testutil.WorkloadCall, x expectations, start, end time.Time, cgroupID uint64, haveCgroup bool) []string {
	var diffs []string
	check := func(field string, got, want any) {
		if got != want {
			diffs = append(diffs, fmt.Sprintf("%s = %v, want %v", field, got, want))
		}
	}
	check("syscall", ev.Syscall.String(), c.Syscall)
	check("probe", ev.Probe, x.probe)
	check("pid", ev.PID, c.PID)
	check("tid", ev.TID, c.TID)
	check("ppid", ev.PPID, c.PPID)
	check("uid", ev.UID, c.UID)
	check("euid", ev.EUID, c.EUID)
	check("gid", ev.GID, c.GID)
	check("egid", ev.EGID, c.EGID)
	check("comm", ev.Comm, c.Comm)
	check("exe", ev.ExeName, x.exe)
	wantLibc := ""
	if x.uprobes && uprobedLibc[c.Libc] {
		wantLibc = c.Libc
	}
	check("libc function", ev.LibcFunc.String(), wantLibc)
	if (ev.CallerAddr != 0) != (wantLibc != "") {
		diffs = append(diffs, fmt.Sprintf("caller address %#x with libc function %q", ev.CallerAddr, wantLibc))
	}
	// do_mlock runs for every mlock and mlock2 call that passes the flags
	// check (which returns EINVAL before it), and for no other call of the
	// family: munlock, mlockall and munlockall change the VMAs' flags
	// without calling it.
	wantKernel := x.kernelTime && (c.Syscall == "mlock" || c.Syscall == "mlock2") && c.Ret != -int64(syscall.EINVAL)
	if (ev.KernelDuration > 0) != wantKernel || ev.KernelDuration > ev.Duration {
		diffs = append(diffs, fmt.Sprintf("kernel time %v (call took %v), expected some: %v", ev.KernelDuration, ev.Duration, wantKernel))
	}
	check("addr", ev.Addr, c.Addr)
	check("len", ev.Len, c.Len)
	check("flags", ev.Flags, c.Flags)
	check("ret", ev.Ret, c.Ret)
	check("pages", ev.Pages(), bpf.PagesCovered(c.Addr, c.Len, bpf.PageSize))
	if haveCgroup {
		check("cgroup id", ev.CgroupID, cgroupID)
	}
	switch {
	case x.untimed && (!ev.Untimed || ev.Duration != 0):
		diffs = append(diffs, fmt.Sprintf("exit-only: untimed %v, duration %v; want untimed, 0", ev.Untimed, ev.Duration))
	case !x.untimed && ev.Untimed:
		diffs = append(diffs, "untimed, with both hooks")
	case !x.untimed && (ev.Duration <= 0 || ev.Duration > time.Second):
		diffs = append(diffs, fmt.Sprintf("duration %v out of (0, 1s]", ev.Duration))
	}
	// The entry time must fall inside the workload's run (with slack for
	// the boot-to-wall conversion).
	if ev.Time.Before(start.Add(-50*time.Millisecond)) || ev.Time.After(end.Add(50*time.Millisecond)) {
		diffs = append(diffs, fmt.Sprintf("time %v outside the run [%v, %v]", ev.Time, start, end))
	}
	return diffs
}
