package bpf

import (
	"fmt"
	"io"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// ProgramStat is the kernel's own accounting of one BPF program: how often
// it ran and for how long in total. The kernel only counts while statistics
// are enabled (EnableRuntimeStats or sysctl kernel.bpf_stats_enabled=1).
type ProgramStat struct {
	Name     string
	RunCount uint64
	Runtime  time.Duration
}

// EnableRuntimeStats turns on the kernel's BPF run-time accounting until the
// returned closer is closed. It costs two clock reads per program run, so
// only benchmarks use it.
func EnableRuntimeStats() (io.Closer, error) {
	c, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		return nil, fmt.Errorf("enable BPF run-time statistics: %w", err)
	}
	return c, nil
}

// ProgramStats returns the run-time statistics of every loaded program.
func (t *Tracer) ProgramStats() ([]ProgramStat, error) {
	progs := []struct {
		name string
		prog *ebpf.Program
	}{
		{memlockProgTpEnterMlock, t.objs.TpEnterMlock},
		{memlockProgTpExitMlock, t.objs.TpExitMlock},
		{memlockProgTpEnterMlock2, t.objs.TpEnterMlock2},
		{memlockProgTpExitMlock2, t.objs.TpExitMlock2},
	}
	out := make([]ProgramStat, 0, len(progs))
	for _, p := range progs {
		st, err := p.prog.Stats()
		if err != nil {
			return nil, fmt.Errorf("read statistics of %s: %w", p.name, err)
		}
		out = append(out, ProgramStat{Name: p.name, RunCount: st.RunCount, Runtime: st.Runtime})
	}
	return out, nil
}
