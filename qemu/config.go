package qemu

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
)

// Defaults of Config.
const (
	DefaultDiskSize  = 64 << 20
	DefaultWidth     = 240
	DefaultHeight    = 240
	DefaultMemoryMiB = 256
	// DefaultCPUs is the number of Cortex-A53 cores the board has. The
	// SoCs this board stands for have two to four; with one, QEMU ran the
	// kernel's initramfs unpacking and its device probing one after the
	// other, and the firmware's start-up goroutines too (docs/qemu.md,
	// "Where the boot time goes").
	DefaultCPUs = 2
	// GuestFwdAddr is the guest-side address of every GuestFwd.
	GuestFwdAddr = "10.0.2.100"
	// GuestAddr is the address QEMU's DHCP server gives the guest.
	GuestAddr = "10.0.2.15"
)

// HostFwd forwards host 127.0.0.1:HostPort to the guest's GuestPort (TCP).
type HostFwd struct {
	GuestPort int
	// HostPort 0 means: pick a free port when the board starts.
	HostPort int
}

// GuestFwd lets the guest reach a host service: guest connections to
// GuestFwdAddr:GuestPort are connected to host 127.0.0.1:HostPort (TCP).
type GuestFwd struct {
	GuestPort int
	HostPort  int
}

// Firmware is the UEFI firmware of a board that boots through it
// (qemu-virt-secure) instead of QEMU loading the kernel directly.
type Firmware struct {
	// Code is the firmware, which QEMU loads as the boot ROM (-bios):
	// U-Boot with the Secure Boot keys compiled in, as in write-protected
	// boot flash. It keeps no variables anywhere else.
	Code string
}

// Config says how to start a board. Zero fields take the defaults.
type Config struct {
	// Kernel is the arm64 Image; Initrd the gzip cpio initramfs. With
	// Firmware, Kernel is the signed EFI program that holds kernel,
	// initramfs and command line, and Initrd is empty: QEMU hands Kernel
	// to the firmware (fw_cfg), which verifies, measures and starts it.
	Kernel, Initrd string
	// Firmware, if set, boots through UEFI firmware (see Firmware).
	Firmware *Firmware
	// TraceTPM logs every TPM command QEMU passes on, with the host time,
	// to STATE/tpm-trace.log (QEMU's tpm_tis_mmio_write trace event; see
	// ReadTPMTrace). The firmware's TPM commands mark its boot phases.
	TraceTPM bool
	// PCRBanks, if set (e.g. "sha256"), are the only PCR banks of a new
	// TPM: Start creates the TPM state with swtpm_setup --pcr-banks the
	// first time. Empty leaves it to swtpm (all four banks).
	PCRBanks string
	// StateDir holds everything of this board instance (see the package
	// documentation); created if missing, kept across restarts.
	StateDir string
	// DiskSize is the data disk's size when it is created (bytes).
	DiskSize int64
	// Width and Height are the virtio-gpu panel's resolution.
	Width, Height int
	// MemoryMiB is the guest's RAM.
	MemoryMiB int
	// CPUs is the number of guest CPUs (QEMU runs each on its own host
	// thread).
	CPUs     int
	HostFwd  []HostFwd
	GuestFwd []GuestFwd
	// Append is added to the kernel command line.
	Append string
	// KernelLog prints every kernel message on the console. By default the
	// kernel boots "quiet" (warnings and errors only): printing its ~140
	// boot lines through the emulated PL011 costs 0.1-0.15 s of boot.
	KernelLog bool
	// Console, if not nil, receives a copy of the console output.
	Console io.Writer
	// QEMU and SWTPM are the programs; empty means qemu-system-aarch64
	// and swtpm from $PATH. MkfsExt4 likewise (mkfs.ext4), Socat (socat,
	// which carries each guestfwd connection) and SWTPMSetup
	// (swtpm_setup).
	QEMU, SWTPM, MkfsExt4, Socat, SWTPMSetup string
}

func (c Config) withDefaults() Config {
	if c.DiskSize == 0 {
		c.DiskSize = DefaultDiskSize
	}
	if c.Width == 0 {
		c.Width = DefaultWidth
	}
	if c.Height == 0 {
		c.Height = DefaultHeight
	}
	if c.MemoryMiB == 0 {
		c.MemoryMiB = DefaultMemoryMiB
	}
	if c.CPUs == 0 {
		c.CPUs = DefaultCPUs
	}
	if c.QEMU == "" {
		c.QEMU = "qemu-system-aarch64"
	}
	if c.SWTPM == "" {
		c.SWTPM = "swtpm"
	}
	if c.MkfsExt4 == "" {
		c.MkfsExt4 = "mkfs.ext4"
	}
	if c.Socat == "" {
		c.Socat = "socat"
	}
	if c.SWTPMSetup == "" {
		c.SWTPMSetup = "swtpm_setup"
	}
	if c.Firmware != nil {
		fw := *c.Firmware
		c.Firmware = &fw
	}
	c.HostFwd = append([]HostFwd(nil), c.HostFwd...)
	c.GuestFwd = append([]GuestFwd(nil), c.GuestFwd...)
	return c
}

func validPort(p int) bool { return p > 0 && p < 65536 }

func (c Config) validate() error {
	var errs []error
	if c.Kernel == "" {
		errs = append(errs, errors.New("kernel path is required"))
	}
	switch {
	case c.Firmware == nil && c.Initrd == "":
		errs = append(errs, errors.New("initrd path is required"))
	case c.Firmware != nil && c.Initrd != "":
		errs = append(errs, errors.New("an initrd with UEFI firmware: the signed EFI program holds the initramfs"))
	case c.Firmware != nil && c.Firmware.Code == "":
		errs = append(errs, errors.New("UEFI firmware without its code"))
	}
	if c.PCRBanks != "" && strings.Trim(c.PCRBanks, "abcdefghijklmnopqrstuvwxyz0123456789,") != "" {
		errs = append(errs, fmt.Errorf("PCR banks %q: want names such as sha256, comma-separated", c.PCRBanks))
	}
	if c.StateDir == "" {
		errs = append(errs, errors.New("state directory is required"))
	}
	if c.DiskSize < 8<<20 {
		errs = append(errs, fmt.Errorf("disk size %d: want at least 8 MiB", c.DiskSize))
	}
	if c.Width < 16 || c.Width > 4096 || c.Height < 16 || c.Height > 4096 {
		errs = append(errs, fmt.Errorf("display %dx%d: want 16..4096 each way", c.Width, c.Height))
	}
	if c.MemoryMiB < 64 {
		errs = append(errs, fmt.Errorf("memory %d MiB: want at least 64", c.MemoryMiB))
	}
	if c.CPUs < 1 || c.CPUs > 8 {
		errs = append(errs, fmt.Errorf("%d CPUs: want 1..8", c.CPUs))
	}
	seen := map[int]bool{}
	for _, f := range c.HostFwd {
		if !validPort(f.GuestPort) || (f.HostPort != 0 && !validPort(f.HostPort)) {
			errs = append(errs, fmt.Errorf("host forward %d→%d: bad port", f.HostPort, f.GuestPort))
		}
		if seen[f.GuestPort] {
			errs = append(errs, fmt.Errorf("host forward to guest port %d: given twice", f.GuestPort))
		}
		seen[f.GuestPort] = true
	}
	for _, f := range c.GuestFwd {
		if !validPort(f.GuestPort) || !validPort(f.HostPort) {
			errs = append(errs, fmt.Errorf("guest forward %d→%d: bad port", f.GuestPort, f.HostPort))
		}
	}
	// QEMU's -append and -netdev take these verbatim; a comma in a path
	// would split a QEMU option.
	paths := []string{c.Kernel, c.Initrd, c.StateDir}
	if c.Firmware != nil {
		paths = append(paths, c.Firmware.Code)
	}
	for _, p := range paths {
		if strings.ContainsAny(p, ",\n") {
			errs = append(errs, fmt.Errorf("path %q: commas and newlines are not allowed", p))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("qemu config: %w", err)
	}
	return nil
}

// paths of the files in a state directory.
type paths struct{ dir string }

func (p paths) lock() string        { return filepath.Join(p.dir, "lock") }
func (p paths) tpm() string         { return filepath.Join(p.dir, "tpm") }
func (p paths) swtpmSock() string   { return filepath.Join(p.dir, "swtpm.sock") }
func (p paths) swtpmLog() string    { return filepath.Join(p.dir, "swtpm.log") }
func (p paths) disk() string        { return filepath.Join(p.dir, "data.img") }
func (p paths) consoleSock() string { return filepath.Join(p.dir, "console.sock") }
func (p paths) consoleLog() string  { return filepath.Join(p.dir, "console.log") }
func (p paths) qmpSock() string     { return filepath.Join(p.dir, "qmp.sock") }
func (p paths) qemuLog() string     { return filepath.Join(p.dir, "qemu.log") }
func (p paths) boardJSON() string   { return filepath.Join(p.dir, "board.json") }
func (p paths) tpmTrace() string    { return filepath.Join(p.dir, "tpm-trace.log") }

// qemuArgs is the qemu-system-aarch64 command line (without the program).
// Every HostFwd must have its HostPort set.
func qemuArgs(c Config, p paths) []string {
	appendLine := "console=ttyAMA0 panic=-1"
	if !c.KernelLog {
		appendLine += " quiet"
	}
	if c.Append != "" {
		appendLine += " " + c.Append
	}
	netdev := "user,id=n0,restrict=on"
	for _, f := range c.HostFwd {
		netdev += fmt.Sprintf(",hostfwd=tcp:127.0.0.1:%d-:%d", f.HostPort, f.GuestPort)
	}
	for _, f := range c.GuestFwd {
		// cmd: spawns a connector per guest connection. (A "tcp:" target
		// is a single chardev connection made when QEMU starts: the
		// service must be up before the board, and only one guest
		// connection per boot ever reaches it.)
		netdev += fmt.Sprintf(",guestfwd=tcp:%s:%d-cmd:%s - TCP:127.0.0.1:%d", GuestFwdAddr, f.GuestPort, c.Socat, f.HostPort)
	}
	machine := "virt"
	boot := []string{"-kernel", c.Kernel, "-initrd", c.Initrd, "-append", appendLine}
	if c.Firmware != nil {
		// acpi=off: the firmware hands Linux QEMU's device tree, as the
		// direct boot does (and the power button stays on PL061).
		machine = "virt,acpi=off"
		boot = []string{"-bios", c.Firmware.Code, "-kernel", c.Kernel}
	}
	if c.TraceTPM {
		boot = append(boot, "-msg", "timestamp=on", "-d", "trace:tpm_tis_mmio_write", "-D", p.tpmTrace())
	}
	return append([]string{
		"-M", machine, "-cpu", "cortex-a53", "-smp", strconv.Itoa(c.CPUs), "-m", strconv.Itoa(c.MemoryMiB),
		"-display", "none", "-monitor", "none", "-no-reboot", "-nodefaults"},
		append(boot,
			"-chardev", "socket,id=con0,path="+p.consoleSock()+",server=on,wait=on,logfile="+p.consoleLog()+",logappend=on",
			"-serial", "chardev:con0",
			"-qmp", "unix:"+p.qmpSock()+",server=on,wait=off",
			"-chardev", "socket,id=chrtpm,path="+p.swtpmSock(),
			"-tpmdev", "emulator,id=tpm0,chardev=chrtpm",
			"-device", "tpm-tis-device,tpmdev=tpm0",
			"-device", fmt.Sprintf("virtio-gpu-pci,xres=%d,yres=%d", c.Width, c.Height),
			"-drive", "if=none,id=data,file="+p.disk()+",format=raw",
			"-device", "virtio-blk-pci,drive=data",
			"-netdev", netdev,
			"-device", "virtio-net-pci,netdev=n0,romfile=",
		)...)
}

// swtpmArgs is swtpm's command line (without the program). --terminate
// makes it exit when QEMU goes away (power cut or stop); Start runs a new
// one each time, on the same state directory.
func swtpmArgs(p paths) []string {
	return []string{"socket", "--tpm2",
		"--tpmstate", "dir=" + p.tpm(),
		"--ctrl", "type=unixio,path=" + p.swtpmSock(),
		"--log", "file=" + p.swtpmLog() + ",level=1",
		"--terminate",
	}
}
