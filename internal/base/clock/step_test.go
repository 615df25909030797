package clock_test

import (
	"testing"
	"time"

	"github.com/zmonitor/firmware/internal/base/clock"
	"github.com/zmonitor/firmware/internal/base/clock/clocktest"
)

// A server's time within MaxStep of the wall time moves the last known
// good time at once; one far ahead is held until a different server
// agrees with it.
func TestObserveFromBoundsOneSourcesJump(t *testing.T) {
	start := build.Add(24 * time.Hour)
	fc := clocktest.New(start)
	w := clock.NewWall(fc, build, nil)

	near := start.Add(clock.MaxStep)
	if got := w.ObserveFrom("monitoring", near); got != clock.Raised {
		t.Fatalf("a time MaxStep ahead: %s, want RAISED", got)
	}
	if f := w.Floor(); !f.Equal(near) {
		t.Fatalf("floor %v, want %v", f, near)
	}

	// Nine months ahead, from one server: held, again and again.
	far := near.Add(273 * 24 * time.Hour)
	for i := 0; i < 3; i++ {
		if got := w.ObserveFrom("monitoring", far); got != clock.Held {
			t.Fatalf("a jump of 273 days from one server (try %d): %s, want HELD", i, got)
		}
	}
	if now, _ := w.Now(); now.After(near.Add(time.Minute)) {
		t.Fatalf("the held jump moved the wall time to %v", now)
	}

	// Another server far ahead but not in agreement: held too.
	if got := w.ObserveFrom("est", far.Add(clock.Agreement+time.Second)); got != clock.Held {
		t.Fatalf("a second server disagreeing by more than Agreement: %s, want HELD", got)
	}

	// The other server agrees (its time moved on with the monotonic
	// clock): raised to the earlier of the two.
	fc.Advance(time.Minute)
	if got := w.ObserveFrom("est", far.Add(time.Minute+30*time.Second)); got != clock.Raised {
		t.Fatalf("a second server agreeing: %s, want RAISED", got)
	}
	if f := w.Floor(); !f.Equal(far.Add(time.Minute)) {
		t.Fatalf("floor %v, want the earlier source's %v", f, far.Add(time.Minute))
	}
	if got := w.ObserveFrom("est", far); got != clock.Unchanged {
		t.Fatalf("an earlier time: %s, want UNCHANGED", got)
	}
}

// Observe (the device's own settings, a verified payload) is not bounded.
func TestObserveIsNotBounded(t *testing.T) {
	fc := clocktest.New(build)
	w := clock.NewWall(fc, build, nil)
	far := build.Add(400 * 24 * time.Hour)
	if !w.Observe(far) || !w.Floor().Equal(far) {
		t.Fatalf("Observe of a persisted time: floor %v, want %v", w.Floor(), far)
	}
}
