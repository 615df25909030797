package clock_test

import (
	"errors"
	"testing"
	"time"

	"github.com/zmonitor/firmware/internal/base/clock"
	"github.com/zmonitor/firmware/internal/base/clock/clocktest"
)

var build = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

func TestWallBelowBuildTimeIsUntrusted(t *testing.T) {
	fc := clocktest.New(time.Date(1970, 1, 1, 0, 0, 5, 0, time.UTC))
	w := clock.NewWall(fc, build, nil)
	if _, trusted := w.Now(); trusted {
		t.Fatal("a 1970 clock was trusted")
	}
	if err := w.Adopt(build.Add(-time.Second)); err == nil {
		t.Fatal("adopted a time before the build time")
	}
	var set time.Time
	w = clock.NewWall(fc, build, func(t time.Time) error { set = t; return nil })
	payload := build.Add(48 * time.Hour)
	if err := w.Adopt(payload); err != nil {
		t.Fatal(err)
	}
	if !set.Equal(payload) {
		t.Errorf("system time set to %v, want %v", set, payload)
	}
	fc.Advance(90 * time.Second)
	now, trusted := w.Now()
	if !trusted || !now.Equal(payload.Add(90*time.Second)) {
		t.Errorf("Now() = %v, %v; want %v, true", now, trusted, payload.Add(90*time.Second))
	}
	if err := w.Adopt(payload); !errors.Is(err, clock.ErrClockTrusted) {
		t.Errorf("second Adopt: %v, want ErrClockTrusted", err)
	}
}

func TestWallAtOrAfterBuildTimeIsTrusted(t *testing.T) {
	fc := clocktest.New(build)
	w := clock.NewWall(fc, build, nil)
	if now, trusted := w.Now(); !trusted || !now.Equal(build) {
		t.Fatalf("Now() = %v, %v", now, trusted)
	}
	if err := w.Adopt(build.Add(time.Hour)); !errors.Is(err, clock.ErrClockTrusted) {
		t.Errorf("Adopt on a trusted clock: %v", err)
	}
}

func TestAdoptSetSystemError(t *testing.T) {
	fc := clocktest.New(time.Unix(0, 0))
	w := clock.NewWall(fc, build, func(time.Time) error { return errors.New("EPERM") })
	if err := w.Adopt(build.Add(time.Hour)); err == nil {
		t.Fatal("Adopt hid the set-system error")
	}
	if _, trusted := w.Now(); trusted {
		t.Fatal("clock trusted after a failed adopt")
	}
}

func TestFakeTimers(t *testing.T) {
	fc := clocktest.New(build)
	a := fc.NewTimer(10 * time.Second)
	b := fc.NewTimer(30 * time.Second)
	fc.Advance(10 * time.Second)
	select {
	case <-a.C():
	default:
		t.Fatal("timer a did not fire at its time")
	}
	select {
	case <-b.C():
		t.Fatal("timer b fired early")
	default:
	}
	if !b.Stop() || fc.Timers() != 0 {
		t.Fatal("Stop did not remove the pending timer")
	}
	fc.Advance(time.Minute)
	select {
	case <-b.C():
		t.Fatal("stopped timer fired")
	default:
	}
}

// The last known good time: Now never returns less than the floor plus
// the time since it was observed, the floor never goes backwards, and it
// does not make a lagging clock trusted.
func TestWallFloor(t *testing.T) {
	fc := clocktest.New(build.Add(time.Hour)) // the system clock, trusted
	w := clock.NewWall(fc, build, nil)
	if !w.Floor().IsZero() {
		t.Fatal("a new Wall has a floor")
	}
	if w.Observe(time.Time{}) {
		t.Fatal("observing the zero time raised the floor")
	}
	learnt := build.Add(270 * 24 * time.Hour) // a server 9 months ahead
	if !w.Observe(learnt) {
		t.Fatal("Observe did not raise the floor")
	}
	fc.Advance(time.Minute)
	if now, trusted := w.Now(); !now.Equal(learnt.Add(time.Minute)) || !trusted {
		t.Fatalf("Now() = %v, %v; want %v, true (floor plus a minute)", now, trusted, learnt.Add(time.Minute))
	}
	if w.Observe(learnt) || w.Observe(learnt.Add(-time.Hour)) {
		t.Fatal("an earlier time moved the floor")
	}
	if !w.Floor().Equal(learnt.Add(time.Minute)) {
		t.Fatalf("Floor() = %v", w.Floor())
	}

	// A clock below the build time (no RTC) with a floor from the
	// settings: the floor's time, still untrusted, so a fresh payload's
	// timestamp can be adopted; the adopted time never goes below the floor.
	fc = clocktest.New(time.Unix(5, 0))
	w = clock.NewWall(fc, build, nil)
	w.Observe(build.Add(10 * 24 * time.Hour))
	if now, trusted := w.Now(); trusted || !now.Equal(build.Add(10*24*time.Hour)) {
		t.Fatalf("Now() = %v, %v; want the floor, untrusted", now, trusted)
	}
	if err := w.Adopt(build.Add(24 * time.Hour)); err != nil {
		t.Fatal(err)
	}
	if now, trusted := w.Now(); !trusted || !now.Equal(build.Add(10*24*time.Hour)) {
		t.Fatalf("after adopting an earlier time: Now() = %v, %v; want the floor, trusted", now, trusted)
	}
}
