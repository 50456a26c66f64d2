package main

import (
	"os"
	"strings"
	"testing"
	"time"
)

// statusText is the part of a /proc/<pid>/status that matters, as Linux
// 6.18 prints it.
const statusText = `Name:	memlock-exporte
Umask:	0022
State:	S (sleeping)
VmPeak:	 1773844 kB
VmSize:	 1708308 kB
VmLck:	       4 kB
VmHWM:	   55780 kB
VmRSS:	   54212 kB
RssAnon:	   36048 kB
RssFile:	   18164 kB
RssShmem:	       0 kB
VmData:	  123936 kB
Threads:	9
`

// TestParseMemStatus: VmHWM, VmRSS and its split, in bytes; a missing line
// or another unit is an error.
func TestParseMemStatus(t *testing.T) {
	got, err := parseMemStatus([]byte(statusText))
	if err != nil {
		t.Fatal(err)
	}
	want := memStatus{hwm: 55780 << 10, rss: 54212 << 10, anon: 36048 << 10, file: 18164 << 10, shmem: 0}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	for name, text := range map[string]string{
		"no RssShmem": strings.Replace(statusText, "RssShmem:", "RssShmen:", 1),
		"MB":          strings.Replace(statusText, "36048 kB", "36 MB", 1),
		"not a count": strings.Replace(statusText, "55780 kB", "5x780 kB", 1),
	} {
		if m, err := parseMemStatus([]byte(text)); err == nil {
			t.Errorf("%s: no error, got %+v", name, m)
		}
	}
}

// TestReadMemStatus reads this process's own status: the kernel's format
// is still the one parseMemStatus knows.
func TestReadMemStatus(t *testing.T) {
	m, err := readMemStatus(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if m.rss == 0 || m.hwm < m.rss || m.anon+m.file+m.shmem != m.rss {
		t.Errorf("implausible: %+v (want 0 < VmRSS <= VmHWM, VmRSS = RssAnon + RssFile + RssShmem)", m)
	}
}

// TestSummarizeRSS: the steady sample is the one of median VmRSS (the
// lower of an even count), the peak the highest, each with its own split,
// and both carry the last VmHWM.
func TestSummarizeRSS(t *testing.T) {
	mk := func(rss, anon, hwm uint64) memStatus {
		return memStatus{rss: rss, anon: anon, file: rss - anon, hwm: hwm}
	}
	samples := []memStatus{mk(50, 30, 60), mk(40, 25, 60), mk(55, 36, 60), mk(45, 27, 61)}
	got := summarizeRSS(samples)
	if want := (rssSummary{samples: 4, steady: mk(45, 27, 61), peak: mk(55, 36, 61)}); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if samples[0].rss != 50 {
		t.Error("summarizeRSS reordered its argument")
	}
	if got := summarizeRSS(nil); got != (rssSummary{}) {
		t.Errorf("no samples: got %+v", got)
	}
}

// gctrace is GODEBUG=gctrace=1 output as Go 1.26 prints it, among the
// daemon's own log lines.
const gctrace = `gc 1 @0.055s 0%: 0.86+19+0.043 ms clock, 1.7+0/0.91/1.4+0.086 ms cpu, 3->3->1 MB, 4 MB goal, 0 MB stacks, 0 MB globals, 2 P
time=2026-12-04T20:35:55.064Z level=INFO msg="memlock-exporter started" version=wt
gc 12 @5.280s 4%: 0.40+23+0.10 ms clock, 0.80+0/5.9/1.0+0.20 ms cpu, 27->32->21 MB, 30 MB goal, 0 MB stacks, 0 MB globals, 2 P
gc 13 @5.316s 4%: 1.6+3.3+0.006 ms clock, 3.3+0.80/2.2/0+0.012 ms cpu, 28->29->20 MB, 31 MB goal, 1 MB stacks, 0 MB globals, 2 P
gc 14 @9.5s 3%: 0.1+1+0.01 ms clock, 0.2+0/1/0+0.02 ms cpu, 24->24->18 MB, 40 MB goal, 0 MB stacks, 0 MB globals, 2 P (forced)
`

// TestParseGCTrace reads the gc lines and skips the others.
func TestParseGCTrace(t *testing.T) {
	cycles, err := parseGCTrace(gctrace)
	if err != nil {
		t.Fatal(err)
	}
	if len(cycles) != 4 {
		t.Fatalf("%d cycles, want 4: %+v", len(cycles), cycles)
	}
	want := gcCycle{n: 13, at: 5316 * time.Millisecond, heapStart: 28 << 20, heapEnd: 29 << 20, heapLive: 20 << 20, goal: 31 << 20, stacks: 1 << 20}
	if cycles[2] != want {
		t.Errorf("cycle 13: got %+v, want %+v", cycles[2], want)
	}
	if !cycles[3].forced || cycles[0].forced {
		t.Errorf("forced: %v %v, want only the last", cycles[0].forced, cycles[3].forced)
	}
	bad := "gc 3 @0.5s 1%: 0.1+1+0.01 ms clock, 0.2+0/1/0+0.02 ms cpu, 24->24 MB, 40 MB goal, 0 MB stacks, 0 MB globals, 2 P\n"
	if _, err := parseGCTrace(bad); err == nil {
		t.Error("a gc line with two heap sizes: no error")
	}
}

// TestSummarizeGC: the cycles that started in the window; with none, the
// last one before the window's end stands for the heap.
func TestSummarizeGC(t *testing.T) {
	cycles, err := parseGCTrace(gctrace)
	if err != nil {
		t.Fatal(err)
	}
	got := summarizeGC(cycles, 5*time.Second, 10*time.Second)
	if got.cycles != 3 || got.perSecond != 0.6 || got.last.n != 14 {
		t.Errorf("window 5s-10s: %d cycles, %.2f/s, last %d; want 3, 0.60/s, last 14", got.cycles, got.perSecond, got.last.n)
	}
	if got.liveMedian != 20<<20 || got.liveMax != 21<<20 || got.goalMax != 40<<20 || got.heapEndMax != 32<<20 {
		t.Errorf("window 5s-10s: live %s/%s MiB, goal %s, end %s; want 20/21, 40, 32",
			mib(got.liveMedian), mib(got.liveMax), mib(got.goalMax), mib(got.heapEndMax))
	}

	got = summarizeGC(cycles, 6*time.Second, 9*time.Second)
	if got.cycles != 0 || got.last.n != 13 || got.liveMedian != 20<<20 || got.goalMax != 31<<20 {
		t.Errorf("window 6s-9s: %d cycles, last %d, live %s, goal %s; want 0, last 13, 20, 31",
			got.cycles, got.last.n, mib(got.liveMedian), mib(got.goalMax))
	}
	if got := summarizeGC(cycles, 0, 10*time.Millisecond); got.last.n != 0 || got.cycles != 0 {
		t.Errorf("before the first cycle: %+v", got)
	}
}

// TestRSSSampler samples this process until stopped; Stop may be called
// again, and a process that is gone ends the sampling with an error.
func TestRSSSampler(t *testing.T) {
	s := startRSSSampler(os.Getpid())
	time.Sleep(rssEvery*2 + rssEvery/2)
	samples, err := s.Stop()
	if err != nil {
		t.Fatal(err)
	}
	if len(samples) < 2 {
		t.Errorf("%d samples in 2.5 periods, want at least 2", len(samples))
	}
	if again, err := s.Stop(); err != nil || len(again) != len(samples) {
		t.Errorf("second Stop: %d samples, %v; want %d, nil", len(again), err, len(samples))
	}

	gone := startRSSSampler(1 << 30) // above pid_max's ceiling
	if _, err := gone.Stop(); err == nil {
		t.Error("no error for a process that does not exist")
	}
}
