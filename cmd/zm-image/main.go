// Command zm-image builds and verifies firmware image directories.
//
//	zm-image build --kernel Image --init zmonitor-arm64 --board board.json \
//	    --anchor anchor.pem --version v1.2.3 --out out/image
//	zm-image initramfs --init zmonitor-arm64 --board board.json \
//	    --anchor anchor.pem --out out/initramfs.cpio.gz
//	zm-image verify out/image
//	zm-image build ... --efi-keys KEYDIR --efi-cmdline "console=ttyAMA0 ..."
//	zm-image uefi-seed --keys KEYDIR --out FILE
//
// With --efi-keys, build also writes zmonitor.efi: kernel, initramfs and
// command line in one unified kernel image on systemd's EFI stub, signed
// with KEYDIR/db.key, and records its Authenticode digest and the expected
// PCR 4 and 7 in the manifest. uefi-seed writes U-Boot's variable store
// with KEYDIR's PK, KEK and db (their .esl files), which
// scripts/build-u-boot.sh compiles into the board's firmware: the
// manufacturing step.
//
// build writes Image, initramfs.cpio.gz and manifest.json; the same inputs
// give byte-identical files. SOURCE_DATE_EPOCH, if set, is the time stamped
// on every initramfs entry (default 0). verify rechecks every hash in
// manifest.json, including the files inside the initramfs.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/zmonitor/firmware/image/fwimage"
	"github.com/zmonitor/firmware/image/initramfs"
	"github.com/zmonitor/firmware/image/manifest"
	"github.com/zmonitor/firmware/image/uefi"
	"github.com/zmonitor/firmware/internal/base/cli"
	"github.com/zmonitor/firmware/internal/base/version"
)

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// Synopses of the commands (their help adds every flag).
const (
	buildSynopsis     = "zm-image build --kernel FILE --init FILE --board FILE --anchor FILE --out DIR [flags]\n  build the firmware image: kernel, initramfs, manifest"
	initramfsSynopsis = "zm-image initramfs --init FILE --board FILE --anchor FILE --out FILE\n  build only the initramfs"
	verifySynopsis    = "zm-image verify DIR\n  check an image directory against its manifest"
	uefiSeedSynopsis  = "zm-image uefi-seed --keys DIR --out FILE\n  write U-Boot's variable store with DIR's PK, KEK and db (scripts/build-u-boot.sh --seed)"
)

const usage = `usage: zm-image COMMAND [flags] [arguments]

  ` + buildSynopsis + `
  ` + initramfsSynopsis + `
  ` + verifySynopsis + `
  ` + uefiSeedSynopsis + `
  zm-image version
  the program's version and build time

Flags may follow arguments; 'zm-image COMMAND -h' lists every flag of COMMAND.
Exit status: 0 success, 1 failure, 2 bad usage.
`

// run is main without the process: arguments, environment and outputs are
// passed in. It returns the exit status.
func run(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	var err error
	switch cmd := ""; {
	case len(args) == 0:
		err = usageError("no command")
	default:
		cmd = args[0]
		if cmd == "help" && len(args) > 1 {
			args = append(append([]string{}, args[1:]...), "-h")
			cmd = args[0]
		}
		err = dispatch(cmd, args, getenv, stdout, stderr)
	}
	return cli.Exit(stdout, stderr, "zm-image", func(w io.Writer) { fmt.Fprint(w, usage) }, err)
}

func dispatch(cmd string, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var err error
	switch cmd {
	case "build":
		err = build(args[1:], getenv, stdout, stderr)
	case "initramfs":
		err = buildInitramfs(args[1:], getenv, stdout, stderr)
	case "verify":
		err = verify(args[1:], stdout, stderr)
	case "uefi-seed":
		err = uefiSeed(args[1:])
	case "-h", "-help", "--help", "help":
		err = flag.ErrHelp
	case "version", "-version", "--version":
		cli.Version(stdout, "zm-image", version.Version, version.BuildTime)
	default:
		err = usageError(fmt.Sprintf("unknown command %q", args[0]))
	}
	return err
}

// usageError is bad usage (exit 2).
type usageError string

func (e usageError) Error() string { return string(e) }

func (e usageError) Unwrap() error { return cli.ErrUsage }

func build(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := cli.New("zm-image build", buildSynopsis)
	var in fwimage.Inputs
	var out string
	fs.StringVar(&in.KernelPath, "kernel", "", "arm64 kernel `Image` (make kernel)")
	fs.StringVar(&in.InitPath, "init", "", "static linux/arm64 firmware `binary`, becomes /init")
	fs.StringVar(&in.BoardPath, "board", "", "board profile `JSON`")
	fs.StringVar(&in.AnchorPath, "anchor", "", "provisioning trust anchor `PEM`")
	fs.StringVar(&out, "out", "", "output `directory`")
	fs.StringVar(&in.FirmwareVersion, "version", "dev", "firmware `version` recorded in the manifest")
	fs.StringVar(&in.Board, "board-name", "", "board `name` (default: the board file's directory name)")
	fs.StringVar(&in.KernelSource, "kernel-source", "", "kernel source `\"package version\"` (default: build-info next to the Image)")
	var efi fwimage.UEFIInputs
	fs.StringVar(&efi.Keys, "efi-keys", "", "also write the signed EFI program; the board's Secure Boot key `directory` (scripts/uefi-keys.sh)")
	fs.StringVar(&efi.Cmdline, "efi-cmdline", "", "kernel command `line` signed into the EFI program")
	fs.StringVar(&efi.Stub, "efi-stub", "", "systemd's EFI stub `file` (default "+uefi.DefaultStub+")")
	fs.StringVar(&efi.StubVersion, "efi-stub-version", "", "the stub's package and version for the manifest")
	if err := fs.Parse(args, 0, -1); err != nil {
		return err
	}
	if efi.Keys != "" {
		if efi.Cmdline == "" {
			return usageError("build: --efi-keys needs --efi-cmdline")
		}
		in.UEFI = &efi
	}
	if fs.NArg() != 0 {
		return usageError(fmt.Sprintf("build: unexpected argument %q", fs.Arg(0)))
	}
	for _, f := range []struct{ name, value string }{
		{"--kernel", in.KernelPath}, {"--init", in.InitPath}, {"--board", in.BoardPath},
		{"--anchor", in.AnchorPath}, {"--out", out},
	} {
		if f.value == "" {
			return usageError("build: " + f.name + " is required")
		}
	}
	epoch, err := sourceDateEpoch(getenv)
	if err != nil {
		return err
	}
	in.SourceDateEpoch = epoch
	m, err := fwimage.Build(in, out, stderr)
	if err != nil {
		return fmt.Errorf("build: %w", err)
	}
	fmt.Fprintf(stdout, "%s: firmware %s for %s\n", out, m.FirmwareVersion, m.Board)
	printParts(stdout, m)
	return nil
}

func verify(args []string, stdout, stderr io.Writer) error {
	fs := cli.New("zm-image verify", verifySynopsis)
	if err := fs.Parse(args, 0, -1); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError("verify: want exactly one image directory")
	}
	m, err := manifest.Verify(fs.Arg(0))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: OK, firmware %s for %s\n", fs.Arg(0), m.FirmwareVersion, m.Board)
	printParts(stdout, m)
	return nil
}

func printParts(w io.Writer, m manifest.Manifest) {
	parts := []manifest.Part{m.Kernel, m.Initramfs, m.Init, m.BoardProfile, m.TrustAnchor}
	if m.UEFI != nil {
		parts = append(parts, m.UEFI.Image)
	}
	for _, p := range parts {
		fmt.Fprintf(w, "  %-40s %10d  %s\n", p.Path, p.Size, p.SHA256)
	}
	if m.UEFI != nil {
		fmt.Fprintf(w, "  %-40s %s\n", "Authenticode (sha256)", m.UEFI.Authenticode)
		for _, p := range m.UEFI.PCRs {
			fmt.Fprintf(w, "  %-40s %s\n", fmt.Sprintf("expected PCR %d (%s)", p.Index, p.Bank), p.Value)
		}
	}
}

// uefiSeed writes U-Boot's preseeded variable store: KEYDIR's PK, KEK and
// db signature lists.
func uefiSeed(args []string) error {
	fs := cli.New("zm-image uefi-seed", uefiSeedSynopsis)
	var keys, out string
	fs.StringVar(&keys, "keys", "", "key `directory` with PK.esl, KEK.esl, db.esl (scripts/uefi-keys.sh)")
	fs.StringVar(&out, "out", "", "output `file`")
	if err := fs.Parse(args, 0, -1); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usageError(fmt.Sprintf("uefi-seed: unexpected argument %q", fs.Arg(0)))
	}
	if keys == "" || out == "" {
		return usageError("uefi-seed: --keys and --out are required")
	}
	seed, err := uefi.UBootSeedFromKeys(keys)
	if err != nil {
		return fmt.Errorf("uefi-seed: %w", err)
	}
	if err := os.WriteFile(out, seed, 0o644); err != nil {
		return fmt.Errorf("uefi-seed: %w", err)
	}
	return nil
}

func sourceDateEpoch(getenv func(string) string) (int64, error) {
	s := getenv("SOURCE_DATE_EPOCH")
	if s == "" {
		return 0, nil
	}
	epoch, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("SOURCE_DATE_EPOCH %q: %w", s, err)
	}
	return epoch, nil
}

// buildInitramfs writes only the initramfs (no kernel needed), for a quick
// look at its size or for booting with another kernel.
func buildInitramfs(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := cli.New("zm-image initramfs", initramfsSynopsis)
	var initPath, boardPath, anchorPath, out string
	fs.StringVar(&initPath, "init", "", "static linux/arm64 firmware `binary`, becomes /init")
	fs.StringVar(&boardPath, "board", "", "board profile `JSON`")
	fs.StringVar(&anchorPath, "anchor", "", "provisioning trust anchor `PEM`")
	fs.StringVar(&out, "out", "", "output `file` (.cpio.gz)")
	if err := fs.Parse(args, 0, -1); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usageError(fmt.Sprintf("initramfs: unexpected argument %q", fs.Arg(0)))
	}
	var spec initramfs.Spec
	for _, f := range []struct {
		flag, path string
		dst        *[]byte
	}{
		{"--init", initPath, &spec.Init}, {"--board", boardPath, &spec.BoardProfile}, {"--anchor", anchorPath, &spec.TrustAnchor},
	} {
		if f.path == "" {
			return usageError("initramfs: " + f.flag + " is required")
		}
		b, err := os.ReadFile(f.path)
		if err != nil {
			return fmt.Errorf("initramfs: %w", err)
		}
		*f.dst = b
	}
	if out == "" {
		return usageError("initramfs: --out is required")
	}
	if _, err := fwimage.CheckInit(spec.Init); err != nil {
		return fmt.Errorf("initramfs: init %s: %w", initPath, err)
	}
	epoch, err := sourceDateEpoch(getenv)
	if err != nil {
		return err
	}
	spec.ModTime = epoch
	var buf bytes.Buffer
	if err := initramfs.Build(spec, &buf); err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	if err := fwimage.WriteFile(out, buf.Bytes()); err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	fmt.Fprintf(stdout, "%s: %d bytes\n", out, buf.Len())
	return nil
}
