package main

import (
	"os"
	"os/exec"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

func cpuSet(cpus ...int) unix.CPUSet {
	var s unix.CPUSet
	for _, c := range cpus {
		s.Set(c)
	}
	return s
}

func TestSplitCPUs(t *testing.T) {
	for _, tc := range []struct {
		name     string
		all      unix.CPUSet
		ok       bool
		loop     int
		restCPUs []int
	}{
		{"one CPU: nothing to split", cpuSet(0), false, 0, nil},
		{"two CPUs", cpuSet(0, 1), true, 1, []int{0}},
		{"the last allowed, with gaps", cpuSet(1, 3, 70), true, 70, []int{1, 3}},
	} {
		s, ok := splitCPUs(tc.all)
		if ok != tc.ok {
			t.Errorf("%s: ok = %t, want %t", tc.name, ok, tc.ok)
			continue
		}
		if !ok {
			continue
		}
		if s.loop != tc.loop || s.rest != cpuSet(tc.restCPUs...) || s.all != tc.all {
			t.Errorf("%s: loop %d rest %v, want %d %v", tc.name, s.loop, s.rest, tc.loop, tc.restCPUs)
		}
	}
}

// TestPinLoopApart: the loop's thread alone gets its CPU, a child's
// threads do not, and the restore gives this process's threads every CPU
// back.
func TestPinLoopApart(t *testing.T) {
	var all unix.CPUSet
	if err := unix.SchedGetaffinity(0, &all); err != nil {
		t.Fatal(err)
	}
	s, ok := splitCPUs(all)
	if !ok {
		t.Skip("one CPU: nothing to pin apart")
	}
	cmd := exec.Command("sleep", "30")
	c, err := startChild("sleep", cmd)
	if err != nil {
		t.Fatal(err)
	}
	defer c.kill()

	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	restore := pinLoopApart()
	var got unix.CPUSet
	if err := unix.SchedGetaffinity(0, &got); err != nil || got != cpuSet(s.loop) {
		t.Errorf("loop thread on %v (%v), want CPU %d alone", got, err, s.loop)
	}
	if err := unix.SchedGetaffinity(c.pid(), &got); err != nil || got != s.rest {
		t.Errorf("child on %v (%v), want %v", got, err, s.rest)
	}
	other := 0
	for _, tid := range threadIDs(os.Getpid()) {
		if tid == unix.Gettid() {
			continue
		}
		if err := unix.SchedGetaffinity(tid, &got); err == nil && got.IsSet(s.loop) {
			t.Errorf("thread %d of ours may run on the loop's CPU %d: %v", tid, s.loop, got)
		}
		other++
	}
	if other == 0 {
		t.Error("no other thread of ours found: /proc/self/task not read")
	}
	restore()
	if err := unix.SchedGetaffinity(0, &got); err != nil || got != all {
		t.Errorf("after restore the loop thread is on %v (%v), want %v", got, err, all)
	}
}
