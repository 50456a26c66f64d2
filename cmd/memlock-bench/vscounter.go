package main

// The vs-counter mode (-vs-counter) is -vs-bpftrace's question asked where
// there is no bpftrace, inside the VMs of make bench-vm: how much more
// than the cheapest tracer one could run does the daemon add to a traced
// call? Its yardstick is a tiny BPF program of our own, assembled here
// with cilium/ebpf/asm (no C, no object file), that only counts mlock2
// calls in a per-CPU array, as bpftrace's count() does. It attaches as
// each kind of hook does, on entry or on exit:
//
//	fentry:     fentry / fexit __x64_sys_mlock2
//	kprobe:     kprobe / kretprobe __x64_sys_mlock2
//	tracepoint: syscalls:sys_enter_mlock2 / sys_exit_mlock2
//
// so the entry and exit counters show what the mechanism itself costs a
// call (trampoline, int3/ftrace, tracepoint slow path), and the tracer's
// extra over them is its programs' work. Everything runs in this process:
// the tracer is bpf.Open with only mlock2 and a reader draining it, as in
// -tax, not the daemon binary.
//
// Every round measures the five setups (no probe, counter on entry,
// counter on exit, the tracer, the tracer exit-only) in ABCDE order in
// even rounds and EDCBA in odd ones, each attached afresh and detached
// after: a probe left attached would tax the others. The probe is
// mlock2 failing with EINVAL (vsBadFlags), timed on a locked thread; each
// loop quotes its fastest chunk of calls/vcChunks calls (see vsLoop for
// why the fastest). What a setup adds is its ns per call less the same
// round's no probe; the table gives medians over the rounds. A round
// counts only if every probe saw every call (the counter's sum, the
// tracer's records read and lost): else it was not attached throughout.
// One more run of each probe with BPF run-time statistics on gives each
// program's ns per run.

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"

	"github.com/memlock-exporter/memlock-exporter/bpf"
)

// The mode's flags are registered here rather than in main so that the
// mode lives in one file; main only dispatches on -vs-counter.
var (
	vcFlag       = flag.Bool("vs-counter", false, "measure instead what the tracer (in-process, mlock2 only) adds to an mlock2 call that fails at once, per kind of hook, beside a BPF program that only counts the calls on entry and on exit, alternated in one run (see vscounter.go); runs where bpftrace does not, e.g. in make bench-vm")
	vcRoundsFlag = flag.Int("vs-counter-rounds", 5, "rounds of -vs-counter, each setup once per round (ABCDE, then EDCBA)")
	vcCallsFlag  = flag.Int("vs-counter-calls", 2_000_000, "failing mlock2 calls per -vs-counter measurement, timed in 40 chunks")
)

const (
	// vcChunks is how many chunks a loop's calls are cut into: enough
	// that some run clean of the host's interference, at the host's 2 M
	// calls and at the VM's 100 k alike.
	vcChunks = 40
	// vcSettle: a loop starts this long after its probe attached, with
	// the garbage of loading collected, so that neither the kernel's
	// deferred work of patching its text nor our GC falls into it.
	vcSettle = 200 * time.Millisecond
	// vcFunction is the kernel function of mlock2 on x86-64, which the
	// BPF objects are built for.
	vcFunction = "__x64_sys_mlock2"
)

// vcKinds are the kinds of hook measured, each on its own.
var vcKinds = taxKinds

// vcSetup is one of the five things a round measures.
type vcSetup int

const (
	vcNone     vcSetup = iota // no probe
	vcEntry                   // the counter on entry
	vcExit                    // the counter on exit
	vcTracer                  // bpf.Open, mlock2 only, a reader draining it
	vcExitOnly                // the same with ExitOnly
	vcSetups                  // how many there are
)

var (
	vcSetupNames = [vcSetups]string{"no probe", "counter entry", "counter exit", "tracer", "tracer exit-only"}
	// vcSetupKeys name the setups in the machine-readable lines.
	vcSetupKeys = [vcSetups]string{"base", "entry", "exit", "tracer", "exit_only"}
	// vcProbes are the setups that attach something.
	vcProbes = []vcSetup{vcEntry, vcExit, vcTracer, vcExitOnly}
)

func (s vcSetup) String() string { return vcSetupNames[s] }

// vcOrder returns the setups of round i (from 0) in the order measured
// (abbaOrder).
func vcOrder(round int) []vcSetup { return abbaOrder[vcSetup](int(vcSetups), round) }

// vcOrderLetters renders the order of round i.
func vcOrderLetters(round int) string { return orderLetters(vcOrder(round)) }

// vcOrderString renders the orders of n rounds.
func vcOrderString(n int) string { return orderString(int(vcSetups), n) }

// counterHook is where a counter attaches for one kind of hook, on entry
// or on exit.
type counterHook struct {
	name       string // "fentry", "kretprobe", "sys_enter_mlock2", ...: the mechanism, for tables
	progType   ebpf.ProgramType
	attachType ebpf.AttachType
}

// counterHookFor returns the counter's hook for kind, on exit if exit.
func counterHookFor(kind bpf.Probe, exit bool) (counterHook, error) {
	switch {
	case kind == bpf.ProbeFentry && !exit:
		return counterHook{"fentry", ebpf.Tracing, ebpf.AttachTraceFEntry}, nil
	case kind == bpf.ProbeFentry:
		return counterHook{"fexit", ebpf.Tracing, ebpf.AttachTraceFExit}, nil
	case kind == bpf.ProbeKprobe && !exit:
		return counterHook{"kprobe", ebpf.Kprobe, ebpf.AttachNone}, nil
	case kind == bpf.ProbeKprobe:
		return counterHook{"kretprobe", ebpf.Kprobe, ebpf.AttachNone}, nil
	case kind == bpf.ProbeTracepoint && !exit:
		return counterHook{"sys_enter_mlock2", ebpf.TracePoint, ebpf.AttachNone}, nil
	case kind == bpf.ProbeTracepoint:
		return counterHook{"sys_exit_mlock2", ebpf.TracePoint, ebpf.AttachNone}, nil
	}
	return counterHook{}, fmt.Errorf("no counter for %s hooks", kind)
}

// counterMap is the per-CPU array of one u64 the counter adds to.
const counterMap = "counts"

// counterInstructions is the counter's program: look up the map's only
// slot and add one to it. Per-CPU, so no atomic add and no cache line
// bouncing between CPUs: the least a counting tracer can do. With tgid
// non-zero it first skips the calls of other processes (one more helper
// call), which the tests need on a host where others call mlock2 too;
// the benchmark counts every process's calls, as the daemon and bpftrace
// do.
func counterInstructions(tgid uint32) asm.Instructions {
	var insns asm.Instructions
	if tgid != 0 {
		insns = append(insns,
			asm.FnGetCurrentPidTgid.Call(),
			asm.RSh.Imm(asm.R0, 32), // the upper half is the tgid
			asm.JNE.Imm(asm.R0, int32(tgid), "out"),
		)
	}
	return append(insns,
		asm.StoreImm(asm.R10, -4, 0, asm.Word), // key 0 on the stack
		asm.Mov.Reg(asm.R2, asm.R10),
		asm.Add.Imm(asm.R2, -4),
		asm.LoadMapPtr(asm.R1, 0).WithReference(counterMap),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "out"),
		asm.LoadMem(asm.R1, asm.R0, 0, asm.DWord),
		asm.Add.Imm(asm.R1, 1),
		asm.StoreMem(asm.R0, 0, asm.R1, asm.DWord),
		asm.Mov.Imm(asm.R0, 0).WithSymbol("out"),
		asm.Return(),
	)
}

// counterSpec is the counter's collection: its map and its program.
func counterSpec(h counterHook, tgid uint32) *ebpf.CollectionSpec {
	prog := &ebpf.ProgramSpec{
		// "vsc_" and the mechanism: at most 15 characters, the kernel's limit.
		Name:         "vsc_" + strings.TrimSuffix(h.name, "_mlock2"),
		Type:         h.progType,
		AttachType:   h.attachType,
		Instructions: counterInstructions(tgid),
		// Tracing programs (fentry/fexit) must be GPL-compatible.
		License: "Dual BSD/GPL",
	}
	if h.progType == ebpf.Tracing {
		prog.AttachTo = vcFunction
	}
	return &ebpf.CollectionSpec{
		Maps: map[string]*ebpf.MapSpec{
			counterMap: {Name: counterMap, Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 8, MaxEntries: 1},
		},
		Programs: map[string]*ebpf.ProgramSpec{prog.Name: prog},
	}
}

// counter is a loaded and attached counting program.
type counter struct {
	hook   counterHook
	coll   *ebpf.Collection
	prog   *ebpf.Program
	counts *ebpf.Map
	link   link.Link
}

// openCounter loads the counter for kind (on exit if exit) and attaches
// it; with tgid non-zero it counts only that process's calls. cache is
// the kernel BTF its fentry/fexit target is looked up in, shared by the
// loads of a run (parsing it takes seconds under emulation).
func openCounter(kind bpf.Probe, exit bool, tgid uint32, cache *btf.Cache) (*counter, error) {
	h, err := counterHookFor(kind, exit)
	if err != nil {
		return nil, err
	}
	// Kernels before 5.11 charge BPF maps to RLIMIT_MEMLOCK.
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("raise RLIMIT_MEMLOCK for BPF maps: %w", err)
	}
	if h.progType == ebpf.Tracing {
		// Debian 6.1's BTF lists __x64_sys_mlock2 twice; cilium/ebpf
		// refuses an ambiguous fentry target (see bpf/btfdup.go).
		if err := bpf.UniqueKernelFunc(cache, vcFunction); err != nil {
			return nil, err
		}
	}
	spec := counterSpec(h, tgid)
	coll, err := ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{Cache: cache})
	if errors.Is(err, unix.EPERM) && h.progType == ebpf.Tracing {
		// cilium/ebpf suggests raising RLIMIT_MEMLOCK, which was done:
		// the kernel refuses tracing programs (as on this project's host).
		return nil, fmt.Errorf("load the %s counter: %w (the kernel refuses tracing programs: no BPF trampolines here, or lockdown)", h.name, unix.EPERM)
	}
	if err != nil {
		return nil, fmt.Errorf("load the %s counter: %w", h.name, err)
	}
	c := &counter{hook: h, coll: coll, counts: coll.Maps[counterMap]}
	for _, p := range coll.Programs {
		c.prog = p
	}
	switch h.name {
	case "fentry", "fexit":
		c.link, err = link.AttachTracing(link.TracingOptions{Program: c.prog})
	case "kprobe":
		c.link, err = link.Kprobe(vcFunction, c.prog, nil)
	case "kretprobe":
		c.link, err = link.Kretprobe(vcFunction, c.prog, nil)
	default:
		c.link, err = link.Tracepoint("syscalls", h.name, c.prog, nil)
	}
	if errors.Is(err, os.ErrNotExist) && strings.Contains(err.Error(), "kprobe_events") {
		coll.Close()
		return nil, fmt.Errorf("attach the %s counter: %w (no kprobe_events in tracefs: this kernel has no kprobes)", h.name, os.ErrNotExist)
	}
	if err != nil {
		coll.Close()
		return nil, fmt.Errorf("attach the %s counter to %s: %w", h.name, c.target(), err)
	}
	return c, nil
}

// target names what the counter is attached to.
func (c *counter) target() string {
	if c.hook.progType == ebpf.TracePoint {
		return "syscalls:" + c.hook.name
	}
	return vcFunction
}

// Count sums the calls counted on every CPU.
func (c *counter) Count() (uint64, error) {
	var perCPU []uint64
	if err := c.counts.Lookup(uint32(0), &perCPU); err != nil {
		return 0, fmt.Errorf("read the %s counter: %w", c.hook.name, err)
	}
	var n uint64
	for _, v := range perCPU {
		n += v
	}
	return n, nil
}

// Close detaches the counter and frees it.
func (c *counter) Close() error {
	err := c.link.Close()
	c.coll.Close()
	if err != nil {
		return fmt.Errorf("detach the %s counter: %w", c.hook.name, err)
	}
	return nil
}

// vcProbe is an attached setup: a counter, or a tracer with its reader.
type vcProbe interface {
	// finish stops what drains the probe, if anything, and returns the
	// calls it saw (counted, or records read) and those it lost.
	finish() (seen, lost uint64, err error)
	programStats() ([]bpf.ProgramStat, error)
	close() error
	describe() string
}

type counterProbe struct{ *counter }

func (c counterProbe) finish() (uint64, uint64, error) {
	n, err := c.Count()
	return n, 0, err
}

func (c counterProbe) programStats() ([]bpf.ProgramStat, error) {
	st, err := c.prog.Stats()
	if err != nil {
		return nil, fmt.Errorf("read statistics of the %s counter: %w", c.hook.name, err)
	}
	return []bpf.ProgramStat{{Name: "counter_" + c.hook.name, RunCount: st.RunCount, Runtime: st.Runtime}}, nil
}

func (c counterProbe) close() error     { return c.Close() }
func (c counterProbe) describe() string { return c.hook.name + " " + c.target() }

type tracerProbe struct {
	tr      *bpf.Tracer
	r       *bpf.Reader
	stop    func()
	stopped bool
}

// finish stops the reader, which hands over every record left in the
// ring buffer first, so the count is final.
func (t *tracerProbe) finish() (uint64, uint64, error) {
	if !t.stopped {
		t.stop()
		t.stopped = true
	}
	l, err := t.r.Losses()
	if err != nil {
		return 0, 0, fmt.Errorf("read the tracer's losses: %w", err)
	}
	return t.r.Events(), l.RingbufFull + l.MissedEntry + l.EntryMapFull + l.RepeatShed + l.ProgramBusy, nil
}

func (t *tracerProbe) programStats() ([]bpf.ProgramStat, error) { return t.tr.ProgramStats() }

func (t *tracerProbe) close() error {
	if !t.stopped {
		t.stop()
		t.stopped = true
	}
	if err := t.tr.Close(); err != nil {
		return fmt.Errorf("close the tracer: %w", err)
	}
	return nil
}

func (t *tracerProbe) describe() string {
	var hooks []string
	for _, h := range t.tr.Hooks() {
		hooks = append(hooks, h.Probe.String()+" "+h.Target)
	}
	return strings.Join(hooks, ", ")
}

// vcOptions are the flags of the vs-counter mode.
type vcOptions struct {
	rounds, calls int
}

// chunk is how many calls each timed chunk of a loop makes.
func (o vcOptions) chunk() int { return max(1, o.calls/vcChunks) }

// vcRound is one round of one kind.
type vcRound struct {
	ns   [vcSetups]float64 // ns per call in the loop's fastest chunk
	mean [vcSetups]float64 // ns per call over the whole loop
	seen [vcSetups]uint64  // calls the probe counted, or records the tracer read, from every process
	lost [vcSetups]uint64  // calls the tracer counted as lost (ring buffer full, repeats shed, ...)
	// invalid says why the round does not count; "" if it does.
	invalid string
	// others are the tracing programs somebody else had loaded around
	// the round's loops, whose cost falls on its setups unevenly.
	others []string
}

// check marks the round invalid if a probe that attached (avail) saw
// fewer than the calls made (the timed ones; the warm-up adds more).
func (r *vcRound) check(calls int, avail [vcSetups]bool) {
	var why []string
	for _, s := range vcProbes {
		if avail[s] && r.seen[s]+r.lost[s] < uint64(calls) {
			why = append(why, fmt.Sprintf("%s saw %d calls, fewer than the %d made", s, r.seen[s]+r.lost[s], calls))
		}
	}
	r.invalid = strings.Join(why, "; ")
}

func (r vcRound) added(s vcSetup) float64 { return r.ns[s] - r.ns[vcNone] }

// vcSummary is what the counted rounds of one kind come to.
type vcSummary struct {
	rounds  int               // rounds counted
	tainted bool              // other tracers were loaded during every valid round, and these are counted
	ns      [vcSetups]float64 // median ns per call; NaN for a setup that did not attach
	added   [vcSetups]float64 // median over the rounds of setup - that round's no probe
	// ratio is the tracer's added / the entry counter's added (the
	// yardstick), for vcTracer and vcExitOnly; NaN where undefined.
	ratio [vcSetups]float64
	// twoHooks is the median over the rounds of the entry counter's added
	// plus the exit counter's: the least a tracer that times calls can add
	// with this kind of hook, its programs doing nothing. NaN unless both
	// counters attached.
	twoHooks float64
	// overCounters is what the tracer adds over counters on the same hooks:
	// the tracer's added / twoHooks, and exit-only's / the exit counter's.
	overCounters [vcSetups]float64
}

// summarizeVc takes the medians over the counted rounds (countedRounds).
func summarizeVc(rounds []vcRound, avail [vcSetups]bool) (vcSummary, error) {
	var s vcSummary
	counted, tainted := countedRounds(rounds)
	s.tainted = tainted
	var ns, added [vcSetups][]float64
	for i, r := range rounds {
		if !counted[i] {
			continue
		}
		s.rounds++
		for k := range vcSetups {
			ns[k] = append(ns[k], r.ns[k])
			added[k] = append(added[k], r.added(k))
		}
	}
	if s.rounds == 0 {
		return s, fmt.Errorf("summarize %d rounds: none valid", len(rounds))
	}
	for k := range vcSetups {
		s.ns[k], s.added[k], s.ratio[k] = math.NaN(), math.NaN(), math.NaN()
		if k == vcNone || avail[k] {
			s.ns[k], s.added[k] = median(ns[k]), median(added[k])
		}
	}
	for _, k := range []vcSetup{vcTracer, vcExitOnly} {
		if s.added[vcEntry] > 0 {
			s.ratio[k] = s.added[k] / s.added[vcEntry]
		}
	}
	s.twoHooks = math.NaN()
	for k := range vcSetups {
		s.overCounters[k] = math.NaN()
	}
	if avail[vcEntry] && avail[vcExit] {
		both := make([]float64, len(added[vcEntry]))
		for i := range both {
			both[i] = added[vcEntry][i] + added[vcExit][i]
		}
		s.twoHooks = median(both)
		if s.twoHooks > 0 {
			s.overCounters[vcTracer] = s.added[vcTracer] / s.twoHooks
		}
	}
	if s.added[vcExit] > 0 {
		s.overCounters[vcExitOnly] = s.added[vcExitOnly] / s.added[vcExit]
	}
	return s, nil
}

func (r vcRound) marks() (string, []string) { return r.invalid, r.others }

// vcProgStat is one BPF program's runs and run time over a statistics run.
type vcProgStat struct {
	setup   vcSetup
	name    string
	runs    uint64
	runtime time.Duration
}

func (p vcProgStat) nsPerRun() float64 { return float64(p.runtime.Nanoseconds()) / float64(p.runs) }

// vcRow is one kind's result.
type vcRow struct {
	kind    bpf.Probe
	hooks   [vcSetups]string // what each setup attached to
	reasons [vcSetups]string // why a setup could not attach; "" if it did or was not tried
	avail   [vcSetups]bool   // the setups that attached
	rounds  []vcRound
	sum     vcSummary
	statsNs [vcSetups]float64 // ns per call in the statistics run
	stats   []vcProgStat
}

// measured reports whether any probe of the kind attached.
func (r vcRow) measured() bool {
	for _, s := range vcProbes {
		if r.avail[s] {
			return true
		}
	}
	return false
}

// reasonText joins why setups did not attach, "" if all did.
func (r vcRow) reasonText() string {
	var out []string
	for _, s := range vcProbes {
		if r.reasons[s] != "" {
			out = append(out, s.String()+": "+r.reasons[s])
		}
	}
	return strings.Join(out, "; ")
}

// fmtNa renders x with format, or "na" if it is NaN.
func fmtNa(format string, x float64) string {
	if math.IsNaN(x) {
		return "na"
	}
	return fmt.Sprintf(format, x)
}

// vcLine renders a row as "VSCOUNTER key=value ...", the reason (free
// text) always last, for vmtest/run.sh to collect.
func vcLine(kernel string, o vcOptions, r vcRow) string {
	if !r.measured() {
		return fmt.Sprintf("VSCOUNTER kernel=%s kind=%s attached=no reason=%s", kernel, r.kind, r.reasonText())
	}
	s := r.sum
	var b strings.Builder
	fmt.Fprintf(&b, "VSCOUNTER kernel=%s kind=%s attached=yes rounds=%d left_out=%d tainted=%t calls=%d chunk=%d",
		kernel, r.kind, s.rounds, len(r.rounds)-s.rounds, s.tainted, o.calls, o.chunk())
	for k := range vcSetups {
		fmt.Fprintf(&b, " %s=%s", vcSetupKeys[k], fmtNa("%.1f", s.ns[k]))
	}
	for _, k := range vcProbes {
		fmt.Fprintf(&b, " %s_added=%s", vcSetupKeys[k], fmtNa("%.1f", s.added[k]))
	}
	fmt.Fprintf(&b, " ratio=%s ratio_exit_only=%s", fmtNa("%.2f", s.ratio[vcTracer]), fmtNa("%.2f", s.ratio[vcExitOnly]))
	fmt.Fprintf(&b, " two_hooks_added=%s tracer_over_two_hooks=%s exit_only_over_exit=%s", fmtNa("%.1f", s.twoHooks),
		fmtNa("%.2f", s.overCounters[vcTracer]), fmtNa("%.2f", s.overCounters[vcExitOnly]))
	if why := r.reasonText(); why != "" {
		fmt.Fprintf(&b, " reason=%s", why)
	}
	return b.String()
}

// vcStatsLine renders one program's statistics as "VSCOUNTER_STATS ...".
func vcStatsLine(kernel string, kind bpf.Probe, statsNs float64, p vcProgStat) string {
	return fmt.Sprintf("VSCOUNTER_STATS kernel=%s kind=%s setup=%s prog=%s runs=%d run_time_ns=%d ns_per_run=%.1f ns_per_call=%.1f",
		kernel, kind, vcSetupKeys[p.setup], p.name, p.runs, p.runtime.Nanoseconds(), p.nsPerRun(), statsNs)
}

// vcBench holds what every measurement needs.
type vcBench struct {
	opts       vcOptions
	addr, size uintptr    // the page mlock2 is called on
	cache      *btf.Cache // the kernel BTF, for the counters' fentry targets
	tracerWatch
}

// runVsCounter measures the vs-counter mode and prints its tables and one
// "VSCOUNTER " line per kind, then a "VSCOUNTER_STATS " line per program.
func runVsCounter(o vcOptions) error {
	if o.rounds < 1 || o.calls < 1 {
		return fmt.Errorf("-vs-counter-rounds %d and -vs-counter-calls %d: want at least 1 each", o.rounds, o.calls)
	}
	page, err := unix.Mmap(-1, 0, os.Getpagesize(), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return fmt.Errorf("map a page: %w", err)
	}
	defer unix.Munmap(page)
	b := &vcBench{opts: o, addr: uintptr(unsafePointer(page)), size: uintptr(len(page)), cache: btf.NewCache(),
		tracerWatch: newTracerWatch()}
	// A first call checks the probe fails as it should.
	if _, _, err := vsLoop(b.addr, b.size, 1, 1); err != nil {
		return err
	}

	start := time.Now()
	kernel := kernelRelease()
	fmt.Printf("memlock-bench -vs-counter: %d CPUs, kernel %s, %d rounds x %d mlock2 calls failing with EINVAL (flags %#x), fastest chunk of %d\n",
		runtime.NumCPU(), kernel, o.rounds, o.calls, vsBadFlags, o.chunk())
	fmt.Printf("A no probe; B a BPF program counting the calls on entry (fentry / kprobe / sys_enter tracepoint);\n"+
		"C the same on exit (fexit / kretprobe / sys_exit tracepoint); D the tracer, bpf.Open with mlock2 only and a\n"+
		"reader draining it; E the same with ExitOnly; each attached afresh per measurement; order by round: %s\n\n", vcOrderString(o.rounds))

	var rows []vcRow
	measured := 0
	for _, kind := range vcKinds {
		row, err := b.measureKind(kind)
		if err != nil {
			return fmt.Errorf("%s: %w", kind, err)
		}
		if row.measured() {
			measured++
		}
		rows = append(rows, row)
	}
	vcPrint(o, rows)
	if len(b.others) > 0 {
		fmt.Printf("other tracers loaded during the run: %s\n", strings.Join(b.otherNames(), ", "))
	}
	fmt.Println()
	for _, r := range rows {
		fmt.Println(vcLine(kernel, o, r))
	}
	for _, r := range rows {
		for _, p := range r.stats {
			fmt.Println(vcStatsLine(kernel, r.kind, r.statsNs[p.setup], p))
		}
	}
	fmt.Printf("memlock-bench -vs-counter: done in %.1fs\n", time.Since(start).Seconds())
	if measured == 0 {
		return errors.New("no kind of hook could be measured on this kernel")
	}
	return nil
}

// measureKind measures the rounds of kind, then the statistics runs. A
// setup that cannot attach in the first round is left out of the others
// with its reason; one that fails later fails the run.
func (b *vcBench) measureKind(kind bpf.Probe) (vcRow, error) {
	row := vcRow{kind: kind}
	for _, s := range vcProbes {
		row.avail[s] = true // until the first round says otherwise
	}
	fmt.Printf("%s: ", kind)
	for i := range b.opts.rounds {
		var r vcRound
		for _, s := range vcOrder(i) {
			if s != vcNone && !row.avail[s] {
				continue
			}
			hooks, err := b.measure(kind, s, &r)
			if err != nil && i == 0 && s != vcNone {
				row.avail[s], row.reasons[s] = false, oneLine(err)
				continue
			}
			if err != nil {
				return row, fmt.Errorf("round %d, %s: %w", i+1, s, err)
			}
			row.hooks[s] = hooks
		}
		if !row.measured() {
			fmt.Println("not measured")
			return row, nil
		}
		r.check(b.opts.calls, row.avail)
		row.rounds = append(row.rounds, r)
		fmt.Printf("%s ", vcOrderLetters(i))
	}
	fmt.Println()
	sum, err := summarizeVc(row.rounds, row.avail)
	if err != nil {
		return row, err
	}
	row.sum = sum
	for _, s := range vcProbes {
		if !row.avail[s] {
			continue
		}
		ns, progs, err := b.measureStats(kind, s)
		if err != nil {
			return row, fmt.Errorf("%s with statistics on: %w", s, err)
		}
		row.statsNs[s] = ns
		row.stats = append(row.stats, progs...)
	}
	return row, nil
}

// start attaches setup s of kind and returns it once it is in place.
func (b *vcBench) start(kind bpf.Probe, s vcSetup) (vcProbe, error) {
	before, _ := tracingPrograms()
	var p vcProbe
	switch s {
	case vcEntry, vcExit:
		c, err := openCounter(kind, s == vcExit, 0, b.cache)
		if err != nil {
			return nil, err
		}
		p = counterProbe{c}
	case vcTracer, vcExitOnly:
		opts := bpf.Options{Hooks: []bpf.Probe{kind}, Syscalls: []bpf.Syscall{bpf.SyscallMlock2}, WakeupBytes: 64 << 10, ExitOnly: s == vcExitOnly}
		tr, stop, r, err := startTracer(opts, nil)
		if err != nil {
			return nil, err
		}
		p = &tracerProbe{tr: tr, r: r, stop: stop}
	default:
		return nil, fmt.Errorf("setup %s attaches nothing", s)
	}
	// What appeared meanwhile is ours (a stranger's program loaded in
	// the same instant would be taken for ours: rare, and harmless).
	after, _ := tracingPrograms()
	for id := range after {
		if _, ok := before[id]; !ok {
			b.ours[id] = true
		}
	}
	return p, nil
}

// settle waits vcSettle after a probe attached, the garbage of loading it
// collected first.
func settle() {
	runtime.GC()
	time.Sleep(vcSettle)
}

// measure attaches setup s (nothing for vcNone), times the loop, detaches
// it, and puts ns per call and the calls it saw into r. It returns what
// the setup attached to.
func (b *vcBench) measure(kind bpf.Probe, s vcSetup, r *vcRound) (string, error) {
	b.note(&r.others)
	if s == vcNone {
		settle()
		mean, best, err := vsLoop(b.addr, b.size, b.opts.calls, b.opts.chunk())
		r.ns[s], r.mean[s] = best, mean
		return "", err
	}
	p, err := b.start(kind, s)
	if err != nil {
		return "", err
	}
	hooks := p.describe()
	settle()
	mean, best, err := vsLoop(b.addr, b.size, b.opts.calls, b.opts.chunk())
	if err != nil {
		p.close()
		return hooks, err
	}
	r.ns[s], r.mean[s] = best, mean
	r.seen[s], r.lost[s], err = p.finish()
	if cerr := p.close(); err == nil {
		err = cerr
	}
	b.note(&r.others)
	return hooks, err
}

// measureStats runs setup s once more with BPF run-time statistics on and
// returns ns per call and what each of its programs that ran cost.
func (b *vcBench) measureStats(kind bpf.Probe, s vcSetup) (float64, []vcProgStat, error) {
	p, err := b.start(kind, s)
	if err != nil {
		return 0, nil, err
	}
	defer p.close()
	stats, err := bpf.EnableRuntimeStats()
	if err != nil {
		return 0, nil, err
	}
	defer stats.Close()
	settle()
	before, err := p.programStats()
	if err != nil {
		return 0, nil, err
	}
	_, best, err := vsLoop(b.addr, b.size, b.opts.calls, b.opts.chunk())
	if err != nil {
		return 0, nil, err
	}
	after, err := p.programStats()
	if err != nil {
		return 0, nil, err
	}
	return best, statsDelta(s, before, after, uint64(b.opts.calls)), nil
}

// statsDelta returns what each program of after ran since before, by
// name, those that ran at least minRuns times: the mlock2 hooks, not the
// tracer's exec and cgroup hooks that other processes set off meanwhile.
func statsDelta(s vcSetup, before, after []bpf.ProgramStat, minRuns uint64) []vcProgStat {
	prev := map[string]bpf.ProgramStat{}
	for _, p := range before {
		prev[p.Name] = p
	}
	var out []vcProgStat
	for _, a := range after {
		p := vcProgStat{setup: s, name: a.Name, runs: a.RunCount - prev[a.Name].RunCount, runtime: a.Runtime - prev[a.Name].Runtime}
		if p.runs >= max(minRuns, 1) {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(x, y vcProgStat) int { return strings.Compare(x.name, y.name) })
	return out
}

// vcCell renders a setup's median ns and added ns, "-" if it did not attach.
func vcCell(s vcSummary, k vcSetup) string {
	if math.IsNaN(s.ns[k]) {
		return fmt.Sprintf("%-17s", "-")
	}
	return fmt.Sprintf("%7.1f (%+7.1f)", s.ns[k], s.added[k])
}

// vcPrint prints the table, then each measured kind's rounds and
// statistics.
func vcPrint(o vcOptions, rows []vcRow) {
	fmt.Printf("\nns per failing mlock2 call in each loop's fastest chunk of %d calls, median of the rounds counted;\n"+
		"(added) = median over the rounds of setup - that round's no probe; ratio = tracer-added / entry-counter-added\n", o.chunk())
	fmt.Printf("%-10s  %8s  %-17s  %-17s  %-17s  %-7s  %-17s  %s\n", "hook", "no probe", "counter entry", "counter exit", "tracer", "ratio", "tracer exit-only", "ratio")
	for _, r := range rows {
		if !r.measured() {
			fmt.Printf("%-10s  not measured: %s\n", r.kind, r.reasonText())
			continue
		}
		s := r.sum
		fmt.Printf("%-10s  %8.1f  %s  %s  %s  %6sx  %s  %sx\n", r.kind, s.ns[vcNone], vcCell(s, vcEntry), vcCell(s, vcExit),
			vcCell(s, vcTracer), fmtNa("%.2f", s.ratio[vcTracer]), vcCell(s, vcExitOnly), fmtNa("%.2f", s.ratio[vcExitOnly]))
	}
	fmt.Printf("\nthe floor of each mode, counters on the same hooks (a timing tracer needs the entry and the exit hook):\n")
	for _, r := range rows {
		if !r.measured() {
			continue
		}
		s := r.sum
		fmt.Printf("%-10s  two counting hooks %s = %sx the entry counter; tracer %sx them; exit-only %sx the exit counter\n", r.kind,
			fmtNa("%+.1f", s.twoHooks), fmtNa("%.2f", s.twoHooks/s.added[vcEntry]), fmtNa("%.2f", s.overCounters[vcTracer]), fmtNa("%.2f", s.overCounters[vcExitOnly]))
	}
	for _, r := range rows {
		if !r.measured() {
			continue
		}
		fmt.Printf("\n%s:\n", r.kind)
		for _, s := range vcProbes {
			if r.avail[s] {
				fmt.Printf("  %-17s %s\n", s.String()+":", r.hooks[s])
			} else {
				fmt.Printf("  %-17s not attached: %s\n", s.String()+":", r.reasons[s])
			}
		}
		counted, _ := countedRounds(r.rounds)
		left := make([]bool, len(r.rounds))
		for i := range left {
			left[i] = !counted[i]
		}
		label := "per round, ns:"
		for k := range vcSetups {
			if k != vcNone && !r.avail[k] {
				continue
			}
			ns := make([]float64, len(r.rounds))
			for i, rd := range r.rounds {
				ns[i] = rd.ns[k]
			}
			fmt.Printf("  %-19s %-17s %s\n", label, k, formatMarked(ns, left, "%.1f"))
			label = ""
		}
		label = "per round, added:"
		for _, k := range vcProbes {
			if !r.avail[k] {
				continue
			}
			added := make([]float64, len(r.rounds))
			for i, rd := range r.rounds {
				added[i] = rd.added(k)
			}
			fmt.Printf("  %-19s %-17s %s\n", label, k, formatMarked(added, left, "%+.1f"))
			label = ""
		}
		fmt.Printf("  calls seen (counted, or records read + lost), want >= %d each (%d warm-up calls come on top, and other processes'):\n", o.calls, vsWarmup)
		for _, k := range vcProbes {
			if !r.avail[k] {
				continue
			}
			seen := make([]string, len(r.rounds))
			for i, rd := range r.rounds {
				seen[i] = fmt.Sprint(rd.seen[k])
				if k == vcTracer || k == vcExitOnly {
					seen[i] += fmt.Sprintf("+%d", rd.lost[k])
				}
			}
			fmt.Printf("    %-17s %s\n", k, strings.Join(seen, " "))
		}
		for i, rd := range r.rounds {
			switch {
			case rd.invalid != "":
				fmt.Printf("  * round %d left out: %s\n", i+1, rd.invalid)
			case !counted[i]:
				fmt.Printf("  * round %d left out: other tracers were loaded meanwhile: %s\n", i+1, strings.Join(rd.others, ", "))
			}
		}
		if r.sum.tainted {
			fmt.Printf("  warning: other tracers were loaded during every valid round; all of those are counted\n")
		}
		if len(r.stats) > 0 {
			fmt.Printf("  BPF run-time statistics, one more run of each setup, not in the medians (every process's calls count):\n")
			var ns []string
			for _, k := range vcProbes {
				if r.avail[k] {
					ns = append(ns, fmt.Sprintf("%s %.1f", k, r.statsNs[k]))
				}
			}
			fmt.Printf("    ns/call with statistics on: %s\n", strings.Join(ns, ", "))
			for _, p := range r.stats {
				fmt.Printf("    %-17s %-22s %10d runs %8.1f ns/run\n", p.setup, p.name, p.runs, p.nsPerRun())
			}
		}
	}
	fmt.Println("\n(the ns are the calling thread's wall time per call. The tracer's reader works on another CPU meanwhile\n" +
		" and is not in them, except under single-threaded emulation, where both vCPUs share one host thread.\n" +
		" The counters run one program, on entry or on exit; the tracer two, or the exit one alone, and writes\n" +
		" a record per call into its ring buffer.)")
}
