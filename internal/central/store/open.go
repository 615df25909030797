package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/zmonitor/firmware/internal/base/clock"
)

// Opts configure Open. A nil *Opts means defaults.
type Opts struct {
	// Clock stamps records (default clock.System).
	Clock clock.Clock
	// MaxOpenConns bounds the connection pool. Default: 16 for
	// PostgreSQL; 1 for SQLite, whose writers are serialized by the
	// database anyway: queueing in the pool is cheaper than SQLite's
	// sleeping busy handler (measured: BenchmarkThroughput in
	// cmd/zm-central).
	MaxOpenConns int
	// BusyTimeout is how long SQLite waits for another writer (default
	// 10 s).
	BusyTimeout time.Duration
	// MustExist: an SQLite database must already be a Central Station's.
	// A missing file, and a file without the schema, are refused instead
	// of being made a new, empty inventory (every command but init).
	MustExist bool
}

// Open connects to the database named by dsn and brings its schema up to
// date:
//
//	sqlite:/path/to/central.db     (created if missing, mode 0600,
//	                                unless Opts.MustExist)
//	postgres://user@host/db?...    (or postgresql://, or a key=value
//	                                string prefixed with "postgres:")
func Open(ctx context.Context, dsn string, o *Opts) (Store, error) {
	var opts Opts
	if o != nil {
		opts = *o
	}
	if opts.Clock == nil {
		opts.Clock = clock.System{}
	}
	if opts.BusyTimeout == 0 {
		opts.BusyTimeout = 10 * time.Second
	}
	backend, source, path, err := parseDSN(dsn, opts.BusyTimeout)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	// An SQLite file is checked before SQLite sees it (a 0-byte file would
	// silently become a new, empty inventory), and after it is open (SQLite
	// reports damage only when a query reaches the damaged page).
	fresh := false
	if backend == SQLite {
		if fresh, err = prepareSQLiteFile(path, opts.MustExist); err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
	}
	d := dialects[backend]
	if opts.MaxOpenConns == 0 {
		opts.MaxOpenConns = 16
		if backend == SQLite {
			opts.MaxOpenConns = 1
		}
	}
	db, err := sql.Open(d.driver, source)
	if err != nil {
		return nil, fmt.Errorf("open store: %s: %w", backend, err)
	}
	db.SetMaxOpenConns(opts.MaxOpenConns)
	db.SetMaxIdleConns(opts.MaxOpenConns)
	s := &sqlStore{db: db, d: d, clock: opts.Clock}
	if err := connect(ctx, db, backend, opts); err != nil {
		db.Close()
		if backend == SQLite && sqliteDamaged(err) {
			return nil, fmt.Errorf("open store: %w: %s is damaged (%v): %s", ErrUnusable, path, err, restoreHint)
		}
		return nil, fmt.Errorf("open store: %s: connect: %w", backend, err)
	}
	if backend == SQLite && !fresh {
		if err := checkSQLite(ctx, db, path, opts.MustExist); err != nil {
			db.Close()
			return nil, fmt.Errorf("open store: %w", err)
		}
	}
	if err := migrate(ctx, db, d, s.nowMicros); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store: %w", err)
	}
	var v int
	if err := db.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&v); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store: read schema version: %w", err)
	}
	if v > SchemaVersion() {
		db.Close()
		return nil, fmt.Errorf("open store: database schema version %d is newer than this program's %d", v, SchemaVersion())
	}
	return s, nil
}

// parseDSN returns the backend, the driver's data source name and, for
// SQLite, the file's path.
func parseDSN(dsn string, busy time.Duration) (Backend, string, string, error) {
	switch {
	case strings.HasPrefix(dsn, "sqlite:"):
		path := strings.TrimPrefix(dsn, "sqlite:")
		path = strings.TrimPrefix(path, "//")
		if path == "" {
			return 0, "", "", errors.New("sqlite: empty path")
		}
		if strings.ContainsAny(path, "?#") {
			return 0, "", "", errors.New("sqlite: path must not contain ? or #")
		}
		src := fmt.Sprintf("file:%s?_txlock=immediate&_pragma=busy_timeout(%d)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=synchronous(FULL)",
			path, busy.Milliseconds())
		return SQLite, src, path, nil
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		return PostgreSQL, dsn, "", nil
	case strings.HasPrefix(dsn, "postgres:"):
		return PostgreSQL, strings.TrimPrefix(dsn, "postgres:"), "", nil
	}
	return 0, "", "", errors.New("database must be sqlite:PATH or postgres://HOST/DB")
}

// connect opens the first connection. SQLite's switch to WAL mode, done
// while connecting, can answer SQLITE_BUSY at once when other processes
// open the same file at the same moment (the busy handler does not cover
// it), so that case is retried with backoff for up to BusyTimeout.
func connect(ctx context.Context, db *sql.DB, backend Backend, opts Opts) error {
	wait := 5 * time.Millisecond
	deadline := opts.Clock.Now().Add(opts.BusyTimeout)
	for {
		err := db.PingContext(ctx)
		if err == nil || backend != SQLite || !strings.Contains(err.Error(), "SQLITE_BUSY") || opts.Clock.Now().After(deadline) {
			return err
		}
		t := opts.Clock.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C():
		}
		wait = min(2*wait, 200*time.Millisecond)
	}
}
