//go:build linux

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// server is a server program a test runs beside the daemon (the collector,
// Jaeger): its output goes to <name>.log in its own directory, a cleanup
// stops it, and the test sees its output if it failed.
type server struct {
	name     string // for messages and the log file: "collector", "jaeger"
	dir      string
	cmd      *exec.Cmd
	exited   chan struct{} // closed when the process has exited
	waitErr  error         // valid once exited is closed
	ready    bool          // start-up succeeded
	stopOnce sync.Once
}

// startServer starts cmd (its arguments, Dir and Env set by the caller),
// writing its output into dir, and waits until ready reports true (what
// says what it waits for, in the error) and the process is still running a
// moment later (the ports might belong to someone else). It fails nothing:
// a test may call it from another goroutine (see restartableCollector). On
// an error the process is killed, and the error is not the test's failure.
func startServer(t testing.TB, name, dir string, cmd *exec.Cmd, timeout time.Duration, what string, ready func() bool) (*server, error) {
	s := &server{name: name, dir: dir, cmd: cmd, exited: make(chan struct{})}
	out, err := os.Create(s.outputPath())
	if err != nil {
		return nil, err
	}
	defer out.Close() // the child holds its own descriptor
	cmd.Stdout, cmd.Stderr = out, out
	// Do not outlive a test binary killed by -timeout, which skips cleanups.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		s.waitErr = cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(func() {
		s.Stop(t)
		if t.Failed() && s.ready {
			t.Logf("%s output:\n%s", s.name, s.output())
		}
	})
	if err := s.waitReady(timeout, what, ready); err != nil {
		s.stopOnce.Do(func() {
			_ = cmd.Process.Kill()
			<-s.exited
		})
		return nil, err
	}
	s.ready = true
	return s, nil
}

func (s *server) waitReady(timeout time.Duration, what string, ready func() bool) error {
	deadline := time.Now().Add(timeout)
	for !ready() {
		select {
		case <-s.exited:
			return fmt.Errorf("%s exited during start-up (%v):\n%s", s.name, s.waitErr, s.output())
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not %s within %v:\n%s", s.name, what, timeout, s.output())
		}
		time.Sleep(20 * time.Millisecond)
	}
	select {
	case <-s.exited:
		return fmt.Errorf("%s exited during start-up (%v):\n%s", s.name, s.waitErr, s.output())
	case <-time.After(100 * time.Millisecond):
		return nil
	}
}

// Stop sends SIGTERM and waits for the server to exit, which flushes what
// it writes; it kills it after 15 seconds. It is safe to call more than
// once, and its files stay readable afterwards.
func (s *server) Stop(t testing.TB) {
	t.Helper()
	s.stopOnce.Do(func() {
		select {
		case <-s.exited:
			t.Errorf("%s exited before it was stopped (%v):\n%s", s.name, s.waitErr, s.output())
			return
		default:
		}
		if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Errorf("stop %s: %v", s.name, err)
		}
		select {
		case <-s.exited:
			if s.waitErr != nil {
				t.Errorf("%s exited with %v after SIGTERM:\n%s", s.name, s.waitErr, s.output())
			}
		case <-time.After(15 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.exited
			t.Errorf("%s did not exit within 15s of SIGTERM; killed it", s.name)
		}
	})
}

func (s *server) outputPath() string { return filepath.Join(s.dir, s.name+".log") }

// output is what the server wrote to stdout and stderr so far.
func (s *server) output() string {
	b, err := os.ReadFile(s.outputPath())
	if err != nil {
		return fmt.Sprintf("(read %s output: %v)", s.name, err)
	}
	return string(b)
}
