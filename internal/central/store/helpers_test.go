package store

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"os"
	"testing"
	"time"

	"github.com/zmonitor/firmware/internal/base/clock/clocktest"
	"github.com/zmonitor/firmware/internal/central/store/pgtest"
)

// pg is the PostgreSQL server of this test binary.
var pg *pgtest.Shared

func TestMain(m *testing.M) {
	pg = pgtest.StartShared(os.Args[1:])
	code := m.Run()
	pg.Stop()
	os.Exit(code)
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// eachBackend runs f once per backend, with the DSN of a fresh database.
func eachBackend(t *testing.T, f func(t *testing.T, dsn string)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) {
		f(t, pgtest.SQLiteDSN(t))
	})
	t.Run("postgres", func(t *testing.T) {
		f(t, pgDSN(t))
	})
}

func pgDSN(t testing.TB) string {
	t.Helper()
	return pg.NewDatabase(t)
}

func openAt(t testing.TB, dsn string, clk *clocktest.Fake) Store {
	t.Helper()
	s, err := Open(context.Background(), dsn, &Opts{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func spki(t testing.TB) []byte {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func newEnrollmentFor(t testing.TB, id string) Enrollment {
	return Enrollment{DeviceID: id, DeviceSerial: "SN-" + id, IdentitySPKI: spki(t), PayloadSPKI: spki(t), FirmwareVersion: "1.2.3"}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
