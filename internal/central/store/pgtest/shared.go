package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// T is what Shared needs of a *testing.T or *testing.B.
type T interface {
	Helper()
	TempDir() string
	Fatalf(format string, args ...any)
	Skipf(format string, args ...any)
}

// Shared is one PostgreSQL server for a whole test binary: start it in
// TestMain, stop it after m.Run.
type Shared struct {
	srv *Server
	err error
}

// StartShared starts the server unless the process is fuzzing (the fuzz
// coordinator and every worker run TestMain; a cluster each hung the fuzz
// smoke run). args are the process's arguments (os.Args[1:]). It never
// fails: a test that needs PostgreSQL skips, or fails when Required, with
// the reason.
func StartShared(args []string) *Shared {
	for _, a := range args {
		if strings.HasPrefix(a, "-test.fuzz") {
			return &Shared{err: errors.New("PostgreSQL is not started while fuzzing")}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := Start(ctx)
	return &Shared{srv: srv, err: err}
}

// Stop stops the server (if this process started one).
func (s *Shared) Stop() {
	if s.srv == nil {
		return
	}
	if err := s.srv.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
}

// NewDatabase returns the DSN of a fresh database, or skips t (fails it
// when Required) if there is no server.
func (s *Shared) NewDatabase(t T) string {
	t.Helper()
	if s.srv == nil {
		if Required() {
			t.Fatalf("PostgreSQL required (%s=1) but: %v", EnvRequired, s.err)
		}
		t.Skipf("skipping the PostgreSQL half: %v", s.err)
	}
	dsn, err := s.srv.NewDatabase(context.Background())
	if err != nil {
		t.Fatalf("pgtest: new database: %v", err)
	}
	return dsn
}

// SQLiteDSN is the DSN of a fresh SQLite database in t's temporary
// directory: the other half of a test run on both backends.
func SQLiteDSN(t T) string {
	return "sqlite:" + filepath.Join(t.TempDir(), "central.db")
}
