package main

import (
	"log/slog"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// bootTrace logs how long after the kernel started each boot step ended
// (CLOCK_BOOTTIME, the clock of the kernel's printk timestamps), at Info:
// boot with zmonitor.verbose=1 to see where the time to the first screen
// goes.
type bootTrace struct {
	log *slog.Logger

	mu   sync.Mutex // steps end on several goroutines (keys load concurrently)
	last time.Duration
}

func sinceKernelStart() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

// mark records that step has just ended.
func (b *bootTrace) mark(step string) { b.at(step, sinceKernelStart()) }

// at records that step ended at t (time since the kernel started).
func (b *bootTrace) at(step string, t time.Duration) {
	if b == nil || b.log == nil {
		return
	}
	b.mu.Lock()
	took := t - b.last
	b.last = max(b.last, t)
	b.mu.Unlock()
	b.log.Info("boot", "step", step, "at", t.Round(time.Millisecond), "took", took.Round(time.Millisecond))
}
