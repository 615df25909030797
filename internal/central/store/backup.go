package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"time"

	"modernc.org/sqlite"
)

// ErrBackupUnsupported: Backup and Restore work on SQLite only; a
// PostgreSQL database is backed up with pg_dump (docs/central-station.md).
var ErrBackupUnsupported = errors.New("backup and restore are for SQLite: back PostgreSQL up with pg_dump, restore it with pg_restore")

// Backup writes a consistent copy of an SQLite store to dst, a new file
// (mode 0600), while the store stays in use (VACUUM INTO: one read
// transaction, so a snapshot; the copy is compacted). The copy is then
// checked as Restore checks it.
func Backup(ctx context.Context, s Store, dst string) error {
	ss, ok := s.(*sqlStore)
	if !ok || ss.d.backend != SQLite {
		return ErrBackupUnsupported
	}
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, dbFileMode)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	f.Close()
	if _, err := ss.db.ExecContext(ctx, `VACUUM INTO ?`, dst); err != nil {
		os.Remove(dst)
		return fmt.Errorf("backup: %w", err)
	}
	if err := syncFile(dst); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if _, err := CheckBackup(ctx, dst); err != nil {
		return fmt.Errorf("backup: the copy does not check: %w", err)
	}
	return nil
}

func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// BackupInfo describes a checked backup.
type BackupInfo struct {
	SchemaVersion int
	Devices       int
	AuditRecords  int
}

// CheckBackup checks that path is an intact SQLite Central Station
// database that this program can open (its schema is not newer), without
// changing it.
func CheckBackup(ctx context.Context, path string) (BackupInfo, error) {
	var info BackupInfo
	if _, err := prepareSQLiteFile(path, true); err != nil {
		return info, err
	}
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		return info, err
	}
	defer db.Close()
	if err := checkSQLite(ctx, db, path, true); err != nil {
		return info, err
	}
	err = db.QueryRowContext(ctx, `SELECT (SELECT MAX(version) FROM schema_migrations), (SELECT COUNT(*) FROM devices), (SELECT COUNT(*) FROM audit)`).
		Scan(&info.SchemaVersion, &info.Devices, &info.AuditRecords)
	if err != nil {
		return info, fmt.Errorf("%w: %s: %v", ErrUnusable, path, err)
	}
	if info.SchemaVersion > SchemaVersion() {
		return info, fmt.Errorf("%w: %s has schema version %d, newer than this program's %d", ErrUnusable, path, info.SchemaVersion, SchemaVersion())
	}
	return info, nil
}

// Restore replaces the SQLite database at dsn with the backup at src,
// after checking the backup (CheckBackup). A database at dsn that opens is
// overwritten through SQLite's online backup API, page by page under
// SQLite's locks, so a process that still has it open sees either the old
// or the restored content; one that does not open (empty, not SQLite,
// damaged) is removed with its -wal and -shm files first. The restored
// database is then opened as Open does (migrated if the backup is older).
func Restore(ctx context.Context, src, dsn string) (BackupInfo, error) {
	backend, _, path, err := parseDSN(dsn, 0)
	if err != nil {
		return BackupInfo{}, fmt.Errorf("restore: %w", err)
	}
	if backend != SQLite {
		return BackupInfo{}, ErrBackupUnsupported
	}
	info, err := CheckBackup(ctx, src)
	if err != nil {
		return info, fmt.Errorf("restore: backup %w", err)
	}
	if _, err := os.Stat(path); err == nil {
		if s, err := Open(ctx, dsn, &Opts{MustExist: true}); err != nil {
			// Unusable: start from nothing.
			for _, p := range []string{path, path + "-wal", path + "-shm"} {
				if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
					return info, fmt.Errorf("restore: remove the unusable %s: %w", p, err)
				}
			}
		} else {
			s.Close()
		}
	}
	if _, err := prepareSQLiteFile(path, false); err != nil {
		return info, fmt.Errorf("restore: %w", err)
	}
	_, source, _, _ := parseDSN(dsn, 10*time.Second)
	db, err := sql.Open("sqlite", source)
	if err != nil {
		return info, fmt.Errorf("restore: %w", err)
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return info, fmt.Errorf("restore: %w", err)
	}
	defer conn.Close()
	err = conn.Raw(func(dc any) error {
		r, ok := dc.(interface {
			NewRestore(string) (*sqlite.Backup, error)
		})
		if !ok {
			return errors.New("the SQLite driver has no backup API")
		}
		b, err := r.NewRestore("file:" + src + "?mode=ro")
		if err != nil {
			return err
		}
		for more := true; more && err == nil; {
			more, err = b.Step(-1)
		}
		if ferr := b.Finish(); err == nil {
			err = ferr
		}
		return err
	})
	if err != nil {
		return info, fmt.Errorf("restore: copy %s: %w", src, err)
	}
	conn.Close()
	db.Close()
	s, err := Open(ctx, dsn, &Opts{MustExist: true})
	if err != nil {
		return info, fmt.Errorf("restore: the restored database: %w", err)
	}
	return info, s.Close()
}
