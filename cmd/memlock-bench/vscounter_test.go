package main

import (
	"errors"
	"math"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"golang.org/x/sys/unix"

	"github.com/memlock-exporter/memlock-exporter/bpf"
)

func TestCounterHookFor(t *testing.T) {
	for _, tc := range []struct {
		kind     bpf.Probe
		exit     bool
		name     string
		progType ebpf.ProgramType
		attach   ebpf.AttachType
		prog     string // the program's name, at most 15 characters
	}{
		{bpf.ProbeFentry, false, "fentry", ebpf.Tracing, ebpf.AttachTraceFEntry, "vsc_fentry"},
		{bpf.ProbeFentry, true, "fexit", ebpf.Tracing, ebpf.AttachTraceFExit, "vsc_fexit"},
		{bpf.ProbeKprobe, false, "kprobe", ebpf.Kprobe, ebpf.AttachNone, "vsc_kprobe"},
		{bpf.ProbeKprobe, true, "kretprobe", ebpf.Kprobe, ebpf.AttachNone, "vsc_kretprobe"},
		{bpf.ProbeTracepoint, false, "sys_enter_mlock2", ebpf.TracePoint, ebpf.AttachNone, "vsc_sys_enter"},
		{bpf.ProbeTracepoint, true, "sys_exit_mlock2", ebpf.TracePoint, ebpf.AttachNone, "vsc_sys_exit"},
	} {
		h, err := counterHookFor(tc.kind, tc.exit)
		if err != nil {
			t.Errorf("%s exit=%t: %v", tc.kind, tc.exit, err)
			continue
		}
		if h.name != tc.name || h.progType != tc.progType || h.attachType != tc.attach {
			t.Errorf("%s exit=%t: got %+v, want %s %s %s", tc.kind, tc.exit, h, tc.name, tc.progType, tc.attach)
		}
		spec := counterSpec(h, 0)
		p := spec.Programs[tc.prog]
		if p == nil || len(tc.prog) > 15 {
			t.Errorf("%s exit=%t: programs %v, want one named %s (<= 15 characters)", tc.kind, tc.exit, spec.Programs, tc.prog)
			continue
		}
		if wantTo := map[bool]string{true: vcFunction, false: ""}[tc.progType == ebpf.Tracing]; p.AttachTo != wantTo {
			t.Errorf("%s exit=%t: AttachTo %q, want %q", tc.kind, tc.exit, p.AttachTo, wantTo)
		}
	}
	if _, err := counterHookFor(bpf.ProbeUprobe, false); err == nil {
		t.Errorf("uprobe: got a counter, want an error")
	}
	for _, kind := range vcKinds {
		for _, exit := range []bool{false, true} {
			if _, err := counterHookFor(kind, exit); err != nil {
				t.Errorf("%s is measured but has no counter: %v", kind, err)
			}
		}
	}
}

func TestCounterInstructions(t *testing.T) {
	for _, tc := range []struct {
		tgid       uint32
		pidHelpers int
	}{{0, 0}, {4242, 1}} {
		insns := counterInstructions(tc.tgid)
		helpers := strings.Count(insns.String(), "FnGetCurrentPidTgid")
		if helpers != tc.pidHelpers {
			t.Errorf("tgid %d: %d calls of get_current_pid_tgid, want %d", tc.tgid, helpers, tc.pidHelpers)
		}
		if tc.tgid != 0 && !strings.Contains(insns.String(), "4242") {
			t.Errorf("tgid %d: not in the program:\n%v", tc.tgid, insns)
		}
		if last := insns[len(insns)-1]; last.OpCode != asm.Return().OpCode {
			t.Errorf("tgid %d: ends with %v, want exit", tc.tgid, last)
		}
	}
}

// vcTestRound builds a round from ns per setup, every probe having seen
// seen calls.
func vcTestRound(ns [vcSetups]float64, seen uint64) vcRound {
	r := vcRound{ns: ns}
	for _, s := range vcProbes {
		r.seen[s] = seen
	}
	return r
}

var vcAllAvail = [vcSetups]bool{true, true, true, true, true}

func TestVcRoundCheck(t *testing.T) {
	for _, tc := range []struct {
		name  string
		mod   func(*vcRound)
		avail [vcSetups]bool
		want  string // "" valid, else a substring of the reason
	}{
		{name: "all saw every call", mod: func(*vcRound) {}, avail: vcAllAvail},
		{name: "entry counter short", mod: func(r *vcRound) { r.seen[vcEntry] = 999 }, avail: vcAllAvail, want: "counter entry saw 999 calls, fewer than the 1000"},
		{name: "tracer's losses count", mod: func(r *vcRound) { r.seen[vcTracer], r.lost[vcTracer] = 600, 400 }, avail: vcAllAvail},
		{name: "exit-only short", mod: func(r *vcRound) { r.seen[vcExitOnly], r.lost[vcExitOnly] = 10, 5 }, avail: vcAllAvail, want: "tracer exit-only saw 15 calls"},
		{name: "unavailable setups are not checked", mod: func(r *vcRound) { r.seen[vcExitOnly] = 0 }, avail: [vcSetups]bool{true, true, true, true, false}},
	} {
		r := vcTestRound([vcSetups]float64{}, 1000)
		tc.mod(&r)
		r.check(1000, tc.avail)
		if tc.want == "" && r.invalid != "" || tc.want != "" && !strings.Contains(r.invalid, tc.want) {
			t.Errorf("%s: invalid %q, want %q", tc.name, r.invalid, tc.want)
		}
	}
}

func TestSummarizeVc(t *testing.T) {
	nan := math.NaN()
	for _, tc := range []struct {
		name    string
		rounds  []vcRound
		avail   [vcSetups]bool
		counted int
		tainted bool
		ns      [vcSetups]float64
		added   [vcSetups]float64
		ratio   [2]float64 // tracer, exit-only
		floor   [3]float64 // two hooks' added, tracer over them, exit-only over the exit counter
		err     string
	}{
		{
			name: "medians of the rounds' differences",
			rounds: []vcRound{
				vcTestRound([vcSetups]float64{100, 110, 120, 200, 150}, 10),
				vcTestRound([vcSetups]float64{90, 100, 112, 170, 130}, 10),
				vcTestRound([vcSetups]float64{120, 128, 140, 240, 180}, 10),
			},
			avail: vcAllAvail, counted: 3,
			ns:    [vcSetups]float64{100, 110, 120, 200, 150},
			added: [vcSetups]float64{0, 10, 20, 100, 50},
			ratio: [2]float64{10, 5},
			floor: [3]float64{30, 100.0 / 30, 2.5},
		},
		{
			name: "invalid and tainted rounds left out",
			rounds: []vcRound{
				vcTestRound([vcSetups]float64{100, 110, 120, 200, 150}, 10),
				vcTestRound([vcSetups]float64{100, 150, 150, 900, 900}, 5),
				func() vcRound {
					r := vcTestRound([vcSetups]float64{100, 150, 150, 900, 900}, 10)
					r.others = []string{"Tracing other"}
					return r
				}(),
			},
			avail: vcAllAvail, counted: 1,
			ns:    [vcSetups]float64{100, 110, 120, 200, 150},
			added: [vcSetups]float64{0, 10, 20, 100, 50},
			ratio: [2]float64{10, 5},
			floor: [3]float64{30, 100.0 / 30, 2.5},
		},
		{
			name: "all valid rounds tainted: counted, flagged",
			rounds: []vcRound{func() vcRound {
				r := vcTestRound([vcSetups]float64{100, 110, 120, 200, 150}, 10)
				r.others = []string{"Tracing other"}
				return r
			}()},
			avail: vcAllAvail, counted: 1, tainted: true,
			ns:    [vcSetups]float64{100, 110, 120, 200, 150},
			added: [vcSetups]float64{0, 10, 20, 100, 50},
			ratio: [2]float64{10, 5},
			floor: [3]float64{30, 100.0 / 30, 2.5},
		},
		{
			name:   "exit-only did not attach; entry added nothing",
			rounds: []vcRound{vcTestRound([vcSetups]float64{100, 100, 120, 200, 0}, 10)},
			avail:  [vcSetups]bool{true, true, true, true, false}, counted: 1,
			ns:    [vcSetups]float64{100, 100, 120, 200, nan},
			added: [vcSetups]float64{0, 0, 20, 100, nan},
			ratio: [2]float64{nan, nan},
			floor: [3]float64{20, 5, nan},
		},
		{
			name:   "none valid",
			rounds: []vcRound{vcTestRound([vcSetups]float64{100, 110, 120, 200, 150}, 5)},
			avail:  vcAllAvail,
			err:    "none valid",
		},
	} {
		for i := range tc.rounds {
			tc.rounds[i].check(10, tc.avail)
		}
		s, err := summarizeVc(tc.rounds, tc.avail)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error %v, want %q", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		eq := func(a, b float64) bool { return a == b || math.IsNaN(a) && math.IsNaN(b) }
		if s.rounds != tc.counted || s.tainted != tc.tainted {
			t.Errorf("%s: %d rounds counted, tainted %t; want %d, %t", tc.name, s.rounds, s.tainted, tc.counted, tc.tainted)
		}
		for k := range vcSetups {
			if !eq(s.ns[k], tc.ns[k]) || !eq(s.added[k], tc.added[k]) {
				t.Errorf("%s: %s ns %v added %v, want %v %v", tc.name, k, s.ns[k], s.added[k], tc.ns[k], tc.added[k])
			}
		}
		if !eq(s.ratio[vcTracer], tc.ratio[0]) || !eq(s.ratio[vcExitOnly], tc.ratio[1]) {
			t.Errorf("%s: ratios %v %v, want %v", tc.name, s.ratio[vcTracer], s.ratio[vcExitOnly], tc.ratio)
		}
		if !eq(s.twoHooks, tc.floor[0]) || !eq(s.overCounters[vcTracer], tc.floor[1]) || !eq(s.overCounters[vcExitOnly], tc.floor[2]) {
			t.Errorf("%s: two hooks %v, tracer over them %v, exit-only over the exit counter %v; want %v", tc.name,
				s.twoHooks, s.overCounters[vcTracer], s.overCounters[vcExitOnly], tc.floor)
		}
		if got, _ := countedRounds(tc.rounds); len(got) != len(tc.rounds) {
			t.Errorf("%s: countedRounds gave %d flags for %d rounds", tc.name, len(got), len(tc.rounds))
		}
	}
}

func TestVcLine(t *testing.T) {
	o := vcOptions{rounds: 2, calls: 100_000}
	measured := vcRow{kind: bpf.ProbeFentry, avail: vcAllAvail, rounds: make([]vcRound, 2),
		sum: vcSummary{rounds: 2, ns: [vcSetups]float64{500, 520, 530, 700, 600}, added: [vcSetups]float64{0, 20, 30, 200, 100},
			ratio: [vcSetups]float64{math.NaN(), math.NaN(), math.NaN(), 10, 5}, twoHooks: 50,
			overCounters: [vcSetups]float64{math.NaN(), math.NaN(), math.NaN(), 4, 100.0 / 30}}}
	partial := measured
	partial.kind = bpf.ProbeKprobe
	partial.avail[vcExitOnly] = false
	partial.reasons[vcExitOnly] = "exit-only tracing needs Linux 5.15 or later (bpf_task_pt_regs)"
	partial.sum.ns[vcExitOnly], partial.sum.added[vcExitOnly], partial.sum.ratio[vcExitOnly] = math.NaN(), math.NaN(), math.NaN()
	partial.sum.overCounters[vcExitOnly] = math.NaN()
	none := vcRow{kind: bpf.ProbeKprobe}
	none.reasons[vcEntry] = "attach the kprobe counter to __x64_sys_mlock2: no kprobes"
	none.reasons[vcTracer] = "cannot hook mlock2 with kprobe"
	for _, tc := range []struct {
		name string
		row  vcRow
		want string
	}{
		{"measured", measured, "VSCOUNTER kernel=6.1.0-1 kind=fentry attached=yes rounds=2 left_out=0 tainted=false calls=100000 chunk=2500 " +
			"base=500.0 entry=520.0 exit=530.0 tracer=700.0 exit_only=600.0 entry_added=20.0 exit_added=30.0 tracer_added=200.0 exit_only_added=100.0 ratio=10.00 ratio_exit_only=5.00 " +
			"two_hooks_added=50.0 tracer_over_two_hooks=4.00 exit_only_over_exit=3.33"},
		{"one setup did not attach", partial, "VSCOUNTER kernel=6.1.0-1 kind=kprobe attached=yes rounds=2 left_out=0 tainted=false calls=100000 chunk=2500 " +
			"base=500.0 entry=520.0 exit=530.0 tracer=700.0 exit_only=na entry_added=20.0 exit_added=30.0 tracer_added=200.0 exit_only_added=na ratio=10.00 ratio_exit_only=na " +
			"two_hooks_added=50.0 tracer_over_two_hooks=4.00 exit_only_over_exit=na " +
			"reason=tracer exit-only: exit-only tracing needs Linux 5.15 or later (bpf_task_pt_regs)"},
		{"none attached", none, "VSCOUNTER kernel=6.1.0-1 kind=kprobe attached=no reason=counter entry: attach the kprobe counter to __x64_sys_mlock2: no kprobes; tracer: cannot hook mlock2 with kprobe"},
	} {
		if got := vcLine("6.1.0-1", o, tc.row); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.want)
		}
	}
	p := vcProgStat{setup: vcExitOnly, name: "kp_exit_mlock2", runs: 1000, runtime: 85500 * time.Nanosecond}
	if got, want := vcStatsLine("6.1.0-1", bpf.ProbeKprobe, 612.34, p),
		"VSCOUNTER_STATS kernel=6.1.0-1 kind=kprobe setup=exit_only prog=kp_exit_mlock2 runs=1000 run_time_ns=85500 ns_per_run=85.5 ns_per_call=612.3"; got != want {
		t.Errorf("stats line:\n got %s\nwant %s", got, want)
	}
}

func TestStatsDelta(t *testing.T) {
	before := []bpf.ProgramStat{{Name: "tp_exit_mlock2", RunCount: 10, Runtime: 1000}, {Name: "rtp_sched_process_exec", RunCount: 3, Runtime: 300}}
	after := []bpf.ProgramStat{{Name: "tp_exit_mlock2", RunCount: 110, Runtime: 9000}, {Name: "rtp_sched_process_exec", RunCount: 5, Runtime: 500}, {Name: "rtp_cgroup_mkdir"},
		{Name: "tp_enter_mlock2", RunCount: 100, Runtime: 5000}}
	for _, tc := range []struct {
		minRuns uint64
		want    []vcProgStat
	}{
		{0, []vcProgStat{{vcTracer, "rtp_sched_process_exec", 2, 200}, {vcTracer, "tp_enter_mlock2", 100, 5000}, {vcTracer, "tp_exit_mlock2", 100, 8000}}},
		{100, []vcProgStat{{vcTracer, "tp_enter_mlock2", 100, 5000}, {vcTracer, "tp_exit_mlock2", 100, 8000}}},
	} {
		if got := statsDelta(vcTracer, before, after, tc.minRuns); !slices.Equal(got, tc.want) {
			t.Errorf("at least %d runs: got %+v, want %+v (sorted)", tc.minRuns, got, tc.want)
		}
	}
}

func TestVcChunk(t *testing.T) {
	for _, tc := range []struct{ calls, want int }{{2_000_000, 50_000}, {100_000, 2500}, {10, 1}, {1, 1}} {
		if got := (vcOptions{calls: tc.calls}).chunk(); got != tc.want {
			t.Errorf("%d calls: chunk %d, want %d", tc.calls, got, tc.want)
		}
	}
}

// TestCounterCountsOurCalls attaches the counter to the syscall
// tracepoints, the kind this host has, filtered to this process, and
// checks it counts exactly the mlock2 calls made here, on entry and on
// exit: the yardstick must see what the tracer sees.
func TestCounterCountsOurCalls(t *testing.T) {
	if euid := os.Geteuid(); euid != 0 {
		t.Skipf("needs root to load BPF programs (running as euid %d)", euid)
	}
	page, err := unix.Mmap(-1, 0, os.Getpagesize(), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatalf("map a page: %v", err)
	}
	defer unix.Munmap(page)
	addr, size := uintptr(unsafePointer(page)), uintptr(len(page))
	cache := btf.NewCache()
	const n = 1234
	for _, exit := range []bool{false, true} {
		c, err := openCounter(bpf.ProbeTracepoint, exit, uint32(os.Getpid()), cache)
		if err != nil {
			t.Fatalf("exit=%t: %v", exit, err)
		}
		for range n {
			if _, _, errno := unix.Syscall6(unix.SYS_MLOCK2, addr, size, vsBadFlags, 0, 0, 0); errno != unix.EINVAL {
				t.Fatalf("mlock2: errno %v, want EINVAL", errno)
			}
		}
		got, err := c.Count()
		if cerr := c.Close(); cerr != nil {
			t.Errorf("exit=%t: %v", exit, cerr)
		}
		if err != nil {
			t.Fatalf("exit=%t: %v", exit, err)
		}
		if got != n {
			t.Errorf("%s counter: counted %d calls, want %d", c.hook.name, got, n)
		}
	}
	// Another process's calls are not ours: a tgid no process has counts nothing.
	c, err := openCounter(bpf.ProbeTracepoint, false, 1<<30, cache)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	unix.Syscall6(unix.SYS_MLOCK2, addr, size, vsBadFlags, 0, 0, 0)
	if got, err := c.Count(); err != nil || got != 0 {
		t.Errorf("counter for another tgid: counted %d (%v), want 0", got, err)
	}
	var verr *ebpf.VerifierError
	if _, err := openCounter(bpf.ProbeUprobe, false, 0, cache); err == nil || errors.As(err, &verr) {
		t.Errorf("uprobe counter: error %v, want a plain refusal", err)
	}
}
