package store

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zmonitor/firmware/internal/central/store/pgtest"
	"github.com/zmonitor/firmware/internal/clock/clocktest"
)

var (
	pgServer *pgtest.Server
	pgErr    error
)

func TestMain(m *testing.M) {
	// A fuzzing run (coordinator and each worker process run TestMain) runs
	// no test that needs PostgreSQL; starting a cluster per process there
	// hung the fuzz smoke run.
	for _, a := range os.Args[1:] {
		if strings.HasPrefix(a, "-test.fuzz") {
			pgErr = errors.New("PostgreSQL is not started while fuzzing")
			os.Exit(m.Run())
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	pgServer, pgErr = pgtest.Start(ctx)
	cancel()
	code := m.Run()
	if err := pgServer.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	os.Exit(code)
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// eachBackend runs f once per backend, with the DSN of a fresh database.
func eachBackend(t *testing.T, f func(t *testing.T, dsn string)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) {
		f(t, "sqlite:"+filepath.Join(t.TempDir(), "central.db"))
	})
	t.Run("postgres", func(t *testing.T) {
		f(t, pgDSN(t))
	})
}

func pgDSN(t testing.TB) string {
	t.Helper()
	if pgServer == nil {
		if pgtest.Required() {
			t.Fatalf("PostgreSQL required (%s=1) but: %v", pgtest.EnvRequired, pgErr)
		}
		t.Skipf("skipping the PostgreSQL half: %v", pgErr)
	}
	dsn, err := pgServer.NewDatabase(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return dsn
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
