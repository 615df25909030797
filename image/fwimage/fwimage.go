package fwimage

import (
	"bytes"
	"debug/buildinfo"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/zmonitor/firmware/image/initramfs"
	"github.com/zmonitor/firmware/image/kernel"
	"github.com/zmonitor/firmware/image/manifest"
)

// Inputs name the parts of an image.
type Inputs struct {
	KernelPath string // arm64 kernel Image
	InitPath   string // static linux/arm64 firmware binary, becomes /init
	BoardPath  string // board profile (JSON)
	AnchorPath string // provisioning trust anchor certificates (PEM)

	FirmwareVersion string
	// Board names the board; empty means the name of BoardPath's directory
	// (board/qemu-virt/board.json gives "qemu-virt").
	Board string
	// KernelSource is e.g. "linux-source-6.1 6.1.192-2"; empty means: read
	// the build-info file next to the kernel (written by build-kernel.sh).
	KernelSource string
	// SourceDateEpoch is the time stamped on every initramfs entry.
	SourceDateEpoch int64
	// Extra are additional initramfs entries.
	Extra []initramfs.Entry

	// UEFI, if set, also makes the signed EFI program for a board that
	// boots through UEFI with Secure Boot (manifest.EFIFileName).
	UEFI *UEFIInputs
}

// UEFIInputs say how to make and sign the EFI program.
type UEFIInputs struct {
	// Stub is systemd's EFI stub (uefi.DefaultStub if empty) and
	// StubVersion names it for the manifest ("systemd-boot-efi 252.39-1").
	Stub, StubVersion string
	// Cmdline is the kernel command line signed into the program.
	Cmdline string
	// Keys is the board's key directory (scripts/uefi-keys.sh): db.key and
	// db.crt sign the program; PK.esl, KEK.esl and db.esl give the
	// expected PCR 7.
	Keys string
}

// arm64ImageMagic is at offset 56 of an arm64 kernel Image header.
var arm64ImageMagic = []byte("ARM\x64")

// Build writes KernelFileName, InitramfsFileName and manifest.json into
// outDir (created if needed; each file replaced atomically) and returns the
// manifest. Progress lines go to progress (nil discards them).
func Build(in Inputs, outDir string, progress io.Writer) (manifest.Manifest, error) {
	if progress == nil {
		progress = io.Discard
	}
	start := time.Now()
	kernelImg, err := readInput("kernel", in.KernelPath)
	if err != nil {
		return manifest.Manifest{}, err
	}
	initBin, err := readInput("init", in.InitPath)
	if err != nil {
		return manifest.Manifest{}, err
	}
	board, err := readInput("board profile", in.BoardPath)
	if err != nil {
		return manifest.Manifest{}, err
	}
	anchor, err := readInput("trust anchor", in.AnchorPath)
	if err != nil {
		return manifest.Manifest{}, err
	}

	if len(kernelImg) < 64 || !bytes.Equal(kernelImg[56:60], arm64ImageMagic) {
		return manifest.Manifest{}, fmt.Errorf("kernel %s: not an arm64 Image (no ARM\\x64 magic at offset 56)", in.KernelPath)
	}
	banner, err := kernel.Version(kernelImg)
	if err != nil {
		return manifest.Manifest{}, fmt.Errorf("kernel %s: %w", in.KernelPath, err)
	}
	goVersion, err := CheckInit(initBin)
	if err != nil {
		return manifest.Manifest{}, fmt.Errorf("init %s: %w", in.InitPath, err)
	}
	source := in.KernelSource
	if source == "" {
		info, err := kernel.ReadBuildInfo(in.KernelPath)
		if err != nil {
			return manifest.Manifest{}, fmt.Errorf("kernel source version (pass it explicitly for a kernel not built by scripts/build-kernel.sh): %w", err)
		}
		source = info.Source()
	}
	boardName := in.Board
	if boardName == "" {
		boardName = filepath.Base(filepath.Dir(in.BoardPath))
	}

	fmt.Fprintf(progress, "zm-image: building initramfs (/init %d bytes, gzip -9)\n", len(initBin))
	spec := initramfs.Spec{
		Init: initBin, BoardProfile: board, TrustAnchor: anchor,
		Extra: in.Extra, ModTime: in.SourceDateEpoch,
	}
	var rd bytes.Buffer
	if err := initramfs.Build(spec, &rd); err != nil {
		return manifest.Manifest{}, err
	}
	fmt.Fprintf(progress, "zm-image: initramfs %d bytes (%.1fs)\n", rd.Len(), time.Since(start).Seconds())

	m := manifest.Manifest{
		Format:          manifest.Format,
		FirmwareVersion: in.FirmwareVersion,
		Board:           boardName,
		KernelSource:    source,
		KernelVersion:   banner,
		GoVersion:       goVersion,
		SourceDateEpoch: in.SourceDateEpoch,
		Kernel:          part(manifest.KernelFileName, kernelImg),
		Initramfs:       part(manifest.InitramfsFileName, rd.Bytes()),
		Init:            part(initramfs.InitPath, initBin),
		BoardProfile:    part(initramfs.BoardProfilePath, board),
		TrustAnchor:     part(initramfs.TrustAnchorPath, anchor),
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return manifest.Manifest{}, fmt.Errorf("output directory: %w", err)
	}
	if in.UEFI != nil {
		u, err := buildEFI(*in.UEFI, in.KernelPath, rd.Bytes(), in.FirmwareVersion, outDir, in.SourceDateEpoch)
		if err != nil {
			return manifest.Manifest{}, err
		}
		m.UEFI = &u
		fmt.Fprintf(progress, "zm-image: signed %s (%d bytes, Authenticode %s)\n", manifest.EFIFileName, u.Image.Size, u.Authenticode)
	}
	mb, err := m.Marshal()
	if err != nil {
		return manifest.Manifest{}, err
	}
	for _, f := range []struct {
		name string
		data []byte
	}{
		{manifest.KernelFileName, kernelImg},
		{manifest.InitramfsFileName, rd.Bytes()},
		{manifest.FileName, mb}, // last: a manifest only names files already written
	} {
		if err := WriteFile(filepath.Join(outDir, f.name), f.data); err != nil {
			return manifest.Manifest{}, err
		}
	}
	fmt.Fprintf(progress, "zm-image: wrote %s (kernel %d, initramfs %d bytes) in %.1fs\n",
		outDir, len(kernelImg), rd.Len(), time.Since(start).Seconds())
	return m, nil
}

func readInput(what, path string) ([]byte, error) {
	if path == "" {
		return nil, fmt.Errorf("%s: no path given", what)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return b, nil
}

func part(path string, data []byte) manifest.Part {
	p, _ := manifest.PartOf(path, bytes.NewReader(data)) // reading memory cannot fail
	return p
}

// CheckInit checks that b is a static linux/arm64 Go executable, as PID 1
// must be, and returns the Go version that built it.
func CheckInit(b []byte) (goVersion string, err error) {
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		return "", fmt.Errorf("not an ELF executable: %w", err)
	}
	defer f.Close()
	if f.Class != elf.ELFCLASS64 || f.Machine != elf.EM_AARCH64 {
		return "", fmt.Errorf("built for %v %v, want ELFCLASS64 EM_AARCH64 (GOARCH=arm64)", f.Class, f.Machine)
	}
	if f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		return "", fmt.Errorf("ELF type %v, want an executable", f.Type)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return "", errors.New("dynamically linked (has an ELF interpreter); build with CGO_ENABLED=0")
		}
	}
	bi, err := buildinfo.Read(bytes.NewReader(b))
	if err != nil {
		return "", fmt.Errorf("no Go build information: %w", err)
	}
	if err := checkFirmwareBuild(bi); err != nil {
		return "", err
	}
	return bi.GoVersion, nil
}

// FirmwarePackage is the Z Monitor firmware's main package, and
// FirmwareTag the build tag that leaves host mode and the in-memory key
// store out of it (scripts/build-firmware.sh).
const (
	FirmwarePackage = "github.com/zmonitor/firmware/cmd/zmonitor"
	FirmwareTag     = "zmfirmware"
)

// checkFirmwareBuild refuses the Z Monitor firmware built without its
// firmware tag: that build is the development one, with host mode and the
// in-memory key store linked into /init. Other programs (test inits) pass.
func checkFirmwareBuild(bi *debug.BuildInfo) error {
	if bi.Path != FirmwarePackage {
		return nil
	}
	for _, s := range bi.Settings {
		if s.Key == "-tags" && slices.Contains(strings.Split(s.Value, ","), FirmwareTag) {
			return nil
		}
	}
	return fmt.Errorf("%s built without -tags %s (the development build, with host mode and in-memory keys): build the firmware with scripts/build-firmware.sh", FirmwarePackage, FirmwareTag)
}

// WriteFile writes data (mode 0644) to a temporary file in the same
// directory and renames it over name, so readers never see a partial file.
func WriteFile(name string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after the rename
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := os.Rename(tmp, name); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}
