package e2e

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/zmonitor/firmware/internal/central/store"
	"github.com/zmonitor/firmware/internal/fw/screen"
	"github.com/zmonitor/firmware/internal/proto/state"
	"github.com/zmonitor/firmware/internal/testkit/harness"
)

// tpmIdentity is the device identity key's persistent handle
// (drivers/tpm.DefaultIdentityHandle).
const tpmIdentity = 0x81010001

// TestDecommissionOnTheBoard: the operator decommissions a paired device
// (zm-central devices decommission); at its next contact (the check-in
// with the EST server at boot) the device wipes its provisioning: the
// settings and both client key slots go, the identity key stays (read
// from the TPM with the board stopped); it shows DECOMMISSIONED on the
// console and the panel; both sides audit it.
func TestDecommissionOnTheBoard(t *testing.T) {
	ctx := ctxT(t, 12*time.Minute)
	p := newPrograms(t, ctx)
	p.serve(true)
	d := p.boot()
	p.pair("ICU-MON-07")
	enr, err := d.Enroll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	netOut, err := d.Command(ctx, "net")
	if err != nil {
		t.Fatal(err)
	}
	ip := regexp.MustCompile(`\b10\.0\.2\.\d+\b`).FindString(netOut)

	p.stopServe()
	out := p.run("zm-central", "devices", "decommission", "--dir", p.central, programsDeviceID)
	if !strings.Contains(out, "decommissioned, and 1 certificate(s) of it revoked") {
		t.Fatalf("devices decommission: %s", out)
	}
	p.serve(true)
	if err := d.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := d.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if err := d.WaitStateFor(ctx, "DECOMMISSIONED", 2*time.Minute); err != nil {
		t.Fatalf("%v\n%s", err, p.logTail())
	}
	a, err := d.Command(ctx, "audit 30")
	if err != nil || !strings.Contains(a, "DECOMMISSIONED") || !strings.Contains(a, "identity kept") {
		t.Errorf("device audit: %v\n%s", err, a)
	}
	if cfg, err := d.Command(ctx, "config"); err != nil || strings.Contains(cfg, "/.well-known/est") || strings.Contains(cfg, "https://") {
		t.Errorf("the settings survived the decommissioning: %v\n%s", err, cfg)
	}

	// The panel: the DECOMMISSIONED screen, not the UNPROVISIONED one.
	img, err := d.Screenshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := screen.View{State: state.Decommissioned, DeviceID: enr.DeviceID, DeviceSerial: enr.DeviceSerial,
		FirmwareVersion: enr.FirmwareVersion, IPAddress: ip}
	with := screenDiff(t, img, want)
	want.State = state.Unprovisioned
	without := screenDiff(t, img, want)
	t.Logf("screen differs from DECOMMISSIONED by %.4f, from UNPROVISIONED by %.4f", with, without)
	if with > 0.01 || without <= with {
		t.Errorf("the panel does not show DECOMMISSIONED (diff %.4f with it, %.4f unprovisioned)", with, without)
		save(t, d, "decommissioned")
	}

	// The TPM from outside: no client key in either slot, the identity
	// key as enrolled.
	if err := d.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	tpmKeys, err := harness.TPMPersistentKeys(ctx, d.StateDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []uint32{tpmSlotA, tpmSlotB} {
		if _, ok := tpmKeys[h]; ok {
			t.Errorf("a client key is left in the TPM at 0x%08x", h)
		}
	}
	if _, ok := tpmKeys[tpmIdentity]; !ok {
		t.Errorf("the identity key is gone from the TPM (0x%08x)", tpmIdentity)
	}

	// The Central Station's audit: ordered, revoked, delivered.
	p.stopServe()
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(p.central, "central.db"), &store.Opts{MustExist: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var events []string
	if err := st.ExportAudit(ctx, func(r store.AuditRecord) error { events = append(events, r.Event); return nil }); err != nil {
		t.Fatal(err)
	}
	all := strings.Join(events, " ")
	for _, ev := range []string{"device.decommissioned", "certificate.revoked", "device.decommission_delivered"} {
		if !strings.Contains(all, ev) {
			t.Errorf("station audit has no %s: %v", ev, events)
		}
	}
}
