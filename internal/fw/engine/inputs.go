package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/zmonitor/firmware/internal/fw/audit"
	"github.com/zmonitor/firmware/internal/proto/state"
)

// Press is the "Enable Provisioning" button. A press confirms a pending
// factory reset; in READY_TO_PAIR it gives a new pairing code and QR (the
// old ones are refused); otherwise it is the state machine's
// ButtonPressed.
func (e *Engine) Press() error {
	var err error
	if derr := e.do(func() {
		if e.resetWait != nil {
			close(e.resetWait)
			e.resetWait = nil
			return
		}
		e.trace("button press received")
		if e.st == state.ReadyToPair && e.sess != nil {
			err = e.renewSession()
			return
		}
		err = e.handle(state.ButtonPressed, "button", nil)
	}); derr != nil {
		return derr
	}
	return err
}

// ConsoleProvision starts provisioning from the console where the board
// allows it.
func (e *Engine) ConsoleProvision() error {
	var err error
	if derr := e.do(func() { err = e.handle(state.ConsoleProvision, "console", nil) }); derr != nil {
		return derr
	}
	return err
}

// ErrNoConfirmation is returned when a factory reset was not confirmed.
var ErrNoConfirmation = errors.New("not confirmed by a button press")

// FactoryReset waits up to the reset window for a physical button press,
// then forgets the provisioning (settings and client key). The identity and
// payload keys stay: the device remains enrolled.
func (e *Engine) FactoryReset(ctx context.Context) error {
	if err := e.confirmByButton(ctx, "FACTORY_RESET"); err != nil {
		return err
	}
	var err error
	if derr := e.do(func() {
		if e.st != state.Provisioned {
			err = fmt.Errorf("factory reset: device is %s, nothing to reset", e.st)
			e.record(audit.Event{Event: "FACTORY_RESET_REFUSED", From: e.st.String(), Reason: err.Error()})
			return
		}
		// Entering UNPROVISIONED erases the provisioning; if it cannot,
		// the device is back in PROVISIONED and lastErr says why.
		if err = e.handle(state.FactoryReset, "console+button", nil); err == nil && e.st != state.Unprovisioned {
			err = e.lastErr
		}
	}); derr != nil {
		return derr
	}
	return err
}
