package uefi

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestUBootSeedMatchesUBootsTool compares the store with one U-Boot's own
// tools/efivar.py wrote from the same signature lists
// (testdata/uboot-seed/README).
func TestUBootSeedMatchesUBootsTool(t *testing.T) {
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata", "uboot-seed", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	got, err := UBootSeed(read("PK.esl"), read("KEK.esl"), read("db.esl"))
	if err != nil {
		t.Fatal(err)
	}
	if want := read("seed.var"); !bytes.Equal(got, want) {
		t.Errorf("store differs from efivar.py's:\n got %x\nwant %x", got, want)
	}
}

func TestUBootSeedNeedsAllThree(t *testing.T) {
	if _, err := UBootSeed([]byte("pk"), nil, []byte("db")); err == nil {
		t.Error("a store without KEK was made")
	}
}
