package main

// The tax mode (-tax) answers one question per kind of hook: what does
// tracing the mlock family cost the syscalls we do not trace? fentry and
// kprobes patch only the mlock syscalls' own kernel functions, so other
// syscalls should not notice; a syscall tracepoint sets
// TIF_SYSCALL_TRACEPOINT on every task, which sends every syscall of every
// process through the slow path. getppid is the probe: it does almost
// nothing, so any fixed cost added to the syscall path shows.
//
// make bench runs it on the host (tracepoints only, here) and, through
// make bench-vm, inside QEMU on kernels with fentry and kprobes. Emulated
// time is not real time, so the results are quoted as ratios with/without
// too; the ns are only comparable within one row.

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/memlock-exporter/memlock-exporter/bpf"
)

// taxKinds are the kinds of hook measured, each forced on its own.
var taxKinds = []bpf.Probe{bpf.ProbeFentry, bpf.ProbeKprobe, bpf.ProbeTracepoint}

// taxLockDivisor: each measurement makes calls/taxLockDivisor
// mlock2+munlock pairs, which cost some 20-60 getppid calls each.
const taxLockDivisor = 10

// taxRow is one kind's result: per-round ns/call of getppid and of
// mlock2+munlock of one page, without and with the tracer attached, and
// the fastest of each over the rounds.
type taxRow struct {
	kind                       bpf.Probe
	err                        error // why the kind could not attach; nil if it did
	ppidOff, ppidOn            []float64
	lockOff, lockOn            []float64
	ppidOffNs, ppidOnNs, ppidR float64
	lockOffNs, lockOnNs, lockR float64
}

// summarize takes the fastest round, not the median: the noise under
// emulation only ever adds, and on a busy host it spoilt three rounds of
// five at times (see ppidChunk), which moves a median.
func (r *taxRow) summarize() {
	r.summarizeAgainst(slices.Min(r.ppidOff), slices.Min(r.lockOff))
}

// summarizeAgainst takes the fastest round with the tracer against the
// given fastest without.
func (r *taxRow) summarizeAgainst(ppidOff, lockOff float64) {
	r.ppidOffNs, r.ppidOnNs = ppidOff, slices.Min(r.ppidOn)
	r.lockOffNs, r.lockOnNs = lockOff, slices.Min(r.lockOn)
	r.ppidR, r.lockR = r.ppidOnNs/r.ppidOffNs, r.lockOnNs/r.lockOffNs
}

// poolBaselines puts every attached row against the fastest "without"
// of the whole run: it is one and the same setup for every kind (no
// tracer), yet its fastest mlock2+munlock pair differed by half between
// kinds in one bookworm run under TCG (18 416 ns beside fentry, 26 870
// beside kprobe), which made fentry look 1.78x dearer while its "with"
// was the fastest of the three.
func poolBaselines(rows []taxRow) {
	ppid, lock := math.Inf(1), math.Inf(1)
	for _, r := range rows {
		if r.err == nil {
			ppid, lock = min(ppid, slices.Min(r.ppidOff)), min(lock, slices.Min(r.lockOff))
		}
	}
	for i := range rows {
		if rows[i].err == nil {
			rows[i].summarizeAgainst(ppid, lock)
		}
	}
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
				ppid, lock, err := measureTax(page, calls, side)
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

	poolBaselines(rows)
	fmt.Printf("%-10s %-8s  %-25s  %s\n", "", "", "getppid ns/call", "mlock2+munlock, 1 page, ns/pair")
	fmt.Printf("%-10s %-8s  %7s %7s %8s  %7s %7s %8s %7s\n", "hook", "attached", "without", "with", "ratio", "without", "with", "ratio", "added")
	for _, r := range rows {
		if r.err != nil {
			fmt.Printf("%-10s %-8s  %s\n", r.kind, "no", oneLine(r.err))
			continue
		}
		fmt.Printf("%-10s %-8s  %7.0f %7.0f %7.3fx  %7.0f %7.0f %7.3fx %+7.0f\n", r.kind, "yes",
			r.ppidOffNs, r.ppidOnNs, r.ppidR, r.lockOffNs, r.lockOnNs, r.lockR, r.lockOnNs-r.lockOffNs)
	}
	fmt.Println("\n(each the fastest chunk over all rounds, \"without\" over every kind's rounds: it is the same setup; ratio = with / without.\n" +
		" Under emulation compare ratios only: emulated time is not real time. If another program\n" +
		" uses syscall tracepoints meanwhile, e.g. a running memlock-exporter, \"without\" pays their tax too.)")
	for _, r := range rows {
		if r.err == nil {
			fmt.Printf("per-round getppid ns, %s: without %v with %v\n", r.kind, round(r.ppidOff), round(r.ppidOn))
			fmt.Printf("per-round mlock2+munlock ns, %s: without %v with %v\n", r.kind, round(r.lockOff), round(r.lockOn))
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
		kernel, r.kind, len(r.ppidOn), r.ppidOffNs, r.ppidOnNs, r.ppidR, r.lockOffNs, r.lockOnNs, r.lockR)
}

// oneLine keeps the first line of an error: verifier logs run to many.
func oneLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}

// Each measurement is cut into short chunks (about a millisecond under
// QEMU TCG) and quotes the fastest. Under emulation the guest's clock runs
// on while the host preempts QEMU's thread, and on a shared host that
// happens all the time: 1 ms chunks of getppid in one guest ranged from
// 440 to 2300 ns per call, and whole 50 ms measurements came out twice as
// slow, at random. The noise only ever adds, so a chunk that ran clean is
// the cost of the call itself. The getppid chunks are spread between the
// mlock2 ones, over at least taxWindow, because the slow stretches came
// in bursts of 100-300 ms.
const (
	ppidChunk = 2000 // getppid calls per chunk
	lockChunk = 50   // mlock2+munlock pairs per chunk
	taxWindow = 300 * time.Millisecond
)

// measureTax times at least `calls` getppid calls and calls/taxLockDivisor
// mlock2+munlock pairs of one page, and returns ns per call and per pair
// (see ppidChunk); with non-nil opts it attaches a tracer and runs its
// reader first, as the daemon would.
func measureTax(page []byte, calls int, opts *bpf.Options) (ppid, lock float64, err error) {
	if opts != nil {
		tr, stop, _, err := startTracer(*opts, nil)
		if err != nil {
			return 0, 0, err
		}
		defer func() { stop(); tr.Close() }()
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	getppid := func() {
		start := time.Now()
		for range ppidChunk {
			// RawSyscall skips the Go scheduler's bookkeeping around
			// the call, which would otherwise dilute the kernel's share.
			unix.RawSyscall(unix.SYS_GETPPID, 0, 0, 0)
		}
		ppid = min(ppid, float64(time.Since(start).Nanoseconds())/ppidChunk)
	}
	lockPairs := func() error {
		ns, err := measureCalls(page, lockChunk, nil)
		lock = min(lock, ns)
		return err
	}
	// One untimed round of each to warm up, then nPpid and nLock chunks
	// interleaved evenly over max(nPpid, nLock) steps, repeated until
	// taxWindow has passed.
	getppid()
	if err := lockPairs(); err != nil {
		return 0, 0, err
	}
	ppid, lock = math.Inf(1), math.Inf(1)
	nPpid, nLock := max(1, calls/ppidChunk), max(1, calls/taxLockDivisor/lockChunk)
	steps := max(nPpid, nLock)
	begin := time.Now()
	for i := 0; i < steps || time.Since(begin) < taxWindow; i++ {
		j := i % steps
		if j*nPpid/steps != (j+1)*nPpid/steps {
			getppid()
		}
		if j*nLock/steps != (j+1)*nLock/steps {
			if err := lockPairs(); err != nil {
				return 0, 0, err
			}
		}
	}
	return ppid, lock, nil
}
