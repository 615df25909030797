package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zmonitor/firmware/internal/base/clock/clocktest"
)

// sqliteWithDevices makes an SQLite store at path with n devices and
// closes it (its WAL checkpointed into the file).
func sqliteWithDevices(t *testing.T, path string, n int) {
	t.Helper()
	s := openAt(t, "sqlite:"+path, clocktest.New(t0))
	for i := range n {
		if _, err := s.ImportDevice(context.Background(), newEnrollmentFor(t, "ZM-"+string(rune('A'+i%26))+strings.Repeat("x", i/26))); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
}

func TestOpenRefusesUnusableSQLite(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	damaged := filepath.Join(dir, "damaged.db")
	sqliteWithDevices(t, damaged, 60)
	f, err := os.OpenFile(damaged, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := f.Stat()
	junk := []byte(strings.Repeat("\xa5", 4096))
	for off := int64(4096); off < fi.Size(); off += 3 * 4096 { // every third page but the first
		f.WriteAt(junk, off)
	}
	f.Close()
	foreign := filepath.Join(dir, "foreign.db")
	{
		s := openAt(t, "sqlite:"+filepath.Join(dir, "scratch.db"), clocktest.New(t0))
		if _, err := s.(*sqlStore).db.Exec(`VACUUM INTO ?`, foreign); err != nil {
			t.Fatal(err)
		}
		if _, err := s.(*sqlStore).db.Exec(`ATTACH ? AS f`, foreign); err != nil {
			t.Fatal(err)
		}
		s.(*sqlStore).db.Exec(`DROP TABLE f.schema_migrations`)
		s.Close()
	}
	for _, tc := range []struct {
		name, path string
		mustExist  bool
		why        string
	}{
		{"missing", filepath.Join(dir, "none.db"), true, "does not exist"},
		{"empty", write("empty.db", nil), false, "is empty (0 bytes)"},
		{"empty, must exist", write("empty2.db", nil), true, "is empty (0 bytes)"},
		{"not SQLite", write("text.db", []byte("device inventory, as a text file\n")), false, "not an SQLite database"},
		{"damaged", damaged, false, "damaged"},
		{"another program's SQLite", foreign, true, "not a Central Station's"},
		{"directory", dir, false, "is a directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := os.Stat(tc.path)
			s, err := Open(ctx, "sqlite:"+tc.path, &Opts{MustExist: tc.mustExist})
			if err == nil {
				s.Close()
				t.Fatal("opened")
			}
			if !errors.Is(err, ErrUnusable) || !strings.Contains(err.Error(), tc.why) {
				t.Errorf("error %v, want ErrUnusable saying %q", err, tc.why)
			}
			after, _ := os.Stat(tc.path)
			if before != nil && !before.IsDir() && (after == nil || after.Size() != before.Size()) {
				t.Errorf("the file changed: %d bytes, was %d", after.Size(), before.Size())
			}
			if before == nil && after != nil {
				t.Error("a missing database was created")
			}
		})
	}
}

// TestNewSQLiteDatabaseIsPrivate: the database file, and the -wal and -shm
// files SQLite makes next to it, are readable by their owner only.
func TestNewSQLiteDatabaseIsPrivate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "central.db")
	s := openAt(t, "sqlite:"+path, clocktest.New(t0))
	if _, err := s.ImportDevice(context.Background(), newEnrollmentFor(t, "ZM-001")); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != dbFileMode {
			t.Errorf("%s: mode %v, want %v", filepath.Base(p), fi.Mode().Perm(), os.FileMode(dbFileMode))
		}
	}
}

func TestBackupAndRestore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "central.db")
	dsn := "sqlite:" + path
	s := openAt(t, dsn, clocktest.New(t0))
	for _, id := range []string{"ZM-001", "ZM-002"} {
		if _, err := s.ImportDevice(ctx, newEnrollmentFor(t, id)); err != nil {
			t.Fatal(err)
		}
	}
	backup := filepath.Join(dir, "backup.db")
	if err := Backup(ctx, s, backup); err != nil { // while the store is open
		t.Fatal(err)
	}
	if fi, _ := os.Stat(backup); fi.Mode().Perm() != dbFileMode {
		t.Errorf("backup mode %v", fi.Mode().Perm())
	}
	if err := Backup(ctx, s, backup); err == nil || !errors.Is(err, os.ErrExist) {
		t.Errorf("backup over an existing file: %v", err)
	}
	info, err := CheckBackup(ctx, backup)
	if err != nil || info.Devices != 2 || info.SchemaVersion != SchemaVersion() {
		t.Fatalf("CheckBackup = %+v, %v", info, err)
	}
	// Changes after the backup are undone by the restore, even with the
	// store still open (the online backup API).
	if _, err := s.ImportDevice(ctx, newEnrollmentFor(t, "ZM-003")); err != nil {
		t.Fatal(err)
	}
	if _, err := Restore(ctx, backup, dsn); err != nil {
		t.Fatal(err)
	}
	ds, err := s.Devices(ctx)
	if err != nil || len(ds) != 2 || ds[0].ID != "ZM-001" || ds[1].ID != "ZM-002" {
		t.Errorf("after restore, the open store lists %+v, %v", ds, err)
	}
	s.Close()
	// A 0-byte (or damaged) database is replaced.
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	os.Remove(path + "-wal")
	os.Remove(path + "-shm")
	if _, err := Restore(ctx, backup, dsn); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(ctx, dsn, &Opts{MustExist: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if ds, _ := s2.Devices(ctx); len(ds) != 2 {
		t.Errorf("restored over an empty file: %d devices", len(ds))
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != dbFileMode {
		t.Errorf("restored database mode %v", fi.Mode().Perm())
	}
	// A backup that does not check is not restored.
	bad := filepath.Join(dir, "bad.db")
	os.WriteFile(bad, []byte("not a backup"), 0o600)
	if _, err := Restore(ctx, bad, dsn); !errors.Is(err, ErrUnusable) {
		t.Errorf("restore of a bad backup: %v", err)
	}
	if ds, _ := s2.Devices(ctx); len(ds) != 2 {
		t.Errorf("a refused restore changed the database: %d devices", len(ds))
	}
}

func TestBackupOfPostgreSQLPointsToPgDump(t *testing.T) {
	s := openAt(t, pgDSN(t), clocktest.New(t0))
	if err := Backup(context.Background(), s, filepath.Join(t.TempDir(), "b.db")); !errors.Is(err, ErrBackupUnsupported) || !strings.Contains(err.Error(), "pg_dump") {
		t.Errorf("Backup on PostgreSQL: %v", err)
	}
}
