package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestUnusableDatabaseRefused: a 0-byte or damaged central.db is refused
// with a message that says what to do, by serve and by every command, and
// is left as it was (never rebuilt as an empty inventory).
func TestUnusableDatabaseRefused(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(path string)
		why    string
	}{
		{"empty", func(p string) { os.Truncate(p, 0) }, "is empty (0 bytes)"},
		{"not SQLite", func(p string) { os.WriteFile(p, []byte("garbage, not a database\n"), 0o600) }, "not an SQLite database"},
		{"damaged", func(p string) {
			f, _ := os.OpenFile(p, os.O_RDWR, 0)
			fi, _ := f.Stat()
			for off := int64(4096); off < fi.Size(); off += 4096 {
				f.WriteAt([]byte(strings.Repeat("\xa5", 4096)), off)
			}
			f.Close()
		}, "damaged"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, _ := initCentral(t)
			db := filepath.Join(dir, dbFile)
			os.Remove(db + "-wal")
			os.Remove(db + "-shm")
			tc.damage(db)
			before, _ := os.ReadFile(db)
			for _, args := range [][]string{
				{"serve", "--dir", dir, "--monitor-listen", "127.0.0.1:0", "--listen", "127.0.0.1:0"},
				{"devices", "list", "--dir", dir},
				{"technicians", "add", "--dir", dir, "bob"},
			} {
				code, _, errOut := runCLI(t, args...)
				if code != 1 || !strings.Contains(errOut, tc.why) || !strings.Contains(errOut, "zm-central restore") {
					t.Errorf("%v: exit %d, %q; want 1 saying %q and how to restore", args, code, errOut, tc.why)
				}
			}
			if after, _ := os.ReadFile(db); string(after) != string(before) {
				t.Error("the refused database was changed")
			}
		})
	}
}

// TestBackupRestoreCommands: backup while the database is in use, restore
// only with --force over an existing database, and restore over a 0-byte
// one.
func TestBackupRestoreCommands(t *testing.T) {
	dir, _ := initCentral(t)
	code, _, errOut := runCLI(t, "technicians", "add", "--dir", dir, "before")
	if code != 0 {
		t.Fatal(errOut)
	}
	bak := filepath.Join(t.TempDir(), "central-backup.db")
	code, out, errOut := runCLI(t, "backup", "--dir", dir, bak)
	if code != 0 || !strings.Contains(out, "backup written to "+bak) {
		t.Fatalf("backup: %d %q %q", code, out, errOut)
	}
	if fi, err := os.Stat(bak); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("backup file: %v %v", fi.Mode(), err)
	}
	if code, _, errOut := runCLI(t, "backup", "--dir", dir, bak); code != 1 || !strings.Contains(errOut, "exists") {
		t.Errorf("backup over an existing file: %d %q", code, errOut)
	}
	runCLI(t, "technicians", "add", "--dir", dir, "after")
	if code, _, errOut := runCLI(t, "restore", "--dir", dir, bak); code != 2 || !strings.Contains(errOut, "--force") {
		t.Errorf("restore over a database without --force: %d %q", code, errOut)
	}
	if code, out, errOut := runCLI(t, "restore", "--dir", dir, "--force", bak); code != 0 || !strings.Contains(out, "restored") {
		t.Fatalf("restore --force: %d %q %q", code, out, errOut)
	}
	_, list, _ := runCLI(t, "technicians", "list", "--dir", dir)
	if !strings.Contains(list, "before") || strings.Contains(list, "after") {
		t.Errorf("after restore: %s", list)
	}
	db := filepath.Join(dir, dbFile)
	os.Truncate(db, 0)
	if code, _, errOut := runCLI(t, "restore", "--dir", dir, "--force", bak); code != 0 {
		t.Fatalf("restore over an empty file: %d %q", code, errOut)
	}
	if code, _, errOut := runCLI(t, "devices", "list", "--dir", dir); code != 0 {
		t.Errorf("after restoring over an empty file: %d %q", code, errOut)
	}
	_, audit, _ := runCLI(t, "audit", "export", "--dir", dir)
	if !strings.Contains(audit, `"central.restore"`) || !strings.Contains(audit, `"central.backup"`) {
		t.Errorf("backup and restore not audited: %s", audit)
	}
}
