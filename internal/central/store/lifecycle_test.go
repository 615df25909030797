package store

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/zmonitor/firmware/internal/base/clock/clocktest"
)

// A renewal's bookkeeping: the device's first certificate in use, the
// renewed one issued; the first EST request with the renewed one marks it
// in use and supersedes the first, in one step; a revoked one is refused.
func TestConfirmCertificate(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		s := openAt(t, dsn, clocktest.New(t0))
		for _, id := range []string{"ZM-001", "ZM-002"} {
			if _, err := s.ImportDevice(ctx, newEnrollmentFor(t, id)); err != nil {
				t.Fatal(err)
			}
		}
		first, renewed, other := testCertificate(t, "ZM-001", 0x1), testCertificate(t, "ZM-001", 0x2), testCertificate(t, "ZM-002", 0x3)
		for _, c := range []struct {
			id  string
			der []byte
		}{{"ZM-001", first}, {"ZM-001", renewed}, {"ZM-002", other}} {
			if err := s.RecordCertificate(ctx, c.id, "", c.der); err != nil {
				t.Fatal(err)
			}
		}
		for _, serial := range []string{"1", "3"} {
			if err := s.MarkCertificateInUse(ctx, serial); err != nil {
				t.Fatal(err)
			}
		}
		// The device still on its first certificate: nothing superseded.
		if sup, err := s.ConfirmCertificate(ctx, "1"); err != nil || len(sup) != 0 {
			t.Fatalf("confirm the certificate in use: %v, %v", sup, err)
		}
		sup, err := s.ConfirmCertificate(ctx, "2")
		if err != nil || !slices.Equal(sup, []string{"1"}) {
			t.Fatalf("confirm the renewed certificate: superseded %v, %v; want [1]", sup, err)
		}
		for serial, want := range map[string]CertificateState{"1": CertificateRevoked, "2": CertificateInUse, "3": CertificateInUse} {
			c, err := s.Certificate(ctx, serial)
			if err != nil || c.State != want {
				t.Errorf("certificate %s: %v, %v; want %v", serial, c.State, err, want)
			}
			if serial == "1" && c.Reason != ReasonSuperseded {
				t.Errorf("certificate 1 revoked for %v, want superseded", c.Reason)
			}
		}
		if sup, err := s.ConfirmCertificate(ctx, "2"); err != nil || len(sup) != 0 {
			t.Errorf("confirming again: %v, %v", sup, err)
		}
		if _, err := s.ConfirmCertificate(ctx, "1"); !errors.Is(err, ErrRevoked) {
			t.Errorf("confirming a superseded certificate: %v, want ErrRevoked", err)
		}
		if _, err := s.ConfirmCertificate(ctx, "ff"); !errors.Is(err, ErrNotFound) {
			t.Errorf("confirming an unknown serial: %v, want ErrNotFound", err)
		}
		if _, err := s.Certificate(ctx, "ff"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Certificate of an unknown serial: %v, want ErrNotFound", err)
		}
	})
}
