package boot

import (
	"crypto/rand"
	"crypto/x509"
	"errors"
	"image"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/zmonitor/firmware/internal/base/version"
	"github.com/zmonitor/firmware/internal/fw/audit"
	"github.com/zmonitor/firmware/internal/fw/engine"
	"github.com/zmonitor/firmware/internal/fw/fault"
	"github.com/zmonitor/firmware/internal/fw/keys"
	"github.com/zmonitor/firmware/internal/fw/screen"
	"github.com/zmonitor/firmware/internal/fw/settings"
	"github.com/zmonitor/firmware/internal/proto/state"
	"github.com/zmonitor/firmware/internal/testkit/testpki"
)

// provisioned commits settings whose client certificate is for key (nil:
// the store's committed client key, which it commits first) into dir, as a
// pairing that went through leaves them.
func provisioned(t *testing.T, dir string, ks keys.Store, key any) settings.Provisioning {
	t.Helper()
	if key == nil {
		ck, err := ks.NewClientKey()
		if err != nil {
			t.Fatal(err)
		}
		if err := ck.Commit(); err != nil {
			t.Fatal(err)
		}
		key = ck.Public()
	}
	ca, err := testpki.NewCA("hospital CA", testWallStart)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificate(rand.Reader, testpki.ClientTemplate("ZM-001"), ca.Cert, key, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	p := settings.Provisioning{
		ServerURL: "https://127.0.0.1:1/zm", DeviceLabel: "ICU-MON-04", DeviceID: "ZM-001",
		CACertDER: ca.Cert.Raw, ClientCertDER: der, ClientKeyRef: engine.ClientKeyRef,
		ConfigVersion: 3, ProvisionedAt: testWallStart,
	}
	set, err := settings.Open(filepath.Join(dir, settings.FileName), nopRecorder{})
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	if err := set.Stage(p); err != nil {
		t.Fatal(err)
	}
	if err := set.Commit(); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestFirstFrameDecision(t *testing.T) {
	ks := softKeys(t)
	cur := provisioned(t, t.TempDir(), ks, nil)

	f := decideFirstFrame(settings.Provisioning{}, false, nil)
	if start, why := f.start(ks); f.state != state.Unprovisioned || start.State != state.Unprovisioned || why != nil {
		t.Errorf("no settings: %+v, start %+v, %v", f, start, why)
	}

	f = decideFirstFrame(settings.Provisioning{}, false, errors.New("bbolt: page 7 unreadable"))
	start, why := f.start(ks)
	if f.state != state.Unprovisioned || start.State != state.Unprovisioned || why == nil || why.Event != "SETTINGS_UNREADABLE" || !strings.Contains(why.Reason, "page 7") {
		t.Errorf("unreadable settings: %+v, start %+v, %+v", f, start, why)
	}

	f = decideFirstFrame(cur, true, nil)
	if f.state != state.Provisioned || f.tentative().Committed.ServerURL != cur.ServerURL {
		t.Errorf("committed settings: first frame %+v", f)
	}
	start, why = f.start(ks)
	if start.State != state.Provisioned || start.Committed == nil || start.Committed.DeviceLabel != "ICU-MON-04" || why != nil {
		t.Errorf("matching client key: start %+v, %v", start, why)
	}

	// The power cut between the two commits: the settings' certificate is
	// for another key than the key store's committed one.
	other := softKeys(t)
	f = decideFirstFrame(provisioned(t, t.TempDir(), other, softKeys(t).Identity().Public()), true, nil)
	start, why = f.start(other)
	if start.State != state.Unprovisioned || start.Committed != nil || why == nil || why.Event != "CLIENT_KEY_MISMATCH" {
		t.Errorf("mismatched client key: start %+v, %+v", start, why)
	}
}

// auditEvents reads the names of the events in dir's audit log, in order.
func auditEvents(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, audit.FileName))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		_, rest, ok := strings.Cut(line, `"event":"`)
		if !ok {
			continue
		}
		name, _, _ := strings.Cut(rest, `"`)
		out = append(out, name)
	}
	return out
}

// A device with committed settings and the matching client key starts
// PROVISIONED, showing the committed label and server.
func TestProvisionedDeviceStartsProvisioned(t *testing.T) {
	dir := t.TempDir()
	ks := softKeys(t)
	provisioned(t, dir, ks, nil)
	c := baseConfig(t, dir, ks)
	p := &lockedPanel{panel: panel{img: image.NewRGBA(image.Rect(0, 0, 240, 240))}}
	c.Display = p
	r := startRun(t, c)
	if s := r.eng.Status().State; s != state.Provisioned {
		t.Fatalf("state %s, want PROVISIONED", s)
	}
	want := screen.View{State: state.Provisioned, DeviceID: "ZM-001", DeviceSerial: "SN-1", DeviceLabel: "ICU-MON-04",
		FirmwareVersion: version.Version, ServerHost: "127.0.0.1:1"}
	p.mu.Lock()
	d := differingPixels(t, &p.panel, want)
	p.mu.Unlock()
	if d != 0 {
		t.Errorf("panel differs from the PROVISIONED screen in %d pixels", d)
	}
	r.stop(t)
	if ev := auditEvents(t, dir); !containsInOrder(ev, "BOOT") || containsInOrder(ev, "CLIENT_KEY_MISMATCH") {
		t.Errorf("audit events %v", ev)
	}
}

// Committed settings whose certificate is not for the committed client key
// (a power cut between the two commits) are not used: the device starts
// UNPROVISIONED and the audit log says why before BOOT.
func TestMismatchedClientKeyStartsUnprovisioned(t *testing.T) {
	dir := t.TempDir()
	ks := softKeys(t)
	ck, err := ks.NewClientKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := ck.Commit(); err != nil {
		t.Fatal(err)
	}
	provisioned(t, dir, ks, softKeys(t).Identity().Public())
	r := startRun(t, baseConfig(t, dir, ks))
	if s := r.eng.Status().State; s != state.Unprovisioned {
		t.Errorf("state %s, want UNPROVISIONED", s)
	}
	r.stop(t)
	if ev := auditEvents(t, dir); !containsInOrder(ev, "CLIENT_KEY_MISMATCH", "BOOT") {
		t.Errorf("audit events %v, want CLIENT_KEY_MISMATCH then BOOT", ev)
	}
}

// containsInOrder reports whether names holds want in that order.
func containsInOrder(names []string, want ...string) bool {
	for _, n := range names {
		if len(want) > 0 && n == want[0] {
			want = want[1:]
		}
	}
	return len(want) == 0
}

// orderPanel records, at its first draw, whether the keys were being loaded
// and the audit log existed.
type orderPanel struct {
	lockedPanel
	dir        string
	keysCalled func() bool
	once       sync.Once
	keysBefore bool
	logBefore  bool
}

func (p *orderPanel) Draw(r image.Rectangle, src image.Image, sp image.Point) error {
	p.once.Do(func() {
		p.keysBefore = p.keysCalled()
		_, err := os.Stat(filepath.Join(p.dir, audit.FileName))
		p.logBefore = err == nil
	})
	return p.lockedPanel.Draw(r, src, sp)
}

// The first frame waits for neither the keys nor the audit log: the key
// store is opened, and the audit log (its hash chain verified) opens, only
// once the first frame is on the panel.
func TestFirstFrameComesBeforeTheKeysAndTheAuditLog(t *testing.T) {
	dir := t.TempDir()
	ks := softKeys(t)
	var mu sync.Mutex
	called := false
	p := &orderPanel{lockedPanel: lockedPanel{panel: panel{img: image.NewRGBA(image.Rect(0, 0, 240, 240))}}, dir: dir,
		keysCalled: func() bool { mu.Lock(); defer mu.Unlock(); return called }}
	c := baseConfig(t, dir, ks)
	c.Display = p
	c.Keys = func(bool) (keys.Store, func() error, error) {
		mu.Lock()
		called = true
		mu.Unlock()
		return ks, func() error { return nil }, nil
	}
	r := startRun(t, c)
	r.stop(t)
	if p.keysBefore {
		t.Error("the key store was opened before the first frame was drawn")
	}
	if p.logBefore {
		t.Error("the audit log was opened before the first frame was drawn")
	}
}

// An identity that cannot be read stops the device with the step and the
// reason, and the panel says so.
func TestUnreadableIdentityShowsTheFault(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "identity.json"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	runUntilFault(t, baseConfig(t, dir, softKeys(t)), "F-IDN-01 Device identity unreadable: read the identity: read identity", fault.Identity)
}
