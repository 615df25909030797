package fwimage

import (
	"bytes"
	"crypto/ed25519"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zmonitor/firmware/image/initramfs"
	"github.com/zmonitor/firmware/image/kernel"
	"github.com/zmonitor/firmware/image/manifest"
)

var (
	tinyOnce sync.Once
	tinyBin  []byte
	tinyErr  error
)

// tinyInit cross-compiles testdata/tinyinit for linux/arm64 once.
func tinyInit(t *testing.T) []byte {
	t.Helper()
	tinyOnce.Do(func() {
		dir, err := os.MkdirTemp("", "tinyinit")
		if err != nil {
			tinyErr = err
			return
		}
		defer os.RemoveAll(dir)
		bin := filepath.Join(dir, "init")
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, "./testdata/tinyinit")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=arm64")
		if out, err := cmd.CombinedOutput(); err != nil {
			tinyErr = err
			t.Logf("%s", out)
			return
		}
		tinyBin, tinyErr = os.ReadFile(bin)
	})
	if tinyErr != nil {
		t.Fatalf("build tiny init: %v", tinyErr)
	}
	return tinyBin
}

const banner = "Linux version 6.1.192 (zmonitor@zmonitor-build) (gcc 12.2.0) #1 SMP 1970-01-01 00:00:00 UTC"

// fakeKernel returns bytes with an arm64 Image header and a version banner.
func fakeKernel() []byte {
	img := make([]byte, 4096)
	copy(img[56:], "ARM\x64")
	copy(img[1000:], banner+"\n")
	return img
}

func anchorPEM(t *testing.T) []byte {
	t.Helper()
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{3}, ed25519.SeedSize))
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "anchor"},
		NotBefore: time.Unix(1700000000, 0), NotAfter: time.Unix(1900000000, 0),
		IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(nil, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// inputs writes a complete set of inputs into a temporary directory.
func inputs(t *testing.T) Inputs {
	t.Helper()
	dir := t.TempDir()
	write := func(rel string, b []byte) string {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("kernel/"+kernel.BuildInfoFile, []byte("source_package=linux-source-6.1\nsource_version=6.1.192-2\n"))
	return Inputs{
		KernelPath:      write("kernel/Image", fakeKernel()),
		InitPath:        write("zmonitor-arm64", tinyInit(t)),
		BoardPath:       write("board/qemu-virt/board.json", []byte(`{"name":"qemu-virt"}`)),
		AnchorPath:      write("anchor.pem", anchorPEM(t)),
		FirmwareVersion: "v0.1.0-test",
	}
}

func TestBuildAndVerify(t *testing.T) {
	in := inputs(t)
	out := filepath.Join(t.TempDir(), "image")
	var progress bytes.Buffer
	m, err := Build(in, out, &progress)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	if m.Board != "qemu-virt" || m.KernelSource != "linux-source-6.1 6.1.192-2" || m.KernelVersion != banner ||
		m.FirmwareVersion != "v0.1.0-test" || m.GoVersion != runtime.Version() {
		t.Errorf("manifest fields: %+v", m)
	}
	if m.Init.Size != int64(len(tinyInit(t))) || m.Init.Path != "/init" {
		t.Errorf("init part %+v", m.Init)
	}
	if !strings.Contains(progress.String(), "zm-image: wrote") {
		t.Errorf("no progress: %q", progress.String())
	}
	for _, name := range []string{manifest.KernelFileName, manifest.InitramfsFileName, manifest.FileName} {
		fi, err := os.Stat(filepath.Join(out, name))
		if err != nil {
			t.Fatalf("output %s: %v", name, err)
		}
		if fi.Mode().Perm() != 0o644 {
			t.Errorf("%s: mode %v, want 0644", name, fi.Mode())
		}
	}
	got, err := manifest.Verify(out)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if got != m {
		t.Fatalf("Verify read %+v, Build returned %+v", got, m)
	}
	// The initramfs is exactly what the initramfs package builds.
	var want bytes.Buffer
	anchor, _ := os.ReadFile(in.AnchorPath)
	if err := initramfs.Build(initramfs.Spec{Init: tinyInit(t), BoardProfile: []byte(`{"name":"qemu-virt"}`), TrustAnchor: anchor}, &want); err != nil {
		t.Fatal(err)
	}
	rd, _ := os.ReadFile(filepath.Join(out, manifest.InitramfsFileName))
	if !bytes.Equal(rd, want.Bytes()) {
		t.Error("initramfs differs from initramfs.Build's output")
	}
}

func TestBuildReproducible(t *testing.T) {
	in := inputs(t)
	in.SourceDateEpoch = 1700000000
	a, b := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	if _, err := Build(in, a, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := Build(in, b, nil); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{manifest.KernelFileName, manifest.InitramfsFileName, manifest.FileName} {
		x, _ := os.ReadFile(filepath.Join(a, name))
		y, _ := os.ReadFile(filepath.Join(b, name))
		if len(x) == 0 || !bytes.Equal(x, y) {
			t.Errorf("%s: two builds differ (%d and %d bytes)", name, len(x), len(y))
		}
	}
	// A rebuild over an existing image replaces it in place.
	in.FirmwareVersion = "v0.1.1"
	if _, err := Build(in, a, nil); err != nil {
		t.Fatal(err)
	}
	if m, err := manifest.Verify(a); err != nil || m.FirmwareVersion != "v0.1.1" {
		t.Fatalf("rebuild: %+v, %v", m, err)
	}
	entries, _ := os.ReadDir(a)
	if len(entries) != 3 {
		t.Errorf("output has %d files (temporary files left?)", len(entries))
	}
}

func TestVerifyDetectsTampering(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(t *testing.T, in Inputs, out string)
		want   string
	}{
		{"kernel byte", func(t *testing.T, _ Inputs, out string) {
			p := filepath.Join(out, manifest.KernelFileName)
			b, _ := os.ReadFile(p)
			b[2000] ^= 1
			os.WriteFile(p, b, 0o644)
		}, "Image: sha256"},
		{"kernel truncated", func(t *testing.T, _ Inputs, out string) {
			os.Truncate(filepath.Join(out, manifest.KernelFileName), 100)
		}, "Image: size 100"},
		{"initramfs swapped", func(t *testing.T, in Inputs, out string) {
			// A valid initramfs with another board profile of the same size.
			in.BoardPath = filepath.Join(t.TempDir(), "board.json")
			os.WriteFile(in.BoardPath, []byte(`{"name":"qemu-virX"}`), 0o644)
			other := filepath.Join(t.TempDir(), "other")
			if _, err := Build(in, other, nil); err != nil {
				t.Fatal(err)
			}
			b, _ := os.ReadFile(filepath.Join(other, manifest.InitramfsFileName))
			os.WriteFile(filepath.Join(out, manifest.InitramfsFileName), b, 0o644)
		}, "/etc/zmonitor/board.json: sha256"},
		{"initramfs not gzip", func(t *testing.T, _ Inputs, out string) {
			os.WriteFile(filepath.Join(out, manifest.InitramfsFileName), []byte("junk"), 0o644)
		}, "initramfs.cpio.gz"},
		{"manifest missing", func(t *testing.T, _ Inputs, out string) {
			os.Remove(filepath.Join(out, manifest.FileName))
		}, "no such file"},
		{"manifest edited", func(t *testing.T, _ Inputs, out string) {
			p := filepath.Join(out, manifest.FileName)
			b, _ := os.ReadFile(p)
			os.WriteFile(p, bytes.Replace(b, []byte(`"format": 1`), []byte(`"format": 1, "x": 2`), 1), 0o644)
		}, "unknown field"},
	}
	in := inputs(t)
	built := t.TempDir()
	if _, err := Build(in, built, nil); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := t.TempDir()
			if err := os.CopyFS(out, os.DirFS(built)); err != nil {
				t.Fatal(err)
			}
			if _, err := manifest.Verify(out); err != nil {
				t.Fatalf("untouched copy: %v", err)
			}
			tt.tamper(t, in, out)
			_, err := manifest.Verify(out)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Verify error %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestBuildRejectsBadInputs(t *testing.T) {
	self, err := os.Executable() // a host (amd64) test binary
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		modify func(t *testing.T, in *Inputs)
		want   string
	}{
		{"no kernel path", func(t *testing.T, in *Inputs) { in.KernelPath = "" }, "kernel: no path"},
		{"missing init", func(t *testing.T, in *Inputs) { in.InitPath += ".missing" }, "init: open"},
		{"host init", func(t *testing.T, in *Inputs) { in.InitPath = self }, "want ELFCLASS64 EM_AARCH64"},
		{"script init", func(t *testing.T, in *Inputs) { os.WriteFile(in.InitPath, []byte("#!/bin/sh\n"), 0o755) }, "not an ELF"},
		{"kernel not arm64", func(t *testing.T, in *Inputs) { os.WriteFile(in.KernelPath, []byte(banner+"\n"), 0o644) }, "not an arm64 Image"},
		{"kernel without banner", func(t *testing.T, in *Inputs) {
			img := make([]byte, 100)
			copy(img[56:], "ARM\x64")
			os.WriteFile(in.KernelPath, img, 0o644)
		}, "Linux version"},
		{"no build-info", func(t *testing.T, in *Inputs) {
			os.Remove(filepath.Join(filepath.Dir(in.KernelPath), kernel.BuildInfoFile))
		}, "kernel source version"},
		{"bad board", func(t *testing.T, in *Inputs) { os.WriteFile(in.BoardPath, []byte("{"), 0o644) }, "not valid JSON"},
		{"bad anchor", func(t *testing.T, in *Inputs) { os.WriteFile(in.AnchorPath, []byte("x"), 0o644) }, "trust anchor"},
		{"no version", func(t *testing.T, in *Inputs) { in.FirmwareVersion = "" }, "firmwareVersion: empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := inputs(t)
			tt.modify(t, &in)
			out := filepath.Join(t.TempDir(), "out")
			_, err := Build(in, out, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Build error %v, want it to contain %q", err, tt.want)
			}
			if _, err := os.Stat(filepath.Join(out, manifest.FileName)); err == nil {
				t.Error("a manifest was written despite the error")
			}
		})
	}
	// An explicit kernel source needs no build-info file.
	in := inputs(t)
	os.Remove(filepath.Join(filepath.Dir(in.KernelPath), kernel.BuildInfoFile))
	in.KernelSource = "linux-source-6.1 custom"
	if m, err := Build(in, t.TempDir(), nil); err != nil || m.KernelSource != "linux-source-6.1 custom" {
		t.Fatalf("explicit kernel source: %+v, %v", m, err)
	}
}

// The firmware is accepted as /init only as built for the board, with its
// firmware tag; other programs (test inits) are not held to it.
func TestCheckFirmwareBuild(t *testing.T) {
	tags := func(v string) []debug.BuildSetting {
		return []debug.BuildSetting{{Key: "-trimpath", Value: "true"}, {Key: "-tags", Value: v}, {Key: "CGO_ENABLED", Value: "0"}}
	}
	for _, c := range []struct {
		bi *debug.BuildInfo
		ok bool
	}{
		{&debug.BuildInfo{Path: FirmwarePackage, Settings: tags("zmfirmware")}, true},
		{&debug.BuildInfo{Path: FirmwarePackage, Settings: tags("netgo,zmfirmware")}, true},
		{&debug.BuildInfo{Path: FirmwarePackage, Settings: tags("zmfirmwarex")}, false},
		{&debug.BuildInfo{Path: FirmwarePackage}, false},
		{&debug.BuildInfo{Path: "github.com/zmonitor/firmware/image/fwimage/testdata/tinyinit"}, true},
	} {
		err := checkFirmwareBuild(c.bi)
		if (err == nil) != c.ok || err != nil && !strings.Contains(err.Error(), "scripts/build-firmware.sh") {
			t.Errorf("checkFirmwareBuild(%s, %v) = %v", c.bi.Path, c.bi.Settings, err)
		}
	}
}
