package initproc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"golang.org/x/sys/unix"
)

// ErrNoFilesystem means the data device has no ext4 file system. The
// device never formats it in the field: a blank or foreign disk needs
// service (on QEMU the host formats the disk image).
var ErrNoFilesystem = errors.New("no ext4 file system (the device does not format its data partition)")

// ErrNoDevice means the block device did not appear in time.
var ErrNoDevice = errors.New("block device did not appear")

// Data describes the persistent data partition.
type Data struct {
	// Device is the block device (/dev/vda on QEMU).
	Device string
	// Mount is the mount point (/data).
	Mount string
	// FSType must be "ext4" (the only file system checked for).
	FSType string
	// Wait bounds how long to wait for Device to appear; 0 means
	// DefaultDataWait.
	Wait time.Duration
}

// DefaultDataWait is how long MountData waits for the block device.
const DefaultDataWait = 2 * time.Second

// dataPoll is the interval between checks for the block device.
const dataPoll = 20 * time.Millisecond

// ext4 superblock: at byte 1024 of the device; s_magic at offset 0x38.
const (
	ext4MagicOffset = 1024 + 0x38
	ext4Magic       = 0xEF53
)

// dataFlags keep executables and device nodes off the data partition.
const dataFlags = unix.MS_NODEV | unix.MS_NOSUID | unix.MS_NOEXEC | unix.MS_NOATIME

// MountData waits (bounded) for the data device and mounts its ext4 file
// system. Already mounted is not an error. When the mount fails, the
// superblock says why: a device without an ext4 file system is
// ErrNoFilesystem; otherwise the mount's own error is returned. (The
// superblock is read only then: read before every mount, its cold block
// device path cost 17-25 ms of each boot under QEMU.)
func (p *Init) MountData(d Data) error {
	step := fmt.Sprintf("mount data partition %s on %s", d.Device, d.Mount)
	if d.FSType != "ext4" {
		return fmt.Errorf("%s: file system %q: only ext4 is supported", step, d.FSType)
	}
	if d.Device == "" || d.Mount == "" {
		return fmt.Errorf("%s: device and mount point are required", step)
	}
	wait := d.Wait
	if wait <= 0 {
		wait = DefaultDataWait
	}
	if err := p.waitFor(d.Device, wait); err != nil {
		return fmt.Errorf("%s: %w", step, err)
	}
	m := Mount{Source: d.Device, Target: d.Mount, FSType: d.FSType, Flags: dataFlags, Perm: 0o700}
	if err := m.Run(p.sys); err != nil {
		var magic [2]byte
		if rerr := p.sys.ReadAt(d.Device, ext4MagicOffset, magic[:]); rerr != nil {
			return fmt.Errorf("%s: %w (and reading the superblock: %w)", step, err, rerr)
		}
		if binary.LittleEndian.Uint16(magic[:]) != ext4Magic {
			return fmt.Errorf("%s: %w", step, ErrNoFilesystem)
		}
		return fmt.Errorf("%s: %w", step, err)
	}
	p.log.Info("data partition mounted", "device", d.Device, "mount", d.Mount)
	return nil
}

// waitFor polls for path until it exists or wait has passed.
func (p *Init) waitFor(path string, wait time.Duration) error {
	for waited := time.Duration(0); ; waited += dataPoll {
		err := p.sys.Stat(path)
		if err == nil {
			return nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("stat: %w", err)
		}
		if waited >= wait {
			return fmt.Errorf("%w after %v", ErrNoDevice, wait)
		}
		p.sys.Sleep(dataPoll)
	}
}
