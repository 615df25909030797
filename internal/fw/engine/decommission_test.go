package engine_test

import (
	"context"
	"crypto/x509"
	"strings"
	"testing"

	"github.com/zmonitor/firmware/internal/central/store"
	"github.com/zmonitor/firmware/internal/central/store/pgtest"
	"github.com/zmonitor/firmware/internal/fw/keys"
	"github.com/zmonitor/firmware/internal/proto/state"
	"github.com/zmonitor/firmware/internal/testkit/fleet"
)

// decommission is `zm-central devices decommission` on the station's store.
func decommission(t *testing.T, s *fleet.Station, id string) {
	t.Helper()
	ctx := context.Background()
	if _, err := s.Store.DecommissionDevice(ctx, id); err != nil {
		t.Fatal(err)
	}
	certs, err := s.Store.Certificates(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range certs {
		if err := s.Store.RevokeCertificate(ctx, c.Serial, store.ReasonCessationOfOperation); err != nil {
			t.Fatal(err)
		}
	}
}

// An operator decommissioned the device: its check-in at boot hears it
// from the EST server; it wipes its settings and both client key slots,
// keeps its identity, shows DECOMMISSIONED, audits it, and a press pairs
// it again.
func TestDecommissionAtCheckIn(t *testing.T) {
	s := fleet.NewStation(t, pgtest.SQLiteDSN(t))
	d := s.NewDevice(t, "ZM-001")
	decommission(t, s, "ZM-001")
	f := startFleetEngine(t, d)
	v := f.waitFor("DECOMMISSIONED", 1)
	if v.State != state.Decommissioned {
		t.Fatalf("screen after the decommissioning: %+v", v)
	}
	if _, ok, err := d.Settings.Current(); ok || err != nil {
		t.Errorf("settings after the decommissioning: committed %v, %v", ok, err)
	}
	for _, slot := range []keys.Slot{keys.SlotA, keys.SlotB} {
		if _, err := d.Keys.ClientKeyAt(slot); err == nil {
			t.Errorf("a client key is left in slot %s", slot)
		}
	}
	if d.Keys.Identity() == nil {
		t.Error("the identity key went with the provisioning")
	}
	if st := f.eng.Status(); st.State != state.Decommissioned {
		t.Errorf("status: %s", st.State)
	}
	if _, ok := f.eng.Current(); ok {
		t.Error("the engine still holds a provisioning")
	}
	ev := d.Audit.Named("DECOMMISSIONED")[0]
	if ev.Actor != "central-station" || !strings.Contains(ev.Reason, "identity kept") {
		t.Errorf("device audit: %+v", ev)
	}
	var delivered bool
	if err := s.Store.ExportAudit(context.Background(), func(r store.AuditRecord) error {
		delivered = delivered || (r.Event == "device.decommission_delivered" && r.DeviceID == "ZM-001")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !delivered {
		t.Error("the Central Station did not audit the delivery")
	}
	if err := f.eng.Press(); err != nil {
		t.Fatal(err)
	}
	// The press opens pairing (this rig's endpoint then cannot start a
	// session; the state machine's test covers the rest).
	var opened bool
	for _, ev := range d.Audit.Named("STATE_CHANGED") {
		opened = opened || (ev.From == state.Decommissioned.String() && ev.To == state.ReadyToPair.String())
	}
	if !opened {
		t.Error("a press on DECOMMISSIONED did not open pairing")
	}
}

// A device whose certificate is merely revoked (devices revoke, a
// suspected key) is not wiped: it shows the revocation.
func TestRevokedIsNotDecommissioned(t *testing.T) {
	s := fleet.NewStation(t, pgtest.SQLiteDSN(t))
	d := s.NewDevice(t, "ZM-001")
	cert, _ := x509.ParseCertificate(d.Current(t).ClientCertDER)
	if err := s.Store.RevokeCertificate(context.Background(), store.CertificateSerial(cert), store.ReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}
	f := startFleetEngine(t, d)
	f.waitFor("CHECK_IN_FAILED", 1)
	if st := f.eng.Status(); st.State != state.Provisioned {
		t.Errorf("state after a revoked check-in: %s", st.State)
	}
	if _, ok, _ := d.Settings.Current(); !ok {
		t.Error("a revoked device wiped its provisioning")
	}
	if n := len(d.Audit.Named("DECOMMISSIONED")); n != 0 {
		t.Errorf("DECOMMISSIONED recorded %d times", n)
	}
}
