package main

import (
	"slices"
	"strings"
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

// TestRoundOrders: -vs-bpftrace and -vs-counter each measure their setups
// in ABC.../...CBA order, every setup once a round.
func TestRoundOrders(t *testing.T) {
	for _, m := range []struct {
		name    string
		setups  int
		order   func(round int) []int
		letters func(round int) string
		rounds  func(n int) string
		fwd     string // the first round's order
	}{
		{"vs-bpftrace", int(vsSetups), func(r int) []int { return asInts(vsOrder(r)) }, vsOrderLetters, vsOrderString, "ABCDEF"},
		{"vs-counter", int(vcSetups), func(r int) []int { return asInts(vcOrder(r)) }, vcOrderLetters, vcOrderString, "ABCDE"},
	} {
		bwd := []byte(m.fwd)
		slices.Reverse(bwd)
		back := string(bwd)
		for _, tc := range []struct {
			round int
			want  string
		}{{0, m.fwd}, {1, back}, {2, m.fwd}, {5, back}, {7, back}} {
			if got := m.letters(tc.round); got != tc.want {
				t.Errorf("%s, round %d: got %s, want %s", m.name, tc.round, got, tc.want)
			}
			// Every setup exactly once.
			got := m.order(tc.round)
			slices.Sort(got)
			want := make([]int, len(m.fwd))
			for i := range want {
				want[i] = i
			}
			if m.setups != len(m.fwd) || !slices.Equal(got, want) {
				t.Errorf("%s, round %d: setups %v of %d, want each of %v once", m.name, tc.round, got, m.setups, want)
			}
		}
		if got, want := m.rounds(3), strings.Join([]string{m.fwd, back, m.fwd}, " "); got != want {
			t.Errorf("%s, 3 rounds: got %q, want %q", m.name, got, want)
		}
		if got, want := m.rounds(5), strings.Join([]string{m.fwd, back, m.fwd, back, m.fwd}, " "); got != want {
			t.Errorf("%s, 5 rounds: got %q, want %q", m.name, got, want)
		}
		// Over two rounds every setup's positions add up alike: linear
		// drift falls on all of them the same.
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
