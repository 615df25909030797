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
