package engine

import (
	"fmt"
	"time"

	"github.com/zmonitor/firmware/internal/fw/audit"
	"github.com/zmonitor/firmware/internal/proto/pairing"
)

// The wrong-code lockout (pairing.Lockout) counts on the monotonic clock,
// which a power cycle restarts, so the engine keeps the wrong codes' wall
// times in the settings store (one bbolt transaction per change) and
// restores them when it is made. A wrong code's age is the wall clock's
// now minus its saved time; when the wall clock is behind a saved time
// (no RTC, not yet synchronised, set back) the age counts as zero: the
// lockout then lasts its full window from the boot, never less. Time the
// device spends off counts only as far as the wall clock says so.

// restoreLockout fails the lockout again with the saved wrong codes. A
// saved list that cannot be read locks provisioning for a full window
// (the safe side) and is recorded.
func (e *Engine) restoreLockout() {
	at, err := e.d.Settings.WrongCodes()
	monoNow := e.d.Clock.Now()
	if err != nil {
		for i := 0; i < pairing.MaxWrongCodes; i++ {
			e.lockout.Fail(monoNow)
		}
		e.record(audit.Event{Event: "LOCKOUT_UNREADABLE", Actor: "device",
			Reason: fmt.Sprintf("the saved wrong pairing codes could not be read; provisioning locked for %s: %v", e.lockout.Window(), err)})
		return
	}
	if len(at) == 0 {
		return
	}
	wallNow, _ := e.d.Wall.Now()
	for _, w := range at {
		age := max(wallNow.Sub(w), 0)
		if age >= e.lockout.Window() {
			continue
		}
		e.lockout.Fail(monoNow.Add(-age))
	}
	if locked, left := e.lockout.Locked(monoNow); locked {
		e.record(audit.Event{Event: "LOCKOUT_RESTORED", Actor: "device",
			Reason: fmt.Sprintf("too many wrong pairing codes before the restart: provisioning locked for %s more", left.Round(time.Second))})
	}
}

// saveLockout saves the wrong codes that count now, as wall times. A
// failure to save is recorded; the lockout still holds until the restart.
func (e *Engine) saveLockout() {
	monoNow := e.d.Clock.Now()
	wallNow, _ := e.d.Wall.Now()
	fails := e.lockout.Failures(monoNow)
	at := make([]time.Time, len(fails))
	for i, f := range fails {
		at[i] = wallNow.Add(-monoNow.Sub(f))
	}
	if err := e.d.Settings.SaveWrongCodes(at); err != nil {
		e.record(audit.Event{Event: "LOCKOUT_SAVE_FAILED", Actor: "device",
			Reason: "the wrong pairing codes could not be saved; a restart would forget them: " + err.Error()})
	}
}
