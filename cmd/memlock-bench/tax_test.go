package main

import (
	"errors"
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
