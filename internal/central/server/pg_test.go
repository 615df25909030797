package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zmonitor/firmware/internal/central/store/pgtest"
)

var (
	pgServer *pgtest.Server
	pgErr    error
)

func TestMain(m *testing.M) {
	// A fuzzing run (coordinator and each worker process run TestMain)
	// needs no PostgreSQL: do not start a cluster per process.
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
	if pgServer != nil {
		if err := pgServer.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
	os.Exit(code)
}

// eachBackend runs f once per store backend, with the DSN of a fresh
// database.
func eachBackend(t *testing.T, f func(t *testing.T, dsn string)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) {
		f(t, "sqlite:"+filepath.Join(t.TempDir(), "central.db"))
	})
	t.Run("postgres", func(t *testing.T) {
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
		f(t, dsn)
	})
}
