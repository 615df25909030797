package uefi

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"unicode/utf16"
)

// U-Boot keeps its UEFI variables in one block (include/efi_variable.h,
// struct efi_var_file); CONFIG_EFI_VARIABLES_PRESEED compiles such a block
// into the firmware, and U-Boot loads it at every start.
const (
	seedMagic  = 0x0161566966456255 // "UbEfiVa" and version 1
	seedHeader = 24                 // reserved u64, magic u64, length u32, crc32 u32
	// seedAttr is NON_VOLATILE | BOOTSERVICE_ACCESS | RUNTIME_ACCESS |
	// TIME_BASED_AUTHENTICATED_WRITE_ACCESS: the attributes of PK, KEK
	// and db.
	seedAttr = 0x27
)

// SeedVar is one variable of a U-Boot variable store.
type SeedVar struct {
	Vendor GUID
	Name   string
	Data   []byte
}

// UBootSeed returns the U-Boot variable store (efi_var_file) that holds
// PK, KEK and db: the firmware's CONFIG_EFI_VAR_SEED_FILE. Each is an EFI
// signature list (the .esl files of scripts/uefi-keys.sh). The store
// carries no time stamps, so the same keys give the same bytes. With PK
// set, U-Boot starts in User Mode with Secure Boot on.
func UBootSeed(pk, kek, db []byte) ([]byte, error) {
	if len(pk) == 0 || len(kek) == 0 || len(db) == 0 {
		return nil, errors.New("uefi seed: PK, KEK and db are all needed")
	}
	return seedFile([]SeedVar{
		{GlobalVariable, "PK", pk},
		{GlobalVariable, "KEK", kek},
		{ImageSecurityDatabase, "db", db},
	})
}

// UBootSeedFromKeys is UBootSeed of the PK.esl, KEK.esl and db.esl in
// dir (scripts/uefi-keys.sh).
func UBootSeedFromKeys(dir string) ([]byte, error) {
	var esl [3][]byte
	for i, name := range []string{"PK", "KEK", "db"} {
		b, err := os.ReadFile(filepath.Join(dir, name+".esl"))
		if err != nil {
			return nil, fmt.Errorf("uefi seed: %w", err)
		}
		esl[i] = b
	}
	return UBootSeed(esl[0], esl[1], esl[2])
}

func seedFile(vars []SeedVar) ([]byte, error) {
	b := make([]byte, seedHeader)
	binary.LittleEndian.PutUint64(b[8:], seedMagic)
	for _, v := range vars {
		if v.Name == "" {
			return nil, errors.New("uefi seed: a variable without a name")
		}
		if uint64(len(v.Data)) > 1<<31 {
			return nil, fmt.Errorf("uefi seed: %s: too large", v.Name)
		}
		b = binary.LittleEndian.AppendUint32(b, uint32(len(v.Data)))
		b = binary.LittleEndian.AppendUint32(b, seedAttr)
		b = binary.LittleEndian.AppendUint64(b, 0) // time
		b = append(b, v.Vendor[:]...)
		for _, c := range utf16.Encode([]rune(v.Name + "\x00")) {
			b = binary.LittleEndian.AppendUint16(b, c)
		}
		b = append(b, v.Data...)
		for len(b)%8 != 0 {
			b = append(b, 0)
		}
	}
	binary.LittleEndian.PutUint32(b[16:], uint32(len(b)))
	binary.LittleEndian.PutUint32(b[20:], crc32.ChecksumIEEE(b[seedHeader:]))
	return b, nil
}
