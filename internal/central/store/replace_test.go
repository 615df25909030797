package store

import (
	"context"
	"errors"
	"testing"

	"github.com/zmonitor/firmware/internal/base/clock/clocktest"
)

func TestReplaceDevice(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		s := openAt(t, dsn, clocktest.New(t0))
		old := newEnrollmentFor(t, "ZM-001")
		if _, err := s.ImportDevice(ctx, old); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ImportDevice(ctx, newEnrollmentFor(t, "ZM-002")); err != nil {
			t.Fatal(err)
		}
		der := testCertificate(t, "ZM-001", 0x1234)
		if err := s.RecordCertificate(ctx, "ZM-001", "p1", der); err != nil {
			t.Fatal(err)
		}
		if err := s.RevokeDevice(ctx, "ZM-001"); err != nil {
			t.Fatal(err)
		}
		swapped := newEnrollmentFor(t, "ZM-001")
		swapped.DeviceSerial = "SN-NEW"
		if _, err := s.ImportDevice(ctx, swapped); !errors.Is(err, ErrConflict) {
			t.Fatalf("import of new keys for an enrolled device: %v", err)
		}
		if _, err := s.ReplaceDevice(ctx, swapped, " "); err == nil {
			t.Error("replaced without a reason")
		}
		if _, err := s.ReplaceDevice(ctx, newEnrollmentFor(t, "ZM-404"), "swap"); !errors.Is(err, ErrNotFound) {
			t.Errorf("replace of an unknown device: %v", err)
		}
		if _, err := s.ReplaceDevice(ctx, old, "swap"); !errors.Is(err, ErrConflict) {
			t.Errorf("replace with the enrolled keys: %v", err)
		}
		d2, _ := s.Device(ctx, "ZM-002")
		stolen := swapped
		stolen.IdentitySPKI = d2.IdentitySPKI
		if _, err := s.ReplaceDevice(ctx, stolen, "swap"); !errors.Is(err, ErrConflict) {
			t.Errorf("replace with another device's key: %v", err)
		}
		r, err := s.ReplaceDevice(ctx, swapped, "TPM replaced")
		if err != nil {
			t.Fatal(err)
		}
		if len(r.RevokedCertificates) != 1 || r.New.Revoked() || !r.Old.Revoked() || r.New.Serial != "SN-NEW" || string(r.New.IdentitySPKI) != string(swapped.IdentitySPKI) {
			t.Errorf("replacement %+v", r)
		}
		cs, _ := s.Certificates(ctx, "ZM-001")
		if len(cs) != 1 || cs[0].State != CertificateRevoked || cs[0].Reason != ReasonDeviceReplaced {
			t.Errorf("certificate after replace: %+v", cs)
		}
		h, err := s.KeyHistory(ctx, "ZM-001")
		if err != nil || len(h) != 1 || string(h[0].IdentitySPKI) != string(old.IdentitySPKI) || h[0].Reason != "TPM replaced" || h[0].RevokedAt.IsZero() {
			t.Errorf("history %+v %v", h, err)
		}
		// The old keys are refused from now on, for any device.
		back := old
		back.DeviceSerial = "SN-NEW"
		if _, err := s.ReplaceDevice(ctx, back, "back"); !errors.Is(err, ErrConflict) {
			t.Errorf("replace back to the old keys: %v", err)
		}
		reuse := old
		reuse.DeviceID, reuse.DeviceSerial = "ZM-009", "SN-ZM-009"
		if _, err := s.ImportDevice(ctx, reuse); !errors.Is(err, ErrConflict) {
			t.Errorf("import of replaced keys for another device: %v", err)
		}
	})
}
