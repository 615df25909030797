package engine

import (
	"time"

	"github.com/zmonitor/firmware/internal/fw/conncheck"
	"github.com/zmonitor/firmware/internal/fw/screen"
	"github.com/zmonitor/firmware/internal/fw/settings"
	"github.com/zmonitor/firmware/internal/proto/failure"
	"github.com/zmonitor/firmware/internal/proto/state"
)

// Status is the engine's externally visible state.
type Status struct {
	State     state.State
	Remaining time.Duration // pairing session time left (READY_TO_PAIR)
	Step      string        // progress of a push (PAIRING_RECEIVED .. TESTING_CONNECTION)
	LastError failure.Code  // reason of the last PROVISIONING_FAILED
	LastCause string        // its non-secret detail
	Listening bool          // provisioning port open
	Locked    time.Duration // wrong-code lockout left
	// ConnCheck is the last connection test of the committed
	// configuration: the check after boot, or the test that committed it.
	ConnCheck conncheck.Last
	// Renewal is the client certificate's renewal (PROVISIONED).
	Renewal RenewalStatus
}

// Status reports the current state (safe from any goroutine).
func (e *Engine) Status() Status {
	e.snapMu.Lock()
	defer e.snapMu.Unlock()
	return e.snap
}

// EndpointAddr is the address the provisioning port was last opened on
// (useful when ListenAddr asks for port 0).
func (e *Engine) EndpointAddr() string {
	e.snapMu.Lock()
	defer e.snapMu.Unlock()
	return e.endpointAddr
}

// QRText returns the QR content shown now (nil outside READY_TO_PAIR).
func (e *Engine) QRText() []byte {
	var b []byte
	_ = e.do(func() {
		if e.st == state.ReadyToPair && e.sess != nil {
			b = e.sess.QR().Marshal()
		}
	})
	return b
}

// Current returns the committed provisioning, if any.
func (e *Engine) Current() (settings.Provisioning, bool) {
	var p settings.Provisioning
	var ok bool
	_ = e.do(func() {
		if e.current != nil {
			p, ok = *e.current, true
		}
	})
	return p, ok
}

func (e *Engine) publish() {
	s := Status{State: e.st, Step: e.step, LastError: failure.CodeOf(e.lastErr), Listening: e.srv.Listening(), ConnCheck: e.check, Renewal: e.renewalStatus()}
	if e.lastErr != nil {
		s.LastCause = e.lastErr.Error()
	}
	now := e.d.Clock.Now()
	if e.sess != nil && e.st == state.ReadyToPair {
		s.Remaining = e.sess.Remaining(now)
	}
	if locked, left := e.lockout.Locked(now); locked {
		s.Locked = left
	}
	e.snapMu.Lock()
	e.snap = s
	e.snapMu.Unlock()
}

func (e *Engine) view() screen.View {
	now := e.d.Clock.Now()
	v := stateView(e.opts, e.st, e.current, e.d.Address())
	v.Progress = e.step
	if locked, left := e.lockout.Locked(now); locked {
		v.Locked = left
	}
	v.SessionExpired = e.st == state.Unprovisioned && e.expired
	v.Warning = e.warning
	switch e.st {
	case state.ReadyToPair:
		if e.sess != nil {
			q := e.sess.QR()
			v.QRText = q.Marshal()
			v.PairingCode = q.PairingCode
			v.IPAddress = q.IPAddress
			v.Remaining = e.sess.Remaining(now)
		}
	case state.Provisioned:
		v.Notice = e.renewalNotice()
		if v.Notice == "" {
			v.Notice = e.fellBack
		}
	case state.ProvisioningFailed:
		v.Failure = failure.CodeOf(e.lastErr)
		if v.Failure == failure.None {
			v.Failure = failure.Internal
		}
	}
	return v
}

// stateView is what the screen of state st shows of the device: its
// identity, its address and, once provisioned, the committed label and
// server. The engine's views and the boot plan's (StartView) are made here.
func stateView(o Options, st state.State, committed *settings.Provisioning, address string) screen.View {
	v := screen.View{
		State:           st,
		DeviceID:        o.DeviceID,
		DeviceLabel:     o.DeviceLabel,
		DeviceSerial:    o.DeviceSerial,
		FirmwareVersion: o.FirmwareVersion,
		IPAddress:       address,
	}
	if st == state.Provisioned && committed != nil {
		v.ServerHost = committed.ServerHost()
		if committed.DeviceLabel != "" {
			v.DeviceLabel = committed.DeviceLabel
		}
	}
	return v
}

func (e *Engine) show() {
	e.publish()
	if err := e.d.Display.Show(e.view()); err != nil {
		e.log.Error("display", "err", err)
	}
}
