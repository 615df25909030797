package engine

import (
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/zmonitor/firmware/internal/base/clock"
	"github.com/zmonitor/firmware/internal/fw/audit"
	"github.com/zmonitor/firmware/internal/fw/conncheck"
	"github.com/zmonitor/firmware/internal/fw/estclient"
	"github.com/zmonitor/firmware/internal/fw/renew"
	"github.com/zmonitor/firmware/internal/fw/settings"
	"github.com/zmonitor/firmware/internal/proto/est"
	"github.com/zmonitor/firmware/internal/proto/failure"
	"github.com/zmonitor/firmware/internal/proto/state"
)

// DefaultCheckIn is how often a PROVISIONED device whose provisioning
// names an EST server checks in with it (and once at boot): one EST
// request, the CA certificates, authenticated by its current client
// certificate (renew.Confirm). It is how the device hears of an
// operator's decommissioning, and the second server its clock needs to
// believe a large jump (clock.MaxStep).
const DefaultCheckIn = time.Hour

// checkIn is the periodic check-in of the committed provisioning, owned
// by the Run goroutine.
type checkIn struct {
	timer   clock.Timer
	running bool
}

// scheduleCheckIn arms the check-in timer after wait, if the device is
// PROVISIONED with an EST server and no check-in runs.
func (e *Engine) scheduleCheckIn(wait time.Duration) {
	e.stopCheckIn()
	if e.st != state.Provisioned || e.current == nil || e.current.ESTURL == "" || e.checkin.running {
		return
	}
	e.checkin.timer = e.d.Clock.NewTimer(wait)
}

func (e *Engine) stopCheckIn() {
	if e.checkin.timer != nil {
		e.checkin.timer.Stop()
		e.checkin.timer = nil
	}
}

// checkInDue is the check-in timer: one EST request on a worker.
func (e *Engine) checkInDue() {
	if e.st != state.Provisioned || e.current == nil || e.current.ESTURL == "" || e.checkin.running {
		return
	}
	cur, ctx, deps := e.current, e.ctx, e.renewDeps()
	e.checkin.running = true
	go func() {
		err := renew.Confirm(ctx, deps, *cur)
		e.post(func() { e.checkedIn(cur, err) })
	}()
}

// checkedIn takes a check-in's result on the owner.
func (e *Engine) checkedIn(cur *settings.Provisioning, err error) {
	e.checkin.running = false
	if e.current != cur {
		e.scheduleCheckIn(e.opts.CheckIn)
		return // renewed, reset or decommissioned meanwhile
	}
	if err != nil {
		if decommissioned(err) {
			e.handle(state.Decommission, "central-station", err)
			return
		}
		e.record(audit.Event{Event: "CHECK_IN_FAILED", Reason: err.Error()})
		e.log.Warn("check-in failed", "err", err)
	}
	e.scheduleCheckIn(e.opts.CheckIn)
}

// decommissioned reports whether err is the EST server's answer that an
// operator decommissioned the device. The answer came over TLS from a
// server whose certificate chains to the provisioning's CA.
func decommissioned(err error) bool {
	var ee *estclient.Error
	return errors.As(err, &ee) && ee.Type == est.ProblemDeviceDecommissioned
}

// wipeForDecommission is entering DECOMMISSIONED: the settings (current,
// stage, last failure) go in one transaction, then both client key slots;
// the identity and payload keys stay (the device stays enrolled and can
// be paired again). If the settings cannot be erased nothing changed, and
// the DecommissionFailed event takes the device back to PROVISIONED (the
// next check-in asks again).
func (e *Engine) wipeForDecommission(cause error) *followUp {
	serial := ""
	if e.current != nil {
		serial = certSerial(e.current.ClientCertDER)
	}
	if err := e.d.Settings.FactoryReset(); err != nil {
		err = failure.New(failure.Internal, "decommission: erase settings", err)
		e.record(audit.Event{Event: "DECOMMISSION_FAILED", Code: failure.Internal.String(), Reason: err.Error()})
		return &followUp{ev: state.DecommissionFailed, cause: err}
	}
	if err := e.d.Keys.ForgetClientKey(); err != nil {
		e.record(audit.Event{Event: "DECOMMISSION_KEY_FAILED", Reason: err.Error()})
	}
	e.current = nil
	e.check = conncheck.Last{}
	e.stopRenewal()
	e.stopCheckIn()
	e.record(audit.Event{Event: "DECOMMISSIONED", Actor: "central-station", Reason: fmt.Sprintf(
		"settings and client keys erased (certificate %s); identity kept: %v", serial, cause)})
	return nil
}

// certSerial is a certificate's serial in hex, "?" when it does not parse.
func certSerial(der []byte) string {
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return "?"
	}
	return c.SerialNumber.Text(16)
}
