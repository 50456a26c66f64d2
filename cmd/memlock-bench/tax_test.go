package main

import (
	"errors"
	"math"
	"regexp"
	"testing"

	"github.com/memlock-exporter/memlock-exporter/bpf"
)

// TestTaxLine pins the "TAX " lines vmtest/run.sh parses: it greps
// "hook=<kind> " and "attached=yes|no", then reads getppid_ratio and
// mlock_ratio, or everything after reason= (the first line of the error).
func TestTaxLine(t *testing.T) {
	r := taxRow{kind: bpf.ProbeKprobe, ppidOff: []float64{100, 90, 110}, ppidOn: []float64{101, 99, 102},
		lockOff: []float64{1000}, lockOn: []float64{1500}}
	r.summarize()
	got := taxLine("6.1.0-56-amd64", r)
	want := regexp.MustCompile(`^TAX kernel=6\.1\.0-56-amd64 hook=kprobe attached=yes rounds=3 .*getppid_ratio=1\.100 .*mlock_ratio=1\.500$`)
	if !want.MatchString(got) {
		t.Errorf("attached row:\n got %s\nwant %s", got, want)
	}

	r = taxRow{kind: bpf.ProbeFentry, err: errors.New("cannot hook mlock with fentry: ambiguous\nverifier log")}
	got = taxLine("6.1.0-56-amd64", r)
	if want := "TAX kernel=6.1.0-56-amd64 hook=fentry attached=no reason=cannot hook mlock with fentry: ambiguous"; got != want {
		t.Errorf("failed row:\n got %s\nwant %s", got, want)
	}
}

// TestPoolBaselines: every attached kind is put against the fastest
// "without" of the run, the same setup for all; a kind that did not attach
// is left alone.
func TestPoolBaselines(t *testing.T) {
	rows := []taxRow{
		{kind: bpf.ProbeFentry, ppidOff: []float64{100}, ppidOn: []float64{110}, lockOff: []float64{1000, 1200}, lockOn: []float64{1500}},
		{kind: bpf.ProbeKprobe, ppidOff: []float64{90}, ppidOn: []float64{99}, lockOff: []float64{1400}, lockOn: []float64{1600}},
		{kind: bpf.ProbeTracepoint, err: errors.New("no"), lockOff: []float64{1}},
	}
	poolBaselines(rows)
	for _, tc := range []struct {
		i             int
		ppidR, lockR  float64
		ppidOff, lock float64
	}{
		{0, 110.0 / 90, 1.5, 90, 1000},
		{1, 1.1, 1.6, 90, 1000},
	} {
		r := rows[tc.i]
		if r.ppidOffNs != tc.ppidOff || r.lockOffNs != tc.lock || math.Abs(r.ppidR-tc.ppidR) > 1e-9 || math.Abs(r.lockR-tc.lockR) > 1e-9 {
			t.Errorf("%s: without %v/%v ratios %v/%v; want %v/%v, %v/%v", r.kind, r.ppidOffNs, r.lockOffNs, r.ppidR, r.lockR, tc.ppidOff, tc.lock, tc.ppidR, tc.lockR)
		}
	}
	if rows[2].lockOffNs != 0 {
		t.Errorf("unattached row summarized: %+v", rows[2])
	}
}
