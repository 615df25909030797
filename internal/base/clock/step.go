package clock

import (
	"fmt"
	"time"
)

// MaxStep is how far ahead of the device's wall time (Wall.Now) a single
// server may move the last known good time. A server's Date a little
// ahead (a device clock that lags, a board without an RTC switched on
// again the next day) is taken at once; a larger jump is held until a
// second, different server corroborates it (Agreement). One
// misconfigured server, or a `--clock-offset` drill left running against
// real devices, can then no longer move a device into the future for
// good: the last known good time never goes back.
const MaxStep = 48 * time.Hour

// Agreement is how close two sources' times must be (each moved on by the
// monotonic time since it was seen) for one to corroborate the other's
// jump beyond MaxStep.
const Agreement = 10 * time.Minute

// Observation is what ObserveFrom did with a time.
type Observation int

// The outcomes of ObserveFrom.
const (
	// Unchanged: the time was not after the last known good time.
	Unchanged Observation = 1
	// Raised: the last known good time rose to it (within MaxStep of
	// the wall time, or corroborated by another source).
	Raised Observation = 2
	// Held: more than MaxStep ahead and not (yet) corroborated: nothing
	// changed; the time waits for another source to agree.
	Held Observation = 3
)

func (o Observation) String() string {
	switch o {
	case Unchanged:
		return "UNCHANGED"
	case Raised:
		return "RAISED"
	case Held:
		return "HELD"
	}
	return fmt.Sprintf("OBSERVATION(%d)", int(o))
}

// heldTime is a time beyond MaxStep a source gave, waiting for another
// source to corroborate it.
type heldTime struct {
	t  time.Time // as given
	at time.Time // clock.Now() when given (monotonic)
}

// ObserveFrom is Observe for a time a server gave (source names it, e.g.
// "monitoring" or "est"): a time more than MaxStep ahead of the wall time
// raises the last known good time only when a different source gave a
// time within Agreement of it (the earlier of the two is taken); until
// then it is Held. Times from the device's own settings and from a
// verified payload go to Observe, unbounded.
func (w *Wall) ObserveFrom(source string, t time.Time) Observation {
	if t.IsZero() {
		return Unchanged
	}
	now, _ := w.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	mono := w.clock.Now()
	t = t.Round(0).UTC()
	if !t.After(w.floorNow(mono)) {
		return Unchanged
	}
	if t.Sub(now) <= MaxStep {
		w.raise(t, mono)
		return Raised
	}
	for src, h := range w.held {
		if src == source {
			continue
		}
		other := h.t.Add(mono.Sub(h.at))
		if d := other.Sub(t); d <= Agreement && d >= -Agreement {
			if other.Before(t) {
				t = other
			}
			w.raise(t, mono)
			return Raised
		}
	}
	if w.held == nil {
		w.held = make(map[string]heldTime)
	}
	w.held[source] = heldTime{t: t, at: mono}
	return Held
}

// raise sets the floor to t observed at mono and forgets held times. w.mu
// is held.
func (w *Wall) raise(t, mono time.Time) {
	w.floor, w.floorAt = t, mono
	w.held = nil
}
