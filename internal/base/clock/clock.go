package clock

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// Clock is the source of time and timers.
type Clock interface {
	// Now returns the current time, carrying a monotonic reading.
	Now() time.Time
	// NewTimer returns a timer that fires once after d.
	NewTimer(d time.Duration) Timer
}

// Timer is a one-shot timer.
type Timer interface {
	C() <-chan time.Time
	// Stop prevents the timer from firing; it reports whether it was active.
	Stop() bool
}

// System is the real clock.
type System struct{}

// Now implements Clock.
func (System) Now() time.Time { return time.Now() }

// NewTimer implements Clock.
func (System) NewTimer(d time.Duration) Timer { return sysTimer{time.NewTimer(d)} }

type sysTimer struct{ t *time.Timer }

func (s sysTimer) C() <-chan time.Time { return s.t.C }
func (s sysTimer) Stop() bool          { return s.t.Stop() }

// Wall tracks whether wall-clock time is trustworthy.
type Wall struct {
	clock     Clock
	buildTime time.Time
	setSystem func(time.Time) error

	mu      sync.Mutex
	adopted bool
	base    time.Time // adopted wall time
	at      time.Time // clock.Now() when adopted (monotonic)
}

// NewWall returns a Wall over c. buildTime is the floor below which the
// clock is never trusted. setSystem, if not nil, is called when a time is
// adopted (on the device it sets the system clock and the RTC).
func NewWall(c Clock, buildTime time.Time, setSystem func(time.Time) error) *Wall {
	return &Wall{clock: c, buildTime: buildTime, setSystem: setSystem}
}

// Now returns the wall time and whether it is trusted.
func (w *Wall) Now() (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.clock.Now()
	if w.adopted {
		return w.base.Add(now.Sub(w.at)).UTC(), true
	}
	now = now.Round(0).UTC()
	return now, !now.Before(w.buildTime)
}

// BuildTime is the floor the wall clock is checked against.
func (w *Wall) BuildTime() time.Time { return w.buildTime }

// ErrClockTrusted is returned by Adopt when the clock is already trusted.
var ErrClockTrusted = errors.New("clock: already trusted")

// Adopt makes t the current wall time when the clock is not trusted. t must
// not be below the build time. It is the caller's duty to pass only a time
// that is authenticated and bound to the current session.
func (w *Wall) Adopt(t time.Time) error {
	if _, trusted := w.Now(); trusted {
		return ErrClockTrusted
	}
	if t.Before(w.buildTime) {
		return fmt.Errorf("clock: adopt: %s is before the build time %s", t.UTC().Format(time.RFC3339), w.buildTime.Format(time.RFC3339))
	}
	if w.setSystem != nil {
		if err := w.setSystem(t); err != nil {
			return fmt.Errorf("clock: adopt: set system time: %w", err)
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.adopted, w.base, w.at = true, t.UTC(), w.clock.Now()
	return nil
}
