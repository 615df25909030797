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
	base    time.Time           // adopted wall time
	at      time.Time           // clock.Now() when adopted (monotonic)
	floor   time.Time           // last known good time (zero: none)
	floorAt time.Time           // clock.Now() when the floor was observed (monotonic)
	held    map[string]heldTime // jumps beyond MaxStep awaiting another source (ObserveFrom)
}

// NewWall returns a Wall over c. buildTime is the floor below which the
// clock is never trusted. setSystem, if not nil, is called when a time is
// adopted (on the device it sets the system clock and the RTC).
func NewWall(c Clock, buildTime time.Time, setSystem func(time.Time) error) *Wall {
	return &Wall{clock: c, buildTime: buildTime, setSystem: setSystem}
}

// Now returns the wall time and whether it is trusted. The time is never
// below the last known good time (Observe) plus the monotonic time since
// it was observed: a system clock that lags (a flat RTC battery, a board
// without an RTC) does not take the device back in time. The floor does
// not make the clock trusted: trust still comes from the build time or an
// adopted payload timestamp, so a device that was off for a month (its
// floor a month behind) still adopts a fresh payload's time.
func (w *Wall) Now() (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.clock.Now()
	var t time.Time
	var trusted bool
	if w.adopted {
		t, trusted = w.base.Add(now.Sub(w.at)).UTC(), true
	} else {
		t = now.Round(0).UTC()
		trusted = !t.Before(w.buildTime)
	}
	if f := w.floorNow(now); t.Before(f) {
		t = f
	}
	return t, trusted
}

// floorNow is the floor moved on by the monotonic time since it was
// observed (zero when there is none). w.mu is held.
func (w *Wall) floorNow(now time.Time) time.Time {
	if w.floor.IsZero() {
		return time.Time{}
	}
	return w.floor.Add(now.Sub(w.floorAt)).UTC()
}

// Observe raises the last known good time to t: a time the device learnt
// from an authenticated source (the Date of a server's answer over a
// verified TLS connection, the not-before of a certificate its CA just
// issued, a verified payload's timestamp) or read back from its own
// settings at boot. Times from servers go through ObserveFrom, which
// bounds how far one server may move it. The floor never goes backwards: an earlier t changes
// nothing. It reports whether the floor rose, so that the caller persists
// it.
func (w *Wall) Observe(t time.Time) bool {
	if t.IsZero() {
		return false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.clock.Now()
	if !t.After(w.floorNow(now)) {
		return false
	}
	w.raise(t.Round(0).UTC(), now)
	return true
}

// Floor is the last known good time as it stands now (the observed time
// plus the monotonic time since), or the zero time when nothing was
// observed.
func (w *Wall) Floor() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.floorNow(w.clock.Now())
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
