package engine

import (
	"time"

	"github.com/zmonitor/firmware/internal/base/clock"
	"github.com/zmonitor/firmware/internal/fw/audit"
	"github.com/zmonitor/firmware/internal/proto/failure"
	"github.com/zmonitor/firmware/internal/proto/pairing"
	"github.com/zmonitor/firmware/internal/proto/state"
)

// newSession makes a pairing session: a fresh code, token and lifetime.
func (e *Engine) newSession() (*pairing.Session, error) {
	now := e.d.Clock.Now()
	wall, _ := e.d.Wall.Now()
	s, err := pairing.NewSession(now, wall, pairing.SessionOpts{
		DeviceID:        e.opts.DeviceID,
		DeviceSerial:    e.opts.DeviceSerial,
		IPAddress:       e.d.Address(),
		FirmwareVersion: e.opts.FirmwareVersion,
		Lifetime:        e.opts.SessionLifetime,
		Rotation:        e.opts.TokenRotation,
		Signer:          e.d.Keys.Identity(),
		Rand:            e.d.Rand,
	})
	if err != nil {
		return nil, failure.New(failure.Internal, "start pairing session", err)
	}
	e.trace("pairing token signed")
	return s, nil
}

func (e *Engine) startSession() error {
	s, err := e.newSession()
	if err != nil {
		return err
	}
	addr, err := e.srv.Start(e.opts.ListenAddr)
	if err != nil {
		s.Close()
		return failure.New(failure.Internal, "open provisioning port", err)
	}
	e.snapMu.Lock()
	e.endpointAddr = addr.String()
	e.snapMu.Unlock()
	e.useSession(s)
	e.record(audit.Event{Event: "PORT_OPENED", Reason: e.opts.ListenAddr})
	e.trace("provisioning port open")
	return nil
}

// useSession makes s the session: what the endpoint checks hellos and
// configurations against (sessGen refuses whatever was begun under the
// one before), and its timers.
func (e *Engine) useSession(s *pairing.Session) {
	now := e.d.Clock.Now()
	e.sess = s
	e.sessGen++
	e.hellos = 0
	e.pending = nil
	e.rotateT = e.d.Clock.NewTimer(s.NextRotation().Sub(now))
	e.expireT = e.d.Clock.NewTimer(s.Remaining(now))
	e.tickT = e.d.Clock.NewTimer(time.Second)
}

// renewSession is a press of the button in READY_TO_PAIR: a new session
// (new code and token, the full lifetime) replaces the one shown, whose
// code and token are refused from now on; the port stays open. A
// technician whose QR was burnt (a push that failed after the Central
// Station claimed it, issue 14 item 11) gets a fresh one at once.
func (e *Engine) renewSession() error {
	s, err := e.newSession()
	if err != nil {
		e.record(audit.Event{Event: "PAIRING_RENEW_FAILED", Code: failure.CodeOf(err).String(), Reason: err.Error()})
		return err
	}
	e.endSession()
	e.useSession(s)
	e.record(audit.Event{Event: "PAIRING_RENEWED", Actor: "button", Reason: "a new pairing code and token; the ones shown before are refused"})
	e.show()
	return nil
}

func (e *Engine) rotate() {
	if e.st != state.ReadyToPair || e.sess == nil {
		return
	}
	now := e.d.Clock.Now()
	if err := e.sess.Rotate(now); err != nil {
		e.record(audit.Event{Event: "TOKEN_ROTATION_FAILED", Code: failure.Internal.String(), Reason: err.Error()})
	}
	e.rotateT = e.d.Clock.NewTimer(e.sess.NextRotation().Sub(now))
	e.show()
}

func (e *Engine) tick() {
	if e.st != state.ReadyToPair {
		return
	}
	e.tickT = e.d.Clock.NewTimer(time.Second)
	e.show()
}

func (e *Engine) stopTimers() {
	for _, t := range []*clock.Timer{&e.rotateT, &e.expireT, &e.tickT} {
		if *t != nil {
			(*t).Stop()
			*t = nil
		}
	}
}

func (e *Engine) endSession() {
	e.stopTimers()
	e.discardPending()
	if e.sess != nil {
		e.sess.Close()
		e.sess = nil
	}
}

func (e *Engine) discardPending() {
	if e.pending != nil && e.pending.key != nil && e.pending.key != e.clientKey {
		if err := e.pending.key.Discard(); err != nil {
			e.record(audit.Event{Event: "CLIENT_KEY_DISCARD_FAILED", Reason: err.Error()})
		}
	}
	if e.clientKey != nil {
		if err := e.clientKey.Discard(); err != nil {
			e.record(audit.Event{Event: "CLIENT_KEY_DISCARD_FAILED", Reason: err.Error()})
		}
	}
	e.pending, e.clientKey = nil, nil
}
