package manifest

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
)

// Format is the manifest format version this package reads and writes.
const Format = 1

// File names in an image directory.
const (
	FileName          = "manifest.json"
	KernelFileName    = "Image"
	InitramfsFileName = "initramfs.cpio.gz"
	// EFIFileName is the signed EFI program of a board that boots through
	// UEFI (kernel, initramfs and command line in one).
	EFIFileName = "zmonitor.efi"
)

// maxSize bounds a manifest; a real one is about 1.5 kB.
const maxSize = 64 << 10

// Part is one hashed part of the image.
type Part struct {
	// Path is a file name in the image directory for the kernel and the
	// initramfs, and an absolute path inside the initramfs for the others.
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"` // lowercase hex
}

// Manifest describes one firmware image.
type Manifest struct {
	Format          int    `json:"format"`
	FirmwareVersion string `json:"firmwareVersion"`
	Board           string `json:"board"`
	// KernelSource is the Debian source package and version, e.g.
	// "linux-source-6.1 6.1.192-2".
	KernelSource string `json:"kernelSource"`
	// KernelVersion is the kernel's "Linux version ..." banner.
	KernelVersion string `json:"kernelVersion"`
	// GoVersion is the toolchain that built /init, from its build info.
	GoVersion string `json:"goVersion"`
	// SourceDateEpoch is the modification time of every initramfs entry.
	SourceDateEpoch int64 `json:"sourceDateEpoch"`

	Kernel       Part `json:"kernel"`
	Initramfs    Part `json:"initramfs"`
	Init         Part `json:"init"`
	BoardProfile Part `json:"boardProfile"`
	TrustAnchor  Part `json:"trustAnchor"`

	// UEFI describes the signed EFI program, for a board that boots
	// through UEFI with Secure Boot; absent for the direct-kernel boards.
	UEFI *UEFI `json:"uefi,omitempty"`
}

// UEFI is what a verifier of a UEFI board's boot needs to know about the
// image: its digest as the firmware sees it and the PCR values a board with
// the given keys has after booting it.
type UEFI struct {
	// Image is the signed EFI program (EFIFileName) in the image directory.
	Image Part `json:"image"`
	// Cmdline is the kernel command line signed into it.
	Cmdline string `json:"cmdline"`
	// Stub names the EFI stub, e.g. "systemd-boot-efi 252.39-1~deb12u2".
	Stub string `json:"stub"`
	// Authenticode is the SHA-256 Authenticode (PE image) digest, lowercase
	// hex: what the firmware checks against db and dbx and measures into
	// PCR 4 (of the signed file, as it is in the image directory).
	Authenticode string `json:"authenticodeSHA256"`
	// SigningCert is the SHA-256 of the image-signing certificate (DER),
	// the db entry that lets the image run.
	SigningCert string `json:"signingCertSHA256"`
	// PCRs are the expected values after a boot of this image on a board
	// with the keys the image was built for.
	PCRs []PCR `json:"expectedPCRs"`
}

// PCR is the expected value of one PCR.
type PCR struct {
	Index int    `json:"index"`
	Bank  string `json:"bank"`  // "sha256"
	Value string `json:"value"` // lowercase hex
}

// Marshal returns the canonical encoding: indented JSON with a final newline.
func (m Manifest) Marshal() ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode manifest: %w", err)
	}
	return append(b, '\n'), nil
}

// Parse decodes and validates a manifest. Unknown fields, trailing data and
// missing or malformed fields are errors.
func Parse(b []byte) (Manifest, error) {
	var m Manifest
	if len(b) > maxSize {
		return m, fmt.Errorf("parse manifest: %d bytes, at most %d allowed", len(b), maxSize)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return Manifest{}, fmt.Errorf("parse manifest: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Manifest{}, errors.New("parse manifest: data after the JSON object")
	}
	if err := m.Validate(); err != nil {
		return Manifest{}, err
	}
	return m, nil
}

// Validate checks every field.
func (m Manifest) Validate() error {
	if m.Format != Format {
		return fmt.Errorf("manifest: format %d, want %d", m.Format, Format)
	}
	for _, f := range []struct{ name, value string }{
		{"firmwareVersion", m.FirmwareVersion},
		{"board", m.Board},
		{"kernelSource", m.KernelSource},
		{"kernelVersion", m.KernelVersion},
		{"goVersion", m.GoVersion},
	} {
		if err := checkText(f.value); err != nil {
			return fmt.Errorf("manifest: %s: %w", f.name, err)
		}
	}
	if m.SourceDateEpoch < 0 || m.SourceDateEpoch > 1<<32-1 {
		return fmt.Errorf("manifest: sourceDateEpoch %d out of range", m.SourceDateEpoch)
	}
	for _, p := range []struct {
		name   string
		part   Part
		inside bool
	}{
		{"kernel", m.Kernel, false},
		{"initramfs", m.Initramfs, false},
		{"init", m.Init, true},
		{"boardProfile", m.BoardProfile, true},
		{"trustAnchor", m.TrustAnchor, true},
	} {
		if err := p.part.validate(p.inside); err != nil {
			return fmt.Errorf("manifest: %s: %w", p.name, err)
		}
	}
	if m.UEFI != nil {
		if err := m.UEFI.validate(); err != nil {
			return fmt.Errorf("manifest: uefi: %w", err)
		}
	}
	return nil
}

func (u *UEFI) validate() error {
	if err := u.Image.validate(false); err != nil {
		return fmt.Errorf("image: %w", err)
	}
	for _, f := range []struct{ name, value string }{{"cmdline", u.Cmdline}, {"stub", u.Stub}} {
		if err := checkText(f.value); err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
	}
	for _, h := range []struct{ name, value string }{
		{"authenticodeSHA256", u.Authenticode}, {"signingCertSHA256", u.SigningCert},
	} {
		if !isSHA256Hex(h.value) {
			return fmt.Errorf("%s %q: want 64 lowercase hex digits", h.name, h.value)
		}
	}
	if len(u.PCRs) == 0 {
		return errors.New("expectedPCRs: none")
	}
	seen := map[int]bool{}
	for _, p := range u.PCRs {
		if p.Index < 0 || p.Index > 23 || seen[p.Index] {
			return fmt.Errorf("expectedPCRs: index %d out of range or given twice", p.Index)
		}
		seen[p.Index] = true
		if p.Bank != "sha256" || !isSHA256Hex(p.Value) {
			return fmt.Errorf("expectedPCRs: PCR %d: want bank sha256 and 64 lowercase hex digits", p.Index)
		}
	}
	return nil
}

func isSHA256Hex(s string) bool {
	if len(s) != 64 || strings.ToLower(s) != s {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

func checkText(s string) error {
	if s == "" {
		return errors.New("empty")
	}
	if len(s) > 512 {
		return errors.New("longer than 512 bytes")
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("control character %#x", r)
		}
	}
	return nil
}

func (p Part) validate(inside bool) error {
	if inside {
		if !strings.HasPrefix(p.Path, "/") || path.Clean(p.Path) != p.Path || p.Path == "/" {
			return fmt.Errorf("path %q: want a clean absolute path inside the initramfs", p.Path)
		}
	} else if p.Path == "" || p.Path == "." || p.Path == ".." || strings.ContainsAny(p.Path, "/\\\x00") {
		return fmt.Errorf("path %q: want a plain file name in the image directory", p.Path)
	}
	if p.Size < 0 {
		return fmt.Errorf("size %d is negative", p.Size)
	}
	if !isSHA256Hex(p.SHA256) {
		return fmt.Errorf("sha256 %q: want 64 lowercase hex digits", p.SHA256)
	}
	return nil
}
