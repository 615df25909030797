package boot

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
	// direct, if set, logs the firstFrameDrawn step past a held log (see
	// heldHandler), and release then lets the held lines out after it: the
	// first frame is announced on the console at once, and the lines
	// before it do not delay it.
	direct  *slog.Logger
	release func()

	mu   sync.Mutex // steps end on several goroutines (keys load in the background)
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
	log := b.log
	if step == firstFrameDrawn && b.direct != nil {
		log = b.direct
	}
	log.Info("boot", "step", step, "at", t.Round(time.Millisecond), "took", took.Round(time.Millisecond))
	if step == firstFrameDrawn && b.release != nil {
		b.release()
	}
}

// firstFrameDrawn is the trace step of the first frame on the panel (the
// device plan's first-frame decision draws it; the boot benchmark waits for
// it on the console).
const firstFrameDrawn = "first screen drawn"
