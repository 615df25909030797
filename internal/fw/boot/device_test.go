package boot

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"image"
	"image/color"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zmonitor/firmware/board"
	"github.com/zmonitor/firmware/drivers/button"
	"github.com/zmonitor/firmware/internal/base/clock"
	"github.com/zmonitor/firmware/internal/base/version"
	"github.com/zmonitor/firmware/internal/fw/audit"
	"github.com/zmonitor/firmware/internal/fw/engine"
	"github.com/zmonitor/firmware/internal/fw/fault"
	"github.com/zmonitor/firmware/internal/fw/identity"
	"github.com/zmonitor/firmware/internal/fw/keys"
	"github.com/zmonitor/firmware/internal/fw/keys/softkeys"
	"github.com/zmonitor/firmware/internal/fw/screen"
	"github.com/zmonitor/firmware/internal/fw/settings"
	"github.com/zmonitor/firmware/internal/proto/state"
	"github.com/zmonitor/firmware/internal/testkit/testpki"
)

// panel is a display.Drawer into memory.
type panel struct{ img *image.RGBA }

func (p *panel) String() string          { return "panel" }
func (p *panel) Halt() error             { return nil }
func (p *panel) ColorModel() color.Model { return color.RGBAModel }
func (p *panel) Bounds() image.Rectangle { return p.img.Rect }
func (p *panel) Draw(r image.Rectangle, src image.Image, sp image.Point) error {
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			p.img.Set(x, y, src.At(sp.X+x-r.Min.X, sp.Y+y-r.Min.Y))
		}
	}
	return nil
}

// fakeButton delivers presses the test sends.
type fakeButton struct{ presses chan struct{} }

func (b *fakeButton) Run(ctx context.Context, out chan<- button.Event) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-b.presses:
			out <- button.Event{Kind: button.Press, At: time.Now()}
		}
	}
}

// pipeRW joins the console's input and output pipes.
type pipeRW struct {
	io.Reader
	io.Writer
}

// testWallStart is the wall clock's floor in these tests.
var testWallStart = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// baseConfig is a device ZM-001 (serial SN-1) with the key store ks, a
// test trust anchor, the system clock and an in-memory 240×240 panel, its
// data in dir; tests change what they need.
func baseConfig(t *testing.T, dir string, ks keys.Store) Config {
	clk := clock.System{}
	return Config{
		Profile: board.Profile{Name: "test-board"},
		DataDir: dir,
		Given:   identity.Identity{DeviceID: "ZM-001", DeviceSerial: "SN-1"},
		Listen:  "127.0.0.1:0",
		Anchors: anchorFile(t),
		Keys:    storeKeys(ks, nil),
		Clock:   clk,
		Wall:    clock.NewWall(clk, testWallStart, nil),
		Display: &panel{img: image.NewRGBA(image.Rect(0, 0, 240, 240))},
	}
}

// storeKeys opens ks, or fails with err.
func storeKeys(ks keys.Store, err error) OpenKeys {
	return func(bool) (keys.Store, func() error, error) {
		if err != nil {
			return nil, nil, err
		}
		return ks, func() error { return nil }, nil
	}
}

// anchorFile writes a provisioning trust anchor (a test CA) into a file.
func anchorFile(t *testing.T) string {
	t.Helper()
	ca, err := testpki.NewCA("provisioning root", testWallStart)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "anchor.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func softKeys(t *testing.T) keys.Store {
	t.Helper()
	ks, err := softkeys.New(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

// running is a Run in the background.
type running struct {
	eng    *engine.Engine
	done   chan error
	cancel context.CancelFunc
}

// startRun runs c in the background and waits until its engine runs; a
// Run that stops first, or an engine that does not start in 10 s, fails the
// test.
func startRun(t *testing.T, c Config) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	started := make(chan *engine.Engine, 1)
	c.Started = func(e *engine.Engine) { started <- e }
	r := &running{done: make(chan error, 1), cancel: cancel}
	go func() { r.done <- Run(ctx, c) }()
	select {
	case r.eng = <-started:
	case err := <-r.done:
		t.Fatalf("Run stopped: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("engine did not start")
	}
	return r
}

// stop ends Run and fails the test unless it ended cleanly.
func (r *running) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	if err := <-r.done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

func TestRunWiresButtonConsoleAndScreen(t *testing.T) {
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	btn := &fakeButton{presses: make(chan struct{})}
	c := baseConfig(t, t.TempDir(), softKeys(t))
	c.Button = btn
	c.Console = pipeRW{inR, outW}
	c.Address = func() string { return "127.0.0.1" }
	r := startRun(t, c)
	eng := r.eng
	lines := bufio.NewScanner(outR)
	readUntil := func(want string) string {
		t.Helper()
		got := make(chan string, 1)
		go func() {
			var all strings.Builder
			for lines.Scan() {
				all.WriteString(lines.Text() + "\n")
				if strings.Contains(lines.Text(), want) {
					break
				}
			}
			got <- all.String()
		}()
		select {
		case s := <-got:
			if !strings.Contains(s, want) {
				t.Fatalf("console never said %q; said:\n%s", want, s)
			}
			return s
		case <-time.After(10 * time.Second):
			t.Fatalf("console did not say %q in time", want)
		}
		return ""
	}
	send := func(s string) {
		go inW.Write([]byte(s + "\r"))
	}
	send("status")
	readUntil("UNPROVISIONED")
	btn.presses <- struct{}{}
	deadline := time.Now().Add(10 * time.Second)
	for eng.Status().State != state.ReadyToPair {
		if time.Now().After(deadline) {
			t.Fatalf("button press did not reach the engine: %+v", eng.Status())
		}
		time.Sleep(5 * time.Millisecond)
	}
	send("status")
	readUntil("READY_TO_PAIR")
	send("enroll")
	readUntil(`deviceId`)
	send("audit 50")
	out := readUntil("BUTTON_PRESSED")
	if strings.Contains(out, "pairingCode") {
		t.Error("audit output mentions a pairing code")
	}
	r.cancel()
	inW.Close()
	outR.Close()
	if err := <-r.done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// A key store that fails to load stops Run with the step and the reason,
// after the audit log and settings were opened (they are closed again), and
// the panel shows the device fault rather than a prompt to press the
// button.
func TestKeysFailureStopsRun(t *testing.T) {
	c := baseConfig(t, t.TempDir(), nil)
	c.Keys = storeKeys(nil, errors.New("TPM not answering"))
	runUntilFault(t, c, "F-TPM-01 TPM keys unavailable: load the keys: TPM not answering", fault.TPMKeys)
}

// runUntilFault runs c, which must stop with an error containing wantErr
// and carrying fault f, and leave the panel showing f's device fault.
func runUntilFault(t *testing.T, c Config, wantErr string, f fault.Fault) {
	t.Helper()
	err := Run(context.Background(), c)
	if err == nil || !strings.Contains(err.Error(), wantErr) {
		t.Fatalf("Run = %v, want an error containing %q", err, wantErr)
	}
	var fe *fault.Error
	if !errors.As(err, &fe) || fe.Fault != f {
		t.Errorf("Run = %v, want fault %s", err, f.Code())
	}
	want := screen.View{State: state.Unprovisioned, DeviceID: "ZM-001", DeviceSerial: "SN-1", FirmwareVersion: version.Version, Fault: f}
	if d := differingPixels(t, c.Display.(*panel), want); d != 0 {
		t.Errorf("panel differs from the %s fault screen in %d pixels", f.Code(), d)
	}
}

// differingPixels counts the pixels of the panel that differ from v drawn
// by the screen package.
func differingPixels(t *testing.T, p *panel, v screen.View) int {
	t.Helper()
	var buf bytes.Buffer
	if err := screen.RenderPNG(v, p.img.Rect.Dx(), p.img.Rect.Dy(), &buf); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for y := p.img.Rect.Min.Y; y < p.img.Rect.Max.Y; y++ {
		for x := p.img.Rect.Min.X; x < p.img.Rect.Max.X; x++ {
			if color.RGBAModel.Convert(img.At(x, y)) != p.img.RGBAAt(x, y) {
				n++
			}
		}
	}
	return n
}

// lockedPanel is a panel a test can read while Run draws on it.
type lockedPanel struct {
	mu sync.Mutex
	panel
	draws int
}

func (p *lockedPanel) Draw(r image.Rectangle, src image.Image, sp image.Point) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.draws++
	return p.panel.Draw(r, src, sp)
}

// An unprovisioned device shows its screen as soon as the settings say so,
// without waiting for the TPM's keys; the engine, once it starts, draws
// nothing new for the same view.
func TestUnprovisionedScreenDoesNotWaitForTheKeys(t *testing.T) {
	ks := softKeys(t)
	p := &lockedPanel{panel: panel{img: image.NewRGBA(image.Rect(0, 0, 240, 240))}}
	release := make(chan struct{})
	started := make(chan *engine.Engine, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	c := baseConfig(t, t.TempDir(), ks)
	c.Keys = func(bool) (keys.Store, func() error, error) {
		<-release // the TPM is slow
		return ks, func() error { return nil }, nil
	}
	c.Display = p
	c.Address = func() string { return "10.0.2.15" }
	c.Started = func(e *engine.Engine) { started <- e }
	go func() { done <- Run(ctx, c) }()
	want := screen.View{State: state.Unprovisioned, DeviceID: "ZM-001", DeviceSerial: "SN-1", FirmwareVersion: version.Version, IPAddress: "10.0.2.15"}
	deadline := time.Now().Add(10 * time.Second)
	for {
		p.mu.Lock()
		drawn := p.draws > 0
		p.mu.Unlock()
		if drawn {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("nothing drawn while the keys were loading")
		}
		time.Sleep(5 * time.Millisecond)
	}
	p.mu.Lock()
	d, draws := differingPixels(t, &p.panel, want), p.draws
	p.mu.Unlock()
	if d != 0 {
		t.Fatalf("first frame differs from the UNPROVISIONED screen in %d pixels", d)
	}
	close(release)
	select {
	case <-started:
	case err := <-done:
		t.Fatalf("Run stopped: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("engine did not start")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.draws != draws {
		t.Errorf("the engine drew the same screen again (%d draws, then %d)", draws, p.draws)
	}
}

type brokenButton struct{}

func (brokenButton) Run(context.Context, chan<- button.Event) error {
	return errors.New("open: gpiochip0 line 3: device or resource busy")
}

// A button that cannot be used does not stop the device: it reaches its
// first screen and keeps running, and the failure is in the audit log.
func TestBrokenButtonIsAuditedAndTheDeviceRuns(t *testing.T) {
	dir := t.TempDir()
	c := baseConfig(t, dir, softKeys(t))
	c.Button = brokenButton{}
	r := startRun(t, c)
	eng := r.eng
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(filepath.Join(dir, audit.FileName))
		if strings.Contains(string(b), `"BUTTON_FAILED"`) && strings.Contains(string(b), "device or resource busy") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no BUTTON_FAILED record; audit log:\n%s", b)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if s := eng.Status().State; s != state.Unprovisioned {
		t.Errorf("state %s, want UNPROVISIONED", s)
	}
	select {
	case err := <-r.done:
		t.Fatalf("Run stopped after the button failed: %v", err)
	default:
	}
	r.stop(t)
}

// nopRecorder takes audit events and drops them.
type nopRecorder struct{}

func (nopRecorder) Record(audit.Event) error { return nil }

// A stage left by a pairing that a power cut interrupted is discarded when
// the settings open, before the audit log would otherwise open (after the
// first frame): the discard opens the log, waits for it and is recorded in
// it.
func TestLeftoverStageIsDiscardedIntoTheAuditLog(t *testing.T) {
	dir := t.TempDir()
	ca, err := testpki.NewCA("ca", testWallStart)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.NewLeaf(testpki.ClientTemplate("client"), testWallStart)
	if err != nil {
		t.Fatal(err)
	}
	set, err := settings.Open(filepath.Join(dir, settings.FileName), nopRecorder{})
	if err != nil {
		t.Fatal(err)
	}
	if err := set.Stage(settings.Provisioning{
		ServerURL: "https://cs.hospital.example:8443/zm", DeviceLabel: "ICU-MON-04", DeviceID: "ZM-001",
		CACertDER: ca.Cert.Raw, ClientCertDER: leaf.Cert.Raw, ClientKeyRef: "0x81000001",
		ConfigVersion: 3, ProvisionedAt: testWallStart,
	}); err != nil {
		t.Fatal(err)
	}
	set.Close() // the power cut

	r := startRun(t, baseConfig(t, dir, softKeys(t)))
	eng := r.eng
	if s := eng.Status().State; s != state.Unprovisioned {
		t.Errorf("state %s, want UNPROVISIONED", s)
	}
	b, err := os.ReadFile(filepath.Join(dir, audit.FileName))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"`+settings.EventStageDiscarded+`"`) || !strings.Contains(string(b), "config version 3") {
		t.Fatalf("no STAGE_DISCARDED record for version 3; audit log:\n%s", b)
	}
	r.stop(t)
}

// An audit log that cannot be opened stops Run with the reason, even when
// the UNPROVISIONED screen was already shown (it does not wait for the log),
// and the panel ends on the device fault.
func TestAuditFailureShowsTheFault(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, audit.FileName), 0o700); err != nil { // not a file
		t.Fatal(err)
	}
	runUntilFault(t, baseConfig(t, dir, softKeys(t)), "F-AUD-01 Audit log unavailable: open the audit log: ", fault.AuditLog)
}
