package server

import (
	"os"
	"testing"

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

// eachBackend runs f once per store backend, with the DSN of a fresh
// database.
func eachBackend(t *testing.T, f func(t *testing.T, dsn string)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { f(t, pgtest.SQLiteDSN(t)) })
	t.Run("postgres", func(t *testing.T) { f(t, pg.NewDatabase(t)) })
}
