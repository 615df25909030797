package initramfs

import (
	"bytes"
	"compress/gzip"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
)

// Spec is what goes into an initramfs. Build adds the standard directories
// and device nodes every image has (see Entries).
type Spec struct {
	// Init is the static firmware binary, installed as /init (mode 0755).
	Init []byte
	// BoardProfile is the board profile (JSON), installed at BoardProfilePath.
	BoardProfile []byte
	// TrustAnchor holds the provisioning trust anchor certificates (PEM),
	// installed at TrustAnchorPath.
	TrustAnchor []byte
	// Extra are optional additional entries. Missing parent directories are
	// added with mode 0755.
	Extra []Entry
	// ModTime is the modification time of every entry, in seconds since the
	// Unix epoch (SOURCE_DATE_EPOCH); 0 is the default.
	ModTime int64
}

// standardEntries are in every image, before Init and the configuration.
func standardEntries() []Entry {
	return []Entry{
		{Path: "/data", Kind: KindDir, Perm: 0o700},
		{Path: "/dev", Kind: KindDir, Perm: 0o755},
		{Path: "/dev/console", Kind: KindCharDev, Perm: 0o600, Major: 5, Minor: 1},
		{Path: "/dev/null", Kind: KindCharDev, Perm: 0o666, Major: 1, Minor: 3},
		{Path: "/etc", Kind: KindDir, Perm: 0o755},
		{Path: "/etc/zmonitor", Kind: KindDir, Perm: 0o755},
		{Path: "/proc", Kind: KindDir, Perm: 0o555},
		{Path: "/run", Kind: KindDir, Perm: 0o755},
		{Path: "/sys", Kind: KindDir, Perm: 0o555},
		{Path: "/tmp", Kind: KindDir, Perm: 0o777 | fs.ModeSticky},
	}
}

var elfMagic = []byte("\x7fELF")

// validate checks the three required parts and the modification time.
func (s Spec) validate() error {
	if len(s.Init) == 0 {
		return fmt.Errorf("init: empty")
	}
	if !bytes.HasPrefix(s.Init, elfMagic) {
		return fmt.Errorf("init: not an ELF executable")
	}
	if len(s.BoardProfile) == 0 {
		return fmt.Errorf("board profile: empty")
	}
	if !json.Valid(s.BoardProfile) {
		return fmt.Errorf("board profile: not valid JSON")
	}
	if err := checkAnchor(s.TrustAnchor); err != nil {
		return fmt.Errorf("trust anchor: %w", err)
	}
	if s.ModTime < 0 || s.ModTime > 1<<32-1 {
		return fmt.Errorf("modification time %d: outside the newc range 0..%d", s.ModTime, int64(1<<32-1))
	}
	return nil
}

// checkAnchor requires at least one PEM block, every block a parseable
// CERTIFICATE, and nothing but whitespace around the blocks.
func checkAnchor(b []byte) error {
	n := 0
	rest := b
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		n++
		if block.Type != "CERTIFICATE" {
			return fmt.Errorf("PEM block %d: type %q, want CERTIFICATE", n, block.Type)
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return fmt.Errorf("PEM block %d: %w", n, err)
		}
	}
	if n == 0 {
		return fmt.Errorf("no PEM certificate")
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return fmt.Errorf("%d bytes after the last PEM block", len(bytes.TrimSpace(rest)))
	}
	return nil
}

// Entries returns every entry of the archive, validated and sorted by path
// (parents before children).
func (s Spec) Entries() ([]Entry, error) {
	if err := s.validate(); err != nil {
		return nil, err
	}
	all := standardEntries()
	all = append(all,
		Entry{Path: InitPath, Kind: KindFile, Perm: 0o755, Data: s.Init},
		Entry{Path: BoardProfilePath, Kind: KindFile, Perm: 0o444, Data: s.BoardProfile},
		Entry{Path: TrustAnchorPath, Kind: KindFile, Perm: 0o444, Data: s.TrustAnchor},
	)
	byPath := make(map[string]Entry, len(all)+len(s.Extra))
	for _, e := range all {
		byPath[e.Path] = e
	}
	for _, e := range s.Extra {
		if err := e.validate(); err != nil {
			return nil, fmt.Errorf("extra %w", err)
		}
		if _, dup := byPath[e.Path]; dup {
			return nil, fmt.Errorf("extra entry %q: duplicate path", e.Path)
		}
		byPath[e.Path] = e
	}
	// Add missing parents; refuse entries under a non-directory.
	for p, e := range byPath {
		for dir := path.Dir(p); dir != "/"; dir = path.Dir(dir) {
			parent, ok := byPath[dir]
			if !ok {
				byPath[dir] = Entry{Path: dir, Kind: KindDir, Perm: 0o755}
				continue
			}
			if parent.Kind != KindDir {
				return nil, fmt.Errorf("entry %q: parent %q is a %v, not a directory", e.Path, dir, parent.Kind)
			}
		}
	}
	out := make([]Entry, 0, len(byPath))
	for _, e := range byPath {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// Build writes the gzip-compressed newc archive of s to w.
func Build(s Spec, w io.Writer) error {
	entries, err := s.Entries()
	if err != nil {
		return fmt.Errorf("initramfs spec: %w", err)
	}
	zw, err := gzip.NewWriterLevel(w, gzip.BestCompression)
	if err != nil {
		return fmt.Errorf("initramfs gzip: %w", err)
	}
	// The zero gzip.Header: no name, no comment, modification time 0.
	nw := &newcWriter{w: zw}
	for i, e := range entries {
		nw.writeEntry(e, uint32(i+1), uint32(s.ModTime))
	}
	if err := nw.close(); err != nil {
		return fmt.Errorf("initramfs write: %w", err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("initramfs gzip: %w", err)
	}
	return nil
}
