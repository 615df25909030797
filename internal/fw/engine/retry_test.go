package engine_test

import (
	"testing"

	"github.com/zmonitor/firmware/internal/central/pusher"
	"github.com/zmonitor/firmware/internal/fw/fault"
	"github.com/zmonitor/firmware/internal/fw/screen"
	"github.com/zmonitor/firmware/internal/proto/failure"
	"github.com/zmonitor/firmware/internal/proto/payload"
	"github.com/zmonitor/firmware/internal/proto/state"
)

// One press on the PROVISIONING_FAILED screen gives a new QR, as the
// screen says ("Press Enable Provisioning for a new code"): both
// transitions are in the audit log, made by the button, and the new
// session's token and code are not the failed one's. Before, the press
// went back to the start screen and a second press was needed.
func TestOnePressAfterAFailureGivesANewCode(t *testing.T) {
	r := newRig(t, nil)
	q := r.pair()
	out, err := r.provision(q, func(c *pusher.Config) {
		c.Tamper = func(p *payload.Config) { p.PairingCode = otherCode(p.PairingCode) }
	})
	if err != nil || out.Code != failure.PairingCodeMismatch {
		t.Fatalf("provision: %+v %v", out, err)
	}
	r.waitState(state.ProvisioningFailed)
	before := len(r.aud.Events())
	q2 := r.retry()
	if q2.PairingToken == q.PairingToken || q2.PairingCode == q.PairingCode {
		t.Fatalf("the retry shows the failed session's QR again")
	}
	var moves []string
	for _, ev := range r.aud.Events()[before:] {
		if ev.Event == "STATE_CHANGED" {
			moves = append(moves, ev.From+">"+ev.To+" by "+ev.Actor)
		}
	}
	want := []string{"PROVISIONING_FAILED>UNPROVISIONED by button", "UNPROVISIONED>READY_TO_PAIR by button"}
	if len(moves) != 2 || moves[0] != want[0] || moves[1] != want[1] {
		t.Fatalf("audited moves %q, want %q", moves, want)
	}
	r.mustSucceed(q2)
}

// The device's warning (Deps.Warning) is on every view the engine shows,
// and a change made elsewhere (the audit log's background check) is drawn
// once WarningChanged says so, without a state change.
func TestWarningIsDrawnWhenItChanges(t *testing.T) {
	r := newRig(t, nil)
	r.warning.Store(int32(fault.AuditTampered))
	r.eng.WarningChanged()
	v := r.waitView("warning", func(v screen.View) bool { return v.Warning == fault.AuditTampered })
	if v.State != state.Unprovisioned {
		t.Fatalf("warning drawn on %s", v.State)
	}
	// It stays on the next state's view.
	r.press()
	if v := r.waitState(state.ReadyToPair); v.Warning != fault.AuditTampered {
		t.Fatalf("READY_TO_PAIR view without the warning: %+v", v.Warning)
	}
	// Cleared: the next call draws the screen without it.
	r.warning.Store(int32(fault.NoWarning))
	r.eng.WarningChanged()
	r.waitView("no warning", func(v screen.View) bool { return v.Warning == fault.NoWarning && v.State == state.ReadyToPair })
}
