package store

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/zmonitor/firmware/internal/base/clock/clocktest"
)

// A renewal's writes and their audit records go together: recorded with
// its record or not at all; confirmed with its records.
func TestRenewalRecordsAudited(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		s := openAt(t, dsn, clocktest.New(t0))
		if _, err := s.ImportDevice(ctx, newEnrollmentFor(t, "ZM-001")); err != nil {
			t.Fatal(err)
		}
		first, renewed := testCertificate(t, "ZM-001", 0x1), testCertificate(t, "ZM-001", 0x2)
		if err := s.RecordCertificate(ctx, "ZM-001", "p-1", first); err != nil {
			t.Fatal(err)
		}
		if err := s.MarkCertificateInUse(ctx, "1"); err != nil {
			t.Fatal(err)
		}
		if err := s.RecordRenewal(ctx, "ZM-001", renewed, AuditRecord{}); err == nil {
			t.Fatal("a renewal without its audit record was recorded")
		}
		if _, err := s.Certificate(ctx, "2"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("refused renewal left a certificate: %v", err)
		}
		if err := s.RecordRenewal(ctx, "ZM-001", renewed, AuditRecord{Actor: "device:ZM-001", Event: "certificate.renewed", DeviceID: "ZM-001", Detail: "serial=2"}); err != nil {
			t.Fatal(err)
		}
		if err := s.RecordRenewal(ctx, "ZM-001", renewed, AuditRecord{Actor: "device:ZM-001", Event: "certificate.renewed"}); err == nil {
			t.Error("the same serial recorded twice")
		}
		if c, err := s.Certificate(ctx, "2"); err != nil || c.State != CertificateIssued || c.PairingID != "" {
			t.Fatalf("renewed certificate: %+v, %v", c, err)
		}
		sup, err := s.ConfirmCertificateAudited(ctx, "2", "device:ZM-001")
		if err != nil || !slices.Equal(sup, []string{"1"}) {
			t.Fatalf("confirm: %v, %v", sup, err)
		}
		var events []string
		if err := s.ExportAudit(ctx, func(r AuditRecord) error {
			events = append(events, r.Event+" "+r.Detail)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		want := []string{"certificate.renewed serial=2", "certificate.in_use serial=2 confirmed by the device's EST request", "certificate.revoked serial=1 reason=superseded by=2"}
		if !slices.Equal(events, want) {
			t.Errorf("audit %q, want %q", events, want)
		}
		if _, err := s.ConfirmCertificateAudited(ctx, "2", ""); err == nil {
			t.Error("a confirmation without an actor accepted")
		}
	})
}
