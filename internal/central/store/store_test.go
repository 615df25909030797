package store

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"errors"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zmonitor/firmware/internal/base/clock/clocktest"
	"github.com/zmonitor/firmware/internal/proto/ident"
)

func TestOpenMigratesOnceConcurrently(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s, err := Open(ctx, dsn, nil)
				if err == nil {
					s.Close()
				}
				errs[i] = err
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("replica %d: %v", i, err)
			}
		}
		s := openAt(t, dsn, clocktest.New(t0))
		db := s.(*sqlStore).db
		var n, v int
		if err := db.QueryRow(`SELECT COUNT(*), MAX(version) FROM schema_migrations`).Scan(&n, &v); err != nil {
			t.Fatal(err)
		}
		if n != len(migrations) || v != SchemaVersion() {
			t.Errorf("schema_migrations has %d rows up to %d, want %d up to %d", n, v, len(migrations), SchemaVersion())
		}
	})
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		s := openAt(t, dsn, clocktest.New(t0))
		db := s.(*sqlStore).db
		if _, err := db.Exec(s.(*sqlStore).d.rebind(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'future', 0)`), SchemaVersion()+1); err != nil {
			t.Fatal(err)
		}
		if s2, err := Open(context.Background(), dsn, nil); err == nil {
			s2.Close()
			t.Fatal("opened a database with a newer schema")
		}
	})
}

func TestOpenBadDSN(t *testing.T) {
	for _, dsn := range []string{"", "mysql://x", "sqlite:", "sqlite:/tmp/a?b"} {
		if s, err := Open(context.Background(), dsn, nil); err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", dsn)
		}
	}
}

func TestImportDevice(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		clk := clocktest.New(t0)
		s := openAt(t, dsn, clk)
		e := newEnrollmentFor(t, "ZM-001")
		if r, err := s.ImportDevice(ctx, e); err != nil || r != ImportAdded {
			t.Fatalf("first import = %v, %v", r, err)
		}
		if r, err := s.ImportDevice(ctx, e); err != nil || r != ImportUnchanged {
			t.Fatalf("identical re-import = %v, %v", r, err)
		}
		up := e
		up.FirmwareVersion = "1.3.0"
		if r, err := s.ImportDevice(ctx, up); err != nil || r != ImportUpdated {
			t.Fatalf("new firmware version = %v, %v", r, err)
		}
		otherID := e
		otherID.IdentitySPKI = spki(t)
		otherPayload := e
		otherPayload.PayloadSPKI = spki(t)
		otherSerial := e
		otherSerial.DeviceSerial = "SN-OTHER"
		clone := newEnrollmentFor(t, "ZM-002")
		clone.IdentitySPKI = e.IdentitySPKI
		for name, bad := range map[string]Enrollment{"identity key": otherID, "payload key": otherPayload, "serial": otherSerial, "cloned identity": clone} {
			if _, err := s.ImportDevice(ctx, bad); !errors.Is(err, ErrConflict) {
				t.Errorf("import with another %s: %v, want ErrConflict", name, err)
			}
		}
		d, err := s.Device(ctx, "ZM-001")
		if err != nil {
			t.Fatal(err)
		}
		if string(d.IdentitySPKI) != string(e.IdentitySPKI) || d.FirmwareVersion != "1.3.0" || d.Serial != "SN-ZM-001" || !d.ImportedAt.Equal(t0) || d.Revoked() {
			t.Errorf("device = %+v", d)
		}
		if _, err := d.IdentityKey(); err != nil {
			t.Error(err)
		}
		if _, err := d.PayloadKey(); err != nil {
			t.Error(err)
		}
		if _, err := s.Device(ctx, "ZM-404"); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown device: %v", err)
		}
		bad := e
		bad.DeviceID = "ZM 001"
		if _, err := s.ImportDevice(ctx, bad); err == nil {
			t.Error("imported an invalid record")
		}
		if _, err := s.ImportDevice(ctx, newEnrollmentFor(t, "ZM-000")); err != nil {
			t.Fatal(err)
		}
		ds, err := s.Devices(ctx)
		if err != nil || len(ds) != 2 || ds[0].ID != "ZM-000" || ds[1].ID != "ZM-001" {
			t.Fatalf("Devices = %v, %v", ds, err)
		}
		clk.Advance(time.Hour)
		if err := s.RevokeDevice(ctx, "ZM-001"); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Hour)
		if err := s.RevokeDevice(ctx, "ZM-001"); err != nil {
			t.Fatal(err)
		}
		if d, _ := s.Device(ctx, "ZM-001"); !d.RevokedAt.Equal(t0.Add(time.Hour)) {
			t.Errorf("revoked at %v, want the first revocation", d.RevokedAt)
		}
		if err := s.RevokeDevice(ctx, "ZM-404"); !errors.Is(err, ErrNotFound) {
			t.Errorf("revoke unknown: %v", err)
		}
		if err := s.SetDeviceLabel(ctx, "ZM-000", "ICU-MON-04"); err != nil {
			t.Fatal(err)
		}
		if d, _ := s.Device(ctx, "ZM-000"); d.Label != "ICU-MON-04" {
			t.Errorf("label = %q", d.Label)
		}
		// A label the device would refuse in its payload (ident.CheckLabel)
		// is refused here, before a pairing burns a code on it.
		for _, bad := range []string{"ICU\nMON", "ICU\xff", "a\u0085b", strings.Repeat("L", 65)} {
			if err := s.SetDeviceLabel(ctx, "ZM-000", bad); !errors.Is(err, ident.ErrInvalid) {
				t.Errorf("label %q: %v", bad, err)
			}
		}
		if d, _ := s.Device(ctx, "ZM-000"); d.Label != "ICU-MON-04" {
			t.Errorf("label after refusals = %q", d.Label)
		}
	})
}

func TestTechnicians(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		s := openAt(t, dsn, clocktest.New(t0))
		tok, err := NewTechnicianToken(nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.AddTechnician(ctx, tok.ID, "Ada", tok.Hash); err != nil {
			t.Fatal(err)
		}
		if _, err := s.AddTechnician(ctx, tok.ID, "Ada again", HashTechnicianToken("x")); !errors.Is(err, ErrConflict) {
			t.Errorf("duplicate ID: %v", err)
		}
		got, err := s.Technician(ctx, tok.ID)
		if err != nil || got.Name != "Ada" || !TokenMatches(got.TokenHash, tok.Token) || got.Revoked() {
			t.Fatalf("Technician = %+v, %v", got, err)
		}
		if err := s.RevokeTechnician(ctx, tok.ID); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.Technician(ctx, tok.ID); !got.Revoked() {
			t.Error("not revoked")
		}
		if _, err := s.Technician(ctx, "t-00000000"); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown technician: %v", err)
		}
		if err := s.RevokeTechnician(ctx, "t-00000000"); !errors.Is(err, ErrNotFound) {
			t.Errorf("revoke unknown: %v", err)
		}
		ts, err := s.Technicians(ctx)
		if err != nil || len(ts) != 1 {
			t.Errorf("Technicians = %v, %v", ts, err)
		}
	})
}

func TestClaimOnce(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		s := openAt(t, dsn, clocktest.New(t0))
		for _, id := range []string{"ZM-001", "ZM-002"} {
			if _, err := s.ImportDevice(ctx, newEnrollmentFor(t, id)); err != nil {
				t.Fatal(err)
			}
		}
		nonce := []byte("0123456789ab")
		if err := s.ClaimToken(ctx, "ZM-001", nonce); err != nil {
			t.Fatal(err)
		}
		if err := s.ClaimToken(ctx, "ZM-001", nonce); !errors.Is(err, ErrAlreadyUsed) {
			t.Errorf("second claim: %v, want ErrAlreadyUsed", err)
		}
		if err := s.ClaimToken(ctx, "ZM-002", nonce); err != nil {
			t.Errorf("same nonce, other device: %v", err)
		}
		if err := s.ClaimToken(ctx, "ZM-404", []byte("x")); err == nil || errors.Is(err, ErrAlreadyUsed) {
			t.Errorf("claim for a device not in the inventory: %v", err)
		}
		if err := s.ClaimCode(ctx, "ZM-001", "ABC-123-DEF"); err != nil {
			t.Fatal(err)
		}
		if err := s.ClaimCode(ctx, "ZM-001", "ABC-123-DEF"); !errors.Is(err, ErrAlreadyUsed) {
			t.Errorf("second code claim: %v", err)
		}
		if err := s.ClaimCode(ctx, "ZM-002", "ABC-123-DEF"); err != nil {
			t.Errorf("same code, other device: %v", err)
		}
		// The code is stored hashed, never in clear.
		var n int
		db := s.(*sqlStore).db
		if err := db.QueryRow(s.(*sqlStore).d.rebind(`SELECT COUNT(*) FROM used_codes WHERE code_hash = ?`), []byte("ABC-123-DEF")).Scan(&n); err != nil || n != 0 {
			t.Errorf("code stored in clear: %d, %v", n, err)
		}
	})
}

// TestClaimRaceAcrossReplicas: 20 goroutines over two Stores (two
// replicas) claim the same nonce and the same code: exactly one wins each.
func TestClaimRaceAcrossReplicas(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		replicas := []Store{openAt(t, dsn, clocktest.New(t0)), openAt(t, dsn, clocktest.New(t0))}
		if _, err := replicas[0].ImportDevice(ctx, newEnrollmentFor(t, "ZM-001")); err != nil {
			t.Fatal(err)
		}
		for _, kind := range []string{"token", "code"} {
			const n = 20
			errs := make([]error, n)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := 0; i < n; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					s := replicas[i%2]
					if kind == "token" {
						errs[i] = s.ClaimToken(ctx, "ZM-001", []byte("race-nonce-1"))
					} else {
						errs[i] = s.ClaimCode(ctx, "ZM-001", "ABC-123-DEF")
					}
				}()
			}
			close(start)
			wg.Wait()
			won := 0
			for i, err := range errs {
				switch {
				case err == nil:
					won++
				case errors.Is(err, ErrAlreadyUsed):
				default:
					t.Errorf("%s claim %d: unexpected error %v", kind, i, err)
				}
			}
			if won != 1 {
				t.Errorf("%s: %d claims won, want exactly 1", kind, won)
			}
		}
	})
}

func TestPairingsAndBatches(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		clk := clocktest.New(t0)
		s := openAt(t, dsn, clk)
		if err := s.CreateBatch(ctx, Batch{ID: "b1", TechnicianID: "t-1", Size: 2}); err != nil {
			t.Fatal(err)
		}
		p := Pairing{ID: "p1", BatchID: "b1", DeviceID: "ZM-001", TechnicianID: "t-1", Method: MethodQR, State: PairingQueued, TokenNonce: []byte("n"), Label: "ICU-MON-04"}
		if err := s.CreatePairing(ctx, p); err != nil {
			t.Fatal(err)
		}
		refused := Pairing{ID: "p2", BatchID: "b1", DeviceID: "ZM-404", TechnicianID: "t-1", Method: MethodManual, State: PairingRefused, ResultCode: "DEVICE_UNKNOWN"}
		if err := s.CreatePairing(ctx, refused); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Second)
		if err := s.UpdatePairing(ctx, "p1", PairingRunning, "APPLYING_CONFIG", "push"); err != nil {
			t.Fatal(err)
		}
		if err := s.UpdatePairing(ctx, "p1", PairingSucceeded, "", ""); err == nil {
			t.Error("UpdatePairing accepted a final state")
		}
		got, err := s.Pairing(ctx, "p1")
		if err != nil || got.State != PairingRunning || got.DeviceState != "APPLYING_CONFIG" || got.Step != "push" || !got.UpdatedAt.Equal(t0.Add(time.Second)) || !got.FinishedAt.IsZero() || string(got.TokenNonce) != "n" || got.Label != "ICU-MON-04" {
			t.Fatalf("pairing = %+v, %v", got, err)
		}
		clk.Advance(time.Second)
		if err := s.FinishPairing(ctx, "p1", PairingSucceeded, "OK", "PROVISIONED"); err != nil {
			t.Fatal(err)
		}
		if err := s.FinishPairing(ctx, "p1", PairingFailed, "X", ""); !errors.Is(err, ErrNotFound) {
			t.Errorf("finishing twice: %v", err)
		}
		if err := s.UpdatePairing(ctx, "p1", PairingRunning, "", ""); !errors.Is(err, ErrNotFound) {
			t.Errorf("update after finish: %v", err)
		}
		b, ps, err := s.Batch(ctx, "b1")
		if err != nil || b.Size != 2 || len(ps) != 2 {
			t.Fatalf("batch = %+v %v %v", b, ps, err)
		}
		for _, p := range ps {
			if p.ID == "p1" && (p.State != PairingSucceeded || !p.FinishedAt.Equal(t0.Add(2*time.Second))) {
				t.Errorf("p1 = %+v", p)
			}
			if p.ID == "p2" && (p.State != PairingRefused || p.FinishedAt.IsZero() || p.Method != MethodManual) {
				t.Errorf("p2 = %+v", p)
			}
		}
		if _, err := s.Pairing(ctx, "nope"); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown pairing: %v", err)
		}
		if _, _, err := s.Batch(ctx, "nope"); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown batch: %v", err)
		}
	})
}

// testCertificate makes a certificate for deviceID with the given serial.
func testCertificate(t testing.TB, deviceID string, serial int64) []byte {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: deviceID},
		NotBefore: t0.Add(-5 * time.Minute), NotAfter: t0.Add(397 * 24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestCertificates(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		clk := clocktest.New(t0)
		s := openAt(t, dsn, clk)
		for _, id := range []string{"ZM-001", "ZM-002"} {
			if _, err := s.ImportDevice(ctx, newEnrollmentFor(t, id)); err != nil {
				t.Fatal(err)
			}
		}
		der := testCertificate(t, "ZM-001", 0xabc)
		if err := s.RecordCertificate(ctx, "ZM-001", "p1", der); err != nil {
			t.Fatal(err)
		}
		if err := s.RecordCertificate(ctx, "ZM-001", "p1", der); err != nil {
			t.Errorf("recording the same certificate again: %v", err)
		}
		if err := s.RecordCertificate(ctx, "ZM-001", "p9", testCertificate(t, "ZM-001", 0xabc)); !errors.Is(err, ErrConflict) {
			t.Errorf("another certificate with the same serial: %v, want ErrConflict", err)
		}
		if err := s.RecordCertificate(ctx, "ZM-001", "p1", []byte("junk")); err == nil {
			t.Error("recorded junk")
		}
		if err := s.RecordCertificate(ctx, "ZM-404", "p1", testCertificate(t, "ZM-404", 0x404)); err == nil {
			t.Error("recorded a certificate of a device not in the inventory")
		}
		cs, err := s.Certificates(ctx, "ZM-001")
		if err != nil || len(cs) != 1 {
			t.Fatalf("Certificates = %+v, %v", cs, err)
		}
		c := cs[0]
		if c.Serial != "abc" || c.DeviceID != "ZM-001" || c.PairingID != "p1" || c.State != CertificateIssued || c.Reason != 0 ||
			!c.NotBefore.Equal(t0.Add(-5*time.Minute)) || !c.NotAfter.Equal(t0.Add(397*24*time.Hour)) || !c.IssuedAt.Equal(t0) || !c.RevokedAt.IsZero() {
			t.Errorf("recorded = %+v", c)
		}
		if x, err := c.Certificate(); err != nil || x.Subject.CommonName != "ZM-001" || CertificateSerial(x) != "abc" {
			t.Errorf("Certificate() = %v, %v", x, err)
		}

		// In use: idempotent; then revoked (an operator's later revocation).
		for range 2 {
			if err := s.MarkCertificateInUse(ctx, "abc"); err != nil {
				t.Fatal(err)
			}
		}
		if cs, _ := s.Certificates(ctx, "ZM-001"); cs[0].State != CertificateInUse {
			t.Errorf("state = %s, want in-use", cs[0].State)
		}

		// Not delivered: revoked; revoking again keeps the first reason and time.
		if err := s.RecordCertificate(ctx, "ZM-002", "p2", testCertificate(t, "ZM-002", 0xdef)); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Minute)
		if err := s.RevokeCertificate(ctx, "def", ReasonNotDelivered); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Minute)
		if err := s.RevokeCertificate(ctx, "def", ReasonDeviceRefused); err != nil {
			t.Fatal(err)
		}
		if err := s.MarkCertificateInUse(ctx, "def"); !errors.Is(err, ErrRevoked) {
			t.Errorf("revoked certificate marked in use: %v", err)
		}
		if err := s.MarkCertificateInUse(ctx, "404"); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown serial marked in use: %v", err)
		}
		if err := s.RevokeCertificate(ctx, "404", ReasonNotDelivered); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown serial revoked: %v", err)
		}
		if err := s.RevokeCertificate(ctx, "abc", RevocationReason(99)); err == nil {
			t.Error("revoked with an unknown reason")
		}
		all, err := s.AllCertificates(ctx)
		if err != nil || len(all) != 2 || all[0].Serial != "abc" || all[1].Serial != "def" {
			t.Fatalf("AllCertificates = %+v, %v", all, err)
		}
		if r := all[1]; r.State != CertificateRevoked || r.Reason != ReasonNotDelivered || !r.RevokedAt.Equal(t0.Add(time.Minute)) || r.DeviceID != "ZM-002" {
			t.Errorf("revoked = %+v", r)
		}
	})
}

// TestMigrationV2 upgrades a database written by schema version 1 (only
// migration 1 applied): certificates then were recorded when the device
// gave its final answer; those of failed pairings become revoked with the
// right reason, the others in use, and not-before comes from the DER.
func TestMigrationV2(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		backend, src, _, err := parseDSN(dsn, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		d := dialects[backend]
		db, err := sql.Open(d.driver, src)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if err := applyOne(ctx, db, d, migrations[0], func() int64 { return toMicros(t0) }); err != nil {
			t.Fatal(err)
		}
		exec := func(q string, args ...any) {
			t.Helper()
			if _, err := db.ExecContext(ctx, d.rebind(q), args...); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		e := newEnrollmentFor(t, "ZM-001")
		exec(`INSERT INTO devices (device_id, device_serial, identity_spki, payload_spki, firmware_version, imported_at) VALUES (?, ?, ?, ?, ?, ?)`,
			e.DeviceID, e.DeviceSerial, e.IdentitySPKI, e.PayloadSPKI, e.FirmwareVersion, toMicros(t0))
		finished := toMicros(t0.Add(time.Hour))
		for _, p := range []struct{ id, state, code string }{
			{"p-ok", "succeeded", "OK"}, {"p-refused", "failed", "PAIRING_CODE_MISMATCH"}, {"p-conn", "failed", "CONNECTION_FAILED"},
		} {
			exec(`INSERT INTO pairings (id, device_id, technician_id, method, state, result_code, started_at, updated_at, finished_at) VALUES (?, 'ZM-001', 't', 'qr', ?, ?, ?, ?, ?)`,
				p.id, p.state, p.code, toMicros(t0), finished, finished)
		}
		for i, pid := range []string{"p-ok", "p-refused", "p-conn", "p-unknown"} {
			der := testCertificate(t, "ZM-001", int64(i+1))
			exec(`INSERT INTO issued_certificates (serial, device_id, pairing_id, not_after, der, issued_at) VALUES (?, 'ZM-001', ?, ?, ?, ?)`,
				big.NewInt(int64(i+1)).Text(16), pid, toMicros(t0.Add(397*24*time.Hour)), der, toMicros(t0))
		}

		s := openAt(t, dsn, clocktest.New(t0.Add(48*time.Hour)))
		cs, err := s.Certificates(ctx, "ZM-001")
		if err != nil || len(cs) != 4 {
			t.Fatalf("Certificates = %+v, %v", cs, err)
		}
		want := []struct {
			state  CertificateState
			reason RevocationReason
		}{{CertificateInUse, 0}, {CertificateRevoked, ReasonDeviceRefused}, {CertificateRevoked, ReasonConnectionTestFailed}, {CertificateInUse, 0}}
		for i, c := range cs {
			if c.State != want[i].state || c.Reason != want[i].reason || !c.NotBefore.Equal(t0.Add(-5*time.Minute)) {
				t.Errorf("%s (pairing %s) = %s %v not before %v, want %s %v", c.Serial, c.PairingID, c.State, c.Reason, c.NotBefore, want[i].state, want[i].reason)
			}
			if c.State == CertificateRevoked && !c.RevokedAt.Equal(t0.Add(time.Hour)) {
				t.Errorf("%s revoked at %v, want the pairing's end", c.Serial, c.RevokedAt)
			}
		}
		if p, err := s.Pairing(ctx, "p-ok"); err != nil || p.Label != "" {
			t.Errorf("old pairing = %+v, %v", p, err)
		}
	})
}

func TestAuditAppendOnly(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		clk := clocktest.New(t0)
		s := openAt(t, dsn, clk)
		for i, ev := range []string{"device.import", "pairing.start", "pairing.finish"} {
			clk.Advance(time.Second)
			if err := s.Audit(ctx, AuditRecord{Actor: "cli", Event: ev, DeviceID: "ZM-001", Detail: string(rune('a' + i))}); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Audit(ctx, AuditRecord{Event: "x"}); err == nil {
			t.Error("audit without actor accepted")
		}
		var got []AuditRecord
		if err := s.ExportAudit(ctx, func(r AuditRecord) error { got = append(got, r); return nil }); err != nil {
			t.Fatal(err)
		}
		if len(got) != 3 || got[0].Event != "device.import" || got[2].Event != "pairing.finish" || !got[1].At.Equal(t0.Add(2*time.Second)) || got[0].ID >= got[1].ID {
			t.Fatalf("export = %+v", got)
		}
		db := s.(*sqlStore).db
		if _, err := db.Exec(`UPDATE audit SET detail = 'forged'`); err == nil {
			t.Error("audit record updated")
		}
		if _, err := db.Exec(`DELETE FROM audit`); err == nil {
			t.Error("audit records deleted")
		}
		stop := errors.New("stop")
		if err := s.ExportAudit(ctx, func(AuditRecord) error { return stop }); !errors.Is(err, stop) {
			t.Errorf("callback error lost: %v", err)
		}
	})
}

func BenchmarkClaimToken(b *testing.B) {
	run := func(b *testing.B, dsn string) {
		ctx := context.Background()
		s := openAt(b, dsn, clocktest.New(t0))
		if _, err := s.ImportDevice(ctx, newEnrollmentFor(b, "ZM-001")); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for i := 0; b.Loop(); i++ {
			nonce := []byte{byte(i), byte(i >> 8), byte(i >> 16), byte(i >> 24)}
			if err := s.ClaimToken(ctx, "ZM-001", nonce); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("sqlite", func(b *testing.B) { run(b, "sqlite:"+b.TempDir()+"/c.db") })
	b.Run("postgres", func(b *testing.B) { run(b, pgDSN(b)) })
}

func TestCertificateEnums(t *testing.T) {
	for _, s := range []CertificateState{CertificateIssued, CertificateInUse, CertificateRevoked} {
		if got, err := ParseCertificateState(s.String()); err != nil || got != s {
			t.Errorf("ParseCertificateState(%q) = %v, %v", s, got, err)
		}
	}
	for _, r := range []RevocationReason{ReasonNotDelivered, ReasonDeviceRefused, ReasonConnectionTestFailed, ReasonSuperseded} {
		if got, err := ParseRevocationReason(r.String()); err != nil || got != r {
			t.Errorf("ParseRevocationReason(%q) = %v, %v", r, got, err)
		}
	}
	if _, err := ParseCertificateState("lost"); err == nil {
		t.Error("parsed an unknown state")
	}
	if _, err := ParseRevocationReason(""); err == nil {
		t.Error("parsed an empty reason")
	}
	if CertificateState(0).String() != "CertificateState(0)" || RevocationReason(9).String() != "RevocationReason(9)" {
		t.Error("out-of-range names")
	}
}

// TestPairingSteps: every change of a pairing is recorded with its time,
// in order (created, each progress report, the end with its code); a
// refused update records nothing. On SQLite and PostgreSQL.
func TestPairingSteps(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		clk := clocktest.New(t0)
		s := openAt(t, dsn, clk)
		if err := s.CreatePairing(ctx, Pairing{ID: "p1", DeviceID: "ZM-001", TechnicianID: "t-1", Method: MethodQR, State: PairingQueued, TokenNonce: []byte("n")}); err != nil {
			t.Fatal(err)
		}
		for _, u := range []struct{ dev, step string }{{"", "connecting"}, {"", "push"}, {"PAIRING_RECEIVED", ""}, {"APPLYING_CONFIG", ""}} {
			clk.Advance(100 * time.Millisecond)
			if err := s.UpdatePairing(ctx, "p1", PairingRunning, u.dev, u.step); err != nil {
				t.Fatal(err)
			}
		}
		clk.Advance(time.Second)
		if err := s.FinishPairing(ctx, "p1", PairingFailed, "NETWORK_TEST_FAILED", "no route"); err != nil {
			t.Fatal(err)
		}
		if err := s.UpdatePairing(ctx, "p1", PairingRunning, "TESTING_CONNECTION", ""); err == nil {
			t.Fatal("update after the end accepted")
		}
		got, err := s.PairingSteps(ctx, "p1")
		if err != nil {
			t.Fatal(err)
		}
		want := []PairingStep{
			{At: t0, State: PairingQueued},
			{At: t0.Add(100 * time.Millisecond), State: PairingRunning, Step: "connecting"},
			{At: t0.Add(200 * time.Millisecond), State: PairingRunning, Step: "push"},
			{At: t0.Add(300 * time.Millisecond), State: PairingRunning, DeviceState: "PAIRING_RECEIVED"},
			{At: t0.Add(400 * time.Millisecond), State: PairingRunning, DeviceState: "APPLYING_CONFIG"},
			{At: t0.Add(1400 * time.Millisecond), State: PairingFailed, ResultCode: "NETWORK_TEST_FAILED"},
		}
		if len(got) != len(want) {
			t.Fatalf("steps %+v, want %+v", got, want)
		}
		for i := range want {
			if !got[i].At.Equal(want[i].At) || got[i].State != want[i].State || got[i].DeviceState != want[i].DeviceState || got[i].Step != want[i].Step || got[i].ResultCode != want[i].ResultCode {
				t.Errorf("step %d = %+v, want %+v", i, got[i], want[i])
			}
		}
		if steps, err := s.PairingSteps(ctx, "p-none"); err != nil || len(steps) != 0 {
			t.Errorf("steps of an unknown pairing: %v, %v", steps, err)
		}
	})
}
