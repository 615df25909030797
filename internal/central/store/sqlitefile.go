package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// ErrUnusable is wrapped by the refusal to open an SQLite database that is
// missing (with Opts.MustExist), empty, not SQLite, damaged, or not a
// Central Station's.
var ErrUnusable = errors.New("database unusable")

// sqliteHeader starts every SQLite 3 database file.
var sqliteHeader = []byte("SQLite format 3\x00")

// dbFileMode is the mode of a database file the store creates: it holds
// the inventory and the technicians' token hashes. SQLite gives its -wal
// and -shm files the same mode.
const dbFileMode = 0o600

const restoreHint = "restore it from a backup (zm-central restore), or move it aside and run zm-central init in a new directory"

// prepareSQLiteFile checks the file before SQLite opens it (SQLite would
// silently make a new, empty database of a 0-byte file). A missing file is
// created with mode 0600 unless mustExist; fresh reports that it was.
func prepareSQLiteFile(path string, mustExist bool) (fresh bool, err error) {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if mustExist {
			return false, fmt.Errorf("%w: %s does not exist (run zm-central init first, give --dir/--db, or restore a backup)", ErrUnusable, path)
		}
		return createSQLiteFile(path)
	case err != nil:
		return false, err
	case fi.IsDir():
		return false, fmt.Errorf("%w: %s is a directory", ErrUnusable, path)
	case fi.Size() == 0:
		return false, fmt.Errorf("%w: %s is empty (0 bytes), not a Central Station database: %s", ErrUnusable, path, restoreHint)
	}
	if err := checkHeader(path); err != nil {
		return false, err
	}
	return false, nil
}

// createSQLiteFile makes a new, empty SQLite database at path, mode 0600.
// It is made under a temporary name and linked into place once SQLite has
// written its header, so no opener ever sees a 0-byte file there (which
// Open refuses). Losing the race to another creator is fine: fresh is then
// false and the other's file is used.
func createSQLiteFile(path string) (fresh bool, err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".new-*")
	if err != nil {
		return false, fmt.Errorf("create %s: %w", path, err)
	}
	name := tmp.Name()
	defer os.Remove(name)
	if err := tmp.Chmod(dbFileMode); err != nil {
		tmp.Close()
		return false, fmt.Errorf("create %s: %w", path, err)
	}
	tmp.Close()
	db, err := sql.Open("sqlite", "file:"+name)
	if err == nil {
		_, err = db.Exec(`PRAGMA journal_mode=WAL`) // writes the header
		if cerr := db.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return false, fmt.Errorf("create %s: %w", path, err)
	}
	if err := os.Link(name, path); errors.Is(err, os.ErrExist) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("create %s: %w", path, err)
	}
	return true, nil
}

func checkHeader(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	head := make([]byte, len(sqliteHeader))
	if _, err := io.ReadFull(f, head); err != nil || !bytes.Equal(head, sqliteHeader) {
		return fmt.Errorf("%w: %s is not an SQLite database (no SQLite header): %s", ErrUnusable, path, restoreHint)
	}
	return nil
}

// SQLite primary result codes of a damaged file.
const (
	sqliteCorrupt = 11
	sqliteNotADB  = 26
)

// sqliteDamaged reports whether err is SQLite saying the file is damaged
// or not a database.
func sqliteDamaged(err error) bool {
	var e interface{ Code() int }
	if errors.As(err, &e) {
		c := e.Code() & 0xff
		return c == sqliteCorrupt || c == sqliteNotADB
	}
	return false
}

// checkSQLite runs SQLite's quick integrity check on db and, when
// needSchema, requires the Central Station's schema (schema_migrations).
func checkSQLite(ctx context.Context, db *sql.DB, path string, needSchema bool) error {
	rows, err := db.QueryContext(ctx, `PRAGMA quick_check`)
	if err != nil {
		return fmt.Errorf("%w: %s: integrity check: %v: %s", ErrUnusable, path, err, restoreHint)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return fmt.Errorf("%w: %s: integrity check: %v: %s", ErrUnusable, path, err, restoreHint)
		}
		if line != "ok" && len(problems) < 3 {
			problems = append(problems, line)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("%w: %s: integrity check: %v: %s", ErrUnusable, path, err, restoreHint)
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s is damaged (%s): %s", ErrUnusable, path, strings.Join(problems, "; "), restoreHint)
	}
	if !needSchema {
		return nil
	}
	var n int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'`).Scan(&n); err != nil {
		return fmt.Errorf("%w: %s: read schema: %v", ErrUnusable, path, err)
	}
	if n == 0 {
		return fmt.Errorf("%w: %s is an SQLite database but not a Central Station's (no schema_migrations): %s", ErrUnusable, path, restoreHint)
	}
	return nil
}
