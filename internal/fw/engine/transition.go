package engine

import (
	"github.com/zmonitor/firmware/internal/fw/audit"
	"github.com/zmonitor/firmware/internal/fw/conncheck"
	"github.com/zmonitor/firmware/internal/proto/failure"
	"github.com/zmonitor/firmware/internal/proto/state"
)

func (e *Engine) facts() state.Facts {
	locked, _ := e.lockout.Locked(e.d.Clock.Now())
	return state.Facts{LockedOut: locked, ConsoleMayProvision: e.opts.ConsoleMayProvision, Fallback: e.current != nil}
}

// followUp is an event that entering a state raises at once: entering
// READY_TO_PAIR fails when the session or the port cannot open, entering
// UNPROVISIONED by a factory reset fails when the settings cannot be
// erased, and the press that leaves PROVISIONING_FAILED goes on to open a
// new session (one press, one new QR). handle applies it like any other
// event; actor is who raised it ("" the device).
type followUp struct {
	ev    state.Event
	cause error
	actor string
}

// handle applies event ev, and the events entering the next state raises;
// cause is the failure behind an error event. It returns the refusal of ev
// by state.Next, if any.
func (e *Engine) handle(ev state.Event, actor string, cause error) error {
	for followed := false; ; followed = true {
		from := e.st
		next, err := state.Next(from, ev, e.facts())
		if err != nil {
			e.record(audit.Event{Event: "EVENT_REFUSED", From: from.String(), Actor: actor, Reason: err.Error()})
			e.log.Info("event refused", "event", ev, "state", from, "err", err)
			if followed {
				e.show() // the state entered before the refusal stays: draw it
			}
			return err
		}
		rec := audit.Event{Event: "STATE_CHANGED", From: from.String(), To: next.String(), Actor: actor, Reason: ev.String()}
		if cause != nil {
			rec.Code = failure.CodeOf(cause).String()
			rec.Reason = ev.String() + ": " + cause.Error()
		}
		e.record(rec)
		e.log.Info("state", "from", from, "to", next, "event", ev)
		e.st = next
		f := e.enter(next, ev, cause)
		if f == nil {
			return nil
		}
		ev, actor, cause = f.ev, "device", f.cause
		if f.actor != "" {
			actor = f.actor
		}
	}
}

// enter does the side effects of entering s by event ev. It is the only
// place that opens or closes the port, starts workers, erases the
// provisioning or draws a state's screen. When entering fails it does
// nothing visible and returns the event that says so.
func (e *Engine) enter(s state.State, ev state.Event, cause error) *followUp {
	switch s {
	case state.Unprovisioned:
		if ev == state.FactoryReset {
			if f := e.eraseProvisioning(); f != nil {
				return f
			}
		}
		e.endSession()
		e.closeEndpoint()
		e.lastErr = nil
		e.expired = ev == state.SessionExpired // the screen says the code ran out
		if ev == state.SessionStartFailed {
			e.lastErr = cause // status says why the press did not pair
		}
		if ev == state.ButtonPressed {
			// Only PROVISIONING_FAILED's retry press leads here: the same
			// press opens the new session, as the failure screen promises
			// ("Press Enable Provisioning for a new code"). A lockout
			// refuses it, and this screen says for how long.
			return &followUp{ev: state.ButtonPressed, actor: "button"}
		}
	case state.Decommissioned:
		if f := e.wipeForDecommission(cause); f != nil {
			return f
		}
		e.lastErr = nil
		e.expired = false
	case state.ReadyToPair:
		e.trace("state change recorded")
		if ev == state.Reprovision {
			e.startReprovision()
		}
		if err := e.startSession(); err != nil {
			e.record(audit.Event{Event: "PAIRING_START_FAILED", Code: failure.CodeOf(err).String(), Reason: err.Error()})
			return &followUp{ev: state.SessionStartFailed, cause: err}
		}
	case state.PairingReceived:
		e.stopTimers()
		e.step = "Verifying configuration"
		e.emit()
		e.startValidation()
	case state.ApplyingConfig:
		e.step = "Saving configuration"
		e.emit()
		e.startApply()
	case state.TestingConnection:
		e.step = "Testing server connection"
		e.emit()
		e.startConnectionTest()
	case state.Provisioned:
		if ev == state.FactoryResetFailed || ev == state.DecommissionFailed {
			// Nothing was erased: the committed provisioning stays, and
			// status says why the reset did not happen.
			e.lastErr = cause
			break
		}
		if ev != state.ConnectionSucceeded {
			// A re-provisioning ended without a new provisioning.
			e.fallBack(ev, cause)
			break
		}
		e.fellBack = ""
		if e.sess != nil {
			if err := e.sess.Consume(); err != nil {
				e.record(audit.Event{Event: "SESSION_CONSUME_FAILED", Reason: err.Error()})
			}
		}
		e.lockout.Reset()
		e.saveLockout()
		e.step = ""
		e.clientKey = nil
		e.pending = nil
		e.lastErr = nil
		e.record(audit.Event{Event: "PROVISIONED", Reason: "server " + e.current.ServerHost() + ", label " + e.current.DeviceLabel})
		e.show() // the screen says it before the tablet does
		e.finishProgress()
		e.endSession()
		e.closeEndpoint()
		e.renewal = renewal{}
		e.scheduleRenewal()
		e.scheduleCheckIn(e.opts.CheckIn)
	case state.ProvisioningFailed:
		e.lastErr = cause
		code := failure.CodeOf(cause)
		if code == failure.PairingCodeMismatch || code == failure.TooManyAttempts {
			e.lockout.Fail(e.d.Clock.Now())
			e.saveLockout()
		}
		e.discardPending()
		if err := e.d.Settings.Discard(); err != nil {
			e.record(audit.Event{Event: "STAGE_DISCARD_FAILED", Reason: err.Error()})
		}
		e.verified = nil
		e.step = ""
		e.record(audit.Event{Event: "PROVISIONING_FAILED", Code: code.String(), Reason: code.Title() + "; " + code.UserAction()})
		if e.current != nil {
			// A re-provisioning: the Central Station hears the failure,
			// then the device goes back to the committed provisioning.
			e.finishProgress()
			return &followUp{ev: state.FallBack, cause: cause}
		}
		e.show() // the screen says it before the tablet does
		e.finishProgress()
		e.endSession()
		e.closeEndpoint()
	}
	e.show()
	if s == state.ReadyToPair {
		e.trace("pairing screen drawn")
	}
	return nil
}

// eraseProvisioning is the factory reset's side effect: the settings
// (current, stage, last failure) go in one transaction, then the committed
// client key. If the settings cannot be erased nothing changed, and the
// FactoryResetFailed event takes the device back to PROVISIONED. Once they
// are erased the device is unprovisioned whatever happens to the key (a key
// left behind has no certificate, and the next commit replaces it).
func (e *Engine) eraseProvisioning() *followUp {
	if err := e.d.Settings.FactoryReset(); err != nil {
		err = failure.New(failure.Internal, "factory reset: erase settings", err)
		e.record(audit.Event{Event: "FACTORY_RESET_FAILED", Code: failure.Internal.String(), Reason: err.Error()})
		return &followUp{ev: state.FactoryResetFailed, cause: err}
	}
	if err := e.d.Keys.ForgetClientKey(); err != nil {
		e.record(audit.Event{Event: "FACTORY_RESET_KEY_FAILED", Reason: err.Error()})
	}
	e.current = nil
	e.check = conncheck.Last{}
	e.stopRenewal()
	return nil
}
