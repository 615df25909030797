package engine

import (
	"github.com/zmonitor/firmware/internal/fw/audit"
	"github.com/zmonitor/firmware/internal/proto/failure"
	"github.com/zmonitor/firmware/internal/proto/state"
)

func (e *Engine) facts() state.Facts {
	locked, _ := e.lockout.Locked(e.d.Clock.Now())
	return state.Facts{LockedOut: locked, ConsoleMayProvision: e.opts.ConsoleMayProvision}
}

// handle applies event ev; cause is the failure behind an error event.
func (e *Engine) handle(ev state.Event, actor string, cause error) error {
	from := e.st
	next, err := state.Next(from, ev, e.facts())
	if err != nil {
		e.record(audit.Event{Event: "EVENT_REFUSED", From: from.String(), Actor: actor, Reason: err.Error()})
		e.log.Info("event refused", "event", ev, "state", from, "err", err)
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
	e.enter(next, cause)
	return nil
}

// enter does the side effects of entering s.
func (e *Engine) enter(s state.State, cause error) {
	switch s {
	case state.Unprovisioned:
		e.endSession()
		e.closeEndpoint()
		e.lastErr = nil
	case state.ReadyToPair:
		e.trace("state change recorded")
		if err := e.startSession(); err != nil {
			e.record(audit.Event{Event: "PAIRING_START_FAILED", Code: failure.CodeOf(err).String(), Reason: err.Error()})
			// Back to UNPROVISIONED: the device cannot pair now.
			e.endSession()
			e.closeEndpoint()
			e.st = state.Unprovisioned
			e.lastErr = err
			e.record(audit.Event{Event: "STATE_CHANGED", From: state.ReadyToPair.String(), To: state.Unprovisioned.String(), Code: failure.CodeOf(err).String(), Reason: "pairing could not start"})
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
		if e.sess != nil {
			if err := e.sess.Consume(); err != nil {
				e.record(audit.Event{Event: "SESSION_CONSUME_FAILED", Reason: err.Error()})
			}
		}
		e.lockout.Reset()
		e.step = ""
		e.clientKey = nil
		e.pending = nil
		e.lastErr = nil
		e.record(audit.Event{Event: "PROVISIONED", Reason: "server " + e.current.ServerHost() + ", label " + e.current.DeviceLabel})
		e.show() // the screen says it before the tablet does
		e.finishProgress()
		e.endSession()
		e.closeEndpoint()
	case state.ProvisioningFailed:
		e.lastErr = cause
		code := failure.CodeOf(cause)
		if code == failure.PairingCodeMismatch || code == failure.TooManyAttempts {
			e.lockout.Fail(e.d.Clock.Now())
		}
		e.discardPending()
		if err := e.d.Settings.Discard(); err != nil {
			e.record(audit.Event{Event: "STAGE_DISCARD_FAILED", Reason: err.Error()})
		}
		e.verified = nil
		e.step = ""
		e.record(audit.Event{Event: "PROVISIONING_FAILED", Code: code.String(), Reason: code.Title() + "; " + code.UserAction()})
		e.show() // the screen says it before the tablet does
		e.finishProgress()
		e.endSession()
		e.closeEndpoint()
	}
	e.show()
	if s == state.ReadyToPair {
		e.trace("pairing screen drawn")
	}
}
