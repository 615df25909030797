package initramfs

import (
	"bytes"
	"compress/gzip"
	"crypto/ed25519"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"io/fs"
	"math/big"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cavaliergopher/cpio"
)

// testAnchor returns a deterministic self-signed certificate in PEM.
func testAnchor(t testing.TB) []byte {
	t.Helper()
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "test provisioning anchor"},
		NotBefore:             time.Unix(1700000000, 0),
		NotAfter:              time.Unix(1900000000, 0),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(nil, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatalf("create certificate: %v", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func testSpec(t testing.TB) Spec {
	return Spec{
		Init:         append([]byte("\x7fELF"), bytes.Repeat([]byte("init-binary "), 1000)...),
		BoardProfile: []byte(`{"name":"qemu-virt"}`),
		TrustAnchor:  testAnchor(t),
	}
}

func build(t testing.TB, s Spec) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Build(s, &buf); err != nil {
		t.Fatalf("Build: %v", err)
	}
	return buf.Bytes()
}

func gunzip(t testing.TB, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("gzip: %v", err)
	}
	zr.Multistream(false)
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("gunzip: %v", err)
	}
	return raw
}

// rawHeader is one newc header, parsed independently of the code under test.
type rawHeader struct {
	name   string
	fields [13]uint32 // ino mode uid gid nlink mtime size devmaj devmin rdevmaj rdevmin namesize check
}

// parseRaw splits a newc archive into headers, checking magic and alignment.
func parseRaw(t *testing.T, raw []byte) []rawHeader {
	t.Helper()
	var out []rawHeader
	off := 0
	align := func(n int) int { return (n + 3) &^ 3 }
	for {
		if off+110 > len(raw) {
			t.Fatalf("truncated header at %d", off)
		}
		if string(raw[off:off+6]) != "070701" {
			t.Fatalf("bad magic at %d: %q", off, raw[off:off+6])
		}
		var h rawHeader
		for i := range h.fields {
			v, err := strconv.ParseUint(string(raw[off+6+8*i:off+14+8*i]), 16, 32)
			if err != nil {
				t.Fatalf("field %d at %d: %v", i, off, err)
			}
			h.fields[i] = uint32(v)
		}
		nameSize := int(h.fields[11])
		name := raw[off+110 : off+110+nameSize]
		if name[nameSize-1] != 0 {
			t.Fatalf("name at %d not NUL-terminated", off)
		}
		h.name = string(name[:nameSize-1])
		off = align(off + 110 + nameSize)
		if off%4 != 0 {
			t.Fatalf("misaligned data at %d", off)
		}
		off = align(off + int(h.fields[6]))
		out = append(out, h)
		if h.name == "TRAILER!!!" {
			if off != len(raw) {
				t.Fatalf("%d bytes after the trailer", len(raw)-off)
			}
			return out
		}
	}
}

func TestBuildContents(t *testing.T) {
	s := testSpec(t)
	s.Extra = []Entry{{Path: "/usr/share/zmonitor/font.ttf", Kind: KindFile, Perm: 0o444, Data: []byte("font")}}
	raw := gunzip(t, build(t, s))

	type want struct {
		mode uint32
		data []byte
	}
	wants := map[string]want{
		"data":                                 {0o040700, nil},
		"dev":                                  {0o040755, nil},
		"dev/console":                          {0o020600, nil},
		"dev/null":                             {0o020666, nil},
		"etc":                                  {0o040755, nil},
		"etc/zmonitor":                         {0o040755, nil},
		"etc/zmonitor/board.json":              {0o100444, s.BoardProfile},
		"etc/zmonitor/provisioning-anchor.pem": {0o100444, s.TrustAnchor},
		"init":                                 {0o100755, s.Init},
		"proc":                                 {0o040555, nil},
		"run":                                  {0o040755, nil},
		"sys":                                  {0o040555, nil},
		"tmp":                                  {0o041777, nil},
		"usr":                                  {0o040755, nil},
		"usr/share":                            {0o040755, nil},
		"usr/share/zmonitor":                   {0o040755, nil},
		"usr/share/zmonitor/font.ttf":          {0o100444, []byte("font")},
	}

	// Independent reader: names, modes, sizes, contents, owners, times.
	r := cpio.NewReader(bytes.NewReader(raw))
	var names []string
	for {
		hdr, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("cpio reader: %v", err)
		}
		names = append(names, hdr.Name)
		w, ok := wants[hdr.Name]
		if !ok {
			t.Errorf("unexpected entry %q", hdr.Name)
			continue
		}
		if uint32(hdr.Mode) != w.mode {
			t.Errorf("%s: mode %o, want %o", hdr.Name, hdr.Mode, w.mode)
		}
		if hdr.Uid != 0 || hdr.Guid != 0 {
			t.Errorf("%s: owner %d:%d, want 0:0", hdr.Name, hdr.Uid, hdr.Guid)
		}
		if hdr.ModTime.Unix() != 0 {
			t.Errorf("%s: mtime %d, want 0", hdr.Name, hdr.ModTime.Unix())
		}
		data, err := io.ReadAll(r)
		if err != nil {
			t.Fatalf("%s: read: %v", hdr.Name, err)
		}
		if hdr.Size != int64(len(w.data)) || !bytes.Equal(data, w.data) {
			t.Errorf("%s: %d bytes of data, want %d", hdr.Name, len(data), len(w.data))
		}
	}
	if len(names) != len(wants) {
		t.Errorf("got %d entries %v, want %d", len(names), names, len(wants))
	}
	for i := 1; i < len(names); i++ {
		if names[i-1] >= names[i] {
			t.Errorf("entries not sorted: %q before %q", names[i-1], names[i])
		}
	}

	// Device numbers and inode numbers: the reader above does not parse them.
	hdrs := parseRaw(t, raw)
	devs := map[string][2]uint32{"dev/console": {5, 1}, "dev/null": {1, 3}}
	for i, h := range hdrs[:len(hdrs)-1] {
		rdev := [2]uint32{h.fields[9], h.fields[10]}
		if rdev != devs[h.name] {
			t.Errorf("%s: rdev %d,%d, want %d,%d", h.name, rdev[0], rdev[1], devs[h.name][0], devs[h.name][1])
		}
		if h.fields[0] != uint32(i+1) {
			t.Errorf("%s: inode %d, want %d", h.name, h.fields[0], i+1)
		}
	}
}

func TestBuildModTime(t *testing.T) {
	s := testSpec(t)
	s.ModTime = 1700000000
	for _, h := range parseRaw(t, gunzip(t, build(t, s))) {
		if h.name != "TRAILER!!!" && h.fields[5] != 1700000000 {
			t.Errorf("%s: mtime %d, want 1700000000", h.name, h.fields[5])
		}
	}
}

func TestBuildDeterministic(t *testing.T) {
	s := testSpec(t)
	s.Extra = []Entry{
		{Path: "/a/b", Kind: KindFile, Perm: 0o644, Data: []byte("b")},
		{Path: "/a-b", Kind: KindDir, Perm: 0o755},
		{Path: "/z", Kind: KindFile, Perm: 0o600, Data: []byte("z")},
	}
	first := build(t, s)
	// Same inputs, entries given in another order: same bytes.
	s.Extra = []Entry{s.Extra[2], s.Extra[0], s.Extra[1]}
	second := build(t, s)
	if !bytes.Equal(first, second) {
		t.Fatalf("two builds differ (%d and %d bytes)", len(first), len(second))
	}
	s.BoardProfile = []byte(`{"name":"other"}`)
	if bytes.Equal(first, build(t, s)) {
		t.Fatal("different board profile, same bytes")
	}
}

func TestGzipHeaderFixed(t *testing.T) {
	b := build(t, testSpec(t))
	// RFC 1952: ID1 ID2 CM FLG MTIME(4) XFL OS.
	if b[0] != 0x1f || b[1] != 0x8b || b[2] != 8 {
		t.Fatalf("not a deflate gzip stream: % x", b[:3])
	}
	if b[3] != 0 {
		t.Errorf("FLG %#x: want 0 (no name, comment or extra)", b[3])
	}
	if !bytes.Equal(b[4:8], []byte{0, 0, 0, 0}) {
		t.Errorf("MTIME % x, want zero", b[4:8])
	}
	if b[8] != 2 {
		t.Errorf("XFL %d, want 2 (best compression)", b[8])
	}
}

func TestValidation(t *testing.T) {
	anchor := testAnchor(t)
	tests := []struct {
		name   string
		modify func(*Spec)
		want   string
	}{
		{"empty init", func(s *Spec) { s.Init = nil }, "init: empty"},
		{"init not ELF", func(s *Spec) { s.Init = []byte("#!/bin/sh\n") }, "not an ELF"},
		{"empty board", func(s *Spec) { s.BoardProfile = nil }, "board profile: empty"},
		{"board not JSON", func(s *Spec) { s.BoardProfile = []byte("{") }, "not valid JSON"},
		{"anchor missing", func(s *Spec) { s.TrustAnchor = nil }, "no PEM certificate"},
		{"anchor wrong type", func(s *Spec) {
			s.TrustAnchor = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{1}})
		}, `type "PUBLIC KEY"`},
		{"anchor bad DER", func(s *Spec) {
			s.TrustAnchor = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1, 2}})
		}, "PEM block 1"},
		{"anchor trailing junk", func(s *Spec) { s.TrustAnchor = append(append([]byte{}, anchor...), "junk"...) }, "after the last PEM block"},
		{"mtime negative", func(s *Spec) { s.ModTime = -1 }, "outside the newc range"},
		{"mtime too large", func(s *Spec) { s.ModTime = 1 << 32 }, "outside the newc range"},
		{"relative path", func(s *Spec) { s.Extra = []Entry{{Path: "etc/x", Kind: KindFile}} }, "not absolute"},
		{"empty path", func(s *Spec) { s.Extra = []Entry{{Kind: KindFile}} }, "empty path"},
		{"root", func(s *Spec) { s.Extra = []Entry{{Path: "/", Kind: KindDir}} }, "root directory"},
		{"dotdot", func(s *Spec) { s.Extra = []Entry{{Path: "/etc/../x", Kind: KindFile}} }, `contains ".."`},
		{"unclean", func(s *Spec) { s.Extra = []Entry{{Path: "/etc//x", Kind: KindFile}} }, "not clean"},
		{"trailing slash", func(s *Spec) { s.Extra = []Entry{{Path: "/etc/x/", Kind: KindDir}} }, "not clean"},
		{"NUL", func(s *Spec) { s.Extra = []Entry{{Path: "/a\x00b", Kind: KindFile}} }, "NUL"},
		{"too long", func(s *Spec) { s.Extra = []Entry{{Path: "/" + strings.Repeat("a", 4096), Kind: KindFile}} }, "longer than"},
		{"type bits in perm", func(s *Spec) { s.Extra = []Entry{{Path: "/x", Kind: KindFile, Perm: fs.ModeDir | 0o755}} }, "bits other than"},
		{"setuid", func(s *Spec) { s.Extra = []Entry{{Path: "/x", Kind: KindFile, Perm: fs.ModeSetuid | 0o755}} }, "bits other than"},
		{"no kind", func(s *Spec) { s.Extra = []Entry{{Path: "/x"}} }, "invalid kind"},
		{"dir with data", func(s *Spec) { s.Extra = []Entry{{Path: "/x", Kind: KindDir, Data: []byte{1}}} }, "directory has no data"},
		{"device with data", func(s *Spec) { s.Extra = []Entry{{Path: "/x", Kind: KindCharDev, Data: []byte{1}}} }, "device node has no data"},
		{"file with rdev", func(s *Spec) { s.Extra = []Entry{{Path: "/x", Kind: KindFile, Major: 1}} }, "device numbers on a file"},
		{"duplicate of /init", func(s *Spec) { s.Extra = []Entry{{Path: "/init", Kind: KindFile}} }, "duplicate path"},
		{"duplicate of /dev", func(s *Spec) { s.Extra = []Entry{{Path: "/dev", Kind: KindDir}} }, "duplicate path"},
		{"duplicate extra", func(s *Spec) {
			s.Extra = []Entry{{Path: "/x", Kind: KindFile}, {Path: "/x", Kind: KindFile}}
		}, "duplicate path"},
		{"under a file", func(s *Spec) { s.Extra = []Entry{{Path: "/init/x", Kind: KindFile}} }, `parent "/init" is a file`},
		{"under a device", func(s *Spec) { s.Extra = []Entry{{Path: "/dev/null/x", Kind: KindFile}} }, `parent "/dev/null" is a chardev`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := testSpec(t)
			tt.modify(&s)
			var buf bytes.Buffer
			err := Build(s, &buf)
			if err == nil {
				t.Fatalf("Build succeeded, want error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q, want it to contain %q", err, tt.want)
			}
			if buf.Len() != 0 {
				t.Errorf("%d bytes written despite the error", buf.Len())
			}
		})
	}
}

type failWriter struct{ n int }

func (f *failWriter) Write(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("disk full")
	}
	f.n--
	return len(p), nil
}

func TestBuildWriteError(t *testing.T) {
	err := Build(testSpec(t), &failWriter{})
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("got %v, want the writer's error", err)
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[Kind]string{KindInvalid: "invalid", KindDir: "dir", KindFile: "file", KindCharDev: "chardev", Kind(9): "Kind(9)"} {
		if got := k.String(); got != want {
			t.Errorf("Kind(%d).String() = %q, want %q", int(k), got, want)
		}
	}
}

// BenchmarkBuild measures a firmware-sized image: an 8 MB /init.
func BenchmarkBuild(b *testing.B) {
	s := testSpec(b)
	init := make([]byte, 8<<20)
	copy(init, "\x7fELF")
	for i := 4; i < len(init); i++ {
		init[i] = byte(i * 7 / 13) // compressible, like code
	}
	s.Init = init
	b.SetBytes(int64(len(init)))
	for b.Loop() {
		if err := Build(s, io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}
