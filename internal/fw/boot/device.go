package boot

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"periph.io/x/conn/v3/display"

	"github.com/zmonitor/firmware/board"
	"github.com/zmonitor/firmware/drivers/button"
	"github.com/zmonitor/firmware/internal/base/clock"
	"github.com/zmonitor/firmware/internal/base/version"
	"github.com/zmonitor/firmware/internal/fw/audit"
	"github.com/zmonitor/firmware/internal/fw/console"
	"github.com/zmonitor/firmware/internal/fw/engine"
	"github.com/zmonitor/firmware/internal/fw/fault"
	"github.com/zmonitor/firmware/internal/fw/identity"
	"github.com/zmonitor/firmware/internal/fw/keys"
	"github.com/zmonitor/firmware/internal/fw/renew"
	"github.com/zmonitor/firmware/internal/fw/screen"
	"github.com/zmonitor/firmware/internal/fw/settings"
	"github.com/zmonitor/firmware/internal/proto/state"
)

// Button is the Enable Provisioning button: a stream of debounced events
// (*button.Dev, which board.OpenButton opens).
type Button interface {
	Run(ctx context.Context, out chan<- button.Event) error
}

// Config is what the device plan needs from whoever found the hardware:
// PID 1 on the board (PID1 fills it from the board profile) or `zmonitor
// run` on a development host. Optional parts may be nil.
type Config struct {
	// Profile is the board: the provisioning port, the pairing timings,
	// whether the console may start provisioning.
	Profile board.Profile
	// DataDir holds the identity, the enrollment record, the settings and
	// the audit log (the data partition on the device).
	DataDir string
	// Given is the manufacturing identity (kernel command line, flags):
	// stored on the first boot, ignored afterwards.
	Given identity.Identity
	// Label is the device label shown before provisioning.
	Label string
	// Listen is the provisioning endpoint's address (default ":" and the
	// profile's provisioning port).
	Listen string
	// Anchors is the file of the provisioning trust anchors (PEM).
	Anchors string
	// Keys opens the key store (TPMKeys on the device).
	Keys  OpenKeys
	Clock clock.Clock
	Wall  *clock.Wall
	// Display is the panel (Run only: PID 1 opens its own beside the data
	// partition's mount).
	Display display.Drawer
	Button  Button        // nil: no button
	Console io.ReadWriter // nil: no console
	// Address returns the device's IP address for the screens and the QR
	// (nil: none known); NetLines describes the network for the console.
	Address  func() string
	NetLines func() []string
	// Reboot restarts the device (PID 1) or stops the process (host).
	Reboot func() error
	Log    *slog.Logger
	// Started, if set, is called with the engine once it runs.
	Started func(*engine.Engine)
	// EventLog reads the boot firmware's TPM event log for attestation
	// (ReadEventLog on the device; nil: no measured boot).
	EventLog func() ([]byte, error)
}

// Run boots the device on c's hardware (the device plan) and runs it until
// ctx ends: `zmonitor run` on a development host, and the tests. A step
// that fails stops Run with the step's name and, where the panel works,
// shows the device fault naming the part.
func Run(ctx context.Context, c Config) error {
	m := startScreen()
	m.setDisplay(c.Display, nil)
	return newDevice(c, m, nil).run(ctx)
}

// devicePlan is the boot once the hardware is open, to the engine running.
// The order is the boot time's: the first frame waits only for the
// identity, the settings and the screen; the keys (the TPM) and the trust
// anchors load only once it is decided, and the audit log (checked from
// the record the TPM anchors; the rest once the engine runs) after them, so that the first frame has the
// CPUs to itself (docs/qemu.md, "Where the boot time goes").
var devicePlan = plan[*device]{
	{name: "read the identity", fault: fault.Identity, run: (*device).readIdentity},
	{name: "start readying the screen", run: (*device).readyScreen},
	{name: "open the settings", fault: fault.Settings, run: (*device).openSettings},
	{name: "decide the first frame", run: (*device).decideFirstFrame},
	{name: "open the audit log", fault: fault.AuditLog, run: (*device).openAuditLog},
	{name: "load the keys", fault: fault.TPMKeys, run: (*device).loadKeys},
	{name: "decide the start state", run: (*device).decideStart},
	{name: "read the trust anchors", fault: fault.Anchors, run: (*device).readAnchors},
	{name: "make the engine", fault: fault.Engine, run: (*device).makeEngine},
	{name: "make the console", fault: fault.Console, run: (*device).makeConsole},
	{name: "run the engine", run: (*device).runEngine},
}

// device is the device plan's state: what the steps found and opened.
type device struct {
	c       Config
	ctx     context.Context
	screens *screenMaker
	trace   *bootTrace // nil: not traced
	log     *slog.Logger
	cleanup

	id        identity.Identity
	firstBoot bool
	opts      engine.Options
	// view is what the panel shows, or is about to: the UNPROVISIONED
	// screen until the first frame is decided, then the first frame's. A
	// device fault is shown on it.
	view  screen.View
	ready func() readyScreen // set by readyScreen
	scr   *screen.Screen
	set   *settings.Store
	audit *laterLog
	alog  *audit.Log
	first firstFrame
	keys  func() loadedKeys
	ks    keys.Store
	// enrollment is the enrollment record's JSON (the console's `enroll`).
	enrollment []byte
	anchors    func() loadedAnchors
	pool       *x509.CertPool
	eng        *engine.Engine
	con        *console.Console
}

func newDevice(c Config, m *screenMaker, tr *bootTrace) *device {
	log := c.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &device{c: c, screens: m, trace: tr, log: log}
}

// run runs the device plan until ctx ends or a step fails.
func (d *device) run(ctx context.Context) error {
	d.ctx = ctx
	defer d.cleanup.run()
	// The fault view of a device whose identity could not be read.
	d.view = screen.View{State: state.Unprovisioned, DeviceID: d.c.Given.DeviceID, DeviceSerial: d.c.Given.DeviceSerial,
		DeviceLabel: d.c.Label, FirmwareVersion: version.Version}
	return devicePlan.run(d)
}

func (d *device) tracer() *bootTrace { return d.trace }

// address is the device's address as the screens show it ("" unknown).
func (d *device) address() string {
	if d.c.Address == nil {
		return ""
	}
	return d.c.Address()
}

// readIdentity reads the identity from the data directory, or stores the
// given one on the first boot.
func (d *device) readIdentity() error {
	if err := os.MkdirAll(d.c.DataDir, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	id, first, err := identity.Load(d.c.DataDir, d.c.Given, version.Version)
	if errors.Is(err, identity.ErrTooLongForQR) {
		return &faultError{fault: fault.IdentityTooLong, err: err}
	}
	if err != nil {
		return err
	}
	d.id, d.firstBoot = id, first
	listen := d.c.Listen
	if listen == "" {
		listen = fmt.Sprintf(":%d", d.c.Profile.ProvisioningPort)
	}
	d.opts = engine.Options{
		DeviceID:            id.DeviceID,
		DeviceSerial:        id.DeviceSerial,
		DeviceLabel:         d.c.Label,
		FirmwareVersion:     version.Version,
		SessionLifetime:     d.c.Profile.Pairing.SessionLifetime.D(),
		TokenRotation:       d.c.Profile.Pairing.TokenRotation.D(),
		ListenAddr:          listen,
		ConsoleMayProvision: d.c.Profile.ConsoleMayProvision,
	}
	d.view = engine.StartView(d.opts, d.address())
	d.log.Info("device", "id", id.DeviceID, "firstBoot", first, "board", d.c.Profile.Name, "listen", listen)
	return nil
}

// readyScreen is the Screen, or why there is none.
type readyScreen struct {
	scr *screen.Screen
	err error
}

// readyScreen gets the screen ready in the background, beside the
// settings' opening: its fonts parsed and the UNPROVISIONED screen
// rendered (found made when PID 1 rendered it ahead with the same
// identity). On a multi-core board the two run side by side; on one core
// the screen's work fills the waits for the disk.
func (d *device) readyScreen() error {
	v := d.view
	ch := make(chan readyScreen, 1)
	go func() {
		scr, err := d.screens.get(d.trace)
		if err == nil {
			if err := scr.Warm(v); err != nil {
				d.log.Warn("screen warm-up", "err", err)
			}
			d.trace.mark("boot screen warmed")
		}
		ch <- readyScreen{scr, err}
	}()
	d.ready = sync.OnceValue(func() readyScreen { return <-ch })
	return nil
}

// screen waits for the screen; nil if there is none.
func (d *device) screen() *screen.Screen {
	if d.scr != nil {
		return d.scr
	}
	if d.ready != nil {
		return d.ready().scr
	}
	scr, _ := d.screens.get(d.trace)
	return scr
}

// showFault puts device fault f, naming what stopped the start-up and its
// code, on the panel, if there is a screen. A panel must not go on showing
// a state, or nothing, for a firmware that cannot act on a button press.
// The panel shows no secret; the error, with the same code, goes to the log.
func (d *device) showFault(f fault.Fault) {
	scr := d.screen()
	if scr == nil {
		return
	}
	v := d.view
	v.Fault = f
	if err := scr.Show(v); err != nil {
		d.log.Error("display", "err", err)
	}
}

// openSettings opens the settings store. The audit log opens only when it
// is first needed: after the first frame, or when the settings discard a
// stage left by an interrupted pairing and record it.
func (d *device) openSettings() error {
	d.audit = &laterLog{open: d.openAudit}
	d.later(d.audit.close)
	set, err := settings.Open(filepath.Join(d.c.DataDir, settings.FileName), d.audit)
	if err != nil {
		if ol := d.audit.wait(); ol.err != nil { // the cause, when a discard could not be recorded
			return &faultError{fault: fault.AuditLog, err: fmt.Errorf("audit log: %w", ol.err)}
		}
		return err
	}
	d.set = set
	d.later(func() { set.Close() })
	// The last known good time, so that the clock never goes back across
	// a power cycle (docs/lifecycle.md, "Time").
	if t, err := set.LastKnownTime(); err != nil {
		d.log.Warn("last known time unreadable", "err", err)
	} else {
		d.c.Wall.Observe(t)
	}
	return nil
}

// openAudit opens the audit log, anchored in the TPM and with checkpoints
// signed by the identity key when the key store offers them (it waits for
// the keys, starting them if the first frame has not yet). The open checks
// the records from the one the TPM anchors to the end; the rest is
// checkAudit's, once the engine runs. A log that does not match its anchor
// or chain is kept aside and a new segment says so (audit.Recover); the
// console's status says so too.
func (d *device) openAudit() openedLog {
	o := audit.Opts{Wall: d.c.Wall, Mono: d.c.Clock, Log: d.log}
	d.startKeys()
	if k := d.keys(); k.err == nil {
		if a, ok := k.store.(audit.Anchor); ok {
			o.Anchor = a
		}
		o.Signer, o.DeviceID = k.store.Identity(), d.id.DeviceID
	}
	alog, err := audit.Open(d.c.DataDir, o)
	if errors.Is(err, audit.ErrTampered) {
		d.log.Error("audit log tampered; keeping it aside and starting a new segment", "err", err)
		alog, err = audit.Recover(d.c.DataDir, o)
	}
	if err == nil {
		d.trace.mark("audit log opened")
	}
	return openedLog{alog, err}
}

// checkAudit verifies the whole audit log in the background (Open checked
// only its tail) and logs what it found; the findings are recorded in the
// log itself and shown by the console's status.
func (d *device) checkAudit(ctx context.Context) {
	res := d.alog.CheckAll(ctx)
	switch res.State {
	case audit.CheckPassed:
		d.log.Info("audit log checked", "records", res.Records, "segments", res.Segments, "took", res.Took)
	case audit.CheckDamage:
		d.log.Error("audit log: damage found by the background check", "findings", res.Findings)
	default:
		if ctx.Err() == nil {
			d.log.Error("audit log: the background check failed", "err", res.Err)
		}
	}
	d.eng.WarningChanged() // damage found now goes on the panel
}

// decideFirstFrame makes the boot's one decision on where the device
// starts (firstFrame) and puts it on the panel: UNPROVISIONED is drawn now;
// PROVISIONED is rendered ahead, for the engine to draw once the keys
// confirm it. Then the keys and the trust anchors start loading, without
// having taken CPU from the first frame.
func (d *device) decideFirstFrame() error {
	d.first = decideFirstFrame(d.set.Current())
	rs := d.ready()
	if rs.err != nil {
		return fmt.Errorf("screen: %w", rs.err)
	}
	d.scr = rs.scr
	o := d.opts
	o.Start = d.first.tentative()
	d.view = engine.StartView(o, d.address())
	if d.first.state == state.Unprovisioned {
		// Known: UNPROVISIONED, which needs neither the keys nor the
		// anchors. The engine's first Show of the same view draws nothing.
		err := d.scr.Show(d.view)
		d.startKeys()
		d.startAnchors()
		// Traced once the keys are on their way: the first frame's trace
		// line lets the held start-up log out, ~0.1 s of emulated UART
		// under QEMU that the TPM's work need not wait for.
		if err != nil {
			d.log.Error("display", "err", err)
		} else {
			d.trace.mark(firstFrameDrawn)
		}
		return nil
	}
	if err := d.scr.Warm(d.view); err != nil {
		d.log.Warn("screen warm-up", "err", err)
	}
	d.trace.mark("provisioned screen warmed")
	d.startKeys()
	d.startAnchors()
	return nil
}

// openAuditLog waits for the audit log (it opens now, if no stage discard
// opened it already).
func (d *device) openAuditLog() error {
	ol := d.audit.wait()
	if ol.err != nil {
		return ol.err
	}
	d.alog = ol.log
	return nil
}

// loadKeys waits for the key store.
func (d *device) loadKeys() error {
	l := d.keys()
	if l.err != nil {
		return l.err
	}
	d.ks, d.enrollment = l.store, l.enrollment
	return nil
}

// decideStart confirms the first frame's decision with the keys and
// records why committed settings are not used, if they are not. The
// engine starts there.
func (d *device) decideStart() error {
	start, why := d.first.start(d.ks)
	if why != nil {
		why.Reason = audit.Sanitize(why.Reason)
		if err := d.alog.Record(*why); err != nil {
			d.log.Error("audit record failed", "event", why.Event, "err", err)
		}
	}
	d.opts.Start = start
	d.evictLeftoverKeys(start.Committed)
	return nil
}

// evictLeftoverKeys evicts the client keys the start's settings do not
// name: a renewal cut short by a power cut leaves one in the other slot
// (before or after its settings commit), an interrupted pairing or factory
// reset one in an unprovisioned device. Audited; a key that cannot be
// evicted is logged and left to the next boot (the settings do not name
// it, so it is never used).
func (d *device) evictLeftoverKeys(committed *settings.Provisioning) {
	emptied, err := renew.Leftovers(d.ks, committed)
	for _, s := range emptied {
		ev := audit.Event{Event: "CLIENT_KEY_LEFTOVER_EVICTED", Actor: "device", Reason: fmt.Sprintf("key slot %s held a key the settings do not name (a renewal or pairing cut short)", s)}
		if err := d.alog.Record(ev); err != nil {
			d.log.Error("audit record failed", "event", ev.Event, "err", err)
		}
	}
	if err != nil {
		d.log.Error("leftover client keys", "err", err)
	}
}

// readAnchors waits for the trust anchors.
func (d *device) readAnchors() error {
	a := d.anchors()
	if a.err != nil {
		return a.err
	}
	d.pool = a.pool
	return nil
}

// makeEngine makes the engine with the start state decided.
func (d *device) makeEngine() error {
	eng, err := engine.New(d.opts, engine.Deps{
		Clock: d.c.Clock, Wall: d.c.Wall, Keys: d.ks, Settings: d.set, Audit: d.alog,
		Display: d.scr, Anchors: d.pool, Address: d.c.Address, Log: d.log, Trace: d.trace.mark,
		Warning:  func() fault.Warning { return auditWarning(d.alog.Status()) },
		EventLog: d.c.EventLog,
	})
	if err != nil {
		return err
	}
	d.eng = eng
	return nil
}

// makeConsole makes the diagnostics console, if the device has one.
func (d *device) makeConsole() error {
	if d.c.Console == nil {
		return nil
	}
	con, err := console.New(d.c.Console, &consoleDevice{d}, &console.Options{AllowProvision: d.c.Profile.ConsoleMayProvision, Clock: d.c.Clock})
	if err != nil {
		return err
	}
	d.con = con
	return nil
}

// runEngine runs the engine, the button and the console until ctx ends.
func (d *device) runEngine() error {
	ctx, cancel := context.WithCancel(d.ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	if d.c.Button != nil {
		events := make(chan button.Event, 8)
		wg.Add(2)
		go func() {
			defer wg.Done()
			if err := d.c.Button.Run(ctx, events); err != nil && !errors.Is(err, context.Canceled) {
				// The device goes on without it: it still shows its
				// state, serves the console and, if provisioned, works.
				d.log.Error("button", "err", err)
				_ = d.alog.Record(audit.Event{Event: "BUTTON_FAILED", Actor: "device", Reason: audit.Sanitize(err.Error())})
			}
		}()
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case ev := <-events:
					if ev.Kind != button.Press {
						continue
					}
					_ = d.alog.Record(audit.Event{Event: "BUTTON_PRESSED", Actor: "button"})
					if err := d.eng.Press(); err != nil {
						d.log.Info("button press refused", "err", err)
					}
				}
			}
		}()
	}
	if d.con != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := d.con.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				d.log.Error("console", "err", err)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-d.eng.Ready():
			if d.c.Started != nil {
				d.c.Started(d.eng)
			}
			d.checkAudit(ctx)
		case <-ctx.Done():
		}
	}()
	err := d.eng.Run(ctx)
	cancel()
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
