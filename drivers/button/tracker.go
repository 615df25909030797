package button

import (
	"time"

	"periph.io/x/conn/v3/gpio"
)

// tracker is the pure debounce logic: it is fed edges and quiet periods with
// their times and decides the events. It has no I/O, so it is tested with
// explicit timestamps.
type tracker struct {
	active   gpio.Level
	debounce time.Duration
	long     time.Duration

	level    gpio.Level // raw level, toggled on every edge
	down     bool       // debounced state
	since    time.Time  // when down last changed; start of the debounce window
	changed  bool       // since is valid
	longDone bool       // LongPress already sent (or not wanted) for this push
	disagree int        // consecutive quiet reads disagreeing with level
}

func newTracker(active gpio.Level, debounce, long time.Duration, initial gpio.Level) tracker {
	down := initial == active
	return tracker{
		active:   active,
		debounce: debounce,
		long:     long,
		level:    initial,
		down:     down,
		longDone: true,
	}
}

// edge records an edge reported at now.
func (t *tracker) edge(now time.Time) (Event, bool) {
	t.disagree = 0
	// A change pending from the last debounce window takes effect first, so
	// that the edge is judged against the right state.
	ev, ok := t.settle(now, false)
	t.level = !t.level
	if ok {
		return ev, true
	}
	return t.settle(now, true)
}

// quiet records that no edge came until now and that the line reads l.
func (t *tracker) quiet(now time.Time, l gpio.Level) (Event, bool) {
	resync := false
	if l != t.level {
		t.disagree++
		if t.disagree >= 2 {
			t.level, t.disagree, resync = l, 0, true
		}
	} else {
		t.disagree = 0
	}
	if ev, ok := t.settle(now, resync); ok {
		return ev, true
	}
	if t.down && !t.longDone && now.Sub(t.since) >= t.long {
		t.longDone = true
		return Event{Kind: LongPress, At: now}, true
	}
	return Event{}, false
}

// settle makes the debounced state follow the raw level once the debounce
// window of the last accepted change is over. fresh says the difference was
// just revealed (an edge or a resynchronisation at now); otherwise it dates
// from an edge ignored inside the window and takes effect at the window's
// end.
func (t *tracker) settle(now time.Time, fresh bool) (Event, bool) {
	want := t.level == t.active
	if want == t.down {
		return Event{}, false
	}
	at := now
	if t.changed {
		end := t.since.Add(t.debounce)
		if now.Before(end) {
			return Event{}, false
		}
		if !fresh {
			at = end
		}
	}
	t.down, t.since, t.changed = want, at, true
	if !want {
		return Event{}, false
	}
	t.longDone = false
	return Event{Kind: Press, At: at}, true
}

// wait returns how long to wait for the next edge: at most poll, less when
// a debounce window ends or a long press is due sooner. It is never zero
// (gpioioctl treats a zero timeout as "forever").
func (t *tracker) wait(now time.Time, poll time.Duration) time.Duration {
	d := poll
	if t.changed {
		if w := t.since.Add(t.debounce).Sub(now); w > 0 && w < d && (t.level == t.active) != t.down {
			d = w
		}
	}
	if t.down && !t.longDone {
		if w := t.since.Add(t.long).Sub(now); w < d {
			d = w
		}
	}
	if d < time.Millisecond {
		d = time.Millisecond
	}
	return d
}
