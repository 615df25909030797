package renew_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/zmonitor/firmware/internal/central/estserver"
	"github.com/zmonitor/firmware/internal/central/store"
	"github.com/zmonitor/firmware/internal/central/store/pgtest"
	"github.com/zmonitor/firmware/internal/fw/estclient"
	"github.com/zmonitor/firmware/internal/fw/keys"
	"github.com/zmonitor/firmware/internal/fw/renew"
	"github.com/zmonitor/firmware/internal/fw/settings"
	"github.com/zmonitor/firmware/internal/testkit/fleet"
)

func slotKey(t *testing.T, d *fleet.Device, s keys.Slot) *ecdsa.PublicKey {
	t.Helper()
	k, err := d.Keys.ClientKeyAt(s)
	if errors.Is(err, keys.ErrNoClientKey) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return k.Public().(*ecdsa.PublicKey)
}

func auditEvents(t *testing.T, st store.Store, id string) []string {
	t.Helper()
	var evs []string
	if err := st.ExportAudit(context.Background(), func(r store.AuditRecord) error {
		if r.DeviceID == id {
			evs = append(evs, r.Event+" "+r.Detail)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return evs
}

// A renewal end to end: device code against the Central Station's EST
// server and the monitoring server. The new key is in the other slot, the
// old one gone, the settings name the new pair, the new certificate chains
// to the device CA; once the device confirms, the station has the new
// certificate in use and the old one superseded, audited on both sides.
func TestRenewSwitches(t *testing.T) {
	ctx := context.Background()
	s := fleet.NewStation(t, pgtest.SQLiteDSN(t))
	d := s.NewDevice(t, "ZM-001")
	before := d.Current(t)
	oldKey := slotKey(t, d, keys.SlotA)

	res, err := d.Renew(ctx)
	if err != nil {
		t.Fatal(err)
	}
	after := d.Current(t)
	if after.ClientKeyRef != keys.SlotB.Ref() || res.From != keys.SlotA || res.To != keys.SlotB {
		t.Fatalf("switched from %s to %s, settings name %q", res.From, res.To, after.ClientKeyRef)
	}
	if slotKey(t, d, keys.SlotA) != nil {
		t.Error("the old key is still in slot A")
	}
	newKey := slotKey(t, d, keys.SlotB)
	if newKey == nil || newKey.Equal(oldKey) {
		t.Fatal("slot B does not hold a new key")
	}
	cert, err := x509.ParseCertificate(after.ClientCertDER)
	if err != nil {
		t.Fatal(err)
	}
	if !cert.PublicKey.(*ecdsa.PublicKey).Equal(newKey) || cert.Equal(res.Old) || !cert.Equal(res.New) {
		t.Fatal("the committed certificate is not the renewed one for the new key")
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: s.CA.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("renewed certificate does not chain to the device CA: %v", err)
	}
	if before.ServerURL != after.ServerURL || before.ESTURL != after.ESTURL || before.ConfigVersion != after.ConfigVersion {
		t.Error("the renewal changed more than the certificate and the key")
	}
	if len(d.Audit.Named("RENEWAL_ISSUED")) != 1 {
		t.Errorf("device audit: %v", d.Audit.Events())
	}
	// The monitoring server sees the device with the new certificate.
	if _, err := renew.CheckConnection(conncheckConfig())(ctx, after.ServerURL, after.CACertDER, after.ClientCertDER, mustKey(t, d, keys.SlotB)); err != nil {
		t.Fatalf("connection with the new pair: %v", err)
	}
	if err := renew.Confirm(ctx, d.Deps(), after); err != nil {
		t.Fatal(err)
	}
	newRec, err := s.Store.Certificate(ctx, store.CertificateSerial(cert))
	if err != nil || newRec.State != store.CertificateInUse {
		t.Fatalf("renewed certificate at the station: %+v, %v", newRec.State, err)
	}
	oldRec, err := s.Store.Certificate(ctx, store.CertificateSerial(res.Old))
	if err != nil || oldRec.State != store.CertificateRevoked || oldRec.Reason != store.ReasonSuperseded {
		t.Fatalf("old certificate at the station: %v %v, %v", oldRec.State, oldRec.Reason, err)
	}
	evs := strings.Join(auditEvents(t, s.Store, "ZM-001"), "\n")
	for _, want := range []string{"certificate.renewed", "certificate.in_use", "certificate.revoked serial=" + store.CertificateSerial(res.Old) + " reason=superseded"} {
		if !strings.Contains(evs, want) {
			t.Errorf("station audit lacks %q:\n%s", want, evs)
		}
	}

	// The next renewal goes back to slot A.
	res2, err := d.Renew(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res2.From != keys.SlotB || res2.To != keys.SlotA || slotKey(t, d, keys.SlotB) != nil || slotKey(t, d, keys.SlotA) == nil {
		t.Fatalf("second renewal: %s to %s", res2.From, res2.To)
	}
}

func mustKey(t *testing.T, d *fleet.Device, s keys.Slot) crypto.Signer {
	t.Helper()
	k, err := d.Keys.ClientKeyAt(s)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Until the connection test with the new pair passes, the old pair stays:
// a failed test, a refused or failed settings commit leave the settings
// and slot A as they were and slot B empty.
func TestRenewFailureKeepsTheOldPair(t *testing.T) {
	ctx := context.Background()
	s := fleet.NewStation(t, pgtest.SQLiteDSN(t))
	d := s.NewDevice(t, "ZM-001")
	before := d.Current(t)
	oldKey := slotKey(t, d, keys.SlotA)
	check := func(name string) {
		t.Helper()
		after := d.Current(t)
		if after.ClientKeyRef != before.ClientKeyRef || string(after.ClientCertDER) != string(before.ClientCertDER) {
			t.Errorf("%s: the settings changed", name)
		}
		if k := slotKey(t, d, keys.SlotA); k == nil || !k.Equal(oldKey) {
			t.Errorf("%s: slot A lost the key in use", name)
		}
		if slotKey(t, d, keys.SlotB) != nil {
			t.Errorf("%s: a key was left in slot B", name)
		}
	}

	deps := d.Deps()
	deps.ConnTest = func(context.Context, string, []byte, []byte, crypto.Signer) (time.Time, error) {
		return time.Time{}, errors.New("monitoring server down")
	}
	if _, err := renew.Renew(ctx, deps, before); err == nil || !strings.Contains(err.Error(), "monitoring server down") {
		t.Fatalf("failed connection test: %v", err)
	}
	check("connection test failed")

	deps = d.Deps()
	deps.Settings = failingSettings{}
	if _, err := renew.Renew(ctx, deps, before); err == nil || !strings.Contains(err.Error(), "commit settings") {
		t.Fatalf("failed settings commit: %v", err)
	}
	check("settings commit failed")

	// A key left in slot B by a renewal cut short is cleared first.
	k, _ := d.Keys.NewClientKey()
	if err := k.CommitTo(keys.SlotB); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Renew(ctx); err != nil {
		t.Fatalf("renewal over a leftover key: %v", err)
	}
}

type failingSettings struct{}

func (failingSettings) Renew([]byte, []byte, string) (settings.Provisioning, error) {
	return settings.Provisioning{}, errors.New("disk full")
}

// A revoked certificate cannot renew: the EST server says why.
func TestRenewRevoked(t *testing.T) {
	ctx := context.Background()
	s := fleet.NewStation(t, pgtest.SQLiteDSN(t))
	d := s.NewDevice(t, "ZM-001")
	cert, _ := x509.ParseCertificate(d.Current(t).ClientCertDER)
	if err := s.Store.RevokeCertificate(ctx, store.CertificateSerial(cert), store.ReasonSuperseded); err != nil {
		t.Fatal(err)
	}
	_, err := d.Renew(ctx)
	var ee *estclient.Error
	if !errors.Is(err, renew.ErrRefused) || !errors.As(err, &ee) || ee.Status != 403 || ee.Type != estserver.ProblemRevoked {
		t.Fatalf("renewal with a revoked certificate: %v", err)
	}
	if slotKey(t, d, keys.SlotB) != nil {
		t.Error("a refused renewal left a key in slot B")
	}
}

// The Central Station's clock 9 months ahead (the --clock-offset drill):
// the device learns the time from the answers (never backwards) and the
// renewed certificate is valid at it.
func TestRenewLearnsTheTime(t *testing.T) {
	ctx := context.Background()
	s := fleet.NewStation(t, pgtest.SQLiteDSN(t))
	d := s.NewDevice(t, "ZM-001")
	nine := 273 * 24 * time.Hour
	s.SetOffset(nine)
	res, err := d.Renew(ctx)
	if err != nil {
		t.Fatal(err)
	}
	now, _ := d.Wall.Now()
	if now.Before(time.Now().Add(nine - time.Hour)) {
		t.Fatalf("device time %v did not learn the station's (+9 months)", now)
	}
	if res.New.NotBefore.Before(time.Now().Add(nine - time.Hour)) {
		t.Fatalf("renewed certificate starts %v, not at the station's time", res.New.NotBefore)
	}
	if renew.DefaultPolicy.Due(res.Old).After(now) == true {
		t.Errorf("at the learnt time the old certificate is not due: due %v, now %v", renew.DefaultPolicy.Due(res.Old), now)
	}
}

// The boot's clean-up: keys the settings do not name go.
func TestLeftovers(t *testing.T) {
	s := fleet.NewStation(t, pgtest.SQLiteDSN(t))
	d := s.NewDevice(t, "ZM-001")
	p := d.Current(t)
	k, _ := d.Keys.NewClientKey()
	if err := k.CommitTo(keys.SlotB); err != nil {
		t.Fatal(err)
	}
	emptied, err := renew.Leftovers(d.Keys, &p)
	if err != nil || len(emptied) != 1 || emptied[0] != keys.SlotB {
		t.Fatalf("Leftovers = %v, %v; want [B]", emptied, err)
	}
	if slotKey(t, d, keys.SlotA) == nil || slotKey(t, d, keys.SlotB) != nil {
		t.Fatal("Leftovers evicted the wrong key")
	}
	if emptied, err := renew.Leftovers(d.Keys, &p); err != nil || len(emptied) != 0 {
		t.Fatalf("second Leftovers = %v, %v", emptied, err)
	}
	emptied, err = renew.Leftovers(d.Keys, nil)
	if err != nil || len(emptied) != 1 || slotKey(t, d, keys.SlotA) != nil {
		t.Fatalf("unprovisioned: Leftovers = %v, %v; slot A must go", emptied, err)
	}
}
