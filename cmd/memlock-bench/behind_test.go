package main

import (
	"testing"
)

func TestBehindPlan(t *testing.T) {
	tests := []struct {
		ring, wakeup, record int
	}{
		{behindRing, behindWakeup, behindRecordBytes},
		{1 << 20, 1 << 18, behindRecordBytes},
		{64 << 20, 4 << 20, 512},
	}
	for _, tt := range tests {
		below, skip, above := behindPlan(tt.ring, tt.wakeup, tt.record)
		if below <= 0 || skip <= 0 || above <= 0 {
			t.Errorf("behindPlan(%d, %d, %d) = %d, %d, %d: want all positive", tt.ring, tt.wakeup, tt.record, below, skip, above)
			continue
		}
		if got := below * tt.record; got >= tt.wakeup {
			t.Errorf("ring %d: the timed calls below fill %d bytes, past the %d threshold", tt.ring, got, tt.wakeup)
		}
		if got := (below + skip) * tt.record; got <= tt.wakeup {
			t.Errorf("ring %d: the timed calls past the threshold start at %d bytes, not past %d", tt.ring, got, tt.wakeup)
		}
		if got := (below + skip + above) * tt.record; got >= tt.ring/2 {
			t.Errorf("ring %d: the calls fill %d bytes, into the pressure valve's half %d", tt.ring, got, tt.ring/2)
		}
	}
}
