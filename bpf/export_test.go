package bpf

// Internals the black-box tests (package bpf_test) need to see.

// RingBufferFD is the descriptor of t's ring buffer, for a test's own
// poll on it.
func RingBufferFD(t *Tracer) int { return t.maps.Events.FD() }

// ForcedWakeupGap is forcedWakeupGap.
const ForcedWakeupGap = forcedWakeupGap
