package main

import (
	"testing"
	"time"
)

// TestMedianResults: each setup is reported by its median round, with
// every round's CPU per event.
func TestMedianResults(t *testing.T) {
	mk := func(us ...float64) []e2eResult {
		var rs []e2eResult
		for i, u := range us {
			// 1000 calls: µs per event = cpu time in ms.
			rs = append(rs, e2eResult{calls: 1000, cpu: cpuTimes{user: time.Duration(u * float64(time.Millisecond))}, records: uint64(i)})
		}
		return rs
	}
	got := medianResults([][]e2eResult{mk(3, 1, 2), mk(5, 4), nil, mk(7)})
	if len(got) != 3 {
		t.Fatalf("%d results, want 3", len(got))
	}
	for i, want := range []struct {
		round uint64
		per   string
	}{{2, "3.00 1.00 2.00"}, {1, "5.00 4.00"}, {0, "7.00"}} {
		if got[i].records != want.round || formatRounds(got[i].perRound) != want.per {
			t.Errorf("setup %d: round %d with rounds %q, want round %d with %q", i, got[i].records, formatRounds(got[i].perRound), want.round, want.per)
		}
	}
}

// TestRoundsOf: the collector-down setup has rounds of its own; none has
// fewer than one.
func TestRoundsOf(t *testing.T) {
	opts := e2eOptions{rounds: 3, downRounds: 1}
	up, down := e2eSetup{label: "up"}, e2eSetup{label: "down", down: true}
	if got := opts.roundsOf(up); got != 3 {
		t.Errorf("up: %d rounds, want 3", got)
	}
	if got := opts.roundsOf(down); got != 1 {
		t.Errorf("down: %d rounds, want 1", got)
	}
	if got := (e2eOptions{}).roundsOf(down); got != 1 {
		t.Errorf("down, zero options: %d rounds, want 1", got)
	}
}

// TestLogName: a setup's label as a file name.
func TestLogName(t *testing.T) {
	for label, want := range map[string]string{
		"collector down (defaults, endpoint a closed port)": "collector-down-defaults-endpoint-a-closed-port",
		"logs + metrics (OTEL_TRACES_EXPORTER=none)":        "logs-metrics-otel-traces-exporter-none",
		"--":  "",
		"a_b": "a-b",
	} {
		if got := logName(label); got != want {
			t.Errorf("logName(%q) = %q, want %q", label, got, want)
		}
	}
}
