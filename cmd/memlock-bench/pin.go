package main

import (
	"errors"
	"os"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// The timed loops of -vs-bpftrace and -vs-counter measure what a tracer
// adds to the calling thread. The tracer's own process (the daemon's
// reader, bpftrace, the in-process tracer's goroutines) must then run on
// another CPU, as it would on any host with CPUs to spare: on this 2-CPU
// guest the scheduler otherwise now and then puts the reader beside the
// loop, and a round's "added" ns jumped by 400 when it did. So the loop's
// thread gets the last CPU it may use, and every other thread of this
// process and of its children the rest.

// children are the pids of the running children (startChild), whose
// threads a timed loop moves off its CPU.
var children = struct {
	sync.Mutex
	pids map[int]bool
}{pids: map[int]bool{}}

func addChild(pid int) {
	children.Lock()
	defer children.Unlock()
	children.pids[pid] = true
}

func removeChild(pid int) {
	children.Lock()
	defer children.Unlock()
	delete(children.pids, pid)
}

// cpuSplit is the loop's CPU and the others, from the CPUs allowed.
type cpuSplit struct {
	all, rest unix.CPUSet
	loop      int
}

// splitCPUs gives the last allowed CPU to the loop; ok is false with
// fewer than two CPUs, where there is nothing to keep apart.
func splitCPUs(all unix.CPUSet) (s cpuSplit, ok bool) {
	if all.Count() < 2 {
		return s, false
	}
	s.all, s.rest, s.loop = all, all, -1
	for cpu := range len(all) * 64 {
		if all.IsSet(cpu) {
			s.loop = cpu
		}
	}
	s.rest.Clear(s.loop)
	return s, true
}

// threadIDs lists the threads of process pid.
func threadIDs(pid int) []int {
	entries, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
	if err != nil {
		return nil
	}
	tids := make([]int, 0, len(entries))
	for _, e := range entries {
		if tid, err := strconv.Atoi(e.Name()); err == nil {
			tids = append(tids, tid)
		}
	}
	return tids
}

// setThreads gives every thread of pid the CPUs in set, but the one
// skipped. Threads that end meanwhile are no error.
func setThreads(pid, skip int, set *unix.CPUSet) error {
	var errs []error
	for _, tid := range threadIDs(pid) {
		if tid == skip {
			continue
		}
		if err := unix.SchedSetaffinity(tid, set); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// pinLoopApart puts the calling thread, which the caller has locked, on
// the loop's CPU and every other thread of this process and its children
// on the rest. The returned func gives this process's threads all the CPUs
// back. With one CPU, or where affinity cannot be set, it does nothing:
// the loop then measures as it did before.
func pinLoopApart() (restore func()) {
	var all unix.CPUSet
	if err := unix.SchedGetaffinity(0, &all); err != nil {
		return func() {}
	}
	s, ok := splitCPUs(all)
	if !ok {
		return func() {}
	}
	self, tid := os.Getpid(), unix.Gettid()
	var loopSet unix.CPUSet
	loopSet.Set(s.loop)
	if err := unix.SchedSetaffinity(0, &loopSet); err != nil {
		return func() {}
	}
	_ = setThreads(self, tid, &s.rest)
	children.Lock()
	for pid := range children.pids {
		_ = setThreads(pid, 0, &s.rest)
	}
	children.Unlock()
	return func() {
		_ = unix.SchedSetaffinity(0, &s.all)
		_ = setThreads(self, tid, &s.all)
	}
}
