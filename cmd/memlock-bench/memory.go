package main

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// rssEvery is how often the exporter's resident memory is sampled during
// the window of a setup that reports it (the collector-down one).
const rssEvery = 100 * time.Millisecond

// rssSampler reads a process's memStatus every rssEvery from its own
// goroutine until stopped.
type rssSampler struct {
	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}

	mu      sync.Mutex
	samples []memStatus
	err     error // the first failed read; sampling ends there
}

func startRSSSampler(pid int) *rssSampler {
	s := &rssSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(rssEvery)
		defer tick.Stop()
		for {
			m, err := readMemStatus(pid)
			s.mu.Lock()
			if err != nil {
				s.err = err
				s.mu.Unlock()
				return
			}
			s.samples = append(s.samples, m)
			s.mu.Unlock()
			select {
			case <-s.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

// Stop ends the sampling and returns the samples, in order. It may be
// called more than once.
func (s *rssSampler) Stop() ([]memStatus, error) {
	s.stopOnce.Do(func() { close(s.stop) })
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.samples, s.err
}

// rssSummary is a process's resident memory over a window.
type rssSummary struct {
	samples int
	// steady is the sample of median VmRSS: what the process holds most
	// of the time, split as that one sample was.
	steady memStatus
	// peak is the sample of highest VmRSS, with its split. Its hwm (and
	// every sample's) is VmHWM, the peak over the process's whole life,
	// which may fall between samples.
	peak memStatus
}

// summarizeRSS picks the median and the highest of samples by VmRSS (the
// lower median of an even count); VmHWM is taken from the last sample.
func summarizeRSS(samples []memStatus) rssSummary {
	if len(samples) == 0 {
		return rssSummary{}
	}
	s := slices.Clone(samples)
	slices.SortStableFunc(s, func(a, b memStatus) int { return cmp.Compare(a.rss, b.rss) })
	sum := rssSummary{samples: len(s), steady: s[(len(s)-1)/2], peak: s[len(s)-1]}
	hwm := samples[len(samples)-1].hwm
	sum.steady.hwm, sum.peak.hwm = hwm, hwm
	return sum
}

// gcCycle is one line of the Go runtime's GODEBUG=gctrace=1 output, sizes
// in bytes (the runtime prints whole MiB, rounded down).
type gcCycle struct {
	n                            int
	at                           time.Duration // since the process started
	heapStart, heapEnd, heapLive uint64        // at mark start, at mark end, marked live
	goal                         uint64        // the heap goal of this cycle
	stacks                       uint64        // stack memory scanned
	forced                       bool
}

// parseGCTrace reads the gctrace lines among a process's stderr lines:
//
//	gc 12 @1.234s 2%: 0.010+1.2+0.020 ms clock, ..., 30->31->12 MB, 32 MB goal, 0 MB stacks, 0 MB globals, 2 P
//
// Other lines are skipped; a gc line that does not parse is an error.
func parseGCTrace(output string) ([]gcCycle, error) {
	var out []gcCycle
	for line := range strings.Lines(output) {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "gc ") || !strings.Contains(line, " MB goal") {
			continue
		}
		c, err := parseGCLine(line)
		if err != nil {
			return nil, fmt.Errorf("parse gctrace line %q: %w", line, err)
		}
		out = append(out, c)
	}
	return out, nil
}

func parseGCLine(line string) (gcCycle, error) {
	var c gcCycle
	f := strings.Fields(line)
	if len(f) < 3 {
		return c, fmt.Errorf("too short")
	}
	n, err := strconv.Atoi(f[1])
	if err != nil {
		return c, err
	}
	c.n = n
	secs, ok := strings.CutPrefix(f[2], "@")
	secs, ok2 := strings.CutSuffix(secs, "s")
	if !ok || !ok2 {
		return c, fmt.Errorf("no @<seconds>s in %q", f[2])
	}
	at, err := strconv.ParseFloat(secs, 64)
	if err != nil {
		return c, err
	}
	c.at = time.Duration(at * float64(time.Second))
	c.forced = strings.HasSuffix(line, "(forced)")
	// The sizes follow "ms cpu, ", comma-separated.
	_, sizes, ok := strings.Cut(line, " ms cpu, ")
	if !ok {
		return c, fmt.Errorf("no \"ms cpu, \"")
	}
	found := 0
	for part := range strings.SplitSeq(sizes, ",") {
		part = strings.TrimSpace(part)
		switch {
		case strings.HasSuffix(part, " MB") && strings.Contains(part, "->"):
			heaps := strings.Split(strings.TrimSuffix(part, " MB"), "->")
			if len(heaps) != 3 {
				return c, fmt.Errorf("heap sizes %q: want a->b->c", part)
			}
			for i, p := range []*uint64{&c.heapStart, &c.heapEnd, &c.heapLive} {
				if *p, err = parseMB(heaps[i]); err != nil {
					return c, err
				}
			}
			found++
		case strings.HasSuffix(part, " MB goal"):
			if c.goal, err = parseMB(strings.TrimSuffix(part, " MB goal")); err != nil {
				return c, err
			}
			found++
		case strings.HasSuffix(part, " MB stacks"):
			if c.stacks, err = parseMB(strings.TrimSuffix(part, " MB stacks")); err != nil {
				return c, err
			}
		}
	}
	if found != 2 {
		return c, fmt.Errorf("no heap sizes or goal")
	}
	return c, nil
}

func parseMB(s string) (uint64, error) {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
	return n << 20, err
}

// gcSummary is what the garbage collector did in a window, and the state
// the last cycle by the window's end left: the exporter allocates little
// once its export buffers have grown, so a window may have no cycle at all
// and its heap is then what the last one before it left.
type gcSummary struct {
	cycles    int     // in the window
	perSecond float64 // cycles per second of the window
	// last is the last cycle that started before the window's end, if
	// any (last.n > 0).
	last gcCycle
	// Over the cycles in the window, or last's alone if there are none.
	liveMedian, liveMax uint64 // heap marked live at the end of a cycle
	goalMax             uint64 // heap goal
	heapEndMax          uint64 // the heap's size at a cycle's end
}

// summarizeGC summarizes the cycles that started within [from, to) of the
// process's life.
func summarizeGC(cycles []gcCycle, from, to time.Duration) gcSummary {
	var s gcSummary
	var live []uint64
	for _, c := range cycles {
		if c.at >= to {
			break
		}
		s.last = c
		if c.at < from {
			continue
		}
		live = append(live, c.heapLive)
		s.goalMax = max(s.goalMax, c.goal)
		s.heapEndMax = max(s.heapEndMax, c.heapEnd)
	}
	s.cycles = len(live)
	if to > from {
		s.perSecond = float64(s.cycles) / (to - from).Seconds()
	}
	if s.cycles == 0 {
		s.liveMedian, s.liveMax = s.last.heapLive, s.last.heapLive
		s.goalMax, s.heapEndMax = s.last.goal, s.last.heapEnd
		return s
	}
	slices.Sort(live)
	s.liveMedian, s.liveMax = live[(len(live)-1)/2], live[len(live)-1]
	return s
}

// mib formats a byte count in MiB with one decimal.
func mib(b uint64) string { return strconv.FormatFloat(float64(b)/(1<<20), 'f', 1, 64) }
