package device

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"periph.io/x/conn/v3/display"

	"github.com/zmonitor/firmware/drivers/button"
	"github.com/zmonitor/firmware/internal/base/clock"
	"github.com/zmonitor/firmware/internal/fw/audit"
	"github.com/zmonitor/firmware/internal/fw/console"
	"github.com/zmonitor/firmware/internal/fw/engine"
	"github.com/zmonitor/firmware/internal/fw/keys"
	"github.com/zmonitor/firmware/internal/fw/screen"
	"github.com/zmonitor/firmware/internal/fw/settings"
	"github.com/zmonitor/firmware/internal/proto/state"
)

// ButtonSource is the Enable Provisioning button.
type ButtonSource interface {
	Run(ctx context.Context, out chan<- button.Event) error
}

// Config is everything Run needs. Optional parts may be nil.
type Config struct {
	Engine  engine.Options
	DataDir string
	// Keys returns the key store; Run calls it once the audit log,
	// settings and screen are open, so a TPM can load its keys meanwhile.
	Keys func() (keys.Store, error)
	// Anchors returns the provisioning trust anchors; Run calls it just
	// before the engine starts, so they can be parsed meanwhile.
	Anchors func() (*x509.CertPool, error)
	Clock   clock.Clock
	Wall    *clock.Wall

	Display display.Drawer
	// Screen, if set, returns the screen on Display, made (its fonts
	// parsed) ahead of Run, e.g. while the data partition mounts; it may
	// wait for it. A nil screen means Run makes its own.
	Screen func() *screen.Screen
	// ScreenDecided, if set, is called once Run knows its first screen:
	// the UNPROVISIONED screen is shown, or a provisioned device waits
	// for the keys to check its client key. Work that only the engine
	// needs (loading the TPM keys, parsing the anchors) can start here
	// without taking CPU from the first frame.
	ScreenDecided func()
	Button        ButtonSource  // nil: no button
	Console       io.ReadWriter // nil: no console
	// ConsoleMayProvision is the board profile's permission.
	ConsoleMayProvision bool

	// Enrollment returns the enrollment record JSON shown by `enroll`.
	Enrollment func() ([]byte, error)
	// Address returns the device's IP address; NetLines describes the
	// network for the console.
	Address  func() string
	NetLines func() []string
	// Reboot restarts the device (PID 1) or stops the process (host).
	Reboot func() error
	// Version is the firmware version line.
	Version string
	Log     *slog.Logger
	// Started, if set, is called with the engine once it runs (tests,
	// benchmarks).
	Started func(*engine.Engine)
	// Trace, if set, is told when each start-up step has ended (boot
	// timing).
	Trace func(step string)
}

// Run runs the firmware until ctx ends.
func Run(ctx context.Context, c Config) error {
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.Trace == nil {
		c.Trace = func(string) {}
	}
	// The screen (its fonts parsed, the unprovisioned boot screen's glyphs
	// made) gets ready while the settings open: on a multi-core board the
	// two run side by side, and on one core the screen work fills the
	// waits for the disk.
	boot := screen.View{State: state.Unprovisioned, DeviceID: c.Engine.DeviceID, DeviceLabel: c.Engine.DeviceLabel,
		DeviceSerial: c.Engine.DeviceSerial, FirmwareVersion: c.Engine.FirmwareVersion}
	if c.Address != nil {
		boot.IPAddress = c.Address()
	}
	type readyScreen struct {
		scr *screen.Screen
		err error
	}
	sch := make(chan readyScreen, 1)
	go func(v screen.View) { // a copy: Run changes boot below for a provisioned device
		var scr *screen.Screen
		var err error
		if c.Screen != nil {
			scr = c.Screen()
		}
		if scr == nil {
			if scr, err = screen.New(c.Display); err == nil {
				c.Trace("screen ready (fonts parsed)")
			}
		}
		if err == nil {
			if err := scr.Warm(v); err != nil {
				c.Log.Warn("screen warm-up", "err", err)
			}
			c.Trace("boot screen warmed")
		}
		sch <- readyScreen{scr, err}
	}(boot)
	// screenFor waits for the screen (nil if it failed to start).
	screenFor := func() *screen.Screen { rs := <-sch; return rs.scr }
	// The first frame waits only for the settings. The audit log (its
	// whole hash chain verified as it opens, CPU the first frame would
	// compete for) opens when it is first needed: after the first frame,
	// or when the settings discard a stage left by an interrupted pairing
	// and record it.
	lch := make(chan openedLog, 1)
	pending := &laterLog{ch: lch, start: make(chan struct{})}
	go func() {
		<-pending.start
		alog, err := audit.Open(c.DataDir, c.Wall, c.Clock)
		if errors.Is(err, audit.ErrTampered) {
			c.Log.Error("audit log tampered; keeping it aside and starting a new segment", "err", err)
			alog, err = audit.Recover(c.DataDir, c.Wall, c.Clock)
		}
		if err == nil {
			c.Trace("audit log opened")
		}
		lch <- openedLog{alog, err}
	}()
	set, err := settings.Open(filepath.Join(c.DataDir, settings.FileName), pending)
	if err != nil {
		ol := pending.wait()
		if ol.err != nil { // the cause, when a discard could not be recorded
			return showFault(screenFor(), boot, "Audit log unavailable", fmt.Errorf("open audit log: %w", ol.err), c.Log)
		}
		ol.log.Close()
		return showFault(screenFor(), boot, "Settings unreadable", fmt.Errorf("open settings: %w", err), c.Log)
	}
	defer set.Close()
	c.Trace("settings opened")
	rs := <-sch
	if rs.err != nil {
		if ol := pending.wait(); ol.err == nil {
			ol.log.Close()
		}
		return fmt.Errorf("screen: %w", rs.err)
	}
	scr := rs.scr
	cur, provisioned, curErr := set.Current()
	switch {
	case curErr == nil && !provisioned:
		// The state is known to be UNPROVISIONED, which needs neither
		// the keys nor the anchors: show it now, while the TPM works.
		// The engine's first Show of the same view changes nothing.
		if err := scr.Show(boot); err != nil {
			c.Log.Error("display", "err", err)
		} else {
			c.Trace("first screen drawn")
		}
	case curErr == nil:
		// A provisioned device shows another screen: make its glyphs
		// too. It is not shown before the engine has checked the
		// committed client key against the TPM.
		boot.State, boot.DeviceLabel, boot.ServerHost = state.Provisioned, cur.DeviceLabel, cur.ServerHost()
		if err := scr.Warm(boot); err != nil {
			c.Log.Warn("screen warm-up", "err", err)
		}
		c.Trace("provisioned screen warmed")
	}
	if c.ScreenDecided != nil {
		c.ScreenDecided()
	}
	ol := pending.wait()
	if ol.err != nil {
		return showFault(scr, boot, "Audit log unavailable", fmt.Errorf("open audit log: %w", ol.err), c.Log)
	}
	alog := ol.log
	defer alog.Close()
	ks, err := c.Keys()
	if err != nil {
		return showFault(scr, boot, "TPM keys unavailable", fmt.Errorf("keys: %w", err), c.Log)
	}
	c.Trace("keys ready")
	anchors, err := c.Anchors()
	if err != nil {
		return showFault(scr, boot, "Provisioning trust anchor unreadable", fmt.Errorf("trust anchors: %w", err), c.Log)
	}
	opts := c.Engine
	opts.ConsoleMayProvision = c.ConsoleMayProvision
	eng, err := engine.New(opts, engine.Deps{
		Clock: c.Clock, Wall: c.Wall, Keys: ks, Settings: set, Audit: alog,
		Display: scr, Anchors: anchors, Address: c.Address, Log: c.Log, Trace: c.Trace,
	})
	if err != nil {
		return showFault(scr, boot, "Firmware start-up failed", fmt.Errorf("engine: %w", err), c.Log)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	if c.Button != nil {
		events := make(chan button.Event, 8)
		wg.Add(2)
		go func() {
			defer wg.Done()
			if err := c.Button.Run(ctx, events); err != nil && !errors.Is(err, context.Canceled) {
				// The device goes on without it: it still shows its
				// state, serves the console and, if provisioned, works.
				c.Log.Error("button", "err", err)
				_ = alog.Record(audit.Event{Event: "BUTTON_FAILED", Actor: "device", Reason: audit.Sanitize(err.Error())})
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
					_ = alog.Record(audit.Event{Event: "BUTTON_PRESSED", Actor: "button"})
					if err := eng.Press(); err != nil {
						c.Log.Info("button press refused", "err", err)
					}
				}
			}
		}()
	}
	if c.Console != nil {
		con, err := console.New(c.Console, &consoleDevice{c: c, keys: ks, eng: eng, log: alog, set: set}, &console.Options{AllowProvision: c.ConsoleMayProvision, Clock: c.Clock})
		if err != nil {
			return showFault(scr, boot, "Diagnostics console failed to start", fmt.Errorf("console: %w", err), c.Log)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := con.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				c.Log.Error("console", "err", err)
			}
		}()
	}
	go func() {
		select {
		case <-eng.Ready():
			if c.Started != nil {
				c.Started(eng)
			}
		case <-ctx.Done():
		}
	}()
	err = eng.Run(ctx)
	cancel()
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// openedLog is the audit log, or why it could not be opened.
type openedLog struct {
	log *audit.Log
	err error
}

// laterLog is the audit log before it is open: wait (or a Record) starts
// the opening and waits for it.
type laterLog struct {
	once  sync.Once
	start chan struct{} // closed: open the log
	ch    <-chan openedLog
	got   openedLog
}

func (l *laterLog) wait() openedLog {
	l.once.Do(func() {
		close(l.start)
		l.got = <-l.ch
	})
	return l.got
}

func (l *laterLog) Record(ev audit.Event) error {
	o := l.wait()
	if o.err != nil {
		return fmt.Errorf("audit log not open: %w", o.err)
	}
	return o.log.Record(ev)
}

// showFault puts a device fault naming what stopped the start-up on the
// screen (scr may be nil: the screen itself failed) and returns err. A panel
// must not go on showing a state, or nothing, for a firmware that cannot act
// on a button press. what is shown to the technician and must hold no
// secret; err goes to the log.
func showFault(scr *screen.Screen, v screen.View, what string, err error, log *slog.Logger) error {
	if scr != nil {
		v.Fault = what
		if serr := scr.Show(v); serr != nil {
			log.Error("display", "err", serr)
		}
	}
	return err
}

// consoleDevice is the firmware as the console sees it.
type consoleDevice struct {
	c    Config
	keys keys.Store
	eng  *engine.Engine
	log  *audit.Log
	set  *settings.Store
}

func (d *consoleDevice) Status() console.Status {
	s := d.eng.Status()
	return console.Status{State: s.State, SessionLeft: s.Remaining, Locked: s.Locked, LastError: s.LastError, ConnCheck: s.ConnCheck}
}

func (d *consoleDevice) QRText() []byte { return d.eng.QRText() }

func (d *consoleDevice) AuditTail(n int) ([]string, error) {
	recs, err := d.log.Tail(n)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(recs))
	for _, r := range recs {
		line := fmt.Sprintf("%d %s %s", r.Seq, r.WallTime.Format(time.RFC3339), r.Event.Event)
		if !r.ClockTrusted {
			line += " (clock untrusted)"
		}
		if r.From != "" || r.To != "" {
			line += fmt.Sprintf(" %s->%s", r.From, r.To)
		}
		if r.Code != "" {
			line += " code=" + r.Code
		}
		if r.Actor != "" {
			line += " actor=" + r.Actor
		}
		if r.Reason != "" {
			line += " reason=" + r.Reason
		}
		out = append(out, line)
	}
	return out, nil
}

func (d *consoleDevice) Config() ([]console.Setting, error) {
	p, ok, err := d.set.Current()
	if err != nil {
		return nil, err
	}
	s := []console.Setting{{Name: "deviceId", Value: d.c.Engine.DeviceID}, {Name: "deviceSerial", Value: d.c.Engine.DeviceSerial}}
	if !ok {
		return append(s, console.Setting{Name: "provisioned", Value: "no"}), nil
	}
	s = append(s,
		console.Setting{Name: "provisioned", Value: "yes"},
		console.Setting{Name: "deviceLabel", Value: p.DeviceLabel},
		console.Setting{Name: "serverUrl", Value: p.ServerURL},
		console.Setting{Name: "configVersion", Value: fmt.Sprint(p.ConfigVersion)},
		console.Setting{Name: "provisionedAt", Value: p.ProvisionedAt.Format(time.RFC3339)},
		console.Setting{Name: "caCertificate", Value: certSummary(p.CACertDER)},
		console.Setting{Name: "clientCertificate", Value: certSummary(p.ClientCertDER)},
	)
	return s, nil
}

func certSummary(der []byte) string {
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return "unreadable"
	}
	sum := sha256.Sum256(der)
	return fmt.Sprintf("%s, until %s, sha256 %s", c.Subject.CommonName, c.NotAfter.Format("2006-01-02"), hex.EncodeToString(sum[:8]))
}

func (d *consoleDevice) PublicKeys() ([]console.PublicKey, error) {
	var out []console.PublicKey
	add := func(name string, pub any) error {
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			return fmt.Errorf("%s key: %w", name, err)
		}
		out = append(out, console.PublicKey{Name: name, SPKI: der})
		return nil
	}
	if err := add("identity", d.keys.Identity().Public()); err != nil {
		return nil, err
	}
	if err := add("payload", d.keys.PayloadKey().PublicKey()); err != nil {
		return nil, err
	}
	if k, err := d.keys.CommittedClientKey(); err == nil {
		if err := add("client", k.Public()); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (d *consoleDevice) Enrollment() ([]byte, error) {
	if d.c.Enrollment == nil {
		return nil, errors.New("no enrollment record")
	}
	b, err := d.c.Enrollment()
	if err == nil && len(b) == 0 {
		err = errors.New("no enrollment record")
	}
	return b, err
}

func (d *consoleDevice) Net() ([]string, error) {
	if d.c.NetLines == nil {
		return []string{"address " + d.c.Address()}, nil
	}
	return d.c.NetLines(), nil
}

func (d *consoleDevice) Version() string { return d.c.Version }

func (d *consoleDevice) Provision() error {
	_ = d.log.Record(audit.Event{Event: "CONSOLE_PROVISION", Actor: "console"})
	return d.eng.ConsoleProvision()
}

func (d *consoleDevice) Reboot() error {
	_ = d.log.Record(audit.Event{Event: "REBOOT_REQUESTED", Actor: "console"})
	if d.c.Reboot == nil {
		return errors.New("reboot is not available")
	}
	return d.c.Reboot()
}

func (d *consoleDevice) FactoryReset(ctx context.Context) error { return d.eng.FactoryReset(ctx) }
