package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/zmonitor/firmware/internal/base/clock"
	"github.com/zmonitor/firmware/internal/fw/audit"
	"github.com/zmonitor/firmware/internal/fw/conncheck"
	"github.com/zmonitor/firmware/internal/fw/keys"
	"github.com/zmonitor/firmware/internal/proto/failure"
	"github.com/zmonitor/firmware/internal/proto/state"
)

// Re-provisioning with fallback (docs/lifecycle.md): a PROVISIONED device
// opens pairing while its provisioning stays committed (e.current, the
// fallback). The new pairing's client key goes to the other key slot and
// its settings are staged beside the current ones; only the connection
// test's success commits them (one bbolt transaction) and evicts the old
// slot's key. A pairing that fails or whose session runs out returns to
// the fallback (event FALL_BACK, or SESSION_EXPIRED/SESSION_START_FAILED
// with Facts.Fallback), audited REPROVISION_FELL_BACK. A power cut at any
// point leaves one committed pair: the boot discards a stage and evicts a
// key the settings do not name.

// ErrNoReprovision is returned by Reprovision when the device cannot be
// re-provisioned now.
var ErrNoReprovision = errors.New("engine: re-provisioning not possible")

// Reprovision waits up to the reset window for a physical button press,
// then opens pairing while the committed provisioning stays in force
// (console `reprovision`).
func (e *Engine) Reprovision(ctx context.Context) error {
	if err := e.confirmByButton(ctx, "REPROVISION"); err != nil {
		return err
	}
	var err error
	if derr := e.do(func() {
		switch {
		case e.st != state.Provisioned || e.current == nil:
			err = fmt.Errorf("%w: device is %s", ErrNoReprovision, e.st)
		case e.renewal.running:
			err = fmt.Errorf("%w: a certificate renewal is running", ErrNoReprovision)
		}
		if err != nil {
			e.record(audit.Event{Event: "REPROVISION_REFUSED", From: e.st.String(), Reason: err.Error()})
			return
		}
		err = e.handle(state.Reprovision, "console+button", nil)
	}); derr != nil {
		return derr
	}
	return err
}

// startReprovision is entering READY_TO_PAIR by REPROVISION: the
// committed provisioning's renewal and check-in pause until it is back.
func (e *Engine) startReprovision() {
	if e.renewal.timer != nil {
		e.renewal.timer.Stop()
		e.renewal.timer = nil
	}
	e.stopCheckIn()
	e.fellBack = ""
	e.record(audit.Event{Event: "REPROVISION_STARTED", Actor: "console+button", Reason: fmt.Sprintf(
		"previous provisioning kept until the new one passes its connection test: server %s, key slot %s", e.current.ServerHost(), slotName(e.current.ClientKeyRef))})
}

// fallBack is entering PROVISIONED from a re-provisioning that ended
// without a new provisioning: the previous one is still committed.
func (e *Engine) fallBack(ev state.Event, cause error) {
	e.discardPending()
	if err := e.d.Settings.Discard(); err != nil {
		e.record(audit.Event{Event: "STAGE_DISCARD_FAILED", Reason: err.Error()})
	}
	e.verified = nil
	e.step = ""
	e.lastErr = nil
	e.finishProgress()
	e.endSession()
	e.closeEndpoint()
	code := failure.CodeOf(cause)
	e.fellBack = fmt.Sprintf("Re-provisioning failed (%s): previous configuration kept", code)
	e.record(audit.Event{Event: "REPROVISION_FELL_BACK", Code: code.String(), Reason: fmt.Sprintf(
		"%s: %v; back on server %s, key slot %s", ev, cause, e.current.ServerHost(), slotName(e.current.ClientKeyRef))})
	e.renewal = renewal{}
	e.scheduleRenewal()
	e.scheduleCheckIn(0) // the fallback's server: check in at once
	// Prove the fallback still connects, as after a boot.
	e.check = conncheck.Last{Verdict: conncheck.Checking, Server: e.current.ServerHost()}
	go e.recheckConnection(e.ctx, e.current)
}

// pairingSlot is the key slot a pairing commits its client key to: the
// one the committed provisioning does not use (slot A without one).
func (e *Engine) pairingSlot() (slot keys.Slot, fallback *keys.Slot) {
	if e.current == nil {
		return keys.SlotA, nil
	}
	cur, err := keys.SlotOfRef(e.current.ClientKeyRef)
	if err != nil {
		return keys.SlotA, nil
	}
	return cur.Other(), &cur
}

func slotName(ref string) string {
	s, err := keys.SlotOfRef(ref)
	if err != nil {
		return "?"
	}
	return s.String()
}

// confirmByButton waits up to the reset window for a physical button
// press, auditing what_REQUESTED and what_TIMED_OUT.
func (e *Engine) confirmByButton(ctx context.Context, what string) error {
	wait := make(chan struct{})
	var t clock.Timer
	if err := e.do(func() {
		e.resetWait = wait
		t = e.d.Clock.NewTimer(e.opts.FactoryResetWindow)
		e.record(audit.Event{Event: what + "_REQUESTED", Actor: "console"})
	}); err != nil {
		return err
	}
	select {
	case <-wait:
		t.Stop()
		return nil
	case <-t.C():
		_ = e.do(func() { e.resetWait = nil; e.record(audit.Event{Event: what + "_TIMED_OUT", Actor: "console"}) })
		return ErrNoConfirmation
	case <-ctx.Done():
		_ = e.do(func() { e.resetWait = nil })
		return ctx.Err()
	}
}
