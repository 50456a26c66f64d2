package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/memlock-exporter/memlock-exporter/bpf"
	"github.com/memlock-exporter/memlock-exporter/internal/testutil"
)

func buildDaemon(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "memlock-exporter")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func TestCheckPrintsPlan(t *testing.T) {
	testutil.RequireRoot(t)
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(buildDaemon(t), "--check")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("--check: %v\n%s", err, &stderr)
	}
	if !strings.Contains(stdout.String(), "task access:") {
		t.Errorf("--check output lacks %q:\n%s", "task access:", &stdout)
	}
	// The default traces the whole family: one attached hook each.
	attached := map[string]int{}
	for line := range strings.Lines(stdout.String()) {
		if name, _, ok := strings.Cut(line, " "); ok && strings.Contains(line, ": attached") {
			attached[name]++
		}
	}
	for s := bpf.SyscallMlock; s.Valid(); s++ {
		if attached[s.String()] != 1 {
			t.Errorf("--check output has %d attached lines for %s, want 1:\n%s", attached[s.String()], s, &stdout)
		}
	}
}

// TestPrintsEveryWorkloadCall runs the daemon with --print (tracing its
// default, the whole mlock family), runs the workload, stops the daemon
// with SIGTERM and expects a clean exit and, for each thread of the
// workload, exactly one line per call it reported, in its order. Another
// process calls mlock2 all along: the daemon prints its calls too, and the
// test looks only at the workload's threads.
func TestPrintsEveryWorkloadCall(t *testing.T) {
	testutil.RequireRoot(t)
	daemon := buildDaemon(t)
	workload := testutil.BuildWorkload(t)
	noise := testutil.StartNoise(t, workload, 2*time.Millisecond)

	cmd := exec.Command(daemon, "--print")
	cmd.Env = append(cmd.Environ(), "MEMLOCK_EXPORTER_FLUSH_INTERVAL=20ms", "OTEL_SDK_DISABLED=true")
	stdout, stderr := startCommand(t, cmd, "memlock-exporter started")

	start := time.Now()
	calls := testutil.RunWorkload(t, workload)
	end := time.Now()
	// The noise's lines show that there were others' to leave out.
	noiseLine := fmt.Sprintf(" pid=%d tid=%d ", noise.PID(), noise.PID())
	waitFor(t, "a line of the noise's", func() bool { return strings.Contains(stdout.String(), noiseLine) })
	// The workload has exited and its calls' records are in the ring
	// buffer: the daemon prints them all before it exits.
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("daemon did not exit cleanly after SIGTERM: %v\n%s", err, stderr)
	}

	// The lines of the workload's threads without their time, by thread,
	// in the order printed: the calls of one thread reach the daemon in
	// call order. A thread id is only the workload's while it runs.
	tids := map[uint32]bool{}
	for _, c := range calls {
		tids[c.TID] = true
	}
	byTID := map[uint32][]string{}
	ours, others := 0, 0
	sc := bufio.NewScanner(strings.NewReader(stdout.String()))
	for sc.Scan() {
		stamp, line, _ := strings.Cut(sc.Text(), " ")
		var pid, tid uint32
		if _, err := fmt.Sscanf(line, "pid=%d tid=%d ", &pid, &tid); err != nil {
			t.Errorf("malformed line %q: %v", sc.Text(), err)
			continue
		}
		when, err := time.Parse(time.RFC3339Nano, stamp)
		if err != nil {
			t.Errorf("line %q: time: %v", sc.Text(), err)
			continue
		}
		if !tids[tid] || when.Before(start.Add(-time.Second)) || when.After(end.Add(time.Second)) {
			others++
			continue
		}
		byTID[tid] = append(byTID[tid], line)
		ours++
	}
	t.Logf("%d lines for the workload's %d calls; %d of other processes left out", ours, len(calls), others)
	next := map[uint32]int{}
	for _, c := range calls {
		ev := bpf.Event{Syscall: syscallByName(t, c.Syscall), Addr: c.Addr, Len: c.Len, Flags: c.Flags, Ret: c.Ret}
		want := fmt.Sprintf("pid=%d tid=%d comm=%q exe=%q uid=%d %s <", c.PID, c.TID, c.Comm, "workload", c.EUID, ev.AppendCall(nil))
		wantPages := fmt.Sprintf("> pages=%d probe=", ev.Pages())
		i := next[c.TID]
		next[c.TID]++
		if i >= len(byTID[c.TID]) {
			t.Errorf("step %s: no line, want one starting %q", c.Step, want)
			continue
		}
		if got := byTID[c.TID][i]; !strings.HasPrefix(got, want) || !strings.Contains(got, wantPages) {
			t.Errorf("step %s: line %q, want one starting %q with %q", c.Step, got, want, wantPages)
		}
	}
	for tid, n := range next {
		if extra := byTID[tid][min(n, len(byTID[tid])):]; len(extra) > 0 {
			t.Errorf("tid %d: %d lines more than the workload's %d calls: %q", tid, len(extra), n, extra)
		}
	}
	// Nothing lost on the way; an exit without its entry can only be a
	// call under way, the noise's or another's, when the hooks were
	// attached.
	summary := regexp.MustCompile(`memlock-exporter stopped.* lost_ringbuf_full=(\d+) lost_missed_entry=(\d+) lost_entry_map_full=(\d+)`).FindStringSubmatch(stderr.String())
	if summary == nil {
		t.Errorf("no shutdown summary with the loss counts:\n%s", stderr)
	} else if summary[1] != "0" || summary[3] != "0" {
		t.Errorf("shutdown summary reports losses: %s", summary[0])
	}
}

func syscallByName(t *testing.T, name string) bpf.Syscall {
	for s := bpf.SyscallMlock; s.Valid(); s++ {
		if s.String() == name {
			return s
		}
	}
	t.Fatalf("unknown syscall %q", name)
	return 0
}

// startCommand starts cmd (a daemon) with its output in buffers and waits
// until its stderr has the line ready; a cleanup kills it if the test has
// not waited for it.
func startCommand(t *testing.T, cmd *exec.Cmd, ready string) (stdout, stderr *testutil.SyncBuffer) {
	t.Helper()
	stdout, stderr = new(testutil.SyncBuffer), new(testutil.SyncBuffer)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	waitForLog(t, stderr, ready)
	return stdout, stderr
}

func waitForLog(t *testing.T, buf *testutil.SyncBuffer, text string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(buf.String(), text) {
		if time.Now().After(deadline) {
			t.Fatalf("daemon did not log %q within 10s:\n%s", text, buf)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitFor polls cond until it holds, and fails the test naming what it
// waited for if it does not within 10s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within 10s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
