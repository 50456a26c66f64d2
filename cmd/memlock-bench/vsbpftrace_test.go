package main

import (
	"errors"
	"math"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/memlock-exporter/memlock-exporter/bpf"
)

// TestBpftracePrintScripts: each printing script hooks the exit, where the
// return value is, counts the calls (@c, which the round's check reads)
// and prints one line per call.
func TestBpftracePrintScripts(t *testing.T) {
	for _, tc := range []struct {
		kind   bpf.Probe
		probes []string
	}{
		{bpf.ProbeTracepoint, []string{"tracepoint:syscalls:sys_exit_mlock2 "}},
		{bpf.ProbeKprobe, []string{"kretprobe:__x64_sys_mlock2 "}},
		{bpf.ProbeFentry, []string{"fexit:__x64_sys_mlock2 ", "kretfunc:__x64_sys_mlock2 "}},
		{bpf.ProbeUprobe, nil},
	} {
		got := bpftracePrintScripts(tc.kind)
		if len(got) != len(tc.probes) {
			t.Errorf("%s: got %q, want %d scripts", tc.kind, got, len(tc.probes))
			continue
		}
		for i, script := range got {
			if !strings.HasPrefix(script, tc.probes[i]) || !strings.Contains(script, "@c = count();") ||
				!strings.Contains(script, `printf("`) || !strings.Contains(script, `\n"`) {
				t.Errorf("%s: script %q: want %q counting into @c and printing a line", tc.kind, script, tc.probes[i])
			}
		}
	}
}

// TestBpftraceTimeScripts: each timing script notes the entry time per
// thread on the entry hook and, on the exit hook, counts the call into @c
// (which the round's check reads), adds its duration to a histogram and
// forgets the thread's entry.
func TestBpftraceTimeScripts(t *testing.T) {
	for _, tc := range []struct {
		kind        bpf.Probe
		entry, exit []string
	}{
		{bpf.ProbeTracepoint, []string{"tracepoint:syscalls:sys_enter_mlock2 "}, []string{"tracepoint:syscalls:sys_exit_mlock2 "}},
		{bpf.ProbeKprobe, []string{"kprobe:__x64_sys_mlock2 "}, []string{"kretprobe:__x64_sys_mlock2 "}},
		{bpf.ProbeFentry, []string{"fentry:__x64_sys_mlock2 ", "kfunc:__x64_sys_mlock2 "}, []string{"fexit:__x64_sys_mlock2 ", "kretfunc:__x64_sys_mlock2 "}},
		{bpf.ProbeUprobe, nil, nil},
	} {
		got := bpftraceTimeScripts(tc.kind)
		if len(got) != len(tc.entry) {
			t.Errorf("%s: got %q, want %d scripts", tc.kind, got, len(tc.entry))
			continue
		}
		for i, script := range got {
			entry, exit, ok := strings.Cut(script, "} ")
			if !ok || !strings.HasPrefix(entry, tc.entry[i]) || !strings.Contains(entry, "@s[tid] = nsecs;") ||
				!strings.HasPrefix(exit, tc.exit[i]) || !strings.Contains(exit, "@c = count();") ||
				!strings.Contains(exit, "hist(nsecs - @s[tid])") || !strings.Contains(exit, "delete(@s[tid])") {
				t.Errorf("%s: script %q: want %q noting the time, then %q counting, timing and forgetting", tc.kind, script, tc.entry[i], tc.exit[i])
			}
		}
	}
}

func TestBpftraceScripts(t *testing.T) {
	for _, tc := range []struct {
		kind bpf.Probe
		want []string
	}{
		{bpf.ProbeTracepoint, []string{"tracepoint:syscalls:sys_enter_mlock2 { @c = count(); }"}},
		{bpf.ProbeKprobe, []string{"kprobe:__x64_sys_mlock2 { @c = count(); }"}},
		{bpf.ProbeFentry, []string{"fentry:__x64_sys_mlock2 { @c = count(); }", "kfunc:__x64_sys_mlock2 { @c = count(); }"}},
		{bpf.ProbeUprobe, nil},
	} {
		if got := bpftraceScripts(tc.kind); !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %q, want %q", tc.kind, got, tc.want)
		}
	}
	for _, kind := range vsKinds {
		if len(bpftraceScripts(kind)) == 0 {
			t.Errorf("%s is measured but has no bpftrace program", kind)
		}
	}
}

func TestParseBpftraceCount(t *testing.T) {
	for _, tc := range []struct {
		name string
		out  string
		want uint64
		err  string
	}{
		{name: "0.17", out: "Attaching 1 probe...\n\n\n@c: 2000012\n\n", want: 2000012},
		{name: "stderr first", out: "WARNING: Kernel headers not found\nAttaching 1 probe...\n@c: 7\n", want: 7},
		{name: "no newline at the end", out: "Attached 1 probe\n@c: 2000000", want: 2000000},
		{name: "trailing blanks", out: "@c: 12 \r\n", want: 12},
		{name: "never hit", out: "Attaching 1 probe...\n\n\n", err: `no "@c: N" line`},
		{name: "another map", out: "@cc: 5\n@c2: 6\n", err: `no "@c: N" line`},
		{name: "not at line start", out: "x @c: 5\n", err: `no "@c: N" line`},
		{name: "twice", out: "@c: 5\n@c: 6\n", err: "2 \"@c: N\" lines"},
		{name: "overflow", out: "@c: 99999999999999999999999\n", err: "out of range"},
	} {
		got, err := parseBpftraceCount(tc.out)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: got %d, %v; want an error with %q", tc.name, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: got %d, %v; want %d", tc.name, got, err, tc.want)
		}
	}
}

func TestFdinfoProgID(t *testing.T) {
	for _, tc := range []struct {
		name string
		text string
		id   ebpf.ProgramID
		ok   bool
	}{
		{"program", "pos:\t0\nflags:\t02000002\nmnt_id:\t15\nino:\t1055\nprog_type:\t5\nprog_jited:\t1\nprog_tag:\tb9f6f2cd2bd0a8d1\nmemlock:\t4096\nprog_id:\t212\nrun_time_ns:\t0\nrun_cnt:\t0\n", 212, true},
		{"link", "pos:\t0\nflags:\t02000000\nlink_type:\tperf\nlink_id:\t31\nprog_tag:\t0c9ba9a8bf0b8e4f\nprog_id:\t215\n", 215, true},
		{"file", "pos:\t0\nflags:\t0100000\nmnt_id:\t26\nino:\t12\n", 0, false},
		{"map", "pos:\t0\nflags:\t02000002\nmap_type:\t27\nmap_id:\t9\n", 0, false},
		{"zero", "prog_id:\t0\n", 0, false},
		{"garbage", "prog_id:\tx\n", 0, false},
	} {
		id, ok := fdinfoProgID(tc.text)
		if id != tc.id || ok != tc.ok {
			t.Errorf("%s: got %d, %t; want %d, %t", tc.name, id, ok, tc.id, tc.ok)
		}
	}
}

func TestVsRoundCheck(t *testing.T) {
	for _, tc := range []struct {
		name         string
		count        uint64 // bpftrace's; the printing and timing ones' are the same unless print or timing is set
		print        uint64
		timing       uint64
		seen         [vsSetups]uint64 // of each daemon
		want1, want2 string           // in invalid; "" for a valid round
		valid        bool
		calls        int
	}{
		{name: "all saw all", count: 2_000_010, seen: [vsSetups]uint64{vsDaemon: 2_000_000, vsExitOnly: 2_000_001}, calls: 2_000_000, valid: true},
		{name: "bpftrace short", count: 1_999_999, seen: [vsSetups]uint64{vsDaemon: 2_000_000, vsExitOnly: 2_000_000}, calls: 2_000_000, want1: "bpftrace counted 1999999 calls, fewer than the 2000000 made"},
		{name: "daemon short", count: 2_000_000, seen: [vsSetups]uint64{vsDaemon: 5, vsExitOnly: 2_000_000}, calls: 2_000_000, want1: "memlock-exporter saw 5 calls"},
		{name: "exit-only short", count: 2_000_000, seen: [vsSetups]uint64{vsDaemon: 2_000_000, vsExitOnly: 7}, calls: 2_000_000, want1: "exporter exit-only saw 7 calls"},
		{name: "printing short", count: 2_000_000, print: 1_000, seen: [vsSetups]uint64{vsDaemon: 2_000_000, vsExitOnly: 2_000_000}, calls: 2_000_000, want1: "the printing bpftrace counted 1000 calls"},
		{name: "timing short", count: 2_000_000, timing: 12, seen: [vsSetups]uint64{vsDaemon: 2_000_000, vsExitOnly: 2_000_000}, calls: 2_000_000, want1: "the timing bpftrace counted 12 calls"},
		{name: "all short", calls: 10, want1: "bpftrace counted 0", want2: "memlock-exporter saw 0"},
	} {
		var r vsRound
		r.bpftraceCount, r.printCount, r.timeCount = tc.count, tc.count, tc.count
		if tc.print != 0 {
			r.printCount = tc.print
		}
		if tc.timing != 0 {
			r.timeCount = tc.timing
		}
		for _, k := range vsDaemons {
			r.daemonEvents[k], r.daemonLost[k] = tc.seen[k]/2, tc.seen[k]-tc.seen[k]/2
		}
		r.check(tc.calls)
		if tc.valid != (r.invalid == "") || !strings.Contains(r.invalid, tc.want1) || !strings.Contains(r.invalid, tc.want2) {
			t.Errorf("%s: invalid %q, want valid=%t containing %q and %q", tc.name, r.invalid, tc.valid, tc.want1, tc.want2)
		}
	}
}

func TestSummarizeVs(t *testing.T) {
	// The exit-only daemon is 100 ns faster than the default one in every
	// round here, and the printing bpftrace 5000 ns slower: their ns and
	// added are the default's less 100 and plus 5000, and the timing
	// bpftrace's the default's less 200.
	round := func(base, bt, dm float64) vsRound {
		return vsRound{ns: [vsSetups]float64{base, bt, dm, dm - 100, dm + 5000, dm - 200}}
	}
	for _, tc := range []struct {
		name    string
		rounds  []vsRound
		err     string
		valid   int
		ns      [vsSetups]float64
		added   [vsSetups]float64
		ratio   float64 // the default daemon's; NaN: undefined
		tainted bool
	}{
		{name: "none", err: "none valid"},
		{name: "all invalid", rounds: []vsRound{{invalid: "x"}}, err: "1 rounds: none valid"},
		{
			// The figures, one round.
			name: "one", rounds: []vsRound{round(128.6, 335.0, 795.4)}, valid: 1,
			ns: [vsSetups]float64{128.6, 335.0, 795.4, 795.4 - 100, 795.4 + 5000, 795.4 - 200}, added: [vsSetups]float64{0, 206.4, 666.8, 666.8 - 100, 666.8 + 5000, 666.8 - 200}, ratio: 666.8 / 206.4,
		},
		{
			// The machine slows down in round 3: each round's added ns
			// is against its own no probe, so the medians of the added
			// do not see it, where the difference of the medians would
			// (median bpftrace 335 - median no probe 125 = 210).
			name: "drift",
			rounds: []vsRound{
				round(100, 300, 700),
				round(130, 330, 730),
				round(300, 500, 900),
				round(120, 340, 720),
			},
			valid: 4,
			ns:    [vsSetups]float64{125, 335, 725, 725 - 100, 725 + 5000, 725 - 200},
			added: [vsSetups]float64{0, 200, 600, 600 - 100, 600 + 5000, 600 - 200},
			ratio: 3,
		},
		{
			name: "invalid left out",
			rounds: []vsRound{
				round(100, 300, 700),
				{ns: [vsSetups]float64{100, 100, 100, 0, 5100, -100}, invalid: "bpftrace counted 0 calls"},
				round(100, 200, 500),
			},
			valid: 2,
			ns:    [vsSetups]float64{100, 250, 600, 600 - 100, 600 + 5000, 600 - 200},
			added: [vsSetups]float64{0, 150, 500, 500 - 100, 500 + 5000, 500 - 200},
			ratio: 500.0 / 150,
		},
		{
			// Somebody else's tracer was loaded during round 2: left
			// out while there are clean rounds.
			name: "tainted left out",
			rounds: []vsRound{
				round(100, 300, 700),
				{ns: [vsSetups]float64{500, 900, 900, 800, 5900, 700}, others: []string{"TracePoint tp_enter_mlock2"}},
				round(100, 200, 500),
			},
			valid: 2,
			ns:    [vsSetups]float64{100, 250, 600, 600 - 100, 600 + 5000, 600 - 200},
			added: [vsSetups]float64{0, 150, 500, 500 - 100, 500 + 5000, 500 - 200},
			ratio: 500.0 / 150,
		},
		{
			// ... and counted, with a flag, when every valid round is
			// tainted; the invalid one stays out.
			name: "all tainted",
			rounds: []vsRound{
				{ns: [vsSetups]float64{100, 300, 700, 600, 5700, 500}, others: []string{"x"}},
				{ns: [vsSetups]float64{100, 100, 100, 0, 5100, -100}, others: []string{"x"}, invalid: "bpftrace counted 0 calls"},
				{ns: [vsSetups]float64{100, 200, 500, 400, 5500, 300}, others: []string{"y"}},
			},
			valid: 2, tainted: true,
			ns:    [vsSetups]float64{100, 250, 600, 600 - 100, 600 + 5000, 600 - 200},
			added: [vsSetups]float64{0, 150, 500, 500 - 100, 500 + 5000, 500 - 200},
			ratio: 500.0 / 150,
		},
		{
			name: "bpftrace added nothing", rounds: []vsRound{round(100, 99, 300)}, valid: 1,
			ns: [vsSetups]float64{100, 99, 300, 300 - 100, 300 + 5000, 300 - 200}, added: [vsSetups]float64{0, -1, 200, 200 - 100, 200 + 5000, 200 - 200}, ratio: math.NaN(),
		},
	} {
		s, err := summarizeVs(tc.rounds)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: got %v, want an error with %q", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 || math.IsNaN(a) && math.IsNaN(b) }
		// The exit-only daemon's and the printing bpftrace's ratios follow
		// from their added ns.
		exitRatio, printRatio, timeRatio, likeForLike := math.NaN(), math.NaN(), math.NaN(), math.NaN()
		if tc.added[vsBpftrace] > 0 {
			exitRatio = tc.added[vsExitOnly] / tc.added[vsBpftrace]
			printRatio = tc.added[vsBpftracePrint] / tc.added[vsBpftrace]
			timeRatio = tc.added[vsBpftraceTime] / tc.added[vsBpftrace]
		}
		if tc.added[vsBpftraceTime] > 0 {
			likeForLike = tc.added[vsDaemon] / tc.added[vsBpftraceTime]
		}
		ok := s.rounds == tc.valid && near(s.ratio[vsDaemon], tc.ratio) && near(s.ratio[vsExitOnly], exitRatio) && near(s.ratio[vsBpftracePrint], printRatio) && s.tainted == tc.tainted &&
			near(s.ratio[vsBpftraceTime], timeRatio) && near(s.likeForLike, likeForLike) &&
			math.IsNaN(s.ratio[vsNone]) && math.IsNaN(s.ratio[vsBpftrace])
		for k := range vsSetups {
			ok = ok && near(s.ns[k], tc.ns[k]) && near(s.added[k], tc.added[k]) && len(s.per[k]) == tc.valid
		}
		if !ok {
			t.Errorf("%s: got rounds %d ns %v added %v ratio %v tainted %t; want %d %v %v %g (exit-only %g) %t", tc.name, s.rounds, s.ns, s.added, s.ratio, s.tainted, tc.valid, tc.ns, tc.added, tc.ratio, exitRatio, tc.tainted)
		}
	}
}

// TestVsLine pins the "VSBPFTRACE " lines for scripts: key=value pairs,
// the reason (free text) last.
func TestVsLine(t *testing.T) {
	r := vsRow{kind: bpf.ProbeTracepoint, rounds: []vsRound{
		{ns: [vsSetups]float64{128.6, 335.0, 795.4, 438.0, 5128.6, 600.0}},
		{ns: [vsSetups]float64{1, 1, 1, -99, 1, 1}, invalid: "x"},
	}}
	var err error
	if r.sum, err = summarizeVs(r.rounds); err != nil {
		t.Fatal(err)
	}
	got := vsLine("6.18.44", 2_000_000, r)
	want := "VSBPFTRACE kernel=6.18.44 kind=tracepoint attached=yes rounds=1 left_out=1 tainted=false calls=2000000 base=128.6 bpftrace=335.0 daemon=795.4 exit_only=438.0 bpftrace_print=5128.6 " +
		"bpftrace_added=206.4 daemon_added=666.8 exit_only_added=309.4 bpftrace_print_added=5000.0 ratio=3.23 ratio_exit_only=1.50 ratio_bpftrace_print=24.22 " +
		"bpftrace_time=600.0 bpftrace_time_added=471.4 ratio_bpftrace_time=2.28 ratio_like_for_like=1.41"
	if got != want {
		t.Errorf("measured row:\n got %s\nwant %s", got, want)
	}

	r = vsRow{kind: bpf.ProbeFentry, reasons: []string{"memlock-exporter: exited (exit status 2)", "bpftrace: ERROR: no BTF"}}
	got = vsLine("6.18.44", 10, r)
	if want := "VSBPFTRACE kernel=6.18.44 kind=fentry attached=no reason=memlock-exporter: exited (exit status 2); bpftrace: ERROR: no BTF"; got != want {
		t.Errorf("unmeasured row:\n got %s\nwant %s", got, want)
	}

	p := vsProgStat{who: vsDaemon, name: "tp_exit_mlock2", runs: 2_000_000, runtime: 180_000_000}
	got = vsStatsLine("6.18.44", bpf.ProbeTracepoint, p)
	if !regexp.MustCompile(`^VSBPFTRACE_STATS kernel=6\.18\.44 kind=tracepoint tracer=daemon prog=tp_exit_mlock2 runs=2000000 run_time_ns=180000000 ns_per_run=90\.0$`).MatchString(got) {
		t.Errorf("stats line: got %s", got)
	}
}

func TestGist(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"start memlock-exporter: exited (exit status 2)", "start memlock-exporter: exited (exit status 2)"},
		{"start memlock-exporter: exited (exit status 2):\ntime=x level=INFO msg=a\nmemlock-exporter: MEMLOCK_EXPORTER_KERNEL_HOOK=\"fentry\": no BTF\n\n",
			"start memlock-exporter: exited (exit status 2): memlock-exporter: MEMLOCK_EXPORTER_KERNEL_HOOK=\"fentry\": no BTF"},
		{"a:\n  a:  \n", "a:"},
	} {
		if got := gist(tc.in); got != tc.want {
			t.Errorf("gist(%q):\n got %q\nwant %q", tc.in, got, tc.want)
		}
	}
}

func TestBpftraceReason(t *testing.T) {
	rlimit := "ERROR: Unknown error -1: couldn't set RLIMIT_MEMLOCK for bpftrace. If your program is not loading, you can try \"ulimit -l 8192\" to fix the problem\n"
	for _, tc := range []struct{ name, out, want string }{
		{"kprobes off", rlimit + "stdin:1:1-24: WARNING: __x64_sys_mlock2 is not traceable\nAttaching 1 probe...\ncreate_probe_event: open(/sys/kernel/tracing/kprobe_events): No such file or directory\nERROR: Error attaching probe: 'kprobe:__x64_sys_mlock2'\n",
			"ERROR: Error attaching probe: 'kprobe:__x64_sys_mlock2'"},
		{"fentry unknown to 0.17", rlimit + "FATAL: Invalid probe type made it to attachpoint parser\n", "FATAL: Invalid probe type made it to attachpoint parser"},
		{"only the rlimit", rlimit, strings.TrimSpace(rlimit)},
		{"no ERROR", "Attaching 1 probe...\nKilled\n", "Killed"},
		{"silent", "", "start bpftrace: exited (exit status 1)"},
	} {
		if got := bpftraceReason(errors.New("start bpftrace: exited (exit status 1)\nmore"), tc.out); got != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, got, tc.want)
		}
	}
}

func TestVsCounted(t *testing.T) {
	ok, bad, other := vsRound{}, vsRound{invalid: "bpftrace counted 0 calls"}, vsRound{others: []string{"Kprobe k", "TracePoint t"}}
	for _, tc := range []struct {
		name    string
		rounds  []vsRound
		counted []bool
		tainted bool
		why     []string
	}{
		{"none", nil, []bool{}, false, []string{}},
		{"clean", []vsRound{ok, ok}, []bool{true, true}, false, []string{"", ""}},
		{"invalid and tainted out", []vsRound{bad, ok, other}, []bool{false, true, false}, false,
			[]string{"bpftrace counted 0 calls", "", "other tracers were loaded meanwhile: Kprobe k, TracePoint t"}},
		{"only tainted left", []vsRound{other, bad, other}, []bool{true, false, true}, true, []string{"", "bpftrace counted 0 calls", ""}},
		{"only invalid", []vsRound{bad}, []bool{false}, false, []string{"bpftrace counted 0 calls"}},
	} {
		counted, tainted := countedRounds(tc.rounds)
		if !slices.Equal(counted, tc.counted) || tainted != tc.tainted {
			t.Errorf("%s: got %v, %t; want %v, %t", tc.name, counted, tainted, tc.counted, tc.tainted)
			continue
		}
		for i, r := range tc.rounds {
			if got := r.leftOut(counted[i]); got != tc.why[i] {
				t.Errorf("%s, round %d: left out %q, want %q", tc.name, i+1, got, tc.why[i])
			}
		}
	}
}
