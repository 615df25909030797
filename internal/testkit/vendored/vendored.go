package vendored

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
)

// ManifestName is the manifest's file name in a vendored tree's root.
const ManifestName = "vendor.json"

// Manifest is a vendor.json.
type Manifest struct {
	Generator string    `json:"generator"`
	Packages  []Package `json:"packages"`
}

// Package is one npm package and the files taken from it.
type Package struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	// License is the package's SPDX licence expression (package.json).
	License string `json:"license"`
	// Integrity is the registry's integrity string of the tarball the
	// files came from (npm checked it when the script fetched it).
	Integrity string `json:"integrity"`
	// Dir is where the files are, below the manifest: name@version.
	Dir   string `json:"dir"`
	Files []File `json:"files"`
}

// File is one vendored file.
type File struct {
	// Path below the package's Dir.
	Path string `json:"path"`
	// From is the file in the npm tarball (package/...), or debian:/path
	// for a licence text Debian ships.
	From    string `json:"from"`
	SHA256  string `json:"sha256"`
	License bool   `json:"license"`
}

// Load reads root/vendor.json. Unknown fields are refused, so a manifest
// the script did not write is noticed.
func Load(root string) (*Manifest, error) {
	b, err := os.ReadFile(filepath.Join(root, ManifestName))
	if err != nil {
		return nil, fmt.Errorf("vendored: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("vendored: %s: %w", filepath.Join(root, ManifestName), err)
	}
	return &m, nil
}

// Package returns the package called name.
func (m *Manifest) Package(name string) (Package, bool) {
	for _, p := range m.Packages {
		if p.Name == name {
			return p, true
		}
	}
	return Package{}, false
}

var (
	sha256Hex = regexp.MustCompile(`^[0-9a-f]{64}$`)
	integrity = regexp.MustCompile(`^sha512-[A-Za-z0-9+/]{86}==$`)
	version   = regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$`)
)

// Verify checks the tree at root against its manifest: each package is
// name@version with a licence and the registry's integrity, each file is
// present with the recorded sha256, and every file in the tree (but the
// manifest) is listed. It returns every problem found, joined.
func Verify(root string) error {
	m, err := Load(root)
	if err != nil {
		return err
	}
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf("vendored: "+format, a...)) }
	if len(m.Packages) == 0 {
		bad("%s lists no package", root)
	}
	listed := map[string]bool{ManifestName: true}
	for _, p := range m.Packages {
		id := p.Name + "@" + p.Version
		if !version.MatchString(p.Version) {
			bad("%s: version %q is not an exact version", p.Name, p.Version)
		}
		if p.Dir != id {
			bad("%s: files are in %q, want %q (versioned paths)", id, p.Dir, id)
		}
		if p.License == "" {
			bad("%s: no licence recorded", id)
		}
		if !integrity.MatchString(p.Integrity) {
			bad("%s: integrity %q is not a sha512 integrity string", id, p.Integrity)
		}
		licences := 0
		for _, f := range p.Files {
			rel := path.Join(p.Dir, f.Path)
			if !fs.ValidPath(rel) || path.Clean(f.Path) != f.Path {
				bad("%s: file path %q is not a clean relative path", id, f.Path)
				continue
			}
			listed[rel] = true
			if !sha256Hex.MatchString(f.SHA256) {
				bad("%s: %s: sha256 %q is malformed", id, f.Path, f.SHA256)
				continue
			}
			b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(rel)))
			if err != nil {
				bad("%s: %w (run scripts/vendor-web.sh)", id, err)
				continue
			}
			if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != f.SHA256 {
				bad("%s: %s has sha256 %x, vendor.json says %s: the file was changed by hand (run scripts/vendor-web.sh)", id, rel, sum, f.SHA256)
			}
			if f.License {
				licences++
				if len(bytes.TrimSpace(b)) == 0 {
					bad("%s: licence file %s is empty", id, rel)
				}
			}
		}
		if licences == 0 {
			bad("%s: no licence file vendored with it", id)
		}
	}
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		if !listed[filepath.ToSlash(rel)] {
			bad("%s is not in %s: vendored files come only from scripts/vendor-web.sh", filepath.Join(root, rel), ManifestName)
		}
		return nil
	})
	if err != nil {
		errs = append(errs, fmt.Errorf("vendored: walk %s: %w", root, err))
	}
	return errors.Join(errs...)
}
