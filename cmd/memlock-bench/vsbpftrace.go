package main

// The vs-bpftrace mode (-vs-bpftrace) answers issue #13's question: how
// much more than the cheapest tracer one could run does the daemon add to
// a traced call? The cheapest is bpftrace counting the calls in a BPF map
// (one program, on entry, no event leaves the kernel); the daemon runs two
// programs (entry and exit), writes a record per call into its ring buffer
// and reads it in user space, here with its export off
// (OTEL_SDK_DISABLED=true). It is measured twice: as configured by default,
// and with MEMLOCK_EXPORTER_CALL_DURATION=off, where it runs the exit
// program alone. Beside them, bpftrace printing a line per call on exit is
// what a bpftrace user pays to see the calls rather than count them.
//
// The probe is mlock2 with an invalid flag: the kernel rejects it with
// EINVAL before touching memory, so the call itself costs next to nothing
// and what a tracer adds shows. It is timed in-process, on a locked
// thread, without the Go scheduler's bookkeeping (RawSyscall6). Each kind
// of hook (fentry, kprobe, syscall tracepoint) is measured on its own:
// bpftrace is given that kind's probe and the daemon is forced onto it
// (MEMLOCK_EXPORTER_KERNEL_HOOK); a kind that either cannot attach is
// reported with the reason.
//
// Every round measures the five setups (no probe, bpftrace, the daemon, the
// daemon exit-only, bpftrace printing), in ABCDE order in even rounds and
// EDCBA in odd ones, starting each tracer afresh and stopping it after: a tracer left attached would tax the
// others. What a tracer adds is its ns per call less the same round's
// without a probe; the figures are medians over the rounds. A round counts
// only if every tracer saw every call (bpftrace's printed counts, the
// daemon's events and losses): else a tracer was not attached for the
// whole loop.
//
// The daemon's reader drains the ring buffer on another CPU meanwhile: its
// cost is not in the ns per call, which is what the traced program pays.
// -vs-bpftrace-stats runs each tracer once more with the kernel's BPF
// run-time statistics on (what kernel.bpf_stats_enabled=1 turns on; they
// cost two clock reads per program run, hence a run apart) and prints
// each program's ns per run: the programs' own share of what they add.

import (
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/memlock-exporter/memlock-exporter/bpf"
)

const (
	// vsBadFlags is not a flag of mlock2 (MLOCK_ONFAULT is 1): the
	// kernel returns EINVAL before anything else.
	vsBadFlags = 2
	// vsWarmup untimed calls precede every timed loop.
	vsWarmup = 20_000
	// vsSettle: no loop is timed sooner than this after a tracer started
	// or stopped (see execSettle: both leave the machine slower a while).
	vsSettle = 500 * time.Millisecond
)

// vsKinds are the kinds of hook measured, each forced on its own.
var vsKinds = taxKinds

// vsSetup is one of the four things a round measures.
type vsSetup int

const (
	vsNone          vsSetup = iota // no probe
	vsBpftrace                     // bpftrace counting the calls
	vsDaemon                       // memlock-exporter, export off
	vsExitOnly                     // the same with MEMLOCK_EXPORTER_CALL_DURATION=off
	vsBpftracePrint                // bpftrace printing a line per call, as a user of it would to see each call
	vsBpftraceTime                 // bpftrace timing each call into a histogram: entry and exit hooks, as the daemon's default
	vsSetups                       // how many there are
)

var vsSetupNames = [vsSetups]string{"no probe", "bpftrace", "memlock-exporter", "exporter exit-only", "bpftrace printing", "bpftrace timing"}

// vsRatioed are the setups whose added ns are divided by bpftrace's.
var vsRatioed = []vsSetup{vsDaemon, vsExitOnly, vsBpftracePrint, vsBpftraceTime}

// vsDaemons are the setups that run the daemon.
var vsDaemons = []vsSetup{vsDaemon, vsExitOnly}

// daemonEnv is the environment the daemon runs with in setup s, forced
// onto kind.
func daemonEnv(kind bpf.Probe, s vsSetup) []string {
	env := []string{"OTEL_SDK_DISABLED=true", "MEMLOCK_EXPORTER_KERNEL_HOOK=" + kind.String()}
	if s == vsExitOnly {
		env = append(env, "MEMLOCK_EXPORTER_CALL_DURATION=off")
	}
	return env
}

func (s vsSetup) String() string { return vsSetupNames[s] }

// vsOrder returns the setups of round i (from 0) in the order measured
// (abbaOrder).
func vsOrder(round int) []vsSetup { return abbaOrder[vsSetup](int(vsSetups), round) }

// vsOrderLetters renders the order of round i.
func vsOrderLetters(round int) string { return orderLetters(vsOrder(round)) }

// vsOrderString renders the orders of n rounds.
func vsOrderString(n int) string { return orderString(int(vsSetups), n) }

// bpftraceScripts returns the bpftrace programs that count mlock2 calls
// through kind's hook, the one to try first first: bpftrace before 0.19
// names fentry probes kfunc. nil if bpftrace has no such probe.
func bpftraceScripts(kind bpf.Probe) []string {
	const action = " { @c = count(); }"
	switch kind {
	case bpf.ProbeTracepoint:
		return []string{"tracepoint:syscalls:sys_enter_mlock2" + action}
	case bpf.ProbeKprobe:
		return []string{"kprobe:__x64_sys_mlock2" + action}
	case bpf.ProbeFentry:
		return []string{"fentry:__x64_sys_mlock2" + action, "kfunc:__x64_sys_mlock2" + action}
	}
	return nil
}

// bpftracePrintScripts returns the bpftrace programs that print a line per
// mlock2 call through kind's exit hook (what a call returned is only known
// there), and count the calls, as bpftraceScripts does; nil if bpftrace has
// no such probe.
func bpftracePrintScripts(kind bpf.Probe) []string {
	action := func(ret string) string {
		return ` { @c = count(); printf("%d %d %s %d %llu\n", pid, tid, comm, ` + ret + `, nsecs); }`
	}
	switch kind {
	case bpf.ProbeTracepoint:
		return []string{"tracepoint:syscalls:sys_exit_mlock2" + action("args->ret")}
	case bpf.ProbeKprobe:
		return []string{"kretprobe:__x64_sys_mlock2" + action("retval")}
	case bpf.ProbeFentry:
		return []string{"fexit:__x64_sys_mlock2" + action("retval"), "kretfunc:__x64_sys_mlock2" + action("retval")}
	}
	return nil
}

// bpftraceTimeScripts returns the bpftrace programs that time each mlock2
// call through kind's entry and exit hooks into a histogram, as a user of
// bpftrace asking how long the calls take would, and count them on exit:
// what the daemon's default (durations on) does with its two hooks. nil if
// bpftrace has no such probes.
func bpftraceTimeScripts(kind bpf.Probe) []string {
	script := func(entry, exit string) string {
		return entry + " { @s[tid] = nsecs; } " + exit + " /@s[tid]/ { @c = count(); @d = hist(nsecs - @s[tid]); delete(@s[tid]); }"
	}
	switch kind {
	case bpf.ProbeTracepoint:
		return []string{script("tracepoint:syscalls:sys_enter_mlock2", "tracepoint:syscalls:sys_exit_mlock2")}
	case bpf.ProbeKprobe:
		return []string{script("kprobe:__x64_sys_mlock2", "kretprobe:__x64_sys_mlock2")}
	case bpf.ProbeFentry:
		return []string{script("fentry:__x64_sys_mlock2", "fexit:__x64_sys_mlock2"), script("kfunc:__x64_sys_mlock2", "kretfunc:__x64_sys_mlock2")}
	}
	return nil
}

// vsPrintKeep is how much of a printing bpftrace's output is kept: its
// last lines, where it prints @c when it exits.
const vsPrintKeep = 64 << 10

// bpftraceCountLine is how bpftrace prints the map @c when it exits.
var bpftraceCountLine = regexp.MustCompile(`(?m)^@c: (\d+)\s*$`)

// parseBpftraceCount reads the count bpftrace printed for @c on exit.
func parseBpftraceCount(out string) (uint64, error) {
	m := bpftraceCountLine.FindAllStringSubmatch(out, -1)
	if len(m) == 0 {
		return 0, fmt.Errorf("read bpftrace's count: no \"@c: N\" line in its output:\n%s", out)
	}
	if len(m) > 1 {
		return 0, fmt.Errorf("read bpftrace's count: %d \"@c: N\" lines in its output, want one:\n%s", len(m), out)
	}
	n, err := strconv.ParseUint(m[0][1], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("read bpftrace's count: %w", err)
	}
	return n, nil
}

// fdinfoProgID returns the BPF program ID in the text of a
// /proc/PID/fdinfo/FD file: that of a program, or of a link's program.
func fdinfoProgID(text string) (ebpf.ProgramID, bool) {
	for l := range strings.Lines(text) {
		v, ok := strings.CutPrefix(l, "prog_id:")
		if !ok {
			continue
		}
		id, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32)
		if err != nil || id == 0 {
			return 0, false
		}
		return ebpf.ProgramID(id), true
	}
	return 0, false
}

// lastLine returns the last non-blank line of s, trimmed: the reason a
// child gave for exiting, after its progress messages.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// gist shortens an error that ends with a child's output to its first
// line and, if there is more, the last: what we did, and what the child
// said last.
func gist(s string) string {
	first, last := oneLine(errors.New(s)), lastLine(s)
	if last == "" || last == strings.TrimSpace(first) {
		return first
	}
	return first + " " + last
}

// vsRound is one round of one kind.
type vsRound struct {
	ns            [vsSetups]float64 // ns per call of each setup, in the loop's fastest chunk (vsLoop)
	mean          [vsSetups]float64 // ns per call of each setup over the whole loop
	bpftraceCount uint64            // the calls bpftrace counted, from all processes
	printCount    uint64            // the calls the printing bpftrace counted
	timeCount     uint64            // the calls the timing bpftrace counted
	daemonEvents  [vsSetups]uint64  // the records each daemon read, from all processes
	daemonLost    [vsSetups]uint64  // the calls it counted but did not read (ring buffer full, repeats shed, ...)
	invalid       string            // why the round does not count; "" if it does
	// others are the tracers somebody else had loaded during the round
	// (type and name), whose cost falls on its setups unevenly.
	others []string
}

// check marks the round invalid if a tracer saw fewer than the calls
// made (the timed ones; the warm-up and the readiness check add more).
func (r *vsRound) check(calls int) {
	var why []string
	if r.bpftraceCount < uint64(calls) {
		why = append(why, fmt.Sprintf("bpftrace counted %d calls, fewer than the %d made", r.bpftraceCount, calls))
	}
	if r.printCount < uint64(calls) {
		why = append(why, fmt.Sprintf("the printing bpftrace counted %d calls, fewer than the %d made", r.printCount, calls))
	}
	if r.timeCount < uint64(calls) {
		why = append(why, fmt.Sprintf("the timing bpftrace counted %d calls, fewer than the %d made", r.timeCount, calls))
	}
	for _, s := range vsDaemons {
		if seen := r.daemonEvents[s] + r.daemonLost[s]; seen < uint64(calls) {
			why = append(why, fmt.Sprintf("%s saw %d calls (events and losses), fewer than the %d made", s, seen, calls))
		}
	}
	r.invalid = strings.Join(why, "; ")
}

func (r vsRound) added(s vsSetup) float64 { return r.ns[s] - r.ns[vsNone] }

func (r vsRound) marks() (string, []string) { return r.invalid, r.others }

// leftOut says why round r is not in the medians ("" if it is).
func (r vsRound) leftOut(counted bool) string {
	switch {
	case counted:
		return ""
	case r.invalid != "":
		return r.invalid
	}
	return "other tracers were loaded meanwhile: " + strings.Join(r.others, ", ")
}

// vsSummary is what the counted rounds of one kind come to (countedRounds).
type vsSummary struct {
	rounds  int               // counted rounds
	tainted bool              // other tracers were loaded during every valid round, and these are counted
	ns      [vsSetups]float64 // median ns per call of each setup
	added   [vsSetups]float64 // median of the rounds' differences from no probe
	ratio   [vsSetups]float64 // a daemon's added / added[vsBpftrace]; NaN unless bpftrace added something
	// likeForLike is the daemon's added / the timing bpftrace's: both
	// time the calls on entry and exit. NaN unless that added something.
	likeForLike float64
	per         [vsSetups][]float64 // each valid round's difference from no probe
}

// summarizeVs takes the medians over the counted rounds (countedRounds).
// Each round's added ns are against that round's own no-probe
// measurement, taken within a few seconds of it.
func summarizeVs(rounds []vsRound) (vsSummary, error) {
	var s vsSummary
	var ns [vsSetups][]float64
	counted, tainted := countedRounds(rounds)
	s.tainted = tainted
	for i, r := range rounds {
		if !counted[i] {
			continue
		}
		s.rounds++
		for k := range vsSetups {
			ns[k] = append(ns[k], r.ns[k])
			s.per[k] = append(s.per[k], r.added(k))
		}
	}
	if s.rounds == 0 {
		return s, fmt.Errorf("summarize %d rounds: none valid", len(rounds))
	}
	for k := range vsSetups {
		s.ns[k], s.added[k] = median(ns[k]), median(s.per[k])
	}
	for k := range vsSetups {
		s.ratio[k] = math.NaN()
		if s.added[vsBpftrace] > 0 && slices.Contains(vsRatioed, k) {
			s.ratio[k] = s.added[k] / s.added[vsBpftrace]
		}
	}
	s.likeForLike = math.NaN()
	if s.added[vsBpftraceTime] > 0 {
		s.likeForLike = s.added[vsDaemon] / s.added[vsBpftraceTime]
	}
	return s, nil
}

// vsProgStat is one BPF program's runs and run time over a -vs-bpftrace-stats run.
type vsProgStat struct {
	who     vsSetup
	name    string
	runs    uint64
	runtime time.Duration
}

func (p vsProgStat) nsPerRun() float64 { return float64(p.runtime.Nanoseconds()) / float64(p.runs) }

// vsRow is one kind's result.
type vsRow struct {
	kind    bpf.Probe
	reasons []string         // why the kind was not measured; nil if it was
	script  string           // the bpftrace program that attached
	print   string           // the printing bpftrace program that attached
	timing  string           // the timing bpftrace program that attached
	hooks   [vsSetups]string // each daemon's hooks, as it reported them
	rounds  []vsRound
	sum     vsSummary
	// The -vs-bpftrace-stats run of each tracer: ns per call, with the
	// statistics on, and its programs' runs.
	statsNs [vsSetups]float64
	stats   []vsProgStat
}

// vsLine renders a row as "VSBPFTRACE key=value ...", the reason (free
// text) always last, for scripts.
func vsLine(kernel string, calls int, r vsRow) string {
	if r.reasons != nil {
		return fmt.Sprintf("VSBPFTRACE kernel=%s kind=%s attached=no reason=%s", kernel, r.kind, strings.Join(r.reasons, "; "))
	}
	s := r.sum
	return fmt.Sprintf("VSBPFTRACE kernel=%s kind=%s attached=yes rounds=%d left_out=%d tainted=%t calls=%d base=%.1f bpftrace=%.1f daemon=%.1f exit_only=%.1f bpftrace_print=%.1f bpftrace_added=%.1f daemon_added=%.1f exit_only_added=%.1f bpftrace_print_added=%.1f ratio=%.2f ratio_exit_only=%.2f ratio_bpftrace_print=%.2f",
		kernel, r.kind, s.rounds, len(r.rounds)-s.rounds, s.tainted, calls, s.ns[vsNone], s.ns[vsBpftrace], s.ns[vsDaemon], s.ns[vsExitOnly], s.ns[vsBpftracePrint],
		s.added[vsBpftrace], s.added[vsDaemon], s.added[vsExitOnly], s.added[vsBpftracePrint], s.ratio[vsDaemon], s.ratio[vsExitOnly], s.ratio[vsBpftracePrint]) +
		fmt.Sprintf(" bpftrace_time=%.1f bpftrace_time_added=%.1f ratio_bpftrace_time=%.2f ratio_like_for_like=%.2f",
			s.ns[vsBpftraceTime], s.added[vsBpftraceTime], s.ratio[vsBpftraceTime], s.likeForLike)
}

// vsStatsLine renders one program's statistics as "VSBPFTRACE_STATS ...".
func vsStatsLine(kernel string, kind bpf.Probe, p vsProgStat) string {
	return fmt.Sprintf("VSBPFTRACE_STATS kernel=%s kind=%s tracer=%s prog=%s runs=%d run_time_ns=%d ns_per_run=%.1f",
		kernel, kind, map[vsSetup]string{vsBpftrace: "bpftrace", vsDaemon: "daemon", vsExitOnly: "daemon_exit_only"}[p.who], p.name, p.runs, p.runtime.Nanoseconds(), p.nsPerRun())
}

// vsOptions are the flags of the vs-bpftrace mode.
type vsOptions struct {
	exporter string // the memlock-exporter binary
	calls    int    // timed mlock2 calls per measurement
	rounds   int
	stats    bool // one more run of each tracer with BPF run-time statistics on
}

// vsBench holds what every measurement needs.
type vsBench struct {
	opts     vsOptions
	bpftrace string  // its path
	addr     uintptr // the page mlock2 is called on
	size     uintptr
	tracerWatch
}

// runVsBpftrace measures the vs-bpftrace mode and prints its table and
// one "VSBPFTRACE " line per kind.
func runVsBpftrace(opts vsOptions) error {
	if opts.rounds < 1 || opts.calls < 1 {
		return fmt.Errorf("-vs-bpftrace-rounds %d and -vs-bpftrace-calls %d: want at least 1 each", opts.rounds, opts.calls)
	}
	path, err := exec.LookPath("bpftrace")
	if err != nil {
		return fmt.Errorf("-vs-bpftrace needs bpftrace, which is not installed (apt-get install bpftrace): %w", err)
	}
	if _, err := os.Stat(opts.exporter); err != nil {
		return fmt.Errorf("no memlock-exporter binary at %s (make build, or -exporter PATH): %w", opts.exporter, err)
	}
	if opts.exporter, err = filepath.Abs(opts.exporter); err != nil {
		return fmt.Errorf("resolve %s: %w", opts.exporter, err)
	}
	page, err := unix.Mmap(-1, 0, os.Getpagesize(), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return fmt.Errorf("map a page: %w", err)
	}
	defer unix.Munmap(page)
	b := &vsBench{opts: opts, bpftrace: path, addr: uintptr(unsafePointer(page)), size: uintptr(len(page)),
		tracerWatch: newTracerWatch()}
	// A first loop checks the probe fails as it should.
	if _, _, err := vsLoop(b.addr, b.size, 1, 1); err != nil {
		return err
	}

	start := time.Now()
	kernel := kernelRelease()
	version, _ := exec.Command(path, "--version").CombinedOutput()
	fmt.Printf("memlock-bench -vs-bpftrace: %d CPUs, kernel %s, %s, %d rounds x %d mlock2 calls failing with EINVAL (flags %#x)\n",
		runtime.NumCPU(), kernel, strings.TrimSpace(string(version)), opts.rounds, opts.calls, vsBadFlags)
	fmt.Printf("A no probe; B bpftrace -e '<hook> { @c = count(); }', stopped with SIGINT;\n"+
		"C %s with OTEL_SDK_DISABLED=true MEMLOCK_EXPORTER_KERNEL_HOOK=<kind>, stopped with SIGTERM;\n"+
		"D the same with MEMLOCK_EXPORTER_CALL_DURATION=off (exit hooks only);\n"+
		"E bpftrace -e '<exit hook> { @c = count(); printf(pid, tid, comm, return value, time); }', a line per call, as a user of it would see each call;\n"+
		"F bpftrace timing each call into a histogram on the entry and exit hooks, as C does with its durations;\n"+
		"each tracer started afresh for each of its measurements; order by round: %s\n\n", opts.exporter, vsOrderString(opts.rounds))

	var rows []vsRow
	measured := 0
	for _, kind := range vsKinds {
		row, err := b.measureKind(kind)
		if err != nil {
			return fmt.Errorf("%s: %w", kind, err)
		}
		if row.reasons == nil {
			measured++
		}
		rows = append(rows, row)
	}
	vsPrint(kernel, opts, rows)
	if len(b.others) > 0 {
		fmt.Printf("other tracers loaded during the run: %s\n", strings.Join(b.otherNames(), ", "))
	}
	fmt.Println()
	for _, r := range rows {
		fmt.Println(vsLine(kernel, opts.calls, r))
	}
	for _, r := range rows {
		for _, p := range r.stats {
			fmt.Println(vsStatsLine(kernel, r.kind, p))
		}
	}
	fmt.Printf("memlock-bench -vs-bpftrace: done in %.1fs\n", time.Since(start).Seconds())
	if measured == 0 {
		return errors.New("no kind of hook could be measured on this kernel")
	}
	return nil
}

// measureKind tries both tracers on kind, then, if both attach, measures
// the rounds and, with -vs-bpftrace-stats, the statistics runs.
func (b *vsBench) measureKind(kind bpf.Probe) (vsRow, error) {
	row := vsRow{kind: kind}
	fmt.Printf("%s: ", kind)
	// Can each tracer attach? The first bpftrace program that does is
	// the one measured.
	for _, s := range vsDaemons {
		d, err := b.startDaemon(kind, s)
		if err == nil {
			row.hooks[s] = daemonHooks(d.stderr.String())
			err = d.stop()
		}
		if err != nil {
			row.reasons = append(row.reasons, s.String()+": "+gist(err.Error()))
		}
	}
	var why string
	if row.script, why = b.firstAttaching(bpftraceScripts(kind), 0); row.script == "" {
		row.reasons = append(row.reasons, "bpftrace: "+why)
	} else if row.print, why = b.firstAttaching(bpftracePrintScripts(kind), vsPrintKeep); row.print == "" {
		row.reasons = append(row.reasons, "bpftrace printing: "+why)
	} else if row.timing, why = b.firstAttaching(bpftraceTimeScripts(kind), 0); row.timing == "" {
		row.reasons = append(row.reasons, "bpftrace timing: "+why)
	}
	if row.reasons != nil {
		fmt.Println("not measured")
		return row, nil
	}
	time.Sleep(vsSettle)

	for i := range b.opts.rounds {
		var r vsRound
		for _, s := range vsOrder(i) {
			if err := b.measure(kind, row, s, &r); err != nil {
				return row, fmt.Errorf("round %d, %s: %w", i+1, s, err)
			}
		}
		r.check(b.opts.calls)
		row.rounds = append(row.rounds, r)
		fmt.Printf("%s ", vsOrderLetters(i))
	}
	fmt.Println()
	sum, err := summarizeVs(row.rounds)
	if err != nil {
		return row, err
	}
	row.sum = sum
	if b.opts.stats {
		for _, s := range []vsSetup{vsBpftrace, vsDaemon, vsExitOnly} {
			ns, progs, err := b.measureStats(kind, row.script, s)
			if err != nil {
				return row, fmt.Errorf("%s with statistics on: %w", s, err)
			}
			row.statsNs[s] = ns
			row.stats = append(row.stats, progs...)
		}
	}
	return row, nil
}

// firstAttaching returns the first of scripts that bpftrace attaches (its
// output kept as startBpftraceKeeping keeps it), or "" and why none did.
func (b *vsBench) firstAttaching(scripts []string, keep int) (script, why string) {
	var tried []string
	for _, script := range scripts {
		bt, out, err := b.startBpftraceKeeping(script, keep)
		if err == nil {
			err = interruptChild(bt)
		}
		if err == nil {
			return script, ""
		}
		tried = append(tried, fmt.Sprintf("%q: %s", script, bpftraceReason(err, out.String())))
	}
	return "", strings.Join(tried, "; ")
}

// bpftraceReason is the gist of why bpftrace did not attach, from its
// output: its last ERROR or FATAL line (the first may be only that it
// could not raise RLIMIT_MEMLOCK, which kernels since 5.11 do not need),
// else its last line, else err's first.
func bpftraceReason(err error, out string) string {
	reason := ""
	for l := range strings.Lines(out) {
		if strings.Contains(l, "ERROR") || strings.Contains(l, "FATAL") {
			reason = strings.TrimSpace(l)
		}
	}
	switch {
	case reason != "":
		return reason
	case strings.TrimSpace(out) != "":
		return lastLine(out)
	}
	return oneLine(err)
}

// measure starts setup s (nothing for vsNone), times the loop, stops it,
// and puts ns per call and the calls the tracer saw into r.
func (b *vsBench) measure(kind bpf.Probe, row vsRow, s vsSetup, r *vsRound) error {
	switch s {
	case vsNone:
		return b.timedLoop(r, s)
	case vsBpftrace, vsBpftracePrint, vsBpftraceTime:
		script, keep, count := row.script, 0, &r.bpftraceCount
		switch s {
		case vsBpftracePrint:
			script, keep, count = row.print, vsPrintKeep, &r.printCount
		case vsBpftraceTime:
			script, count = row.timing, &r.timeCount
		}
		bt, out, err := b.startBpftraceKeeping(script, keep)
		if err != nil {
			return fmt.Errorf("%w\n%s", err, out)
		}
		time.Sleep(vsSettle)
		if err := b.timedLoop(r, s); err != nil {
			bt.kill()
			return err
		}
		if err := interruptChild(bt); err != nil {
			return fmt.Errorf("%w\n%s", err, out)
		}
		time.Sleep(vsSettle)
		*count, err = parseBpftraceCount(out.String())
		return err
	default:
		d, err := b.startDaemon(kind, s)
		if err != nil {
			return err
		}
		time.Sleep(vsSettle)
		if err := b.timedLoop(r, s); err != nil {
			d.kill()
			return err
		}
		if err := d.stop(); err != nil {
			return fmt.Errorf("%w:\n%s", err, d.stderr)
		}
		time.Sleep(vsSettle)
		c, err := d.counts()
		r.daemonEvents[s], r.daemonLost[s] = c.events, c.lost()
		return err
	}
}

// timedLoop runs the timed calls, noting whether someone else's BPF
// programs came or went meanwhile (they would spoil the round).
// Its fastest chunk's ns per call go into r.ns[s], the mean into r.mean[s].
func (b *vsBench) timedLoop(r *vsRound, s vsSetup) error {
	b.note(&r.others)
	mean, best, err := vsLoop(b.addr, b.size, b.opts.calls, vsChunk)
	b.note(&r.others)
	r.ns[s], r.mean[s] = best, mean
	return err
}

// measureStats runs tracer s once with BPF run-time statistics on and
// returns ns per call and what each of its programs that ran cost.
func (b *vsBench) measureStats(kind bpf.Probe, script string, s vsSetup) (float64, []vsProgStat, error) {
	var c *child
	var out fmt.Stringer
	if s == vsBpftrace {
		bt, buf, err := b.startBpftrace(script)
		if err != nil {
			return 0, nil, fmt.Errorf("%w\n%s", err, buf)
		}
		c, out = bt, buf
	} else {
		d, err := b.startDaemon(kind, s)
		if err != nil {
			return 0, nil, err
		}
		c, out = d.child, d.stderr
	}
	defer c.kill()
	var before, after map[ebpf.ProgramID]progRuns
	ns, err := func() (float64, error) {
		stats, err := bpf.EnableRuntimeStats()
		if err != nil {
			return 0, err
		}
		defer stats.Close()
		time.Sleep(vsSettle)
		before = childProgramStats(c.pid())
		ns, _, err := vsLoop(b.addr, b.size, b.opts.calls, vsChunk)
		after = childProgramStats(c.pid())
		return ns, err
	}()
	if err != nil {
		return 0, nil, err
	}
	var progs []vsProgStat
	for id, a := range after {
		p := vsProgStat{who: s, name: a.name, runs: a.runs - before[id].runs, runtime: a.runtime - before[id].runtime}
		if p.runs > 0 {
			progs = append(progs, p)
		}
	}
	slices.SortFunc(progs, func(x, y vsProgStat) int { return strings.Compare(x.name, y.name) })
	if s == vsBpftrace {
		err = interruptChild(c)
	} else {
		err = c.stop()
	}
	if err != nil {
		return 0, nil, fmt.Errorf("%w\n%s", err, out)
	}
	time.Sleep(vsSettle)
	return ns, progs, nil
}

// startDaemon starts the daemon of setup s forced onto kind, with its
// export off, and returns once its programs run.
func (b *vsBench) startDaemon(kind bpf.Probe, s vsSetup) (*daemon, error) {
	d, err := startDaemon(b.opts.exporter, daemonEnv(kind, s))
	if err != nil {
		return nil, err
	}
	if err := b.waitRunning(d.child); err != nil {
		d.kill()
		return nil, fmt.Errorf("%w:\n%s", err, d.stderr)
	}
	return d, nil
}

// startBpftrace starts bpftrace on script and returns once its program
// runs. (It prints "Attaching N probes..." before it attaches them, and
// compiling the script takes a second or more before that.) out collects its stdout and stderr, also
// on failure.
func (b *vsBench) startBpftrace(script string) (*child, *lockedBuffer, error) {
	return b.startBpftraceKeeping(script, 0)
}

// startBpftraceKeeping is startBpftrace keeping only about the last keep
// bytes of its output (all of it for 0).
func (b *vsBench) startBpftraceKeeping(script string, keep int) (*child, *lockedBuffer, error) {
	out := &lockedBuffer{keep: keep}
	cmd := exec.Command(b.bpftrace, "-e", script)
	cmd.Stdout, cmd.Stderr = out, out
	c, err := startChild("bpftrace", cmd)
	if err != nil {
		return nil, out, err
	}
	if err := b.waitRunning(c); err != nil {
		c.kill()
		return nil, out, err
	}
	return c, out, nil
}

// waitRunning returns once one of c's BPF programs has run, calling mlock2
// (failing) meanwhile: the proof that its hooks are attached, which a
// message printed before attaching (bpftrace's) is not. The calls also
// reach the tracer's count, beyond those timed. Without run-time
// statistics (kernels before 5.8) it can only wait a while.
func (b *vsBench) waitRunning(c *child) error {
	stats, err := bpf.EnableRuntimeStats()
	if err != nil {
		time.Sleep(time.Second)
		return nil
	}
	defer stats.Close()
	deadline := time.Now().Add(startTimeout)
	for {
		for range 10 {
			unix.RawSyscall6(unix.SYS_MLOCK2, b.addr, b.size, vsBadFlags, 0, 0, 0)
		}
		var runs uint64
		for id, p := range childProgramStats(c.pid()) {
			b.ours[id] = true
			runs += p.runs
		}
		if runs > 0 {
			return nil
		}
		if !c.running() {
			return fmt.Errorf("start %s: exited (%v)", c.name, c.err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("start %s: none of its BPF programs ran within %v of calling mlock2", c.name, startTimeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// progRuns is a program's name and the kernel's run-time statistics of it
// (zero unless statistics are on).
type progRuns struct {
	name    string
	runs    uint64
	runtime time.Duration
}

// childProgramStats returns the BPF programs process pid holds, through a
// program's or a link's descriptor, by ID.
func childProgramStats(pid int) map[ebpf.ProgramID]progRuns {
	out := map[ebpf.ProgramID]progRuns{}
	dir := fmt.Sprintf("/proc/%d/fdinfo", pid)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return out
	}
	for _, e := range entries {
		text, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		id, ok := fdinfoProgID(string(text))
		if !ok {
			continue
		}
		if _, seen := out[id]; seen {
			continue
		}
		p, err := ebpf.NewProgramFromID(id)
		if err != nil {
			continue
		}
		var r progRuns
		if info, err := p.Info(); err == nil {
			r.name = info.Name
		}
		if st, err := p.Stats(); err == nil {
			r.runs, r.runtime = st.RunCount, st.Runtime
		}
		p.Close()
		out[id] = r
	}
	return out
}

// interruptChild stops c with SIGINT, as bpftrace wants to print its maps,
// and waits for a clean exit; it kills c after stopTimeout.
func interruptChild(c *child) error {
	if c.running() {
		if err := c.cmd.Process.Signal(syscall.SIGINT); err != nil && !errors.Is(err, os.ErrProcessDone) {
			return fmt.Errorf("signal %s: %w", c.name, err)
		}
	}
	select {
	case <-c.exited:
	case <-time.After(stopTimeout):
		c.kill()
		return fmt.Errorf("stop %s: no exit within %v of SIGINT; killed it", c.name, stopTimeout)
	}
	if c.err != nil {
		return fmt.Errorf("stop %s: %w", c.name, c.err)
	}
	return nil
}

// vsChunk is how many calls each timed chunk of a loop makes.
const vsChunk = 50_000

// vsLoop makes vsWarmup untimed mlock2 calls, then n timed ones, all
// failing with EINVAL, on a locked thread kept on a CPU of its own
// (pinLoopApart). It returns ns per call over
// all n (mean), and in the fastest chunk of chunk calls (best). This
// host is a guest whose neighbours take its CPUs now and then: that only
// ever adds time, to some chunks and not others, while a tracer's cost is
// in every call alike, so the fastest chunk shows the cost with the least
// interference.
func vsLoop(addr, size uintptr, n, chunk int) (mean, best float64, err error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer pinLoopApart()()
	call := func() error {
		// RawSyscall6 skips the Go scheduler's bookkeeping around the
		// call, which would otherwise dilute the kernel's share.
		if _, _, errno := unix.RawSyscall6(unix.SYS_MLOCK2, addr, size, vsBadFlags, 0, 0, 0); errno != unix.EINVAL {
			return fmt.Errorf("mlock2 with flags %#x: got errno %d (%v), want EINVAL", vsBadFlags, errno, errno)
		}
		return nil
	}
	for range vsWarmup {
		if err := call(); err != nil {
			return 0, 0, err
		}
	}
	best = math.Inf(1)
	start := time.Now()
	for done := 0; done < n; {
		c := min(chunk, n-done)
		chunkStart := time.Now()
		for range c {
			if err := call(); err != nil {
				return 0, 0, err
			}
		}
		best = min(best, float64(time.Since(chunkStart).Nanoseconds())/float64(c))
		done += c
	}
	return float64(time.Since(start).Nanoseconds()) / float64(n), best, nil
}

// vsPrint prints the table, then each measured kind's rounds.
func vsPrint(kernel string, opts vsOptions, rows []vsRow) {
	fmt.Printf("\nns per failing mlock2 call in each loop's fastest chunk of %d calls, median of the rounds counted;\n"+
		"(added) = median over the rounds of setup - that round's no probe; ratio = daemon-added / bpftrace-added\n", vsChunk)
	fmt.Printf("%-10s  %8s  %-18s  %-18s  %-7s  %-18s  %-7s  %-20s  %s\n", "hook", "no probe", "bpftrace count", "memlock-exporter", "ratio", "exporter exit-only", "ratio", "bpftrace printing", "ratio")
	fmt.Printf("%-10s  %8s  %-18s  %-18s  %-7s  %-18s  %-7s  %-20s  %s\n", "", "", "", "(export off)", "", "(no duration)", "", "(a line per call)", "")
	for _, r := range rows {
		if r.reasons != nil {
			fmt.Printf("%-10s  not measured: %s\n", r.kind, strings.Join(r.reasons, "; "))
			continue
		}
		s := r.sum
		fmt.Printf("%-10s  %8.1f  %7.1f (%+7.1f)  %7.1f (%+7.1f)  %6.2fx  %7.1f (%+7.1f)  %6.2fx  %8.1f (%+8.1f)  %6.2fx\n", r.kind,
			s.ns[vsNone], s.ns[vsBpftrace], s.added[vsBpftrace], s.ns[vsDaemon], s.added[vsDaemon], s.ratio[vsDaemon],
			s.ns[vsExitOnly], s.added[vsExitOnly], s.ratio[vsExitOnly], s.ns[vsBpftracePrint], s.added[vsBpftracePrint], s.ratio[vsBpftracePrint])
	}
	fmt.Printf("\nlike for like, the calls timed on entry and exit: bpftrace timing them into a histogram, and memlock-exporter (durations on)\n")
	for _, r := range rows {
		if r.reasons != nil {
			continue
		}
		s := r.sum
		fmt.Printf("%-10s  bpftrace timing %7.1f (%+7.1f) = %.2fx bpftrace counting; memlock-exporter %.2fx bpftrace timing\n", r.kind,
			s.ns[vsBpftraceTime], s.added[vsBpftraceTime], s.ratio[vsBpftraceTime], s.likeForLike)
	}
	for _, r := range rows {
		if r.reasons != nil {
			continue
		}
		fmt.Printf("\n%s: bpftrace -e '%s'\n  printing: bpftrace -e '%s'\n  timing: bpftrace -e '%s'\n  memlock-exporter's hooks: %s\n  exit-only: %s\n",
			r.kind, r.script, r.print, r.timing, r.hooks[vsDaemon], r.hooks[vsExitOnly])
		counted, _ := countedRounds(r.rounds)
		invalid := make([]bool, len(r.rounds))
		var ns [vsSetups][]float64
		var added [vsSetups][]float64
		var ratios [vsSetups][]float64
		for i, rd := range r.rounds {
			invalid[i] = !counted[i]
			for k := range vsSetups {
				ns[k] = append(ns[k], rd.ns[k])
				added[k] = append(added[k], rd.added(k))
				ratios[k] = append(ratios[k], rd.added(k)/rd.added(vsBpftrace))
			}
		}
		fmt.Printf("  per round, ns:       %-18s %s\n", vsNone, formatMarked(ns[vsNone], invalid, "%.1f"))
		for _, k := range []vsSetup{vsBpftrace, vsDaemon, vsExitOnly, vsBpftracePrint, vsBpftraceTime} {
			fmt.Printf("                       %-18s %s\n", k, formatMarked(ns[k], invalid, "%.1f"))
		}
		for k := range vsSetups {
			label := ""
			if k == 0 {
				label = "mean of the loop:"
			}
			means := make([]float64, len(r.rounds))
			for i, rd := range r.rounds {
				means[i] = rd.mean[k]
			}
			fmt.Printf("  %-19s %-18s %s\n", label, k, formatMarked(means, invalid, "%.1f"))
		}
		fmt.Printf("  per round, added:    %-18s %s\n", vsBpftrace, formatMarked(added[vsBpftrace], invalid, "%+.1f"))
		for _, k := range vsRatioed {
			fmt.Printf("                       %-18s %s\n", k, formatMarked(added[k], invalid, "%+.1f"))
		}
		for i, k := range vsRatioed {
			label := ""
			if i == 0 {
				label = "per round, ratio:"
			}
			fmt.Printf("  %-19s %-18s %s (median %.2fx)\n", label, k, formatMarked(ratios[k], invalid, "%.2fx"), median(cleanRounds(ratios[k], invalid)))
		}
		counts := make([]string, len(r.rounds))
		printCounts := make([]string, len(r.rounds))
		timeCounts := make([]string, len(r.rounds))
		var seen [vsSetups][]string
		for i, rd := range r.rounds {
			counts[i] = strconv.FormatUint(rd.bpftraceCount, 10)
			printCounts[i] = strconv.FormatUint(rd.printCount, 10)
			timeCounts[i] = strconv.FormatUint(rd.timeCount, 10)
			for _, k := range vsDaemons {
				seen[k] = append(seen[k], fmt.Sprintf("%d+%d", rd.daemonEvents[k], rd.daemonLost[k]))
			}
		}
		fmt.Printf("  calls seen, want >= %d each (%d warm-up calls and the attach check's come on top, and other processes'):\n", opts.calls, vsWarmup)
		fmt.Printf("    bpftrace's count                          %s\n", strings.Join(counts, " "))
		fmt.Printf("    the printing bpftrace's count             %s\n", strings.Join(printCounts, " "))
		fmt.Printf("    the timing bpftrace's count               %s\n", strings.Join(timeCounts, " "))
		for _, k := range vsDaemons {
			fmt.Printf("    %-18s records read + lost   %s\n", k, strings.Join(seen[k], " "))
		}
		for i, rd := range r.rounds {
			if why := rd.leftOut(counted[i]); why != "" {
				fmt.Printf("  * round %d left out: %s\n", i+1, why)
			}
		}
		if r.sum.tainted {
			fmt.Printf("  warning: other tracers were loaded during every valid round; all of those are counted\n")
		}
		if len(r.stats) > 0 {
			fmt.Printf("  BPF run-time statistics (kernel.bpf_stats_enabled), one more run of each tracer, not in the medians\n" +
				"  (program names cut to 15 characters by the kernel; every process's calls count):\n")
			fmt.Printf("    ns/call with statistics on: bpftrace %.1f, memlock-exporter %.1f, exit-only %.1f\n", r.statsNs[vsBpftrace], r.statsNs[vsDaemon], r.statsNs[vsExitOnly])
			for _, p := range r.stats {
				fmt.Printf("    %-18s %-16s %10d runs %8.1f ns/run\n", p.who, p.name, p.runs, p.nsPerRun())
			}
		}
	}
	fmt.Println("\n(the ns are the calling thread's wall time per call: what the traced program pays. The daemon's\n" +
		" reader works on another CPU meanwhile and is not in them. bpftrace runs one program, on entry;\n" +
		" the daemon two, on entry and exit, or the exit one alone with the call duration off, and writes\n" +
		" a record per call into its ring buffer. The printing bpftrace hands each call to its own\n" +
		" output, on exit, as a user of bpftrace would to see the calls themselves. The timing bpftrace\n" +
		" runs two, on entry and exit, as the daemon does to time the calls: the like-for-like yardstick\n" +
		" of the daemon's default.)")
}
