package manifest

import (
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/cavaliergopher/cpio"

	"github.com/zmonitor/firmware/image/uefi"
)

// PartOf hashes r and returns its Part with the given path.
func PartOf(p string, r io.Reader) (Part, error) {
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		return Part{}, fmt.Errorf("hash %s: %w", p, err)
	}
	return Part{Path: p, Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// Verify reads dir/manifest.json and rechecks the size and sha256 of the
// kernel and the initramfs in dir, and of /init, the board profile and the
// trust anchor inside the initramfs. It reports every mismatch.
func Verify(dir string) (Manifest, error) {
	b, err := os.ReadFile(filepath.Join(dir, FileName))
	if err != nil {
		return Manifest{}, fmt.Errorf("verify: %w", err)
	}
	m, err := Parse(b)
	if err != nil {
		return Manifest{}, fmt.Errorf("verify: %w", err)
	}
	var problems []error
	parts := []Part{m.Kernel, m.Initramfs}
	if m.UEFI != nil {
		parts = append(parts, m.UEFI.Image)
	}
	for _, want := range parts {
		if err := verifyFile(filepath.Join(dir, want.Path), want); err != nil {
			problems = append(problems, err)
		}
	}
	if m.UEFI != nil {
		if err := verifyAuthenticode(filepath.Join(dir, m.UEFI.Image.Path), m.UEFI.Authenticode); err != nil {
			problems = append(problems, err)
		}
	}
	inner := map[string]Part{m.Init.Path: m.Init, m.BoardProfile.Path: m.BoardProfile, m.TrustAnchor.Path: m.TrustAnchor}
	if err := verifyInitramfs(filepath.Join(dir, m.Initramfs.Path), inner); err != nil {
		problems = append(problems, err)
	}
	if len(problems) > 0 {
		return m, fmt.Errorf("verify %s: %w", dir, errors.Join(problems...))
	}
	return m, nil
}

// verifyAuthenticode recomputes the PE image digest of the EFI program.
func verifyAuthenticode(name, want string) error {
	b, err := os.ReadFile(name)
	if err != nil {
		return err
	}
	d, err := uefi.Authenticode(b)
	if err != nil {
		return fmt.Errorf("%s: %w", filepath.Base(name), err)
	}
	if got := hex.EncodeToString(d[:]); got != want {
		return fmt.Errorf("%s: Authenticode digest %s, manifest says %s", filepath.Base(name), got, want)
	}
	return nil
}

func verifyFile(name string, want Part) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	got, err := PartOf(want.Path, f)
	if err != nil {
		return err
	}
	return compare(got, want)
}

func compare(got, want Part) error {
	if got.Size != want.Size {
		return fmt.Errorf("%s: size %d, manifest says %d", want.Path, got.Size, want.Size)
	}
	if got.SHA256 != want.SHA256 {
		return fmt.Errorf("%s: sha256 %s, manifest says %s", want.Path, got.SHA256, want.SHA256)
	}
	return nil
}

// verifyInitramfs checks the wanted entries (by absolute path) inside a gzip
// newc archive; each must appear exactly once.
func verifyInitramfs(name string, want map[string]Part) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return fmt.Errorf("%s: %w", filepath.Base(name), err)
	}
	seen := make(map[string]bool, len(want))
	var problems []error
	r := cpio.NewReader(zr)
	for {
		hdr, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("%s: read archive: %w", filepath.Base(name), err)
		}
		p := "/" + strings.TrimPrefix(hdr.Name, "/")
		w, ok := want[p]
		if !ok {
			continue
		}
		if seen[p] {
			problems = append(problems, fmt.Errorf("%s: twice in the initramfs", p))
			continue
		}
		seen[p] = true
		got, err := PartOf(p, r)
		if err != nil {
			return err
		}
		if err := compare(got, w); err != nil {
			problems = append(problems, err)
		}
	}
	for p := range want {
		if !seen[p] {
			problems = append(problems, fmt.Errorf("%s: not in the initramfs", p))
		}
	}
	return errors.Join(problems...)
}
