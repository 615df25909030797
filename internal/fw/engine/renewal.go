package engine

import (
	"context"
	"crypto"
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
	"github.com/zmonitor/firmware/internal/proto/failure"
	"github.com/zmonitor/firmware/internal/proto/state"
)

// renewal is the certificate renewal of the committed provisioning, owned
// by the Run goroutine. It does not change the state: the device stays
// PROVISIONED with the old pair until a renewal switches.
type renewal struct {
	timer    clock.Timer
	running  bool
	failures int       // consecutive failed attempts
	lastErr  error     // the last attempt's failure
	lastAt   time.Time // wall time of the last attempt's end
	next     time.Time // wall time of the next look (for status)
	// revoked: the monitoring server (the boot's connection check) or the
	// EST server (a renewal) refused the certificate as revoked, until a
	// check passes or a renewal succeeds. The screen says so.
	revoked bool
}

// RenewalStatus is what status shows of the renewal.
type RenewalStatus struct {
	Enabled  bool      // the provisioning names an EST server
	Due      time.Time // when the certificate is to be renewed
	Expires  time.Time // its not-after
	Next     time.Time // the next look or attempt (wall time)
	Running  bool
	Failures int
	LastErr  string
	Warn     bool // the screen warns
}

// ErrNoRenewal is returned by RenewNow when the device cannot renew.
var ErrNoRenewal = errors.New("engine: renewal not possible")

// RenewNow starts a renewal at once (console `renew`).
func (e *Engine) RenewNow(actor string) error {
	var err error
	if derr := e.do(func() {
		switch {
		case e.st != state.Provisioned || e.current == nil:
			err = fmt.Errorf("%w: device is %s", ErrNoRenewal, e.st)
		case e.current.ESTURL == "":
			err = fmt.Errorf("%w: the provisioning names no EST server", ErrNoRenewal)
		case e.renewal.running:
			err = fmt.Errorf("%w: a renewal is running", ErrNoRenewal)
		default:
			e.startRenewal(actor)
		}
	}); derr != nil {
		return derr
	}
	return err
}

// scheduleRenewal arms the renewal timer for the committed provisioning:
// until the certificate is due (at most the policy's Check), or the retry
// wait after a failure. Called on the owner when the device becomes
// PROVISIONED, after each attempt and after the clock learnt a new time.
func (e *Engine) scheduleRenewal() {
	if e.renewal.timer != nil {
		e.renewal.timer.Stop()
		e.renewal.timer = nil
	}
	if e.st != state.Provisioned || e.current == nil || e.current.ESTURL == "" || e.renewal.running {
		return
	}
	cert, err := x509.ParseCertificate(e.current.ClientCertDER)
	if err != nil {
		return
	}
	wall := e.wallNow()
	wait := e.opts.Renewal.Wait(cert, wall)
	if e.renewal.failures > 0 {
		wait = e.opts.Renewal.Retry(e.renewal.failures, nil)
	}
	e.renewal.next = wall.Add(wait)
	e.renewal.timer = e.d.Clock.NewTimer(wait)
}

// renewalDue is the renewal timer: renew when due (or retrying), else look
// again later.
func (e *Engine) renewalDue() {
	if e.st != state.Provisioned || e.current == nil || e.renewal.running {
		return
	}
	cert, err := x509.ParseCertificate(e.current.ClientCertDER)
	if err != nil {
		return
	}
	if e.renewal.failures == 0 && e.wallNow().Before(e.opts.Renewal.Due(cert)) {
		e.scheduleRenewal()
		return
	}
	e.startRenewal("device")
}

// startRenewal runs one renewal on a worker.
func (e *Engine) startRenewal(actor string) {
	if e.renewal.timer != nil {
		e.renewal.timer.Stop()
		e.renewal.timer = nil
	}
	cur, ctx := e.current, e.ctx
	e.renewal.running = true
	e.record(audit.Event{Event: "RENEWAL_STARTED", Actor: actor, Reason: fmt.Sprintf("EST %s, attempt %d", hostOf(cur.ESTURL), e.renewal.failures+1)})
	deps := e.renewDeps()
	go func() {
		res, err := renew.Renew(ctx, deps, *cur)
		e.post(func() { e.renewed(cur, res, err) })
	}()
}

func (e *Engine) renewDeps() renew.Deps {
	return renew.Deps{
		Keys: e.d.Keys, Settings: e.d.Settings,
		ConnTest: e.monitoringTest(renew.CheckConnection(e.connConfig(conncheck.Config{}))),
		Now:      e.wallNow, Observe: func(t time.Time) { e.observeFrom(sourceEST, t) }, Dial: e.d.Dial, Rand: e.d.Rand,
		Record: e.record, Timeout: e.opts.ESTTimeout,
	}
}

// monitoringTest has the clock learn a renewal's connection test's Date as
// the monitoring server's (the rest of a renewal's times are the EST
// server's).
func (e *Engine) monitoringTest(test renew.ConnTest) renew.ConnTest {
	return func(ctx context.Context, serverURL string, caDER, certDER []byte, key crypto.Signer) (time.Time, error) {
		date, err := test(ctx, serverURL, caDER, certDER, key)
		e.observeFrom(sourceMonitoring, date)
		return time.Time{}, err
	}
}

// renewed takes a renewal's result on the owner.
func (e *Engine) renewed(cur *settings.Provisioning, res renew.Result, err error) {
	e.renewal.running = false
	e.renewal.lastAt = e.wallNow()
	if err != nil {
		e.renewal.failures++
		e.renewal.lastErr = err
		var ee *estclient.Error
		if errors.As(err, &ee) && ee.Type == conncheck.ProblemRevoked {
			e.renewal.revoked = true
		}
		e.record(audit.Event{Event: "RENEWAL_FAILED", Code: failure.CodeOf(err).String(), Reason: fmt.Sprintf("attempt %d: %v", e.renewal.failures, err)})
		e.log.Warn("certificate renewal failed", "attempt", e.renewal.failures, "err", err)
		if decommissioned(err) && e.current == cur && e.st == state.Provisioned {
			e.handle(state.Decommission, "central-station", err)
			return
		}
		e.scheduleRenewal()
		e.show()
		return
	}
	e.renewal.failures, e.renewal.lastErr, e.renewal.revoked = 0, nil, false
	e.record(audit.Event{Event: "RENEWAL_SUCCEEDED", Reason: fmt.Sprintf("serial %s replaces %s; key slot %s, slot %s evicted; valid to %s",
		res.New.SerialNumber.Text(16), res.Old.SerialNumber.Text(16), res.To, res.From, res.New.NotAfter.UTC().Format(time.RFC3339))})
	if res.OldKeyLeft != nil {
		e.record(audit.Event{Event: "RENEWAL_OLD_KEY_LEFT", Reason: fmt.Sprintf("slot %s: %v (the next boot evicts it)", res.From, res.OldKeyLeft)})
	}
	if e.current == cur {
		// A factory reset or a new pairing meanwhile would have changed
		// e.current, and the settings' Renew would have refused.
		p := res.Committed
		e.current = &p
		e.check = e.connCheck(p, nil) // the renewal's connection test passed
	}
	e.scheduleRenewal()
	e.show()
	if e.current != nil {
		p, deps, ctx := *e.current, e.renewDeps(), e.ctx
		go func() {
			err := renew.Confirm(ctx, deps, p)
			e.post(func() {
				ev := audit.Event{Event: "RENEWAL_CONFIRMED", Reason: "EST server told the new certificate is in use"}
				if err != nil {
					ev = audit.Event{Event: "RENEWAL_CONFIRM_FAILED", Reason: err.Error()}
				}
				e.record(ev)
			})
		}()
	}
}

// observe gives the clock a time learnt from a source it trusts without a
// bound (a verified payload's timestamp), persists it when it raised the
// last known good time, and has the renewal look at the clock again. Safe
// from any goroutine.
func (e *Engine) observe(t time.Time) {
	if t.IsZero() || !e.d.Wall.Observe(t) {
		return
	}
	e.clockRaised()
}

// Sources of the times servers give (clock.Wall.ObserveFrom): two must
// agree on a jump beyond clock.MaxStep.
const (
	sourceMonitoring = "monitoring"
	sourceEST        = "est"
)

// observeFrom gives the clock a time a server gave over a verified TLS
// connection. A jump beyond clock.MaxStep that no other server
// corroborated yet is held and audited. Safe from any goroutine.
func (e *Engine) observeFrom(source string, t time.Time) {
	switch e.d.Wall.ObserveFrom(source, t) {
	case clock.Raised:
		e.clockRaised()
	case clock.Held:
		now, _ := e.d.Wall.Now()
		e.record(audit.Event{Event: "CLOCK_JUMP_HELD", Reason: fmt.Sprintf("%s server says %s, %s ahead of %s (more than %s): waiting for another server to agree",
			source, t.UTC().Format(time.RFC3339), t.Sub(now).Round(time.Second), now.Format(time.RFC3339), clock.MaxStep)})
	}
}

// clockRaised persists the raised last known good time and has the
// renewal look at the clock again.
func (e *Engine) clockRaised() {
	if err := e.d.Settings.SaveLastKnownTime(e.d.Wall.Floor()); err != nil {
		e.log.Warn("save last known time", "err", err)
	}
	e.post(func() {
		if !e.renewal.running && e.renewal.failures == 0 {
			e.scheduleRenewal()
		}
	})
}

// wallNow is the device's wall time (never below its last known good time).
func (e *Engine) wallNow() time.Time {
	t, _ := e.d.Wall.Now()
	return t
}

// renewalStatus is the renewal as status shows it.
func (e *Engine) renewalStatus() RenewalStatus {
	var s RenewalStatus
	if e.current == nil || e.st != state.Provisioned {
		return s
	}
	s.Enabled = e.current.ESTURL != ""
	cert, err := x509.ParseCertificate(e.current.ClientCertDER)
	if err != nil {
		return s
	}
	s.Due, s.Expires = e.opts.Renewal.Due(cert), cert.NotAfter
	s.Next, s.Running, s.Failures = e.renewal.next, e.renewal.running, e.renewal.failures
	if e.renewal.lastErr != nil {
		s.LastErr = audit.Sanitize(e.renewal.lastErr.Error())
	}
	s.Warn = s.Enabled && e.opts.Renewal.Warn(cert, e.wallNow(), e.renewal.failures)
	return s
}

// RevokedNotice is the PROVISIONED screen's notice when a server refused
// the device's certificate as revoked.
var RevokedNotice = "Certificate revoked — contact biomedical engineering (" + failure.CertificateRevoked.String() + ")"

// renewalNotice is the PROVISIONED screen's warning, "" for none.
func (e *Engine) renewalNotice() string {
	if e.renewal.revoked {
		return RevokedNotice
	}
	s := e.renewalStatus()
	if !s.Warn {
		return ""
	}
	if !e.wallNow().Before(s.Expires) {
		return "Certificate expired: renewal failed. Contact biomedical engineering."
	}
	return fmt.Sprintf("Certificate expires %s: renewal failing. Contact biomedical engineering.", s.Expires.UTC().Format("2006-01-02"))
}

func hostOf(u string) string {
	p := settings.Provisioning{ServerURL: u}
	return p.ServerHost()
}

// stopRenewal forgets the renewal of a provisioning that is gone (a
// running attempt's result is then ignored: the settings refuse it).
func (e *Engine) stopRenewal() {
	if e.renewal.timer != nil {
		e.renewal.timer.Stop()
	}
	e.renewal = renewal{running: e.renewal.running}
}
