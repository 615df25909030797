package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/zmonitor/firmware/internal/fw/engine"
	"github.com/zmonitor/firmware/internal/fw/screen"
	"github.com/zmonitor/firmware/internal/proto/state"
)

// TestRevocationOnTheBoard: a paired device's certificate is revoked by
// the operator (zm-central certificates revoke); after a power cycle the
// monitoring server, enforcing the device CA's CRL, refuses it; the device
// stays PROVISIONED, its status and audit say CERTIFICATE_REVOKED, and its
// screen shows the revocation notice.
func TestRevocationOnTheBoard(t *testing.T) {
	ctx := ctxT(t, 12*time.Minute)
	p := newPrograms(t, ctx)
	p.serve(true)
	d := p.boot()
	p.pair("ICU-MON-06")
	enr, err := d.Enroll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	serial, _, _ := certLine(t, ctx, d)

	p.stopServe()
	out := p.run("zm-central", "certificates", "revoke", "--dir", p.central, "--reason", "key-compromise", "--note", "e2e drill", serial)
	if !strings.Contains(out, "revoked (key-compromise)") {
		t.Fatalf("certificates revoke: %s", out)
	}
	p.serve(true)
	if err := d.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := d.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	var st string
	for deadline := time.Now().Add(2 * time.Minute); ; {
		_, _, st = certLine(t, ctx, d)
		if strings.Contains(st, "connection check: FAILED") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no failed connection check within 2 minutes:\n%s\n%s", st, p.logTail())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !strings.Contains(st, "state: PROVISIONED") || !strings.Contains(st, "revoked") {
		t.Errorf("status after the revocation:\n%s", st)
	}
	a, err := d.Command(ctx, "audit 20")
	if err != nil || !strings.Contains(a, "CONNECTION_CHECK_FAILED code=CERTIFICATE_REVOKED") {
		t.Errorf("device audit: %v\n%s", err, a)
	}
	if log := p.logText(); !strings.Contains(log, "revoked certificate refused") || !strings.Contains(log, "serial="+serial) {
		t.Errorf("the monitoring server did not log the refusal:\n%s", p.logTail())
	}
	// The screen: exactly the PROVISIONED screen with the notice (rendered
	// here), not the one without.
	img, err := d.Screenshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := screen.View{State: state.Provisioned, DeviceID: enr.DeviceID, DeviceSerial: enr.DeviceSerial, FirmwareVersion: enr.FirmwareVersion,
		DeviceLabel: "ICU-MON-06", ServerHost: guestURL(9443)[len("https://"):], Notice: engine.RevokedNotice}
	with := screenDiff(t, img, want)
	want.Notice = ""
	without := screenDiff(t, img, want)
	t.Logf("screen differs from the revoked screen by %.4f, from the plain PROVISIONED screen by %.4f", with, without)
	if with > 0.01 || without <= 0.01 {
		t.Errorf("the screen does not show the revocation notice (diff %.4f with it, %.4f without)", with, without)
		save(t, d, "revoked")
	}
}
