package harness

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/zmonitor/firmware/board"
	"github.com/zmonitor/firmware/image/fwimage"
	"github.com/zmonitor/firmware/image/kernel"
	"github.com/zmonitor/firmware/image/manifest"
	"github.com/zmonitor/firmware/image/uefi"
	"github.com/zmonitor/firmware/qemu"
)

// SecureBoard is the qemu-virt-secure board's cached parts: its kernel
// (with the EFI stub), its Secure Boot keys and its firmware (U-Boot with
// those keys compiled in).
type SecureBoard struct {
	Repo   string
	Kernel string
	// Keys is the board's key directory (scripts/uefi-keys.sh): the
	// development keys in ZM_CACHE, the ones `make u-boot` builds in.
	Keys string
	// Firmware is u-boot.bin.
	Firmware string
}

// SecureCmdline is the command line the test images sign in: the
// development board's, with a fixed device identity (a signed image cannot
// take one per board from the boot loader).
const SecureCmdline = "console=ttyAMA0 panic=-1 quiet zmonitor.device_id=" + SecureDeviceID + " zmonitor.serial=SN-SECURE-000001"

// SecureDeviceID is the device ID SecureCmdline gives the board.
const SecureDeviceID = "ZM-SECURE-01"

// DevKeys is the development key directory of the secure board under
// ZM_CACHE (default /var/cache/zmonitor): made once by scripts/uefi-keys.sh
// and kept, so the firmware built with them stays cached (make u-boot).
func DevKeys() string {
	root := os.Getenv("ZM_CACHE")
	if root == "" {
		root = "/var/cache/zmonitor"
	}
	return filepath.Join(root, "uefi-keys", "dev")
}

// Secure returns the kernel (ZM_KERNEL, or the cached one), keys and
// firmware of qemu-virt-secure, or an error wrapping kernel.ErrNotBuilt or
// uefi.ErrNotBuilt.
func Secure(ctx context.Context) (SecureBoard, error) {
	repo, err := kernel.FindRepoRoot()
	if err != nil {
		return SecureBoard{}, err
	}
	k, err := kernel.Locate(ctx, kernel.Options{RepoRoot: repo})
	if err != nil {
		return SecureBoard{}, err
	}
	s := SecureBoard{Repo: repo, Kernel: k, Keys: DevKeys()}
	if _, err := os.Stat(filepath.Join(s.Keys, "db.esl")); err != nil {
		return SecureBoard{}, fmt.Errorf("secure board keys %s: %w", s.Keys, uefi.ErrNotBuilt)
	}
	seed, err := uefi.UBootSeedFromKeys(s.Keys)
	if err != nil {
		return SecureBoard{}, err
	}
	f, err := os.CreateTemp("", "zm-uboot-seed-")
	if err != nil {
		return SecureBoard{}, err
	}
	defer os.Remove(f.Name())
	_, err = f.Write(seed)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return SecureBoard{}, fmt.Errorf("secure board seed: %w", err)
	}
	if s.Firmware, err = uefi.Firmware(ctx, repo, uefi.DefaultBoard, f.Name(), false, nil); err != nil {
		return SecureBoard{}, err
	}
	return s, nil
}

// MakeKeys makes a Secure Boot key set in dir (scripts/uefi-keys.sh): for
// signing images with a key the board does not trust.
func (s SecureBoard) MakeKeys(ctx context.Context, dir, name string) error {
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(s.Repo, "scripts/uefi-keys.sh"), dir, name)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("uefi keys: %w: %s", err, out)
	}
	return nil
}

// Image builds the firmware image with the signed EFI program into out,
// as `make image-secure` does.
func (s SecureBoard) Image(initPath string, anchorPEM []byte, keys, cmdline, out string) (manifest.Manifest, error) {
	p, err := board.Lookup("qemu-virt")
	if err != nil {
		return manifest.Manifest{}, err
	}
	p.Name = uefi.DefaultBoard
	pj, err := p.JSON()
	if err != nil {
		return manifest.Manifest{}, err
	}
	dir, err := os.MkdirTemp("", "zm-secure-inputs-")
	if err != nil {
		return manifest.Manifest{}, err
	}
	defer os.RemoveAll(dir)
	boardPath, anchorPath := filepath.Join(dir, "board.json"), filepath.Join(dir, "anchor.pem")
	if err := os.WriteFile(boardPath, pj, 0o644); err != nil {
		return manifest.Manifest{}, err
	}
	if err := os.WriteFile(anchorPath, anchorPEM, 0o644); err != nil {
		return manifest.Manifest{}, err
	}
	return fwimage.Build(fwimage.Inputs{
		KernelPath: s.Kernel, InitPath: initPath, BoardPath: boardPath, AnchorPath: anchorPath,
		FirmwareVersion: "e2e", Board: uefi.DefaultBoard,
		UEFI: &fwimage.UEFIInputs{Cmdline: cmdline, Keys: keys},
	}, out, nil)
}

// Config is the board configuration that boots efi (a signed EFI program)
// through the board's firmware, with a TPM that has only the SHA-256 bank.
func (s SecureBoard) Config(efi, stateDir string) qemu.Config {
	return qemu.Config{
		Kernel: efi, StateDir: stateDir, PCRBanks: "sha256",
		Firmware: &qemu.Firmware{Code: s.Firmware},
	}
}
