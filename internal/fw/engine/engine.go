package engine

import (
	"github.com/zmonitor/firmware/internal/proto/devicewire"

	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/zmonitor/firmware/internal/base/clock"
	"github.com/zmonitor/firmware/internal/fw/audit"
	"github.com/zmonitor/firmware/internal/fw/conncheck"
	"github.com/zmonitor/firmware/internal/fw/endpoint"
	"github.com/zmonitor/firmware/internal/fw/keys"
	"github.com/zmonitor/firmware/internal/fw/screen"
	"github.com/zmonitor/firmware/internal/fw/settings"
	"github.com/zmonitor/firmware/internal/proto/failure"
	"github.com/zmonitor/firmware/internal/proto/pairing"
	"github.com/zmonitor/firmware/internal/proto/payload"
	"github.com/zmonitor/firmware/internal/proto/state"
)

// Display shows a screen for the current state.
type Display interface {
	Show(v screen.View) error
}

// Settings is the part of the settings store the engine uses.
type Settings interface {
	Stage(p settings.Provisioning) error
	Commit() error
	Discard() error
	Current() (settings.Provisioning, bool, error)
	FactoryReset() error
}

// ClientKeyRef is what the settings store records about the client key: a
// reference, never key material. The key itself is the key store's
// committed client key.
const ClientKeyRef = "keystore:committed-client-key"

// Options are the device's identity and the workflow's tunables.
type Options struct {
	DeviceID, DeviceSerial, DeviceLabel, FirmwareVersion string

	// SessionLifetime is how long a pairing session lasts (default 10m).
	SessionLifetime time.Duration
	// TokenRotation is how often the QR's token changes (default 30s).
	TokenRotation time.Duration
	// ListenAddr is the provisioning endpoint's address (default ":8444").
	ListenAddr string
	// ConsoleMayProvision lets the console start provisioning.
	ConsoleMayProvision bool
	// MaxHellos bounds hello exchanges per pairing session (default 10).
	MaxHellos int
	// HealthPath, ConnAttempts, ConnTimeout, ConnBackoff tune the
	// connection test (conncheck defaults when zero).
	HealthPath   string
	ConnAttempts int
	ConnTimeout  time.Duration
	ConnBackoff  time.Duration
	// FactoryResetWindow is how long a console factory reset waits for the
	// confirming button press (default 10s).
	FactoryResetWindow time.Duration
}

// Deps are the engine's collaborators. All are required unless noted.
type Deps struct {
	Clock    clock.Clock
	Wall     *clock.Wall
	Rand     io.Reader // default crypto/rand
	Keys     keys.Store
	Settings Settings
	Audit    audit.Recorder
	Display  Display
	// Anchors are the provisioning trust anchors (payload signer chain and
	// the endpoint's client certificates).
	Anchors *x509.CertPool
	// Address returns the device's current IP address for the QR.
	Address func() string
	// Dial, if set, is used by the connection test (tests, tunnels).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// ConnSleep, if set, replaces the connection test's backoff sleep.
	ConnSleep func(ctx context.Context, d time.Duration) error
	// Log receives operational messages (default: discarded).
	Log *slog.Logger
	// Trace, if set, is told when start-up work after the first frame is
	// done and when each step from a button press to the pairing screen
	// ends (timing on the device's own clock; zmonitor.verbose=1).
	Trace func(step string)
}

// Engine is the provisioning workflow.
type Engine struct {
	opts Options
	d    Deps
	log  *slog.Logger
	srv  *endpoint.Server

	calls   chan func()
	stopped chan struct{}
	ready   chan struct{}

	// Owned by the Run goroutine.
	ctx       context.Context
	envelope  []byte
	st        state.State
	sess      *pairing.Session
	sessGen   int
	lockout   *pairing.Lockout
	hellos    int
	pending   *pendingHello
	progress  chan devicewire.Progress
	pushStart time.Time
	step      string
	lastErr   error
	verified  *payload.Verified
	clientKey keys.ClientKey
	rotateT   clock.Timer
	expireT   clock.Timer
	tickT     clock.Timer
	resetWait chan struct{}
	current   *settings.Provisioning

	// snapshot is read by Status without a round trip to the owner.
	snapMu       sync.Mutex
	snap         Status
	endpointAddr string
}

// pendingHello is the exchange a config push must belong to.
type pendingHello struct {
	gen   int
	nonce []byte
	key   keys.ClientKey
	peer  string
}

// Status is the engine's externally visible state.
type Status struct {
	State     state.State
	Remaining time.Duration // pairing session time left (READY_TO_PAIR)
	Step      string        // progress of a push
	LastError failure.Code  // reason of the last PROVISIONING_FAILED
	LastCause string        // its non-secret detail
	Listening bool          // provisioning port open
	Locked    time.Duration // wrong-code lockout left
}

// New checks the dependencies and prepares the endpoint. Run starts it.
func New(o Options, d Deps) (*Engine, error) {
	if d.Clock == nil || d.Wall == nil || d.Keys == nil || d.Settings == nil || d.Audit == nil || d.Display == nil || d.Anchors == nil {
		return nil, errors.New("engine: clock, wall, keys, settings, audit, display and anchors are required")
	}
	if o.DeviceID == "" {
		return nil, errors.New("engine: device ID is required")
	}
	if d.Rand == nil {
		d.Rand = rand.Reader
	}
	if d.Address == nil {
		d.Address = func() string { return "0.0.0.0" }
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if o.SessionLifetime == 0 {
		o.SessionLifetime = 10 * time.Minute
	}
	if o.TokenRotation == 0 {
		o.TokenRotation = 30 * time.Second
	}
	if o.ListenAddr == "" {
		o.ListenAddr = ":8444"
	}
	if o.MaxHellos == 0 {
		o.MaxHellos = 10
	}
	if o.FactoryResetWindow == 0 {
		o.FactoryResetWindow = 10 * time.Second
	}
	e := &Engine{
		opts:    o,
		d:       d,
		log:     d.Log,
		calls:   make(chan func(), 16),
		stopped: make(chan struct{}),
		ready:   make(chan struct{}),
		lockout: pairing.NewLockout(pairing.MaxWrongCodes, o.SessionLifetime),
	}
	srv, err := endpoint.NewServer(endpointDevice{e}, endpoint.Opts{
		Identity:  d.Keys.Identity(),
		DeviceID:  o.DeviceID,
		Anchors:   d.Anchors,
		Now:       func() time.Time { t, _ := d.Wall.Now(); return t },
		OnRefused: e.onRefused,
	})
	if err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	e.srv = srv
	return e, nil
}

// Ready is closed once Run has decided the boot state.
func (e *Engine) Ready() <-chan struct{} { return e.ready }

// ErrStopped is returned by calls made after Run returned.
var ErrStopped = errors.New("engine: stopped")

// do runs f on the owner goroutine and waits for it.
func (e *Engine) do(f func()) error {
	done := make(chan struct{})
	select {
	case e.calls <- func() { f(); close(done) }:
	case <-e.stopped:
		return ErrStopped
	}
	select {
	case <-done:
		return nil
	case <-e.stopped:
		return ErrStopped
	}
}

// post queues f for the owner goroutine without waiting.
func (e *Engine) post(f func()) {
	select {
	case e.calls <- f:
	case <-e.stopped:
	}
}

func timerC(t clock.Timer) <-chan time.Time {
	if t == nil {
		return nil
	}
	return t.C()
}

// Run owns the state until ctx ends. It returns ctx's error.
func (e *Engine) Run(ctx context.Context) error {
	defer close(e.stopped)
	e.ctx = ctx
	e.boot(ctx)
	e.publish()
	close(e.ready)
	// After Ready (the first frame is on the panel): a press meanwhile
	// waits in the queue for this ~0.1 s under QEMU, not for a cold frame.
	e.warmPairingScreen()
	for {
		select {
		case <-ctx.Done():
			e.shutdown()
			return ctx.Err()
		case f := <-e.calls:
			f()
		case <-timerC(e.rotateT):
			e.rotateT = nil
			e.rotate()
		case <-timerC(e.expireT):
			e.expireT = nil
			e.handle(state.SessionExpired, "timer", failure.Errorf(failure.SessionExpired, "pairing session", "no configuration within %s", e.opts.SessionLifetime))
		case <-timerC(e.tickT):
			e.tickT = nil
			e.tick()
		}
		e.publish()
	}
}

// boot decides the starting state from the committed settings.
func (e *Engine) boot(ctx context.Context) {
	e.st = state.Unprovisioned
	cur, ok, err := e.d.Settings.Current()
	switch {
	case err != nil:
		e.record(audit.Event{Event: "SETTINGS_UNREADABLE", Code: failure.Internal.String(), Reason: err.Error()})
	case ok:
		if err := e.checkCommittedKey(cur); err != nil {
			e.record(audit.Event{Event: "CLIENT_KEY_MISMATCH", Code: failure.CertificateInvalid.String(), Reason: err.Error()})
			break
		}
		e.current = &cur
		e.st = state.Provisioned
	}
	// The screen first: the technician is looking at it; the BOOT record
	// (an fsync) follows a few milliseconds later. (For an unprovisioned
	// device, device.Run has usually shown this very view already, and
	// Show changes nothing.)
	e.show()
	e.trace("engine screen shown")
	e.record(audit.Event{Event: "BOOT", To: e.st.String(), Reason: "firmware " + e.opts.FirmwareVersion})
	if e.current != nil {
		go e.recheckConnection(ctx, *e.current)
	}
	// Sign the endpoint's certificate now, off the boot path, so the first
	// press does not wait for the TPM.
	go func() {
		if err := e.srv.Prepare(); err != nil {
			e.log.Error("provisioning endpoint certificate", "err", err)
		}
	}()
}

// warmer is a Display that can render a view off-screen ahead of time.
type warmer interface{ Warm(screen.View) error }

// warmPairingScreen renders a pairing screen like the real one off-screen,
// so that the first press draws its QR with the glyphs already made.
func (e *Engine) warmPairingScreen() {
	w, ok := e.d.Display.(warmer)
	if !ok || e.st != state.Unprovisioned {
		return
	}
	v := screen.SampleView(state.ReadyToPair)
	v.DeviceID, v.DeviceSerial, v.FirmwareVersion = e.opts.DeviceID, e.opts.DeviceSerial, e.opts.FirmwareVersion
	if err := w.Warm(v); err != nil {
		e.log.Warn("pairing screen warm-up", "err", err)
	}
	e.trace("pairing screen warmed")
}

func (e *Engine) trace(step string) {
	if e.d.Trace != nil {
		e.d.Trace(step)
	}
}

// checkCommittedKey makes sure the committed client key belongs to the
// committed certificate (a power cut between the two commits would break
// that; the device then starts unprovisioned rather than half-provisioned).
func (e *Engine) checkCommittedKey(p settings.Provisioning) error {
	k, err := e.d.Keys.CommittedClientKey()
	if err != nil {
		return fmt.Errorf("committed client key: %w", err)
	}
	cert, err := x509.ParseCertificate(p.ClientCertDER)
	if err != nil {
		return fmt.Errorf("committed client certificate: %w", err)
	}
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	kp, ok2 := k.Public().(*ecdsa.PublicKey)
	if !ok || !ok2 || !pub.Equal(kp) {
		return errors.New("committed client key does not match the committed client certificate")
	}
	return nil
}

// recheckConnection runs the connection test of a provisioned device after
// boot; the result is audited and shown in status, the state stays.
func (e *Engine) recheckConnection(ctx context.Context, p settings.Provisioning) {
	err := e.connect(ctx, p.ServerURL, p.CACertDER, p.ClientCertDER, nil)
	ev := audit.Event{Event: "CONNECTION_CHECK_PASSED", Reason: p.ServerHost()}
	if err != nil {
		ev = audit.Event{Event: "CONNECTION_CHECK_FAILED", Code: failure.CodeOf(err).String(), Reason: err.Error()}
	}
	e.post(func() { e.record(ev); e.step = ev.Event })
}

func (e *Engine) shutdown() {
	e.stopTimers()
	e.closeEndpoint()
	if e.st.Busy() || e.st == state.ReadyToPair {
		e.discardPending()
		_ = e.d.Settings.Discard()
	}
	e.finishProgress()
	e.record(audit.Event{Event: "SHUTDOWN", From: e.st.String()})
}

func (e *Engine) record(ev audit.Event) {
	ev.Reason = audit.Sanitize(ev.Reason)
	ev.Actor = audit.Sanitize(ev.Actor)
	if err := e.d.Audit.Record(ev); err != nil {
		e.log.Error("audit record failed", "event", ev.Event, "err", err)
	}
}

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

// --- pairing session -----------------------------------------------------

func (e *Engine) startSession() error {
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
		return failure.New(failure.Internal, "start pairing session", err)
	}
	e.trace("pairing token signed")
	addr, err := e.srv.Start(e.opts.ListenAddr)
	if err != nil {
		s.Close()
		return failure.New(failure.Internal, "open provisioning port", err)
	}
	e.snapMu.Lock()
	e.endpointAddr = addr.String()
	e.snapMu.Unlock()
	e.sess = s
	e.sessGen++
	e.hellos = 0
	e.pending = nil
	e.record(audit.Event{Event: "PORT_OPENED", Reason: e.opts.ListenAddr})
	e.trace("provisioning port open")
	e.rotateT = e.d.Clock.NewTimer(s.NextRotation().Sub(now))
	e.expireT = e.d.Clock.NewTimer(s.Remaining(now))
	e.tickT = e.d.Clock.NewTimer(time.Second)
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

func (e *Engine) closeEndpoint() {
	if !e.srv.Listening() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := e.srv.Close(ctx); err != nil {
		e.log.Warn("closing provisioning port", "err", err)
	}
	e.record(audit.Event{Event: "PORT_CLOSED"})
	e.publish()
}

// --- inputs --------------------------------------------------------------

// Press is the "Enable Provisioning" button. A press confirms a pending
// factory reset; otherwise it is the state machine's ButtonPressed.
func (e *Engine) Press() error {
	var err error
	if derr := e.do(func() {
		if e.resetWait != nil {
			close(e.resetWait)
			e.resetWait = nil
			return
		}
		e.trace("button press received")
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
var ErrNoConfirmation = errors.New("factory reset not confirmed by a button press")

// FactoryReset waits up to the reset window for a physical button press,
// then forgets the provisioning (settings and client key). The identity and
// payload keys stay: the device remains enrolled.
func (e *Engine) FactoryReset(ctx context.Context) error {
	wait := make(chan struct{})
	var t clock.Timer
	if err := e.do(func() {
		e.resetWait = wait
		t = e.d.Clock.NewTimer(e.opts.FactoryResetWindow)
		e.record(audit.Event{Event: "FACTORY_RESET_REQUESTED", Actor: "console"})
	}); err != nil {
		return err
	}
	select {
	case <-wait:
		t.Stop()
	case <-t.C():
		_ = e.do(func() { e.resetWait = nil; e.record(audit.Event{Event: "FACTORY_RESET_TIMED_OUT", Actor: "console"}) })
		return ErrNoConfirmation
	case <-ctx.Done():
		_ = e.do(func() { e.resetWait = nil })
		return ctx.Err()
	}
	var err error
	if derr := e.do(func() {
		if e.st != state.Provisioned {
			err = fmt.Errorf("factory reset: device is %s, nothing to reset", e.st)
			e.record(audit.Event{Event: "FACTORY_RESET_REFUSED", From: e.st.String(), Reason: err.Error()})
			return
		}
		if ferr := e.d.Settings.FactoryReset(); ferr != nil {
			err = fmt.Errorf("factory reset: settings: %w", ferr)
			e.record(audit.Event{Event: "FACTORY_RESET_FAILED", Reason: err.Error()})
			return
		}
		if ferr := e.d.Keys.ForgetClientKey(); ferr != nil {
			e.record(audit.Event{Event: "FACTORY_RESET_KEY_FAILED", Reason: ferr.Error()})
		}
		e.current = nil
		err = e.handle(state.FactoryReset, "console+button", nil)
	}); derr != nil {
		return derr
	}
	return err
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
	s := Status{State: e.st, Step: e.step, LastError: failure.CodeOf(e.lastErr), Listening: e.srv.Listening()}
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

// --- screen --------------------------------------------------------------

func (e *Engine) view() screen.View {
	now := e.d.Clock.Now()
	v := screen.View{
		State:           e.st,
		DeviceID:        e.opts.DeviceID,
		DeviceLabel:     e.opts.DeviceLabel,
		DeviceSerial:    e.opts.DeviceSerial,
		FirmwareVersion: e.opts.FirmwareVersion,
		IPAddress:       e.d.Address(),
		Progress:        e.step,
	}
	if locked, left := e.lockout.Locked(now); locked {
		v.Locked = left
	}
	switch e.st {
	case state.ReadyToPair:
		if e.sess != nil {
			q := e.sess.QR()
			v.QRText = q.Marshal()
			v.PairingCode = q.PairingCode
			v.IPAddress = q.IPAddress
			v.Remaining = e.sess.Remaining(now)
		}
	case state.ProvisioningFailed:
		v.Failure = failure.CodeOf(e.lastErr)
		if v.Failure == failure.None {
			v.Failure = failure.Internal
		}
	case state.Provisioned:
		if e.current != nil {
			v.ServerHost = e.current.ServerHost()
			if e.current.DeviceLabel != "" {
				v.DeviceLabel = e.current.DeviceLabel
			}
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

// --- provisioning endpoint (endpoint.Device) -----------------------------

func (e *Engine) onRefused(r endpoint.Refusal) {
	reason := ""
	if r.Err != nil {
		reason = r.Err.Error()
	}
	e.post(func() {
		e.record(audit.Event{Event: "REQUEST_REFUSED", Code: r.Code.String(), Actor: actorOf(r.Peer, r.Remote), Reason: reason})
	})
}

func actorOf(peer, remote string) string {
	switch {
	case peer != "":
		return "central-station:" + peer
	case remote != "":
		return "remote:" + remote
	}
	return "remote"
}

func peerName(c *x509.Certificate) string {
	if c == nil {
		return ""
	}
	return c.Subject.CommonName
}

func (e *Engine) hello(ctx context.Context, req devicewire.HelloRequest, peer *x509.Certificate) (devicewire.HelloResponse, error) {
	var gen int
	var err error
	if derr := e.do(func() { gen, err = e.admitHello(req.PairingToken, peerName(peer)) }); derr != nil {
		return devicewire.HelloResponse{}, failure.New(failure.Internal, "hello", derr)
	}
	if err != nil {
		return devicewire.HelloResponse{}, err
	}
	// TPM work happens here, off the owner goroutine.
	ck, err := e.d.Keys.NewClientKey()
	if err != nil {
		return devicewire.HelloResponse{}, failure.New(failure.Internal, "hello: client key", err)
	}
	csr, err := x509.CreateCertificateRequest(e.d.Rand, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: e.opts.DeviceID, SerialNumber: e.opts.DeviceSerial},
	}, ck)
	if err != nil {
		_ = ck.Discard()
		return devicewire.HelloResponse{}, failure.New(failure.Internal, "hello: CSR", err)
	}
	nonce := make([]byte, devicewire.NonceSize)
	if _, err := io.ReadFull(e.d.Rand, nonce); err != nil {
		_ = ck.Discard()
		return devicewire.HelloResponse{}, failure.New(failure.Internal, "hello: nonce", err)
	}
	h, err := devicewire.NewHello(e.d.Keys.Identity(), e.opts.DeviceID, nonce, e.d.Keys.PayloadKey().PublicKey(), csr)
	if err != nil {
		_ = ck.Discard()
		return devicewire.HelloResponse{}, failure.New(failure.Internal, "hello", err)
	}
	if derr := e.do(func() { err = e.installHello(gen, nonce, ck, peerName(peer)) }); derr != nil {
		_ = ck.Discard()
		return devicewire.HelloResponse{}, failure.New(failure.Internal, "hello", derr)
	}
	if err != nil {
		_ = ck.Discard()
		return devicewire.HelloResponse{}, err
	}
	return h, nil
}

// admitHello checks that a hello may proceed and returns the session
// generation it belongs to.
func (e *Engine) admitHello(token, peer string) (int, error) {
	if e.st != state.ReadyToPair || e.sess == nil {
		return 0, failure.Errorf(failure.SessionExpired, "hello", "device is %s, not ready to pair", e.st)
	}
	now := e.d.Clock.Now()
	if token != "" {
		if err := e.sess.CheckToken(token, now); err != nil {
			e.record(audit.Event{Event: "TOKEN_REFUSED", Code: failure.CodeOf(err).String(), Actor: "central-station:" + peer, Reason: err.Error()})
			return 0, err
		}
	}
	if e.hellos >= e.opts.MaxHellos {
		return 0, failure.Errorf(failure.TooManyAttempts, "hello", "%d hello exchanges in this session, limit %d", e.hellos, e.opts.MaxHellos)
	}
	e.hellos++
	how := "scanned token"
	if token == "" {
		how = "typed pairing code"
	}
	e.record(audit.Event{Event: "HELLO", Actor: "central-station:" + peer, Reason: how})
	return e.sessGen, nil
}

func (e *Engine) installHello(gen int, nonce []byte, ck keys.ClientKey, peer string) error {
	if e.st != state.ReadyToPair || e.sess == nil || gen != e.sessGen {
		return failure.Errorf(failure.SessionMismatch, "hello", "pairing session ended during hello")
	}
	if e.pending != nil && e.pending.key != nil {
		if err := e.pending.key.Discard(); err != nil {
			e.record(audit.Event{Event: "CLIENT_KEY_DISCARD_FAILED", Reason: err.Error()})
		}
	}
	e.pending = &pendingHello{gen: gen, nonce: nonce, key: ck, peer: peer}
	return nil
}

func (e *Engine) config(ctx context.Context, envelope []byte, peer *x509.Certificate) (<-chan devicewire.Progress, error) {
	var ch chan devicewire.Progress
	var err error
	if derr := e.do(func() { ch, err = e.acceptConfig(envelope, peerName(peer)) }); derr != nil {
		return nil, failure.New(failure.Internal, "config", derr)
	}
	return ch, err
}

func (e *Engine) acceptConfig(envelope []byte, peer string) (chan devicewire.Progress, error) {
	switch {
	case e.st.Busy():
		return nil, failure.Errorf(failure.SessionMismatch, "config", "a configuration is already being processed")
	case e.st != state.ReadyToPair || e.sess == nil:
		return nil, failure.Errorf(failure.SessionExpired, "config", "device is %s, not ready to pair", e.st)
	case e.pending == nil || e.pending.gen != e.sessGen:
		return nil, failure.Errorf(failure.SessionMismatch, "config", "no hello in this pairing session")
	case e.pending.peer != peer:
		return nil, failure.Errorf(failure.SessionMismatch, "config", "pushed by another signer than the hello")
	}
	e.progress = make(chan devicewire.Progress, 16)
	e.pushStart = e.d.Clock.Now()
	ch := e.progress
	e.envelope = append([]byte(nil), envelope...)
	e.record(audit.Event{Event: "CONFIG_RECEIVED", Actor: "central-station:" + peer, Reason: fmt.Sprintf("%d-byte envelope", len(envelope))})
	// Entering PAIRING_RECEIVED starts the validation of e.envelope.
	if err := e.handle(state.ConfigReceived, "central-station:"+peer, nil); err != nil {
		e.envelope = nil
		close(ch)
		e.progress = nil
		return nil, failure.New(failure.Internal, "config", err)
	}
	return ch, nil
}

func (e *Engine) emit() {
	if e.progress == nil {
		return
	}
	p := devicewire.Progress{State: e.st.String(), Step: e.step, Elapsed: e.d.Clock.Now().Sub(e.pushStart).Milliseconds()}
	select {
	case e.progress <- p:
	default:
	}
}

func (e *Engine) finishProgress() {
	if e.progress == nil {
		return
	}
	// Whoever reads the final line may ask for the status next: it must
	// already say the final state.
	e.publish()
	p := devicewire.Progress{State: e.st.String(), Final: true, Elapsed: e.d.Clock.Now().Sub(e.pushStart).Milliseconds()}
	if e.st == state.ProvisioningFailed && e.lastErr != nil {
		c := failure.CodeOf(e.lastErr)
		p.Error = &devicewire.ErrorBody{Code: c.String(), Message: c.Title() + ": " + c.UserAction()}
	}
	select {
	case e.progress <- p:
	default:
	}
	close(e.progress)
	e.progress = nil
}

// --- workers ---------------------------------------------------------------

func (e *Engine) startValidation() {
	env, p, gen, ctx := e.envelope, e.pending, e.sessGen, e.ctx
	e.envelope = nil
	go func() {
		v, err := payload.Verify(env, e.d.Keys.PayloadKey(), payload.Expect{
			Anchors:      e.d.Anchors,
			DeviceID:     e.opts.DeviceID,
			SessionNonce: p.nonce,
			CheckPairingCode: func(typed string) error {
				var r error
				if derr := e.do(func() { r = e.checkCode(gen, typed) }); derr != nil {
					return failure.New(failure.Internal, "check pairing code", derr)
				}
				return r
			},
			Wall:      e.d.Wall,
			ClientKey: p.key.Public(),
		})
		_ = ctx
		e.post(func() { e.validated(gen, v, err) })
	}()
}

func (e *Engine) checkCode(gen int, typed string) error {
	if gen != e.sessGen || e.sess == nil {
		return failure.Errorf(failure.SessionMismatch, "check pairing code", "pairing session ended")
	}
	return e.sess.CheckCode(typed, e.d.Clock.Now())
}

func (e *Engine) validated(gen int, v *payload.Verified, err error) {
	if e.st != state.PairingReceived || gen != e.sessGen {
		return
	}
	if err != nil {
		e.handle(state.ValidationFailed, "device", err)
		return
	}
	e.verified = v
	e.record(audit.Event{Event: "CONFIG_VERIFIED", Reason: fmt.Sprintf("config version %d for %s", v.ConfigVersion, v.ServerURL.Host)})
	e.handle(state.ValidationPassed, "device", nil)
}

func (e *Engine) startApply() {
	v, p, gen := e.verified, e.pending, e.sessGen
	go func() {
		key := p.key
		var imported keys.ClientKey
		var err error
		if v.ClientPrivateKey != "" {
			imported, err = e.importKey(v.ClientPrivateKey)
			if err == nil {
				key = imported
			}
		}
		if err == nil {
			wall, trusted := e.d.Wall.Now()
			err = e.d.Settings.Stage(settings.Provisioning{
				ServerURL:     v.ServerURL.String(),
				DeviceLabel:   v.DeviceLabel,
				DeviceID:      v.DeviceID,
				CACertDER:     v.CACert.Raw,
				ClientCertDER: v.ClientCert.Raw,
				ClientKeyRef:  ClientKeyRef,
				ConfigVersion: v.ConfigVersion,
				ProvisionedAt: wall,
				ClockTrusted:  trusted,
			})
			if err != nil {
				err = failure.New(failure.ApplyFailed, "stage settings", err)
			}
		}
		e.post(func() { e.applied(gen, key, imported, err) })
	}()
}

// importKey puts the payload's clientPrivateKey under the key store's
// protection and wipes the plaintext.
func (e *Engine) importKey(b64 string) (keys.ClientKey, error) {
	der, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, failure.New(failure.CertificateInvalid, "import client key", errors.New("clientPrivateKey is not base64"))
	}
	defer clear(der)
	k, err := e.d.Keys.ImportClientKey(der)
	if err != nil {
		return nil, failure.New(failure.ApplyFailed, "import client key", err)
	}
	return k, nil
}

func (e *Engine) applied(gen int, key, imported keys.ClientKey, err error) {
	if e.st != state.ApplyingConfig || gen != e.sessGen {
		if imported != nil {
			_ = imported.Discard()
		}
		return
	}
	if imported != nil && e.pending.key != nil {
		_ = e.pending.key.Discard()
	}
	e.pending.key = nil
	e.clientKey = key
	if err != nil {
		e.handle(state.ApplyFailed, "device", err)
		return
	}
	e.handle(state.ApplySucceeded, "device", nil)
}

func (e *Engine) startConnectionTest() {
	v, key, gen, ctx := e.verified, e.clientKey, e.sessGen, e.ctx
	go func() {
		err := e.connect(ctx, v.ServerURL.String(), v.CACert.Raw, v.ClientCert.Raw, key)
		var cur settings.Provisioning
		if err == nil {
			cur, err = e.commit(key)
		}
		e.post(func() { e.connected(gen, cur, err) })
	}()
}

// commit makes the provisioning permanent: the client key first, then the
// settings in one transaction. If the settings fail the key is forgotten,
// so the device is never left half-provisioned.
func (e *Engine) commit(key keys.ClientKey) (settings.Provisioning, error) {
	if err := key.Commit(); err != nil {
		return settings.Provisioning{}, failure.New(failure.ApplyFailed, "commit client key", err)
	}
	if err := e.d.Settings.Commit(); err != nil {
		_ = e.d.Keys.ForgetClientKey()
		return settings.Provisioning{}, failure.New(failure.ApplyFailed, "commit settings", err)
	}
	cur, ok, err := e.d.Settings.Current()
	if err != nil || !ok {
		return settings.Provisioning{}, failure.Errorf(failure.ApplyFailed, "commit settings", "committed settings unreadable: %v", err)
	}
	return cur, nil
}

func (e *Engine) connected(gen int, cur settings.Provisioning, err error) {
	if e.st != state.TestingConnection || gen != e.sessGen {
		return
	}
	if err != nil {
		e.handle(state.ConnectionFailed, "device", err)
		return
	}
	e.clientKey = nil // committed: no longer ours to discard
	e.current = &cur
	e.handle(state.ConnectionSucceeded, "device", nil)
}

// connect runs the connection test with the given configuration. key nil
// means the committed client key.
func (e *Engine) connect(ctx context.Context, serverURL string, caDER, certDER []byte, key crypto.Signer) error {
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return failure.New(failure.CertificateInvalid, "connection test: CA certificate", err)
	}
	leaf, err := x509.ParseCertificate(certDER)
	if err != nil {
		return failure.New(failure.CertificateInvalid, "connection test: client certificate", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	if key == nil {
		k, err := e.d.Keys.CommittedClientKey()
		if err != nil {
			return failure.New(failure.Internal, "connection test: client key", err)
		}
		key = k
	}
	_, err = conncheck.Run(ctx, conncheck.Config{
		ServerURL:      serverURL,
		CA:             pool,
		ClientCert:     tls.Certificate{Certificate: [][]byte{certDER}, Leaf: leaf, PrivateKey: key},
		HealthPath:     e.opts.HealthPath,
		Attempts:       e.opts.ConnAttempts,
		AttemptTimeout: e.opts.ConnTimeout,
		Backoff:        e.opts.ConnBackoff,
		Dial:           e.d.Dial,
		Sleep:          e.d.ConnSleep,
	})
	return err
}

// endpointDevice is the engine as the provisioning endpoint sees it.
type endpointDevice struct{ e *Engine }

func (d endpointDevice) Hello(ctx context.Context, req devicewire.HelloRequest, peer *x509.Certificate) (devicewire.HelloResponse, error) {
	return d.e.hello(ctx, req, peer)
}

func (d endpointDevice) Config(ctx context.Context, envelope []byte, peer *x509.Certificate) (<-chan devicewire.Progress, error) {
	return d.e.config(ctx, envelope, peer)
}

func (d endpointDevice) Status() devicewire.Status {
	s := d.e.Status()
	p := devicewire.Status{State: s.State.String(), Step: s.Step}
	if s.LastError != failure.None {
		p.Error = &devicewire.ErrorBody{Code: s.LastError.String(), Message: s.LastError.Title() + ": " + s.LastError.UserAction()}
	}
	return p
}

var _ endpoint.Device = endpointDevice{}
