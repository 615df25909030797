package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/zmonitor/firmware/internal/central/store"
	"github.com/zmonitor/firmware/internal/testkit/harness"
)

// The TPM's client key slots (drivers/tpm DefaultClientHandle,
// DefaultClientHandleB).
const (
	tpmSlotA = 0x81010003
	tpmSlotB = 0x81010004
)

var certLineRE = regexp.MustCompile(`certificate: serial ([0-9a-f]+), key slot ([AB]),`)

// certLine is the device's certificate serial and key slot from status.
func certLine(t *testing.T, ctx context.Context, d *harness.Device) (serial, slot, status string) {
	t.Helper()
	out, err := d.Command(ctx, "status")
	if err != nil {
		t.Fatal(err)
	}
	m := certLineRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("status has no certificate line:\n%s", out)
	}
	return m[1], m[2], out
}

// TestRenewalOnTheBoard is the --clock-offset drill on the real image:
// paired by the programs with an EST server, the device is restarted
// against a Central Station whose clock is 9 months ahead. Its boot
// connection test learns the time, finds the certificate due (two thirds
// of 397 days), and renews: a new TPM key in the other slot, EST simple
// re-enrollment over mutual TLS with the current certificate, a
// connection test with the new pair, the switch, the old key evicted.
// Checked from outside: the chain verifies against the device CA, the
// TPM (read with swtpm after the board stopped) holds only the new key,
// in slot B, and the next boot's monitoring connection presents the new
// certificate.
func TestRenewalOnTheBoard(t *testing.T) {
	ctx := ctxT(t, 15*time.Minute)
	p := newPrograms(t, ctx)
	p.serve(true)
	d := p.boot()
	p.pair("ICU-MON-05")
	oldSerial, slot, st := certLine(t, ctx, d)
	if slot != "A" || !strings.Contains(st, "renewal: due ") {
		t.Fatalf("after pairing: key slot %s, status:\n%s", slot, st)
	}
	cfg, err := d.Command(ctx, "config")
	if err != nil || !strings.Contains(cfg, "/.well-known/est") {
		t.Fatalf("the payload's estUrl is not in the device's settings: %v\n%s", err, cfg)
	}

	// The drill: the Central Station comes back 9 months ahead; the
	// device restarts (a power cycle) and meets it.
	const offset = 273 * 24 * time.Hour
	p.stopServe()
	p.serve(true, "--clock-offset", offset.String())
	if err := d.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := d.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	var newSerial string
	for deadline := time.Now().Add(4 * time.Minute); ; {
		var s string
		newSerial, slot, s = certLine(t, ctx, d)
		if slot == "B" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no renewal within 4 minutes of the boot; status:\n%s\n%v\nzm-central:\n%s", s, d.Failure("renewal"), p.logTail())
		}
		time.Sleep(500 * time.Millisecond)
	}
	if newSerial == oldSerial {
		t.Fatalf("key slot B with the old certificate %s", oldSerial)
	}
	if s, _ := d.State(ctx); s != "PROVISIONED" {
		t.Errorf("state after the renewal: %s", s)
	}
	// The device's audit: started, issued, switched (confirmed to the
	// EST server once it told it, asynchronously: waited for below).
	for deadline := time.Now().Add(time.Minute); ; {
		a, err := d.Command(ctx, "audit 50")
		if err != nil {
			t.Fatal(err)
		}
		missing := ""
		for _, ev := range []string{"RENEWAL_STARTED", "RENEWAL_ISSUED", "RENEWAL_SUCCEEDED", "RENEWAL_CONFIRMED"} {
			if !strings.Contains(a, ev) {
				missing = ev
			}
		}
		if missing == "" {
			if strings.Contains(a, "RENEWAL_FAILED") || strings.Contains(a, "RENEWAL_OLD_KEY_LEFT") {
				t.Errorf("device audit:\n%s", a)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("device audit has no %s:\n%s", missing, a)
		}
		time.Sleep(500 * time.Millisecond)
	}

	// The TPM, read from outside with the board stopped: slot A's key is
	// gone, slot B holds the new certificate's key.
	if err := d.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	tpmKeys, err := harness.TPMPersistentKeys(ctx, d.StateDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := tpmKeys[tpmSlotA]; ok {
		t.Errorf("the old client key is still in the TPM at 0x%08x", tpmSlotA)
	}

	// The Central Station's records: the new certificate in use, the old
	// one superseded; the chain verifies against the device CA.
	p.stopServe()
	st2, err := store.Open(ctx, "sqlite:"+filepath.Join(p.central, "central.db"), &store.Opts{MustExist: true})
	if err != nil {
		t.Fatal(err)
	}
	newRec, err := st2.Certificate(ctx, newSerial)
	if err != nil {
		t.Fatal(err)
	}
	oldRec, err := st2.Certificate(ctx, oldSerial)
	if err != nil {
		t.Fatal(err)
	}
	var events []string
	if err := st2.ExportAudit(ctx, func(r store.AuditRecord) error { events = append(events, r.Event); return nil }); err != nil {
		t.Fatal(err)
	}
	st2.Close()
	if newRec.State != store.CertificateInUse || oldRec.State != store.CertificateRevoked || oldRec.Reason != store.ReasonSuperseded {
		t.Errorf("station records: new %v, old %v (%v)", newRec.State, oldRec.State, oldRec.Reason)
	}
	if all := strings.Join(events, " "); !strings.Contains(all, "certificate.renewed") || !strings.Contains(all, "certificate.in_use") {
		t.Errorf("station audit: %v", events)
	}
	newCert, err := x509.ParseCertificate(newRec.DER)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(filepath.Join(p.central, "device-ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if blk, _ := pem.Decode(caPEM); blk == nil || !roots.AppendCertsFromPEM(caPEM) {
		t.Fatal("device-ca.pem")
	}
	if _, err := newCert.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: time.Now().Add(offset),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("the renewed certificate does not verify against the device CA: %v", err)
	}
	if newCert.Subject.CommonName != programsDeviceID {
		t.Errorf("renewed certificate for %q", newCert.Subject.CommonName)
	}
	if k, ok := tpmKeys[tpmSlotB]; !ok || k == nil || !k.Equal(newCert.PublicKey.(*ecdsa.PublicKey)) {
		t.Errorf("TPM slot B (0x%08x) does not hold the renewed certificate's key (present %v)", tpmSlotB, ok)
	}

	// The next boot's monitoring connection presents the new certificate.
	mark := len(p.logText())
	p.serve(true, "--clock-offset", offset.String())
	if err := d.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if err := d.WaitStateFor(ctx, "PROVISIONED", time.Minute); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(2 * time.Minute); ; {
		since := p.logText()[mark:]
		if strings.Contains(since, "serial="+oldSerial) {
			t.Fatalf("the monitoring server saw the old certificate after the renewal:\n%s", since)
		}
		if strings.Contains(since, "msg=\"health check\"") && strings.Contains(since, "serial="+newSerial) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no health check with the new certificate %s after the reboot:\n%s\n%v", newSerial, since, d.Failure("connection"))
		}
		time.Sleep(500 * time.Millisecond)
	}
	// The device's own verdict (recorded after the server's log line).
	for deadline := time.Now().Add(time.Minute); ; {
		s, slot, st := certLine(t, ctx, d)
		if s != newSerial || slot != "B" || strings.Contains(st, "connection check: FAILED") {
			t.Fatalf("after the reboot: serial %s slot %s\n%s", s, slot, st)
		}
		if strings.Contains(st, "connection check: PASSED") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the boot's connection check did not pass:\n%s", st)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
