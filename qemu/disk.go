package qemu

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
)

// ensureDisk creates the data disk when it does not exist: a sparse file
// of size bytes formatted as ext4 on the host (the device never formats
// its data partition). An existing disk is kept as it is.
func ensureDisk(ctx context.Context, mkfs, path string, size int64) (created bool, err error) {
	if _, err := os.Stat(path); err == nil {
		return false, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("data disk: %w", err)
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return false, fmt.Errorf("data disk: create: %w", err)
	}
	defer os.Remove(tmp) // no-op after the rename
	if err := f.Truncate(size); err != nil {
		f.Close()
		return false, fmt.Errorf("data disk: size: %w", err)
	}
	if err := f.Close(); err != nil {
		return false, fmt.Errorf("data disk: %w", err)
	}
	// -F: it is a file, not a block device. -q: quiet. No lazy init, so the
	// guest does not spend its first minutes zeroing inode tables.
	out, err := exec.CommandContext(ctx, mkfs, "-F", "-q", "-L", "zmdata",
		"-E", "lazy_itable_init=0,lazy_journal_init=0", tmp).CombinedOutput()
	if err != nil {
		return false, fmt.Errorf("data disk: %s: %w: %s", mkfs, err, out)
	}
	if err := os.Rename(tmp, path); err != nil {
		return false, fmt.Errorf("data disk: %w", err)
	}
	return true, nil
}

// ensureTPM creates the TPM state with only the given PCR banks when there
// is none yet (swtpm_setup; a TPM's manufacturer allocates the banks). With
// banks empty swtpm creates the state itself at the first start.
func ensureTPM(ctx context.Context, setup, dir, banks string) error {
	if banks == "" {
		return nil
	}
	state := filepath.Join(dir, "tpm2-00.permall")
	if _, err := os.Stat(state); err == nil {
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("tpm state: %w", err)
	}
	out, err := exec.CommandContext(ctx, setup, "--tpm2", "--tpmstate", dir, "--pcr-banks", banks).CombinedOutput()
	if err != nil {
		return fmt.Errorf("tpm state: %s --pcr-banks %s: %w: %s", setup, banks, err, out)
	}
	return nil
}
