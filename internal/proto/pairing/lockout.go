package pairing

import "time"

// Lockout limits wrong pairing codes across sessions. A wrong code fails the
// provisioning attempt (the spec's PAIRING_RECEIVED → PROVISIONING_FAILED)
// and the technician may retry with a new session; the engine calls Fail for
// each such failure. Once max failures fall within one window (a sliding
// window on the monotonic clock), Locked reports true until the oldest of
// them is window old, and the engine refuses to start a new session
// (state machine fact LockedOut). At most max wrong codes are therefore
// possible in any window. A successful provisioning calls Reset.
//
// Lockout is not safe for concurrent use; the engine's goroutine owns it.
type Lockout struct {
	max    int
	window time.Duration
	fails  []time.Time // the most recent failures within the window, oldest first, at most max
}

// NewLockout returns a Lockout allowing max failures per window. max <= 0
// means MaxWrongCodes; window <= 0 means DefaultLifetime.
func NewLockout(max int, window time.Duration) *Lockout {
	if max <= 0 {
		max = MaxWrongCodes
	}
	if window <= 0 {
		window = DefaultLifetime
	}
	return &Lockout{max: max, window: window}
}

// Fail records a wrong pairing code at now (monotonic reading).
func (l *Lockout) Fail(now time.Time) {
	l.prune(now)
	l.fails = append(l.fails, now)
	if len(l.fails) > l.max {
		l.fails = append(l.fails[:0], l.fails[len(l.fails)-l.max:]...)
	}
}

// Locked reports whether new sessions are refused at now, and for how long
// still.
func (l *Lockout) Locked(now time.Time) (bool, time.Duration) {
	l.prune(now)
	if len(l.fails) < l.max {
		return false, 0
	}
	return true, l.fails[0].Add(l.window).Sub(now)
}

// Left returns how many more failures are tolerated at now before the
// lockout starts.
func (l *Lockout) Left(now time.Time) int {
	l.prune(now)
	return l.max - len(l.fails)
}

// Failures returns the failures that count at now, oldest first (a copy):
// what the caller keeps across a power cycle. Fail them again, oldest
// first, to restore the lockout.
func (l *Lockout) Failures(now time.Time) []time.Time {
	l.prune(now)
	return append([]time.Time(nil), l.fails...)
}

// Window is the sliding window failures count in.
func (l *Lockout) Window() time.Duration { return l.window }

// Reset forgets every failure.
func (l *Lockout) Reset() { l.fails = l.fails[:0] }

// prune drops failures that are window old or older at now.
func (l *Lockout) prune(now time.Time) {
	i := 0
	for i < len(l.fails) && now.Sub(l.fails[i]) >= l.window {
		i++
	}
	if i > 0 {
		l.fails = append(l.fails[:0], l.fails[i:]...)
	}
}
