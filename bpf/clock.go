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

// Refresh measures the offset between wall-clock and boot-clock time again.
// It reads the wall clock on both sides of the boot clock and takes the
// midpoint, which keeps the error below the (sub-microsecond) read cost.
func (c *BootClock) Refresh() error {
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
	wall := before.Nano() + (after.Nano()-before.Nano())/2
	c.offsetNs.Store(wall - boot.Nano())
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
