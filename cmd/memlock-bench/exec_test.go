package main

import (
	"math"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func TestMedianInterval(t *testing.T) {
	seq := func(n int) []float64 {
		xs := make([]float64, n)
		for i := range xs {
			xs[i] = float64(n - i) // descending: the function must sort
		}
		return xs
	}
	for _, tc := range []struct {
		n      int
		ok     bool
		lo, hi float64 // the k-th smallest and largest of 1..n
	}{
		{n: 0},
		{n: 1},
		{n: 5}, // P(all on one side) = 1/32 > 2.5%
		{n: 6, ok: true, lo: 1, hi: 6},
		{n: 8, ok: true, lo: 1, hi: 8},
		{n: 9, ok: true, lo: 2, hi: 8},
		{n: 20, ok: true, lo: 6, hi: 15},
		{n: 2000, ok: true, lo: 956, hi: 1045},
	} {
		lo, hi, ok := medianInterval(seq(tc.n))
		if ok != tc.ok || lo != tc.lo || hi != tc.hi {
			t.Errorf("n=%d: got %g..%g ok=%t, want %g..%g ok=%t", tc.n, lo, hi, ok, tc.lo, tc.hi, tc.ok)
		}
	}
}

func TestSummarizeExec(t *testing.T) {
	for _, tc := range []struct {
		name          string
		without, with []float64
		err           string
		withoutMed    float64
		withMed       float64
		ofMedians     float64
		ratio         float64
		interval      bool
	}{
		{name: "no rounds", err: "at least one"},
		{name: "uneven", without: []float64{1, 2}, with: []float64{1}, err: "2 without the daemon and 1 with"},
		{name: "zero", without: []float64{0}, with: []float64{1}, err: "want more than 0"},
		{
			// The machine slows down halfway: the paired ratios see 1%
			// throughout, the ratio of the medians sees the drift.
			name:       "drift",
			without:    []float64{1000, 1000, 1000, 1500, 1500, 1500, 1500},
			with:       []float64{1010, 1010, 1010, 1515, 1515, 1515, 1515},
			withoutMed: 1500, withMed: 1515, ofMedians: 1.01, ratio: 1.01, interval: true,
		},
		{
			name:       "an outlier pair",
			without:    []float64{1000, 1000, 1000, 1000, 1000, 1000},
			with:       []float64{1000, 1000, 1000, 1000, 1000, 3000},
			withoutMed: 1000, withMed: 1000, ofMedians: 1, ratio: 1, interval: true,
		},
		{
			name:       "even count",
			without:    []float64{100, 100},
			with:       []float64{101, 103},
			withoutMed: 100, withMed: 102, ofMedians: 1.02, ratio: 1.02,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := summarizeExec(tc.without, tc.with)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
			if !near(s.without, tc.withoutMed) || !near(s.with, tc.withMed) || !near(s.ratioOfMedians, tc.ofMedians) ||
				!near(s.ratio, tc.ratio) || s.hasInterval != tc.interval || s.rounds != len(tc.with) {
				t.Errorf("got %+v, want medians %g/%g, ratio of medians %g, ratio %g, interval %t",
					s, tc.withoutMed, tc.withMed, tc.ofMedians, tc.ratio, tc.interval)
			}
		})
	}
}

func TestExecVerdict(t *testing.T) {
	for _, tc := range []struct {
		name          string
		ratio, lo, hi float64
		interval      bool
		want          string
	}{
		{"resolved below", 1.001, 0.99, 1.015, true, "met, the whole interval below it"},
		{"at the target", 1.02, 1.02, 1.02, true, "met, the whole interval below it"},
		{"resolved above", 1.05, 1.03, 1.08, true, "NOT met, the whole interval above it"},
		{"noise, met", 1.00, 0.95, 1.06, true, "met, but the interval straddles it"},
		{"noise, not met", 1.03, 1.01, 1.06, true, "NOT met, but the interval straddles it"},
		{"few rounds", 1.00, 0, 0, false, "met (too few rounds for an interval)"},
	} {
		got := execVerdict(execSummary{ratio: tc.ratio, lo: tc.lo, hi: tc.hi, hasInterval: tc.interval})
		if !strings.HasPrefix(got, tc.want) {
			t.Errorf("%s: got %q, want it to start with %q", tc.name, got, tc.want)
		}
	}
}

func TestDaemonHooks(t *testing.T) {
	for _, tc := range []struct {
		name, stderr, want string
	}{
		{"none", "time=x level=INFO msg=\"memlock-exporter started\"\n", "unknown"},
		{"tracepoints", `time=x level=INFO msg="hook attached" syscall=mlock probe=tracepoint target="syscalls:sys_enter_mlock + syscalls:sys_exit_mlock" skipped="fentry: refused; kprobe: none"
time=x level=INFO msg="hook attached" syscall=mlock2 probe=tracepoint target="x"
time=x level=INFO msg="memlock-exporter started" version=dev
`, "tracepoint"},
		{"mixed", `msg="hook attached" syscall=mlock probe=kprobe target="__x64_sys_mlock"
msg="hook attached" syscall=mlock2 probe=fentry target="__x64_sys_mlock2"
msg="hook attached" syscall=munlock probe=fentry target="__x64_sys_munlock"
`, "fentry+kprobe"},
	} {
		if got := daemonHooks(tc.stderr); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestExecLine pins the "EXEC " line's keys, for scripts.
func TestExecLine(t *testing.T) {
	s, err := summarizeExec([]float64{1000, 1000, 1000, 1000, 1000, 1000}, []float64{1010, 1010, 1010, 1010, 1010, 1010})
	if err != nil {
		t.Fatal(err)
	}
	got := execLine("6.18.0", "tracepoint", 400, s)
	want := regexp.MustCompile(`^EXEC kernel=6\.18\.0 hooks=tracepoint rounds=6 iterations=400 us_without=1000\.0 us_with=1010\.0 ratio_of_medians=1\.0100 ratio=1\.0100 ratio_lo=1\.0100 ratio_hi=1\.0100 added_pct=1\.00 target_pct=2 met=true$`)
	if !want.MatchString(got) {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

// TestCleanRounds: rounds during which another tracer was loaded are left
// out of the summary and starred in the per-round lists.
func TestCleanRounds(t *testing.T) {
	xs := []float64{1000, 1234.4, 1500, 999.6}
	tainted := []bool{false, true, false, true}
	if got := cleanRounds(xs, tainted); !slices.Equal(got, []float64{1000, 1500}) {
		t.Errorf("cleanRounds = %v, want [1000 1500]", got)
	}
	if got := cleanRounds(xs, make([]bool, len(xs))); !slices.Equal(got, xs) {
		t.Errorf("cleanRounds, none tainted = %v, want %v", got, xs)
	}
	if got, want := formatMarked(xs, tainted, "%.0f"), "1000 1234* 1500 1000*"; got != want {
		t.Errorf("formatMarked = %q, want %q", got, want)
	}
}
