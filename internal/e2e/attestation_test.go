package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zmonitor/firmware/image/manifest"
	"github.com/zmonitor/firmware/internal/testkit/harness"
	"github.com/zmonitor/firmware/qemu"
)

// bootSecure builds the signed firmware image with the Central Station's
// provisioning root and boots it on qemu-virt-secure (U-Boot verifies and
// measures it), with the Central Station's ports forwarded as boot does.
// It returns the image's manifest file.
func (p *programs) bootSecure(s harness.SecureBoard) string {
	t := p.t
	anchor, err := os.ReadFile(filepath.Join(p.central, "provisioning-root.pem"))
	if err != nil {
		t.Fatal(err)
	}
	e := need(t)
	dir := filepath.Join(t.TempDir(), "image")
	if _, err := s.Image(e.firmware, anchor, s.Keys, harness.SecureCmdline, dir); err != nil {
		t.Fatal(err)
	}
	cfg := s.Config(filepath.Join(dir, manifest.EFIFileName), t.TempDir())
	cfg.HostFwd = []qemu.HostFwd{{GuestPort: harness.ProvisioningPort, HostPort: p.devPort}}
	cfg.GuestFwd = []qemu.GuestFwd{{GuestPort: harness.MonitorGuestPort, HostPort: p.monPort},
		{GuestPort: harness.ESTGuestPort, HostPort: p.estPort}}
	bctx, cancel := context.WithTimeout(p.ctx, 3*time.Minute)
	defer cancel()
	b, err := qemu.Start(bctx, cfg)
	if err != nil {
		t.Fatalf("start the secure board: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	d := &harness.Device{Board: b}
	if err := d.WaitConsole(bctx); err != nil {
		t.Fatal(err)
	}
	p.board = d
	return filepath.Join(dir, manifest.FileName)
}

// TestSecureBoardPairsWithAttestation is the whole chain on the board a
// manufacturer would ship: the signed image boots under Secure Boot
// (U-Boot measures it into PCR 4, the policy into PCR 7), the technician
// pairs it with the real programs, and zm-central serve, without the
// development flag, checks the device's TPM quote over PCR 4 and 7 (by the
// attestation key of its enrollment record, over this hello's nonce), its
// event log and the image it booted before it issues anything. The image
// not yet released is refused (FIRMWARE_NOT_TRUSTED, no certificate
// issued, the device told in the hello's exchange); once `firmware allow` lists its manifest, the next pairing
// attests and the device ends PROVISIONED. Both outcomes are audited, and
// the refused device shows FIRMWARE_NOT_TRUSTED on its own screen.
func TestSecureBoardPairsWithAttestation(t *testing.T) {
	s := needSecure(t)
	ctx := ctxT(t, 12*time.Minute)
	p := newPrograms(t, ctx)
	p.measured = true
	p.serve(false)
	manifestFile := p.bootSecure(s)
	d := p.board
	if err := d.WaitStateFor(ctx, "UNPROVISIONED", 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	p.importEnrollment()

	// Not released yet: refused before anything is issued.
	if err := d.PressFor(ctx, "READY_TO_PAIR"); err != nil {
		t.Fatal(err)
	}
	shot, first := p.photograph(nil)
	out, errOut, err := p.zmPairScan("ICU-MON-07", shot)
	if err == nil || !strings.Contains(out+errOut, "Firmware not trusted") {
		t.Fatalf("pairing an image not on the allow-list: err %v\nstdout:\n%s\nstderr:\n%s\nzm-central:\n%s", err, out, errOut, p.logTail())
	}
	if certs := p.run("zm-central", "certificates", "list", "--dir", p.central); strings.Contains(certs, harness.SecureDeviceID) {
		t.Fatalf("a certificate was issued for firmware not trusted:\n%s", certs)
	}
	// The Central Station told the device (POST /v1/refusal in the
	// hello's exchange): its screen and its audit log say so at once.
	if err := d.WaitStateFor(ctx, "PROVISIONING_FAILED", 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if st, _ := d.Command(ctx, "status"); !strings.Contains(st, "FIRMWARE_NOT_TRUSTED") || !strings.Contains(st, "Firmware not trusted") {
		t.Errorf("device status after the refusal:\n%s", st)
	}
	if a, _ := d.Command(ctx, "audit 20"); !strings.Contains(a, "CENTRAL_REFUSED") {
		t.Errorf("the device's audit log has no CENTRAL_REFUSED:\n%s", a)
	}

	// Released: the same image, allowed by its manifest, pairs after one
	// press for a new code.
	p.run("zm-central", "firmware", "allow", "--dir", p.central, manifestFile)
	if err := d.PressFor(ctx, "READY_TO_PAIR"); err != nil {
		t.Fatal(err)
	}
	shot, _ = p.photograph(first)
	out, errOut, err = p.zmPairScan("ICU-MON-07", shot)
	if err != nil || !strings.Contains(out, "PROVISIONED: "+harness.SecureDeviceID+" is ready (label ICU-MON-07)") {
		t.Fatalf("pairing the allowed image: err %v\nstdout:\n%s\nstderr:\n%s\n%v\nzm-central:\n%s", err, out, errOut, d.Failure("pairing"), p.logTail())
	}
	if err := d.WaitStateFor(ctx, "PROVISIONED", 30*time.Second); err != nil {
		t.Fatal(err)
	}
	trail := p.run("zm-central", "audit", "export", "--dir", p.central)
	for _, ev := range []string{"firmware.not_trusted", "firmware.allow", "firmware.attested"} {
		if !strings.Contains(trail, ev) {
			t.Errorf("the Central Station's audit trail has no %s", ev)
		}
	}
}
