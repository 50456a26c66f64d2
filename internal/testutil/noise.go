package testutil

import (
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// NoiseCallsPerRound are the calls of the mlock family one round of the
// workload's --noise-ms mode makes: mlock2 with flags 0 and munlock,
// mlock2 with MLOCK_ONFAULT and munlock, and mlock2 with an unknown flag,
// which fails with EINVAL.
const NoiseCallsPerRound = 5

// Noise is another process on the host that calls mlock2 every few
// milliseconds (the workload's --noise-ms mode): what a test that must see
// only its own workload's calls runs beside it to prove that it does. make
// test runs one for the whole go test run; StartNoise starts one for a
// single test.
type Noise struct {
	cmd    *exec.Cmd
	stderr SyncBuffer
	done   bool
}

// StartNoise starts the workload binary bin in its --noise-ms mode with the
// given period (at least a millisecond). The process is stopped when the
// test ends, if Stop did not stop it before.
func StartNoise(tb testing.TB, bin string, period time.Duration) *Noise {
	tb.Helper()
	ms := max(period.Milliseconds(), 1)
	n := &Noise{cmd: exec.Command(bin, "--noise-ms", strconv.FormatInt(ms, 10))}
	n.cmd.Stderr = &n.stderr
	if err := n.cmd.Start(); err != nil {
		tb.Fatalf("start mlock2 noise %s: %v", strings.Join(n.cmd.Args, " "), err)
	}
	tb.Cleanup(func() {
		if !n.done {
			n.Stop(tb)
		}
	})
	return n
}

// PID returns the noise process's id.
func (n *Noise) PID() int { return n.cmd.Process.Pid }

var noiseSummary = regexp.MustCompile(`noise: (\d+) rounds, (\d+) unexpected results`)

// Stop ends the noise process with SIGTERM and returns how many rounds of
// NoiseCallsPerRound calls it made. An unclean exit, or a call that did not
// return what the round expects, fails the test.
func (n *Noise) Stop(tb testing.TB) (rounds uint64) {
	tb.Helper()
	n.done = true
	if err := n.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		tb.Errorf("stop mlock2 noise: %v", err)
	}
	if err := n.cmd.Wait(); err != nil {
		tb.Errorf("mlock2 noise %s: %v\nstderr:\n%s", strings.Join(n.cmd.Args, " "), err, n.stderr.String())
		return 0
	}
	m := noiseSummary.FindStringSubmatch(n.stderr.String())
	if m == nil {
		tb.Errorf("mlock2 noise printed no summary:\n%s", n.stderr.String())
		return 0
	}
	if m[2] != "0" {
		tb.Errorf("mlock2 noise: %s", m[0])
	}
	rounds, _ = strconv.ParseUint(m[1], 10, 64)
	return rounds
}

// String describes the process, for test logs.
func (n *Noise) String() string {
	return fmt.Sprintf("mlock2 noise (pid %d, %s)", n.PID(), strings.Join(n.cmd.Args[1:], " "))
}
