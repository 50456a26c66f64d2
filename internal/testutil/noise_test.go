package testutil

import (
	"bufio"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestNoise: the noise runs until stopped, at most one round per period,
// and every call returns what its round expects.
func TestNoise(t *testing.T) {
	bin := BuildWorkload(t)
	n := StartNoise(t, bin, 2*time.Millisecond)
	start := time.Now()
	time.Sleep(200 * time.Millisecond) // the span whose rounds are counted
	rounds := n.Stop(t)
	took := time.Since(start)
	if most := uint64(took/(2*time.Millisecond)) + 1; rounds < 5 || rounds > most {
		t.Errorf("%d rounds in %v at one per 2ms, want 5 to %d", rounds, took, most)
	}
	t.Logf("%v: %d rounds of %d calls in %v", n, rounds, NoiseCallsPerRound, took)
}

// TestNoiseEndsWithItsParent: a noise process whose parent is gone (a test
// binary killed by -timeout, an interrupted make) does not run on.
func TestNoiseEndsWithItsParent(t *testing.T) {
	bin := BuildWorkload(t)
	// The shell starts the noise, prints its pid and exits when its stdin
	// is closed.
	sh := exec.Command("/bin/sh", "-c", `"$0" --noise-ms 1 </dev/null >/dev/null 2>&1 & echo $!; read -r _; exit 0`, bin)
	stdin, err := sh.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := sh.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sh.Process.Kill(); sh.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	pid, perr := strconv.Atoi(strings.TrimSpace(line))
	if err != nil || perr != nil {
		t.Fatalf("shell printed %q (%v), want the noise's pid", line, err)
	}
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
	proc := "/proc/" + strconv.Itoa(pid)
	// Once it sleeps between rounds it has asked to die with its parent.
	waitUntil(t, 10*time.Second, "the noise's first round", func() bool {
		wchan, _ := os.ReadFile(proc + "/wchan")
		return strings.Contains(string(wchan), "nanosleep")
	})
	stdin.Close()
	if err := sh.Wait(); err != nil {
		t.Fatalf("shell: %v", err)
	}
	waitUntil(t, 10*time.Second, "the noise's exit after its parent's", func() bool {
		status, err := os.ReadFile(proc + "/status")
		// Gone, or exited and not yet reaped by its new parent.
		return errors.Is(err, fs.ErrNotExist) || strings.Contains(string(status), "\nState:\tZ")
	})
}

// waitUntil polls cond until it holds, and fails the test, naming what it
// waited for, if it does not within timeout.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v", what, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestCgroup: a workload started in a cgroup of the test's own runs there
// (that its forked children do too, bpf's TestWorkloadEventsExact sees in
// their calls' cgroup ids), and the cgroup is gone after the test.
func TestCgroup(t *testing.T) {
	RequireRoot(t)
	bin := BuildWorkload(t)
	var path string
	t.Run("in it", func(t *testing.T) {
		cg, ok := NewCgroup(t)
		if !ok {
			t.Skip("no writable cgroup2 file system")
		}
		path = cg.Path
		if id, ok := statIno(cg.Path); !ok || id != cg.ID {
			t.Errorf("cgroup %s: inode %d, ID %d", cg.Path, id, cg.ID)
		}
		w := cg.StartWorkload(t, bin, "--hold-ms", "10000")
		for {
			c, ok := w.Next(t)
			if !ok {
				t.Fatal("workload ended before holding its lock")
			}
			if c.Step == WorkloadHoldStep {
				break
			}
		}
		data, err := os.ReadFile("/proc/" + strconv.Itoa(w.PID()) + "/cgroup")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(data), "0::"+cg.HierarchyPath+"\n") {
			t.Errorf("/proc/%d/cgroup does not name %s:\n%s", w.PID(), cg.HierarchyPath, data)
		}
		// The workload still holds its lock; the clean-ups kill it and
		// then remove the cgroup.
	})
	if path != "" {
		if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("cgroup %s after its test: %v, want it removed", path, err)
		}
	}
}

func statIno(path string) (uint64, bool) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return st.Ino, true
}
