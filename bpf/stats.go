package bpf

import (
	"fmt"
	"io"
	"slices"
	"strings"
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

// ProgramStats returns the run-time statistics of every attached program.
func (t *Tracer) ProgramStats() ([]ProgramStat, error) {
	var out []ProgramStat
	for _, c := range t.colls {
		for name, prog := range c.Programs {
			st, err := prog.Stats()
			if err != nil {
				return nil, fmt.Errorf("read statistics of %s: %w", name, err)
			}
			out = append(out, ProgramStat{Name: name, RunCount: st.RunCount, Runtime: st.Runtime})
		}
	}
	slices.SortFunc(out, func(a, b ProgramStat) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}
