package bpf

import (
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// BootClock converts the kernel's boot-clock timestamps
// (bpf_ktime_get_boot_ns, CLOCK_BOOTTIME) into wall-clock time. The offset
// between the two clocks moves when NTP or an operator steps the wall clock,
// so it is measured at start and again by Refresh, which the reader calls
// periodically.
type BootClock struct {
	offsetNs atomic.Int64 // wall-clock ns minus boot-clock ns
}

// NewBootClock returns a clock whose offset has just been measured.
func NewBootClock() (*BootClock, error) {
	c := &BootClock{}
	if err := c.Refresh(); err != nil {
		return nil, err
	}
	return c, nil
}

// offsetReads is how many times Refresh reads the clocks: it keeps the
// narrowest read, so that a preemption between two reads does not skew
// the offset by the time the thread was away.
const offsetReads = 3

// Refresh measures the offset between wall-clock and boot-clock time again.
// It reads the wall clock on both sides of the boot clock and takes the
// midpoint, which keeps the error below the (sub-microsecond) read cost.
func (c *BootClock) Refresh() error {
	var offset, width int64
	for i := range offsetReads {
		var before, boot, after unix.Timespec
		if err := unix.ClockGettime(unix.CLOCK_REALTIME, &before); err != nil {
			return err
		}
		if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &boot); err != nil {
			return err
		}
		if err := unix.ClockGettime(unix.CLOCK_REALTIME, &after); err != nil {
			return err
		}
		if w := after.Nano() - before.Nano(); i == 0 || w < width {
			width = w
			offset = before.Nano() + w/2 - boot.Nano()
		}
	}
	c.offsetNs.Store(offset)
	return nil
}

// SetOffset fixes the offset, for tests and for replaying recorded data.
func (c *BootClock) SetOffset(offset time.Duration) { c.offsetNs.Store(int64(offset)) }

// Offset returns the current wall-minus-boot offset.
func (c *BootClock) Offset() time.Duration { return time.Duration(c.offsetNs.Load()) }

// WallTime converts a boot-clock timestamp in nanoseconds to wall-clock time.
func (c *BootClock) WallTime(bootNs uint64) time.Time {
	return time.Unix(0, c.offsetNs.Load()+int64(bootNs))
}
