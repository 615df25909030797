package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestWriteFileIfChanged(t *testing.T) {
	path := filepath.Join(t.TempDir(), "enrollment.json")
	if err := writeFileIfChanged(path, []byte("one")); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}
	if err := writeFileIfChanged(path, []byte("one")); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); !fi.ModTime().Equal(old) {
		t.Error("an unchanged record was written again")
	}
	if err := writeFileIfChanged(path, []byte("two")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "two" {
		t.Errorf("changed record not written: %q", b)
	}
	if _, err := os.Stat(path + ".tmp"); !os.IsNotExist(err) {
		t.Error("temporary file left behind")
	}
}

func TestLoadIdentity(t *testing.T) {
	dir := t.TempDir()
	given := identity{DeviceID: "ZM-001", DeviceSerial: "SN-1"}
	id, first, err := loadIdentity(dir, given)
	if err != nil || !first || id != given {
		t.Fatalf("first boot: %+v %v %v", id, first, err)
	}
	// Later boots keep the stored identity whatever the command line says.
	id, first, err = loadIdentity(dir, identity{DeviceID: "ZM-999", DeviceSerial: "SN-9"})
	if err != nil || first || id != given {
		t.Fatalf("second boot: %+v %v %v", id, first, err)
	}
	if _, _, err := loadIdentity(t.TempDir(), identity{DeviceID: "bad id!", DeviceSerial: "x"}); err == nil {
		t.Error("invalid identity stored")
	}
	if err := os.WriteFile(filepath.Join(dir, identityFile), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := loadIdentity(dir, given); err == nil {
		t.Error("corrupt identity file accepted")
	}
}
