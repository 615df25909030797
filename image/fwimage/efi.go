package fwimage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/zmonitor/firmware/image/manifest"
	"github.com/zmonitor/firmware/image/uefi"
)

// buildEFI makes the unified kernel image from the kernel and the
// initramfs, signs it with the board's db key into outDir, and returns its
// manifest section. The signatures carry epoch (SOURCE_DATE_EPOCH) as their
// signing time, so the same inputs give the same files and digests.
func buildEFI(in UEFIInputs, kernelPath string, initrd []byte, version, outDir string, epoch int64) (manifest.UEFI, error) {
	ctx := context.Background()
	tmp, err := os.MkdirTemp(outDir, ".efi-*")
	if err != nil {
		return manifest.UEFI{}, fmt.Errorf("efi: %w", err)
	}
	defer os.RemoveAll(tmp)
	rd := filepath.Join(tmp, "initrd")
	if err := os.WriteFile(rd, initrd, 0o644); err != nil {
		return manifest.UEFI{}, fmt.Errorf("efi: %w", err)
	}
	// systemd-stub 252 starts the kernel with LoadImage. edk2 lets it
	// through (systemd-stub overrides edk2's security protocols); U-Boot
	// has no such protocols and verifies and measures the kernel like any
	// image, so the kernel is signed with the same key.
	signer := uefi.Signer{Key: filepath.Join(in.Keys, "db.key"), Cert: filepath.Join(in.Keys, "db.crt"), Time: epoch}
	kernel := filepath.Join(tmp, "Image.signed")
	if err := signer.Sign(ctx, kernelPath, kernel); err != nil {
		return manifest.UEFI{}, fmt.Errorf("efi: sign the kernel: %w", err)
	}
	kb, err := os.ReadFile(kernel)
	if err != nil {
		return manifest.UEFI{}, fmt.Errorf("efi: %w", err)
	}
	kernelDigest, err := uefi.Authenticode(kb)
	if err != nil {
		return manifest.UEFI{}, err
	}
	unsigned := filepath.Join(tmp, "unsigned.efi")
	osrel := fmt.Sprintf("NAME=\"Z Monitor\"\nID=zmonitor\nVERSION_ID=%q\nPRETTY_NAME=\"Z Monitor %s\"\n", version, version)
	if err := uefi.BuildUKI(ctx, uefi.UKI{Stub: in.Stub, Kernel: kernel, Initrd: rd, Cmdline: in.Cmdline, OSRelease: osrel}, unsigned); err != nil {
		return manifest.UEFI{}, err
	}
	signed := filepath.Join(tmp, manifest.EFIFileName)
	if err := signer.Sign(ctx, unsigned, signed); err != nil {
		return manifest.UEFI{}, err
	}
	b, err := os.ReadFile(signed)
	if err != nil {
		return manifest.UEFI{}, fmt.Errorf("efi: %w", err)
	}
	digest, err := uefi.Authenticode(b)
	if err != nil {
		return manifest.UEFI{}, err
	}
	m, err := MeasuredBoot(in.Keys, digest)
	if err != nil {
		return manifest.UEFI{}, err
	}
	m.Kernel = kernelDigest
	certDER, err := readCertDER(filepath.Join(in.Keys, "db.crt"))
	if err != nil {
		return manifest.UEFI{}, err
	}
	certSum := sha256.Sum256(certDER)
	if err := WriteFile(filepath.Join(outDir, manifest.EFIFileName), b); err != nil {
		return manifest.UEFI{}, err
	}
	stub := in.StubVersion
	if stub == "" {
		stub = "systemd-stub"
	}
	u := manifest.UEFI{
		Image:        part(manifest.EFIFileName, b),
		Cmdline:      in.Cmdline,
		Stub:         stub,
		Authenticode: hex.EncodeToString(digest[:]),
		SigningCert:  hex.EncodeToString(certSum[:]),
	}
	pcrs := m.ExpectedPCRs()
	idx := make([]int, 0, len(pcrs))
	for i := range pcrs {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	for _, i := range idx {
		v := pcrs[i]
		u.PCRs = append(u.PCRs, manifest.PCR{Index: i, Bank: "sha256", Value: hex.EncodeToString(v[:])})
	}
	return u, nil
}

// MeasuredBoot is what the board's firmware measures when it boots the
// image with the given Authenticode digest on a board whose keys are in
// the key directory (PK.esl, KEK.esl, db.esl; no dbx).
func MeasuredBoot(keys string, image [sha256.Size]byte) (uefi.Measured, error) {
	m := uefi.Measured{Image: image}
	for _, v := range []struct {
		file string
		dst  *[]byte
	}{{"PK.esl", &m.PK}, {"KEK.esl", &m.KEK}, {"db.esl", &m.DB}} {
		b, err := os.ReadFile(filepath.Join(keys, v.file))
		if err != nil {
			return m, fmt.Errorf("efi: keys: %w", err)
		}
		*v.dst = b
	}
	if _, _, err := uefi.FirstX509(m.DB); err != nil {
		return m, fmt.Errorf("efi: keys: db.esl: %w", err)
	}
	return m, nil
}

func readCertDER(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("efi: %w", err)
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("efi: " + path + ": not a PEM certificate")
	}
	return block.Bytes, nil
}
