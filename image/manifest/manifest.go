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
	return nil
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
	if len(p.SHA256) != 64 || strings.ToLower(p.SHA256) != p.SHA256 {
		return fmt.Errorf("sha256 %q: want 64 lowercase hex digits", p.SHA256)
	}
	if _, err := hex.DecodeString(p.SHA256); err != nil {
		return fmt.Errorf("sha256 %q: want 64 lowercase hex digits", p.SHA256)
	}
	return nil
}
