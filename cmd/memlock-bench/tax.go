package main

// The tax mode (-tax) answers one question per kind of hook: what does
// tracing the mlock family cost the syscalls we do not trace? fentry and
// kprobes patch only the mlock syscalls' own kernel functions, so other
// syscalls should not notice; a syscall tracepoint sets
// TIF_SYSCALL_TRACEPOINT on every task, which sends every syscall of every
// process through the slow path. getppid is the probe: it does almost
// nothing, so any fixed cost added to the syscall path shows.
//
// It runs inside QEMU (make bench-vm), where emulated time is not real
// time, so the results are quoted as ratios with/without; the ns are only
// comparable within one row.

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/memlock-exporter/memlock-exporter/bpf"
)

// taxKinds are the kinds of hook measured, each forced on its own.
var taxKinds = []bpf.Probe{bpf.ProbeFentry, bpf.ProbeKprobe, bpf.ProbeTracepoint}

// taxLockDivisor: each measurement makes calls/taxLockDivisor
// mlock2+munlock pairs, which cost some 20 getppid calls each.
const taxLockDivisor = 10

// taxRow is one kind's result: per-round ns/call of getppid and of
// mlock2+munlock of one page, without and with the tracer attached.
type taxRow struct {
	kind                         bpf.Probe
	err                          error         // why the kind could not attach; nil if it did
	settle                       time.Duration // spent waiting for the machine to settle
	ppidOff, ppidOn              []float64
	lockOff, lockOn              []float64
	ppidOffMed, ppidOnMed, ppidR float64
	lockOffMed, lockOnMed, lockR float64
}

func (r *taxRow) summarize() {
	r.ppidOffMed, r.ppidOnMed = median(r.ppidOff), median(r.ppidOn)
	r.lockOffMed, r.lockOnMed = median(r.lockOff), median(r.lockOn)
	r.ppidR, r.lockR = r.ppidOnMed/r.ppidOffMed, r.lockOnMed/r.lockOffMed
}

// runTax measures every kind in taxKinds and prints the table and one
// "TAX " line per kind for scripts (vmtest/run.sh). A kind that cannot
// attach is reported with its reason; it is an error only if none can.
func runTax(rounds, calls int) error {
	if rounds < 1 || calls < taxLockDivisor {
		return fmt.Errorf("-rounds %d and -tax-calls %d: want at least 1 and %d", rounds, calls, taxLockDivisor)
	}
	page, err := unix.Mmap(-1, 0, os.Getpagesize(), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return fmt.Errorf("map a page: %w", err)
	}
	defer unix.Munmap(page)

	var syscalls []bpf.Syscall
	for s := bpf.SyscallMlock; s.Valid(); s++ {
		syscalls = append(syscalls, s)
	}
	kernel := kernelRelease()
	fmt.Printf("memlock-bench -tax: %d CPUs, kernel %s, %d rounds x %d getppid + %d mlock2+munlock calls\n\n",
		runtime.NumCPU(), kernel, rounds, calls, calls/taxLockDivisor)

	start := time.Now()
	baseline := idleBaseline()
	var rows []taxRow
	attached := 0
	for _, kind := range taxKinds {
		// The daemon's defaults: every syscall of the family, a 1 MiB ring
		// buffer waking the reader at 64 KiB, the reader draining it.
		opts := &bpf.Options{RingbufSize: 1 << 20, WakeupBytes: 64 << 10, Syscalls: syscalls, Hooks: []bpf.Probe{kind}}
		row := taxRow{kind: kind}
		for i := 0; i < rounds && row.err == nil; i++ {
			// ABBA: odd rounds measure with the tracer first, so drift
			// (caches, emulator warm-up) falls on both sides alike.
			for _, on := range [2]bool{i%2 == 1, i%2 == 0} {
				side := opts
				if !on {
					side = nil
				}
				ppid, lock, waited, err := measureTax(page, calls, side, baseline)
				row.settle += waited
				if err != nil && on && i == 0 {
					row.err = err // this kind does not work here
					break
				}
				if err != nil {
					return fmt.Errorf("%s, round %d: %w", kind, i+1, err)
				}
				if on {
					row.ppidOn, row.lockOn = append(row.ppidOn, ppid), append(row.lockOn, lock)
				} else {
					row.ppidOff, row.lockOff = append(row.ppidOff, ppid), append(row.lockOff, lock)
				}
			}
		}
		if row.err == nil {
			row.summarize()
			attached++
		}
		rows = append(rows, row)
	}

	fmt.Printf("%-10s %-8s %27s %8s %7s %33s %8s %7s\n", "hook", "attached", "getppid ns/call: without", "with", "ratio", "mlock2+munlock ns/pair: without", "with", "ratio")
	for _, r := range rows {
		if r.err != nil {
			fmt.Printf("%-10s %-8s %s\n", r.kind, "no", oneLine(r.err))
			continue
		}
		fmt.Printf("%-10s %-8s %27.0f %8.0f %6.3fx %33.0f %8.0f %6.3fx\n", r.kind, "yes",
			r.ppidOffMed, r.ppidOnMed, r.ppidR, r.lockOffMed, r.lockOnMed, r.lockR)
	}
	fmt.Println("\n(medians over the rounds; ratio = with / without. Under emulation compare ratios only.)")
	for _, r := range rows {
		if r.err == nil {
			fmt.Printf("per-round getppid ns, %s: without %v with %v (waited %.1fs to settle)\n", r.kind, round(r.ppidOff), round(r.ppidOn), r.settle.Seconds())
		}
	}
	fmt.Println()
	for _, r := range rows {
		fmt.Println(taxLine(kernel, r))
	}
	fmt.Printf("memlock-bench -tax: done in %.1fs\n", time.Since(start).Seconds())
	if attached == 0 {
		return fmt.Errorf("no kind of hook could attach on this kernel")
	}
	return nil
}

// taxLine renders a row as "TAX key=value ...", the reason (free text)
// always last, for vmtest/run.sh to collect.
func taxLine(kernel string, r taxRow) string {
	if r.err != nil {
		return fmt.Sprintf("TAX kernel=%s hook=%s attached=no reason=%s", kernel, r.kind, oneLine(r.err))
	}
	return fmt.Sprintf("TAX kernel=%s hook=%s attached=yes rounds=%d getppid_ns_without=%.1f getppid_ns_with=%.1f getppid_ratio=%.3f mlock_ns_without=%.0f mlock_ns_with=%.0f mlock_ratio=%.3f",
		kernel, r.kind, len(r.ppidOn), r.ppidOffMed, r.ppidOnMed, r.ppidR, r.lockOffMed, r.lockOnMed, r.lockR)
}

// oneLine keeps the first line of an error: verifier logs run to many.
func oneLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}

// taxChunks: each measurement is cut into this many chunks and quotes
// the fastest. Under QEMU's single-threaded TCG the other vCPU (the Go
// runtime, the reader) and code re-translated after the kernel patches
// itself stall this one for milliseconds at a time; a clean chunk is the
// cost of the call itself.
const taxChunks = 10

// measureTax times `calls` getppid calls and calls/taxLockDivisor
// mlock2+munlock pairs of one page, and returns ns per call and per pair
// (see taxChunks); with non-nil opts it attaches a tracer and runs its
// reader first, as the daemon would. Either way it lets the machine settle
// first (see settle) and says how long that took.
func measureTax(page []byte, calls int, opts *bpf.Options, baseline uint64) (ppid, lock float64, waited time.Duration, err error) {
	if opts != nil {
		tr, stop, _, err := startTracer(*opts, nil)
		if err != nil {
			return 0, 0, 0, err
		}
		defer func() { stop(); tr.Close() }()
	}
	waited = settle(baseline)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	getppid := func(n int) error {
		for range n {
			// RawSyscall skips the Go scheduler's bookkeeping around
			// the call, which would otherwise dilute the kernel's share.
			unix.RawSyscall(unix.SYS_GETPPID, 0, 0, 0)
		}
		return nil
	}
	lockPairs := func(n int) error {
		_, err := measureCalls(page, n, nil)
		return err
	}
	if ppid, err = fastestChunk(calls, getppid); err != nil {
		return 0, 0, waited, err
	}
	lock, err = fastestChunk(calls/taxLockDivisor, lockPairs)
	return ppid, lock, waited, err
}

// fastestChunk runs f over calls calls in taxChunks chunks, after one
// untimed chunk to warm up, and returns the fastest chunk's ns per call.
func fastestChunk(calls int, f func(n int) error) (float64, error) {
	n := max(1, calls/taxChunks)
	if err := f(n); err != nil {
		return 0, err
	}
	best := math.Inf(1)
	for range taxChunks {
		start := time.Now()
		if err := f(n); err != nil {
			return 0, err
		}
		best = min(best, float64(time.Since(start).Nanoseconds())/float64(n))
	}
	return best, nil
}

// Detaching a tracer leaves the kernel work to do for a while (RCU grace
// periods, freeing programs and trampolines), on other CPUs. Under QEMU's
// single-threaded TCG that work halves this vCPU's speed: getppid measured
// right after a Close ran twice as slow as before the Open. So every
// measurement first waits until the machine is as quiet as it was at the
// start, for at most settleMax.
const (
	settleWindow = 100 * time.Millisecond
	settleMax    = 3 * time.Second
)

// busyTicks is the CPU time all CPUs have spent not idle, in USER_HZ
// ticks, from /proc/stat.
func busyTicks() (uint64, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	fields := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
	if len(fields) < 9 || fields[0] != "cpu" {
		return 0, fmt.Errorf("unexpected /proc/stat line %q", line)
	}
	var busy uint64
	for i, f := range fields[1:9] {
		n, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse /proc/stat: %w", err)
		}
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return busy, nil
}

// busyIn returns the busy ticks over the next settleWindow.
func busyIn() (uint64, error) {
	a, err := busyTicks()
	if err != nil {
		return 0, err
	}
	time.Sleep(settleWindow)
	b, err := busyTicks()
	return b - a, err
}

// idleBaseline is the machine's background load, in busy ticks per
// settleWindow, before any tracer: the least of three windows.
func idleBaseline() uint64 {
	best := uint64(math.MaxUint64)
	for range 3 {
		n, err := busyIn()
		if err != nil {
			return best // settle then never waits
		}
		best = min(best, n)
	}
	return best
}

// settle waits until a settleWindow is no busier than baseline (plus one
// tick of slack), for at most settleMax, and returns how long it waited.
func settle(baseline uint64) time.Duration {
	start := time.Now()
	for time.Since(start) < settleMax {
		n, err := busyIn()
		if err != nil || n <= baseline+1 {
			break
		}
	}
	return time.Since(start)
}
