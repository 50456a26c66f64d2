// Command memlock-bench measures what tracing costs the traced programs and
// how fast the reader drains events, and prints a table. It must run as
// root: it attaches the real BPF programs. `make bench` runs it.
//
// Timing on shared machines is noisy, so every comparison is made inside one
// run, alternating the two sides (ABBA order) and quoting medians.
//
// The end-to-end section runs the memlock-exporter binary against the test
// collector (e2e/otelcol) under a steady mlock2 load and reports the
// exporter's CPU time per event and its peak RSS; it is skipped, with a
// note, when either binary is missing. Its last setup points the exporter
// at a closed port instead, so that its export queues fill and stay full,
// and reports its RSS through that (steady and peak, split into anonymous
// and file pages: the binary's text and the BPF ring buffer are file
// pages), what its garbage collector saw (GODEBUG=gctrace=1), and its RSS
// once a collector listens on that port (see memory.go).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/memlock-exporter/memlock-exporter/bpf"
)

func main() {
	rounds := flag.Int("rounds", 7, "rounds of the with/without overhead comparison")
	calls := flag.Int("calls", 200_000, "mlock2+munlock pairs per measurement")
	flood := flag.Duration("flood", 2*time.Second, "how long to call mlock2 flat out for the throughput test")
	var e2e e2eOptions
	flag.StringVar(&e2e.exporter, "exporter", "bin/memlock-exporter", "memlock-exporter binary for the end-to-end measurement")
	flag.StringVar(&e2e.collector, "collector", "bin/otelcol", "collector binary (built from e2e/otelcol) for the end-to-end measurement")
	flag.IntVar(&e2e.rate, "rate", 50_000, "mlock2 calls per second in the end-to-end measurement")
	flag.DurationVar(&e2e.duration, "e2e-duration", 10*time.Second, "measured window of the end-to-end measurement, after a warm-up")
	tax := flag.Bool("tax", false, "measure instead the tax on an unrelated syscall (getppid) of each hook kind, as ratios (see tax.go)")
	taxCalls := flag.Int("tax-calls", 200_000, "getppid calls per -tax measurement (mlock2+munlock pairs: a tenth of that)")
	execMode := flag.Bool("exec", false, "measure instead what the running daemon (-exporter) adds to fork, exec and exit of a tiny static program, as a ratio (see exec.go)")
	execRounds := flag.Int("exec-rounds", 16, "rounds of each side of the -exec measurement, alternated (ABBA)")
	execIterations := flag.Int("exec-iterations", 300, "fork+exec+wait iterations per -exec round")
	execAA := flag.Bool("exec-aa", false, "A/A check of -exec: stop the daemon before the \"with\" rounds too (the ratio should be 1)")
	execProg := flag.String("exec-prog", "", "static program exiting 0 for -exec (default: build testdata/exit0.c with cc -static)")
	vsMode := flag.Bool("vs-bpftrace", false, "measure instead what the daemon (-exporter, export off) and bpftrace counting each add to an mlock2 call that fails at once, per kind of hook, alternated in one run, and their ratio (see vsbpftrace.go)")
	vsCalls := flag.Int("vs-bpftrace-calls", 2_000_000, "failing mlock2 calls per -vs-bpftrace measurement")
	vsRounds := flag.Int("vs-bpftrace-rounds", 5, "rounds of -vs-bpftrace, each setup once per round (ABCDE, then EDCBA)")
	vsStats := flag.Bool("vs-bpftrace-stats", false, "after the -vs-bpftrace rounds, run each tracer once more with BPF run-time statistics on (kernel.bpf_stats_enabled) and print its programs' ns per run")
	behind := flag.Bool("behind", false, "measure instead what a failing mlock2 call costs while the daemon's reader is behind (stopped), below and past the wake-up threshold (see behind.go)")
	behindRounds := flag.Int("behind-rounds", 3, "rounds of -behind, each with a fresh daemon")
	flag.BoolVar(&e2e.only, "e2e-only", false, "run only the end-to-end measurement")
	flag.IntVar(&e2e.rounds, "e2e-rounds", 3, "rounds of the end-to-end measurement, each setup in turn; the median round is reported")
	flag.DurationVar(&e2e.downDuration, "down-duration", 30*time.Second, "measured window of the end-to-end setup with the collector down (its export queues full)")
	flag.IntVar(&e2e.downRounds, "down-rounds", 1, "rounds of the end-to-end setup with the collector down")
	flag.DurationVar(&e2e.downRecovery, "down-recovery", 16*time.Second, "how long the collector-down setup goes on once a collector listens on its port (the RSS is sampled in the second half); 0 skips it")
	flag.Func("daemon-env", "`KEY=VALUE` added to the exporter's environment in every end-to-end setup (repeatable), e.g. GOMEMLIMIT=30MiB", func(kv string) error {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return fmt.Errorf("want KEY=VALUE, got %q", kv)
		}
		e2e.env = append(e2e.env, kv)
		return nil
	})
	flag.BoolVar(&e2e.collectorSink, "collector-sink", false, "the end-to-end collector only counts what it receives (its debug exporter alone, no files): the exporter's CPU per event measured without a collector that takes most of the 2 CPUs")
	flag.StringVar(&e2e.profileDir, "daemon-cpuprofile", "", "directory to write a CPU profile of each end-to-end run's exporter into (go tool pprof), collector-down setup excepted")
	flag.StringVar(&e2e.logDir, "daemon-log", "", "directory to write each end-to-end run's exporter stderr into (with the runtime's gctrace in the collector-down setup)")
	setups := flag.String("setups", "", "run only the end-to-end setups whose label matches this regular expression")
	flag.Parse()
	if *setups != "" {
		re, err := regexp.Compile(*setups)
		if err != nil {
			fmt.Fprintf(os.Stderr, "memlock-bench: -setups %q: %v\n", *setups, err)
			os.Exit(2)
		}
		e2e.setups = re
	}
	if *tax {
		if err := runTax(*rounds, *taxCalls); err != nil {
			fmt.Fprintln(os.Stderr, "memlock-bench:", err)
			os.Exit(1)
		}
		return
	}
	if *vsMode {
		if err := runVsBpftrace(vsOptions{exporter: e2e.exporter, calls: *vsCalls, rounds: *vsRounds, stats: *vsStats}); err != nil {
			fmt.Fprintln(os.Stderr, "memlock-bench:", err)
			os.Exit(1)
		}
		return
	}
	if *behind {
		if err := runBehind(e2e.exporter, *behindRounds); err != nil {
			fmt.Fprintln(os.Stderr, "memlock-bench:", err)
			os.Exit(1)
		}
		return
	}
	if *vcFlag { // -vs-counter and its flags: vscounter.go
		if err := runVsCounter(vcOptions{rounds: *vcRoundsFlag, calls: *vcCallsFlag}); err != nil {
			fmt.Fprintln(os.Stderr, "memlock-bench:", err)
			os.Exit(1)
		}
		return
	}
	if *execMode {
		if err := runExec(execOptions{exporter: e2e.exporter, prog: *execProg, rounds: *execRounds, iterations: *execIterations, aa: *execAA}); err != nil {
			fmt.Fprintln(os.Stderr, "memlock-bench:", err)
			os.Exit(1)
		}
		return
	}
	if e2e.rate <= 0 || e2e.duration <= 0 || e2e.downDuration <= 0 {
		fmt.Fprintf(os.Stderr, "memlock-bench: -rate %d, -e2e-duration %v and -down-duration %v must all be positive\n", e2e.rate, e2e.duration, e2e.downDuration)
		os.Exit(2)
	}

	if err := run(*rounds, *calls, *flood, e2e); err != nil {
		fmt.Fprintln(os.Stderr, "memlock-bench:", err)
		os.Exit(1)
	}
}

func run(rounds, calls int, flood time.Duration, e2e e2eOptions) error {
	page, err := unix.Mmap(-1, 0, os.Getpagesize(), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return fmt.Errorf("map a page: %w", err)
	}
	defer unix.Munmap(page)

	if e2e.only {
		if skipped := missingE2EInputs(e2e); skipped != "" {
			return errors.New(skipped)
		}
		fmt.Printf("memlock-bench: %d CPUs, kernel %s\n", runtime.NumCPU(), kernelRelease())
		results, err := measureEndToEnd(page, e2e)
		printEndToEnd(results, e2e)
		printEndToEndNotes(results)
		return err
	}
	fmt.Printf("memlock-bench: %d CPUs, kernel %s, %d rounds x %d calls\n\n", runtime.NumCPU(), kernelRelease(), rounds, calls)

	// Three sides: no tracer, the tracer as it runs on this kernel, and
	// the tracer forced onto the pre-5.11 path (hash map + probe reads).
	sides := []*bpf.Options{
		nil,
		{WakeupBytes: 64 << 10},
		{WakeupBytes: 64 << 10, LegacyTaskAccess: true},
	}
	results := make([][]float64, len(sides))
	for i := range rounds {
		// Rotate which side goes first so drift hits all alike.
		for j := range sides {
			k := (i + j) % len(sides)
			ns, err := measureCalls(page, calls, sides[k])
			if err != nil {
				return err
			}
			results[k] = append(results[k], ns)
		}
	}
	base, traced, legacy := results[0], results[1], results[2]
	mb, mt, ml := median(base), median(traced), median(legacy)

	rate, sent, got, losses, err := measureThroughput(page, flood)
	if err != nil {
		return err
	}
	progStats, err := measureProgramRuntime(page, calls, bpf.Options{WakeupBytes: 64 << 10})
	if err != nil {
		return err
	}
	legacyStats, err := measureProgramRuntime(page, calls, bpf.Options{WakeupBytes: 64 << 10, LegacyTaskAccess: true})
	if err != nil {
		return err
	}
	// A failure here still leaves the measurements above worth printing.
	e2eSkipped := missingE2EInputs(e2e)
	var e2eResults []e2eResult
	var e2eErr error
	if e2eSkipped == "" {
		e2eResults, e2eErr = measureEndToEnd(page, e2e)
	}

	fmt.Printf("%-58s %14s\n", "measurement", "value")
	fmt.Printf("%-58s %14s\n", "-----------", "-----")
	fmt.Printf("%-58s %11.0f ns\n", "mlock2+munlock, 1 page, no tracer (median)", mb)
	fmt.Printf("%-58s %11.0f ns\n", "mlock2+munlock, 1 page, tracepoint tracer (median)", mt)
	fmt.Printf("%-58s %11.0f ns\n", "added per traced call (median difference)", mt-mb)
	fmt.Printf("%-58s %13.2fx\n", "ratio traced / untraced", mt/mb)
	fmt.Printf("%-58s %11.0f ns\n", "mlock2+munlock, tracer on the pre-5.11 path (median)", ml)
	fmt.Printf("%-58s %11.0f ns\n", "  added per traced call, pre-5.11 path", ml-mb)
	for _, set := range []struct {
		label string
		stats []bpf.ProgramStat
	}{{"", progStats}, {", pre-5.11 path", legacyStats}} {
		for _, st := range set.stats {
			if st.RunCount > 0 {
				fmt.Printf("%-58s %11.0f ns\n", "BPF run time per hit, "+st.Name+set.label, float64(st.Runtime.Nanoseconds())/float64(st.RunCount))
			}
		}
	}
	fmt.Printf("%-58s %10.0f ev/s\n", "reader throughput, mlock2 flat out (1 thread)", rate)
	fmt.Printf("%-58s %14d\n", "  calls made", sent)
	fmt.Printf("%-58s %14d\n", "  events received", got)
	fmt.Printf("%-58s %14d\n", "  lost: ring buffer full", losses.RingbufFull)
	fmt.Printf("%-58s %14d\n", "  lost: exit without entry", losses.MissedEntry)
	fmt.Printf("%-58s %14d\n", "  lost: entry map full", losses.EntryMapFull)
	fmt.Printf("%-58s %14d\n", "  lost: repeats shed under pressure", losses.RepeatShed)
	printEndToEnd(e2eResults, e2e)
	fmt.Printf("\nper-round ns: untraced %v\n              traced %v\n              pre-5.11 %v\n", round(base), round(traced), round(legacy))
	printEndToEndNotes(e2eResults)
	if e2eSkipped != "" {
		fmt.Printf("\n%s\n", e2eSkipped)
	}
	return e2eErr
}

// measureCalls times `calls` mlock2+munlock pairs of one page and returns
// ns per pair; with non-nil opts it attaches a tracer (and runs its reader)
// first.
func measureCalls(page []byte, calls int, opts *bpf.Options) (float64, error) {
	if opts != nil {
		tr, stop, _, err := startTracer(*opts, nil)
		if err != nil {
			return 0, err
		}
		defer func() { stop(); tr.Close() }()
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	addr := uintptr(unsafePointer(page))
	size := uintptr(len(page))
	start := time.Now()
	for range calls {
		if _, _, errno := unix.Syscall(unix.SYS_MLOCK2, addr, size, unix.MLOCK_ONFAULT); errno != 0 {
			return 0, fmt.Errorf("mlock2: %w", errno)
		}
		if _, _, errno := unix.Syscall(unix.SYS_MUNLOCK, addr, size, 0); errno != 0 {
			return 0, fmt.Errorf("munlock: %w", errno)
		}
	}
	return float64(time.Since(start).Nanoseconds()) / float64(calls), nil
}

// measureThroughput calls mlock2 as fast as one thread can while the reader
// drains, and returns events/s received from this process and the losses.
func measureThroughput(page []byte, d time.Duration) (rate float64, sent, got uint64, losses bpf.LossCounts, err error) {
	self := uint32(os.Getpid())
	var received atomic.Uint64
	tr, stop, reader, err := startTracer(bpf.Options{RingbufSize: 16 << 20, WakeupBytes: 1 << 20}, func(ev *bpf.Event) {
		if ev.PID == self {
			received.Add(1)
		}
	})
	if err != nil {
		return 0, 0, 0, losses, err
	}
	defer tr.Close()

	runtime.LockOSThread()
	addr := uintptr(unsafePointer(page))
	size := uintptr(len(page))
	start := time.Now()
	// The length alternates (loadLen), so that no call repeats the one
	// before: the kernel sheds a long run of identical calls under
	// pressure, and this measures the reader, not that valve.
	for time.Since(start) < d {
		for i := range uint64(1000) {
			unix.Syscall(unix.SYS_MLOCK2, addr, loadLen(size, i), unix.MLOCK_ONFAULT)
		}
		sent += 1000
	}
	runtime.UnlockOSThread()
	// Wait for the reader to drain what is left, then measure.
	deadline := time.Now().Add(5 * time.Second)
	for received.Load() < sent && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	elapsed := time.Since(start)
	stop()
	losses, err = reader.Losses()
	got = received.Load()
	return float64(got) / elapsed.Seconds(), sent, got, losses, err
}

// measureProgramRuntime asks the kernel how long the BPF programs
// themselves run per hit, separating their cost from the tracepoint's.
func measureProgramRuntime(page []byte, calls int, opts bpf.Options) ([]bpf.ProgramStat, error) {
	stats, err := bpf.EnableRuntimeStats()
	if err != nil {
		return nil, err
	}
	defer stats.Close()
	tr, stop, _, err := startTracer(opts, nil)
	if err != nil {
		return nil, err
	}
	defer tr.Close()
	addr := uintptr(unsafePointer(page))
	size := uintptr(len(page))
	for range calls {
		unix.Syscall(unix.SYS_MLOCK2, addr, size, unix.MLOCK_ONFAULT)
		unix.Syscall(unix.SYS_MUNLOCK, addr, size, 0)
	}
	stop()
	return tr.ProgramStats()
}

func startTracer(opts bpf.Options, handle func(*bpf.Event)) (*bpf.Tracer, func(), *bpf.Reader, error) {
	tr, err := bpf.Open(opts)
	if err != nil {
		return nil, nil, nil, err
	}
	r, err := tr.NewReader(bpf.ReaderOptions{FlushInterval: 50 * time.Millisecond})
	if err != nil {
		tr.Close()
		return nil, nil, nil, err
	}
	if handle == nil {
		handle = func(*bpf.Event) {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx, handle); close(done) }()
	return tr, func() { cancel(); <-done; r.Close() }, r, nil
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func round(xs []float64) []int {
	out := make([]int, len(xs))
	for i, x := range xs {
		out[i] = int(x + 0.5)
	}
	return out
}

func kernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "unknown"
	}
	return unix.ByteSliceToString(u.Release[:])
}
