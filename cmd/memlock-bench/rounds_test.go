package main

import (
	"slices"
	"testing"
)

// asInts turns a round's setups into plain ints, so that one table holds
// both modes' orders.
func asInts[S ~int](order []S) []int {
	out := make([]int, len(order))
	for i, s := range order {
		out[i] = int(s)
	}
	return out
}

// TestRoundOrders: -vs-bpftrace and -vs-counter each measure five setups
// in ABCDE/EDCBA order, every setup once a round.
func TestRoundOrders(t *testing.T) {
	for _, m := range []struct {
		name    string
		setups  int
		order   func(round int) []int
		letters func(round int) string
		rounds  func(n int) string
	}{
		{"vs-bpftrace", int(vsSetups), func(r int) []int { return asInts(vsOrder(r)) }, vsOrderLetters, vsOrderString},
		{"vs-counter", int(vcSetups), func(r int) []int { return asInts(vcOrder(r)) }, vcOrderLetters, vcOrderString},
	} {
		for _, tc := range []struct {
			round int
			want  string
		}{{0, "ABCDE"}, {1, "EDCBA"}, {2, "ABCDE"}, {5, "EDCBA"}, {7, "EDCBA"}} {
			if got := m.letters(tc.round); got != tc.want {
				t.Errorf("%s, round %d: got %s, want %s", m.name, tc.round, got, tc.want)
			}
			// Every setup exactly once.
			got := m.order(tc.round)
			slices.Sort(got)
			if want := []int{0, 1, 2, 3, 4}; m.setups != 5 || !slices.Equal(got, want) {
				t.Errorf("%s, round %d: setups %v of %d, want each of %v once", m.name, tc.round, got, m.setups, want)
			}
		}
		if got, want := m.rounds(3), "ABCDE EDCBA ABCDE"; got != want {
			t.Errorf("%s, 3 rounds: got %q, want %q", m.name, got, want)
		}
		if got, want := m.rounds(5), "ABCDE EDCBA ABCDE EDCBA ABCDE"; got != want {
			t.Errorf("%s, 5 rounds: got %q, want %q", m.name, got, want)
		}
		// Over two rounds every setup's positions add up alike: linear
		// drift falls on all five the same.
		pos := make([]int, m.setups)
		for r := range 2 {
			for i, s := range m.order(r) {
				pos[s] += i
			}
		}
		for s := range pos {
			if pos[s] != pos[0] {
				t.Errorf("%s: positions over two rounds %v, want equal", m.name, pos)
				break
			}
		}
	}
}
