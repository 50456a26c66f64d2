package main

import (
	"maps"
	"slices"
	"strings"

	"github.com/cilium/ebpf"
)

// What -vs-bpftrace and -vs-counter share: the order of a round's setups,
// the watch for other people's tracers and which rounds count.

// abbaOrder returns setups 0 to n-1 of round i (from 0) in the order
// measured: in order in even rounds, reversed in odd ones, so that a
// drift of the machine's speed falls on every setup alike over two rounds.
func abbaOrder[S ~int](n, round int) []S {
	order := make([]S, n)
	for i := range order {
		order[i] = S(i)
	}
	if round%2 == 1 {
		slices.Reverse(order)
	}
	return order
}

// orderLetters renders an order with a letter per setup, "DCBA".
func orderLetters[S ~int](order []S) string {
	var b strings.Builder
	for _, s := range order {
		b.WriteRune(rune('A' + int(s)))
	}
	return b.String()
}

// orderString renders the orders of n rounds of setups 0 to
// setups-1, "ABCD DCBA ABCD".
func orderString(setups, n int) string {
	rounds := make([]string, n)
	for i := range n {
		rounds[i] = orderLetters(abbaOrder[int](setups, i))
	}
	return strings.Join(rounds, " ")
}

// markedRound is a round that says whether it is valid (invalid is "" if
// so) and which of other people's tracers were loaded during it.
type markedRound interface {
	marks() (invalid string, others []string)
}

// countedRounds says which rounds the medians take: the valid ones during
// which nobody else had tracers loaded, or, if there are none such, every
// valid one (tainted true).
func countedRounds[R markedRound](rounds []R) (counted []bool, tainted bool) {
	counted = make([]bool, len(rounds))
	clean := false
	for i, r := range rounds {
		invalid, others := r.marks()
		counted[i] = invalid == "" && len(others) == 0
		clean = clean || counted[i]
	}
	if clean {
		return counted, false
	}
	for i, r := range rounds {
		invalid, _ := r.marks()
		counted[i] = invalid == ""
	}
	return counted, slices.Contains(counted, true)
}

// tracerWatch tells the BPF programs a run loaded itself from anybody
// else's tracing programs, which tax every setup alike and spoil a round.
type tracerWatch struct {
	ours   map[ebpf.ProgramID]bool
	others map[string]bool // by name, over the whole run
}

func newTracerWatch() tracerWatch {
	return tracerWatch{ours: map[ebpf.ProgramID]bool{}, others: map[string]bool{}}
}

// note adds the others' tracing programs loaded now to the run's list and
// to a round's (sorted, each once).
func (w *tracerWatch) note(round *[]string) {
	progs, _ := tracingPrograms()
	for id, name := range progs {
		if w.ours[id] {
			continue
		}
		w.others[name] = true
		if !slices.Contains(*round, name) {
			*round = append(*round, name)
			slices.Sort(*round)
		}
	}
}

// otherNames lists the others' programs seen during the run, sorted.
func (w *tracerWatch) otherNames() []string { return slices.Sorted(maps.Keys(w.others)) }
