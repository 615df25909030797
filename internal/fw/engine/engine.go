package engine

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zmonitor/firmware/internal/base/clock"
	"github.com/zmonitor/firmware/internal/fw/audit"
	"github.com/zmonitor/firmware/internal/fw/conncheck"
	"github.com/zmonitor/firmware/internal/fw/endpoint"
	"github.com/zmonitor/firmware/internal/fw/fault"
	"github.com/zmonitor/firmware/internal/fw/keys"
	"github.com/zmonitor/firmware/internal/fw/renew"
	"github.com/zmonitor/firmware/internal/fw/screen"
	"github.com/zmonitor/firmware/internal/fw/settings"
	"github.com/zmonitor/firmware/internal/proto/devicewire"
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
	// SaveWrongCodes and WrongCodes keep the wall times of the wrong
	// pairing codes that count towards the lockout, across power cycles.
	SaveWrongCodes(at []time.Time) error
	WrongCodes() ([]time.Time, error)
	// Renew and SaveLastKnownTime: certificate renewal (renew.Settings)
	// and the clock's last known good time.
	Renew(oldCertDER, newCertDER []byte, newKeyRef string) (settings.Provisioning, error)
	SaveLastKnownTime(t time.Time) error
}

// ClientKeyRef is what the settings store records about the client key of
// a pairing: a reference, never key material. A pairing commits its key to
// slot A; a renewal names the slot it switched to (keys.Slot.Ref).
const ClientKeyRef = keys.RefSlotA

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
	// RefusalInterval is the interval over which refusals of one address
	// and code are counted into one audit record (default
	// DefaultRefusalInterval).
	RefusalInterval time.Duration
	// Renewal is when the client certificate is renewed and how failures
	// are retried (renew.DefaultPolicy's fields where zero).
	Renewal renew.Policy
	// CheckIn is how often a PROVISIONED device with an EST server checks
	// in with it (DefaultCheckIn when zero).
	CheckIn time.Duration
	// ESTTimeout bounds each EST request (estclient.DefaultTimeout when
	// zero).
	ESTTimeout time.Duration
	// Endpoint tunes the provisioning endpoint's limits (connections,
	// handshakes, grace); zero values mean its defaults. Identity,
	// DeviceID, Anchors, Now and OnRefused are the engine's.
	Endpoint endpoint.Opts

	// Start is the state Run starts in. The boot plan (internal/fw/boot)
	// decides it before the engine exists; the engine does not decide it
	// again. The zero value starts UNPROVISIONED.
	Start Start
}

// Start is where the engine begins.
type Start struct {
	// State is state.Unprovisioned (also meant by 0) or state.Provisioned.
	State state.State
	// Committed are the committed settings of a Provisioned start, whose
	// client certificate the boot plan checked against the key store's
	// committed client key. Nil for Unprovisioned.
	Committed *settings.Provisioning
}

// check validates s and returns it with its zero state made explicit.
func (s Start) check() (Start, error) {
	switch s.State {
	case 0, state.Unprovisioned:
		if s.Committed != nil {
			return s, errors.New("engine: committed settings given for an UNPROVISIONED start")
		}
		s.State = state.Unprovisioned
	case state.Provisioned:
		if s.Committed == nil {
			return s, errors.New("engine: a PROVISIONED start needs its committed settings")
		}
	default:
		return s, fmt.Errorf("engine: cannot start in %s", s.State)
	}
	return s, nil
}

// StartView is the screen the engine shows first for o.Start on a device
// at address. The boot plan draws it (UNPROVISIONED) or renders it ahead
// (PROVISIONED) before the engine exists, so that the engine's first Show
// finds it made and draws nothing new.
func StartView(o Options, address string) screen.View {
	s, err := o.Start.check()
	if err != nil {
		s = Start{State: state.Unprovisioned}
	}
	return stateView(o, s.State, s.Committed, address)
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
	// Warning, if set, says what the panel must warn of while the device
	// works (the audit log was tampered with, the data disk is full). The
	// engine asks after each call and timer and redraws when it changed;
	// WarningChanged makes it ask when the change happened elsewhere.
	Warning func() fault.Warning
	// Trace, if set, is told when start-up work after the first frame is
	// done and when each step from a button press to the pairing screen
	// ends (timing on the device's own clock; zmonitor.verbose=1).
	Trace func(step string)
	// EventLog, if set, reads the boot firmware's TPM event log for the
	// hello's attestation (attest.go); nil on a board without measured boot.
	EventLog func() ([]byte, error)
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
	refused *refusals // from the endpoint's connections, never blocking

	// Owned by the Run goroutine.
	ctx      context.Context
	envelope []byte
	st       state.State
	sess     *pairing.Session
	sessGen  int
	// expired: UNPROVISIONED was entered by the session's expiry
	// (screen.View.SessionExpired); the view shows it only in that state.
	expired bool
	// warning is Deps.Warning as last taken (screen.View.Warning).
	warning   fault.Warning
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
	refuseT   clock.Timer // the end of the earliest refusal interval
	refuseAt  time.Time
	resetWait chan struct{}
	current   *settings.Provisioning
	check     conncheck.Last // the last connection test of current
	renewal   renewal        // the certificate renewal of current
	checkin   checkIn        // the periodic check-in of current
	fellBack  string         // PROVISIONED screen's notice after a re-provisioning fell back

	// snapshot is read by Status without a round trip to the owner.
	snapMu       sync.Mutex
	snap         Status
	endpointAddr string
}

// New checks the dependencies and prepares the endpoint. Run starts it.
func New(o Options, d Deps) (*Engine, error) {
	if d.Clock == nil || d.Wall == nil || d.Keys == nil || d.Settings == nil || d.Audit == nil || d.Display == nil || d.Anchors == nil {
		return nil, errors.New("engine: clock, wall, keys, settings, audit, display and anchors are required")
	}
	if o.DeviceID == "" {
		return nil, errors.New("engine: device ID is required")
	}
	start, err := o.Start.check()
	if err != nil {
		return nil, err
	}
	o.Start = start
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
	if o.RefusalInterval <= 0 {
		o.RefusalInterval = DefaultRefusalInterval
	}
	o.Renewal = o.Renewal.WithDefaults()
	if o.CheckIn <= 0 {
		o.CheckIn = DefaultCheckIn
	}
	e := &Engine{
		opts:    o,
		d:       d,
		log:     d.Log,
		calls:   make(chan func(), 16),
		stopped: make(chan struct{}),
		ready:   make(chan struct{}),
		lockout: pairing.NewLockout(pairing.MaxWrongCodes, o.SessionLifetime),
		refused: newRefusals(o.RefusalInterval, d.Clock.Now),
	}
	eo := o.Endpoint
	eo.Identity, eo.DeviceID, eo.Anchors = d.Keys.Identity(), o.DeviceID, d.Anchors
	eo.Now = func() time.Time { t, _ := d.Wall.Now(); return t }
	eo.OnRefused = e.refused.add
	if eo.Log == nil {
		eo.Log = d.Log
	}
	srv, err := endpoint.NewServer(endpointDevice{e}, eo)
	if err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	e.srv = srv
	e.restoreLockout()
	return e, nil
}

// Ready is closed once Run has entered the start state and shown it.
func (e *Engine) Ready() <-chan struct{} { return e.ready }

// ErrStopped is returned by calls made after Run returned.
var ErrStopped = errors.New("engine: stopped")

// do runs f on the owner goroutine and waits for it. The owner never
// blocks on the network, so the wait is short; calls from the endpoint's
// connections use doCtx, bounded by the connection.
func (e *Engine) do(f func()) error {
	return e.doCtx(context.Background(), f)
}

// doCtx runs f on the owner goroutine and waits for it, or until ctx ends.
// When ctx ends first f is dropped if it has not started (it never runs
// later); if it has, doCtx waits for it to finish, which is short.
func (e *Engine) doCtx(ctx context.Context, f func()) error {
	var claim atomic.Int32 // 0 queued, 1 running, 2 dropped
	done := make(chan struct{})
	call := func() {
		if !claim.CompareAndSwap(0, 1) {
			return
		}
		f()
		close(done)
	}
	select {
	case e.calls <- call:
	case <-ctx.Done():
		return ctx.Err()
	case <-e.stopped:
		return ErrStopped
	}
	var err error
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		err = ctx.Err()
	case <-e.stopped:
		err = ErrStopped
	}
	if claim.CompareAndSwap(0, 2) {
		return err
	}
	<-done // it is running on the owner
	return nil
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

// Run owns the state until ctx ends. It returns ctx's error once the
// provisioning port's last connections have ended (at most the endpoint's
// grace period after the port closed).
func (e *Engine) Run(ctx context.Context) error {
	defer func() {
		close(e.stopped)
		// No call reaches the owner any more: the connections end on
		// their own, and the endpoint cuts the slow ones after its grace.
		_ = e.srv.Wait(context.Background())
	}()
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
			// Refusals reported before this call are recorded before it.
			e.recordRefusals(false)
			f()
		case <-e.refused.kick:
		case <-timerC(e.refuseT):
			e.refuseT = nil
		case <-timerC(e.rotateT):
			e.rotateT = nil
			e.rotate()
		case <-timerC(e.expireT):
			e.expireT = nil
			e.handle(state.SessionExpired, "timer", failure.Errorf(failure.SessionExpired, "pairing session", "no configuration within %s", e.opts.SessionLifetime))
		case <-timerC(e.tickT):
			e.tickT = nil
			e.tick()
		case <-timerC(e.renewal.timer):
			e.renewal.timer = nil
			e.renewalDue()
		case <-timerC(e.checkin.timer):
			e.checkin.timer = nil
			e.checkInDue()
		}
		e.recordRefusals(false)
		e.publish()
		e.refreshWarning()
	}
}

// WarningChanged tells the engine that Deps.Warning may say something new
// (the audit log's background check found damage): it asks at once and
// redraws the screen if so. It does not wait.
func (e *Engine) WarningChanged() { e.post(func() {}) }

// refreshWarning takes the device's warning and redraws the screen when it
// changed.
func (e *Engine) refreshWarning() {
	if e.d.Warning == nil {
		return
	}
	if w := e.d.Warning(); w != e.warning {
		e.warning = w
		e.log.Warn("panel warning", "code", w.Code(), "warning", w.String())
		e.show()
	}
}

// boot enters the start state the boot plan decided (Options.Start).
func (e *Engine) boot(ctx context.Context) {
	e.st = e.opts.Start.State
	if c := e.opts.Start.Committed; c != nil {
		cur := *c
		e.current = &cur
	}
	if e.d.Warning != nil {
		e.warning = e.d.Warning()
	}
	// The screen first: the technician is looking at it; the BOOT record
	// (an fsync) follows a few milliseconds later. (The boot plan has
	// shown or rendered this very view already, StartView: Show changes
	// nothing.)
	e.show()
	e.trace("engine screen shown")
	e.record(audit.Event{Event: "BOOT", To: e.st.String(), Reason: "firmware " + e.opts.FirmwareVersion})
	if e.current != nil {
		e.check = conncheck.Last{Verdict: conncheck.Checking, Server: e.current.ServerHost()}
		go e.recheckConnection(ctx, e.current)
		e.scheduleRenewal()
		e.scheduleCheckIn(0) // at once: a decommissioning, the second clock source
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

func (e *Engine) shutdown() {
	e.stopTimers()
	e.stopRenewal()
	e.stopCheckIn()
	e.closeEndpoint()
	e.recordRefusals(true)
	if e.refuseT != nil {
		e.refuseT.Stop()
	}
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
