package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
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
	for _, want := range []string{"mlock2 ", "mlock ", " attached", "task access:"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("--check output lacks %q:\n%s", want, &stdout)
		}
	}
}

// TestPrintsEveryWorkloadCall runs the daemon with --print, runs the
// workload, stops the daemon with SIGTERM and expects one line per call and
// a clean exit.
func TestPrintsEveryWorkloadCall(t *testing.T) {
	testutil.RequireRoot(t)
	daemon := buildDaemon(t)
	workload := testutil.BuildWorkload(t)

	var stdout, stderr testutil.SyncBuffer
	cmd := exec.Command(daemon, "--print")
	cmd.Env = append(cmd.Environ(), "MEMLOCK_EXPORTER_FLUSH_INTERVAL=20ms", "OTEL_SDK_DISABLED=true")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitForLog(t, &stderr, "memlock-exporter started")

	calls := testutil.RunWorkload(t, workload)
	time.Sleep(200 * time.Millisecond) // > 2 flush intervals
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("daemon did not exit cleanly after SIGTERM: %v\n%s", err, &stderr)
	}

	lines := map[string]int{}
	sc := bufio.NewScanner(strings.NewReader(stdout.String()))
	for sc.Scan() {
		lines[sc.Text()[strings.Index(sc.Text(), " ")+1:]]++
	}
	for _, c := range calls {
		ev := bpf.Event{Syscall: syscallByName(t, c.Syscall), Addr: c.Addr, Len: c.Len, Flags: c.Flags, Ret: c.Ret}
		want := fmt.Sprintf("pid=%d tid=%d comm=%q exe=%q uid=%d %s <", c.PID, c.TID, c.Comm, "workload", c.EUID, ev.AppendCall(nil))
		found := 0
		for line, n := range lines {
			if strings.HasPrefix(line, want) {
				found += n
			}
		}
		if found != 1 {
			t.Errorf("step %s: %d lines starting %q, want 1", c.Step, found, want)
		}
	}
	if !strings.Contains(stderr.String(), "lost_ringbuf_full=0 lost_missed_entry=0 lost_entry_map_full=0") {
		t.Errorf("shutdown summary missing or reports losses:\n%s", &stderr)
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
