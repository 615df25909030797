package uefi

import (
	"bytes"
	"context"
	"debug/pe"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// DefaultStub is systemd's arm64 EFI stub (Debian's systemd-boot-efi:arm64).
const DefaultStub = "/usr/lib/systemd/boot/efi/linuxaa64.efi.stub"

// DefaultObjcopy reads and writes arm64 PE images (pei-aarch64-little).
const DefaultObjcopy = "aarch64-linux-gnu-objcopy"

// UKI names the parts of a unified kernel image.
type UKI struct {
	// Stub is the EFI stub (DefaultStub if empty); Objcopy the tool
	// (DefaultObjcopy if empty).
	Stub, Objcopy string
	// Kernel is the arm64 kernel Image, built with CONFIG_EFI_STUB (a PE
	// image itself); Initrd the initramfs.
	Kernel, Initrd string
	// Cmdline is the kernel command line. Under Secure Boot systemd-stub
	// ignores any command line the boot loader passes: this one is signed.
	Cmdline string
	// OSRelease is the .osrel section (os-release format).
	OSRelease string
}

// sectionAlign is where each added section starts (the stub's own
// sections end well below the first).
const sectionAlign = 0x10000

// BuildUKI writes the unified kernel image to out (replaced atomically).
func BuildUKI(ctx context.Context, u UKI, out string) error {
	if u.Stub == "" {
		u.Stub = DefaultStub
	}
	if u.Objcopy == "" {
		u.Objcopy = DefaultObjcopy
	}
	if err := checkCmdline(u.Cmdline); err != nil {
		return err
	}
	stubEnd, err := imageEnd(u.Stub)
	if err != nil {
		return fmt.Errorf("uki: stub %s: %w", u.Stub, err)
	}
	if _, err := imageEnd(u.Kernel); err != nil {
		return fmt.Errorf("uki: kernel %s is not an EFI program (CONFIG_EFI_STUB): %w", u.Kernel, err)
	}
	dir, err := os.MkdirTemp(filepath.Dir(out), ".uki-*")
	if err != nil {
		return fmt.Errorf("uki: %w", err)
	}
	defer os.RemoveAll(dir)
	text := func(name, s string) (string, error) {
		p := filepath.Join(dir, name)
		return p, os.WriteFile(p, []byte(s), 0o644)
	}
	osrel, err := text("osrel", u.OSRelease)
	if err != nil {
		return fmt.Errorf("uki: %w", err)
	}
	// systemd-stub passes .cmdline as it is; a final NUL is what it expects
	// from ukify and what the kernel ignores.
	cmdline, err := text("cmdline", u.Cmdline+"\x00")
	if err != nil {
		return fmt.Errorf("uki: %w", err)
	}
	args := []string{}
	vma := alignUp(stubEnd, sectionAlign)
	for _, s := range []struct{ name, file string }{
		{".osrel", osrel}, {".cmdline", cmdline}, {".linux", u.Kernel}, {".initrd", u.Initrd},
	} {
		fi, err := os.Stat(s.file)
		if err != nil {
			return fmt.Errorf("uki: %s: %w", s.name, err)
		}
		args = append(args, "--add-section", s.name+"="+s.file,
			"--change-section-vma", fmt.Sprintf("%s=%#x", s.name, vma))
		vma = alignUp(vma+uint64(fi.Size()), sectionAlign)
	}
	tmp := filepath.Join(dir, "uki.efi")
	args = append(args, u.Stub, tmp)
	cmd := exec.CommandContext(ctx, u.Objcopy, args...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("uki: %s: %w: %s", u.Objcopy, err, bytes.TrimSpace(b))
	}
	if _, err := imageEnd(tmp); err != nil {
		return fmt.Errorf("uki: objcopy wrote no valid PE image: %w", err)
	}
	if err := clearTimestamp(tmp); err != nil {
		return fmt.Errorf("uki: %w", err)
	}
	if err := os.Rename(tmp, out); err != nil {
		return fmt.Errorf("uki: %w", err)
	}
	return nil
}

// checkCmdline refuses what the stub or the kernel would misread.
func checkCmdline(s string) error {
	if len(s) > 4096 {
		return errors.New("uki: command line longer than 4096 bytes")
	}
	for _, r := range s {
		if r < 0x20 || r > 0x7e {
			return fmt.Errorf("uki: command line has a character %q that is not printable ASCII", r)
		}
	}
	if strings.TrimSpace(s) == "" {
		return errors.New("uki: empty command line")
	}
	return nil
}

// imageEnd returns the end of the last section of a PE image, relative to
// its image base.
func imageEnd(path string) (uint64, error) {
	f, err := pe.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if f.Machine != pe.IMAGE_FILE_MACHINE_ARM64 {
		return 0, fmt.Errorf("machine %#x, want arm64 (%#x)", f.Machine, pe.IMAGE_FILE_MACHINE_ARM64)
	}
	var end uint64
	for _, s := range f.Sections {
		if e := uint64(s.VirtualAddress) + uint64(s.VirtualSize); e > end {
			end = e
		}
	}
	if end == 0 {
		return 0, errors.New("no sections")
	}
	return end, nil
}

// clearTimestamp sets the COFF header's TimeDateStamp to 0, what
// `ld --no-insert-timestamp` writes. objcopy stamps the current time there
// (it ignores SOURCE_DATE_EPOCH), and the field is part of the image's
// Authenticode digest: with it the same inputs gave another digest, and
// another PCR 4, on every build.
func clearTimestamp(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	var hdr [0x40]byte
	if _, err := f.ReadAt(hdr[:], 0); err != nil {
		return fmt.Errorf("read the DOS header: %w", err)
	}
	off := int64(binary.LittleEndian.Uint32(hdr[0x3c:]))
	var sig [4]byte
	if _, err := f.ReadAt(sig[:], off); err != nil || string(sig[:]) != "PE\x00\x00" {
		return fmt.Errorf("no PE signature at %#x", off)
	}
	// PE signature (4), Machine (2), NumberOfSections (2), TimeDateStamp.
	if _, err := f.WriteAt(make([]byte, 4), off+8); err != nil {
		return fmt.Errorf("clear the time stamp: %w", err)
	}
	return f.Close()
}

func alignUp(v, a uint64) uint64 { return (v + a - 1) &^ (a - 1) }
