package pairing

import (
	"testing"
	"time"
)

func TestLockout(t *testing.T) {
	l := NewLockout(5, 10*time.Minute)
	now := t0
	for i := 0; i < 4; i++ {
		l.Fail(now.Add(time.Duration(i) * time.Minute))
	}
	now = t0.Add(4 * time.Minute)
	if locked, _ := l.Locked(now); locked {
		t.Fatal("locked after 4 failures")
	}
	if l.Left(now) != 1 {
		t.Errorf("Left = %d, want 1", l.Left(now))
	}
	l.Fail(now) // fifth, at 4 min
	locked, left := l.Locked(now)
	if !locked || left != 6*time.Minute {
		t.Fatalf("Locked = %v, %v; want true, 6m (until the first failure is 10 min old)", locked, left)
	}
	if locked, left := l.Locked(t0.Add(10*time.Minute - time.Nanosecond)); !locked || left != time.Nanosecond {
		t.Errorf("1 ns before the window passes: %v, %v", locked, left)
	}
	// Exactly when the oldest failure is window old, it no longer counts.
	now = t0.Add(10 * time.Minute)
	if locked, _ := l.Locked(now); locked {
		t.Fatal("still locked when the window passed")
	}
	// Sliding window: four failures (1..4 min) are still within it, so one
	// more locks again, until the failure at 1 min is 10 min old.
	l.Fail(now)
	if locked, left := l.Locked(now); !locked || left != time.Minute {
		t.Errorf("after a sixth failure: %v, %v; want true, 1m", locked, left)
	}
	l.Reset()
	if locked, _ := l.Locked(now); locked || l.Left(now) != 5 {
		t.Error("Reset did not clear")
	}
}

func TestLockoutWindowExpiresFailures(t *testing.T) {
	l := NewLockout(0, 0) // defaults: 5 per 10 min
	for i := 0; i < 100; i++ {
		l.Fail(t0.Add(time.Duration(i) * 3 * time.Minute)) // one per 3 min: at most 4 in any 10 min
		if locked, _ := l.Locked(t0.Add(time.Duration(i) * 3 * time.Minute)); locked {
			t.Fatalf("locked at failure %d with one failure per 3 min", i)
		}
	}
	if len(l.fails) > MaxWrongCodes {
		t.Errorf("keeps %d timestamps", len(l.fails))
	}
	l = NewLockout(0, 0)
	for i := 0; i < 50; i++ {
		l.Fail(t0)
	}
	if len(l.fails) != MaxWrongCodes {
		t.Errorf("keeps %d timestamps, want %d", len(l.fails), MaxWrongCodes)
	}
	if locked, left := l.Locked(t0); !locked || left != DefaultLifetime {
		t.Errorf("Locked = %v, %v", locked, left)
	}
}
