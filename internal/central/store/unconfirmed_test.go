package store

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/zmonitor/firmware/internal/base/clock/clocktest"
)

// A Central Station killed between issuing certificates and learning their
// fate, simulated in the store: pairings left running, certificates left
// issued. The next start settles them by the evidence, audited, once.
func TestResolveUnconfirmed(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		clk := clocktest.New(t0)
		s := openAt(t, dsn, clk)
		for _, id := range []string{"ZM-001", "ZM-002", "ZM-003", "ZM-004"} {
			if _, err := s.ImportDevice(ctx, newEnrollmentFor(t, id)); err != nil {
				t.Fatal(err)
			}
		}
		tech, _ := webFixture(t, s, RoleTechnician)
		pairing := func(id, device, deviceState string) {
			t.Helper()
			if err := s.CreatePairing(ctx, Pairing{ID: id, DeviceID: device, TechnicianID: tech.ID, Method: MethodQR, State: PairingQueued}); err != nil {
				t.Fatal(err)
			}
			if err := s.UpdatePairing(ctx, id, PairingRunning, deviceState, "step"); err != nil {
				t.Fatal(err)
			}
		}
		record := func(device, pairingID string, serial int64) {
			t.Helper()
			clk.Advance(time.Second)
			if err := s.RecordCertificate(ctx, device, pairingID, testCertificate(t, device, serial)); err != nil {
				t.Fatal(err)
			}
		}
		// ZM-001: the device reported PROVISIONED, then the station died.
		pairing("p-1", "ZM-001", "PROVISIONED")
		record("ZM-001", "p-1", 0x1)
		// ZM-002: died while the device applied the configuration.
		pairing("p-2", "ZM-002", "APPLYING_CONFIG")
		record("ZM-002", "p-2", 0x2)
		// ZM-003: in use; a renewal issued 4, the device retried with its
		// old certificate and got 5 (never used 4); 5's fate unknown.
		pairing("p-3", "ZM-003", "PROVISIONED")
		record("ZM-003", "p-3", 0x3)
		if err := s.MarkCertificateInUse(ctx, "3"); err != nil {
			t.Fatal(err)
		}
		if err := s.FinishPairing(ctx, "p-3", PairingSucceeded, "OK", "PROVISIONED"); err != nil {
			t.Fatal(err)
		}
		record("ZM-003", "", 0x4)
		record("ZM-003", "", 0x5)
		before := clk.Now().Add(time.Second)
		// ZM-004: a pairing that may still run (on a replica): untouched.
		clk.Advance(time.Minute)
		pairing("p-4", "ZM-004", "APPLYING_CONFIG")
		record("ZM-004", "p-4", 0x6)

		got, err := s.ResolveUnconfirmed(ctx, before)
		if err != nil {
			t.Fatal(err)
		}
		resolved := map[string]bool{}
		for _, r := range got {
			resolved[r.Serial] = r.Delivered
		}
		if len(got) != 3 || !resolved["1"] || resolved["2"] || resolved["4"] {
			t.Fatalf("resolved %+v; want 1 delivered, 2 and 4 not", got)
		}
		for serial, want := range map[string]CertificateState{"1": CertificateInUse, "2": CertificateRevoked, "3": CertificateInUse, "4": CertificateRevoked, "5": CertificateIssued, "6": CertificateIssued} {
			c, err := s.Certificate(ctx, serial)
			if err != nil || c.State != want {
				t.Errorf("certificate %s: %v, %v; want %v", serial, c.State, err, want)
			}
			if want == CertificateRevoked && c.Reason != ReasonNotDelivered {
				t.Errorf("certificate %s revoked for %v, want not-delivered", serial, c.Reason)
			}
		}
		for id, want := range map[string]PairingState{"p-1": PairingSucceeded, "p-2": PairingFailed, "p-4": PairingRunning} {
			p, err := s.Pairing(ctx, id)
			if err != nil || p.State != want {
				t.Errorf("pairing %s: %v, %v; want %v", id, p.State, err, want)
			}
			if id == "p-2" && (p.ResultCode != "INTERNAL" || !strings.Contains(p.Detail, "interrupted")) {
				t.Errorf("pairing p-2: %s %q", p.ResultCode, p.Detail)
			}
		}
		// Audited in the same step, once: a second start finds nothing.
		again, err := s.ResolveUnconfirmed(ctx, before)
		if err != nil || len(again) != 0 {
			t.Fatalf("second resolution: %+v, %v", again, err)
		}
		var audits []string
		if err := s.ExportAudit(ctx, func(r AuditRecord) error {
			if r.Actor == "central-station" {
				audits = append(audits, r.Event+" "+r.Detail)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if len(audits) != 3 || !strings.HasPrefix(audits[0], "certificate.in_use serial=1 ") || !strings.HasPrefix(audits[1], "certificate.revoked serial=2 reason=not-delivered") ||
			!strings.Contains(audits[2], "serial=4") || !strings.Contains(audits[2], "issued 5 later") {
			t.Errorf("audit %q", audits)
		}
	})
}
