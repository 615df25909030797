package initproc

import (
	"errors"
	"fmt"
	"io/fs"

	"golang.org/x/sys/unix"
)

// Step is one boot step.
type Step interface {
	// Run does the step; it is idempotent (running it twice is fine).
	Run(sys Syscalls) error
	// String names the step in errors and logs ("mount devtmpfs on /dev").
	String() string
}

// Mount mounts a file system, creating the mount point first. A target that
// already has a file system mounted on it is left as it is: mounting proc,
// devpts or tmpfs again would stack a second, empty instance on top, since
// mount(2) refuses (EBUSY) only the very same file system at the same place.
type Mount struct {
	Source, Target, FSType string
	Flags                  uintptr
	Data                   string
	// Perm is the mode of the mount point if it must be created.
	Perm fs.FileMode
}

// String implements Step.
func (m Mount) String() string { return fmt.Sprintf("mount %s on %s", m.FSType, m.Target) }

// Run implements Step.
func (m Mount) Run(sys Syscalls) error {
	mounted, err := sys.IsMountPoint(m.Target)
	if err != nil {
		return fmt.Errorf("mount point: %w", err)
	}
	if mounted {
		return nil
	}
	perm := m.Perm
	if perm == 0 {
		perm = 0o755
	}
	if err := sys.MkdirAll(m.Target, perm); err != nil {
		return fmt.Errorf("mount point: %w", err)
	}
	err = sys.Mount(m.Source, m.Target, m.FSType, m.Flags, m.Data)
	if errors.Is(err, unix.EBUSY) {
		return nil
	}
	return err
}

// Symlink creates Name pointing at Target; an existing Name is kept.
type Symlink struct{ Target, Name string }

// String implements Step.
func (s Symlink) String() string { return fmt.Sprintf("symlink %s -> %s", s.Name, s.Target) }

// Run implements Step.
func (s Symlink) Run(sys Syscalls) error {
	if err := sys.Symlink(s.Target, s.Name); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return nil
}

// Hostname sets the host name (the device ID).
type Hostname string

// String implements Step.
func (h Hostname) String() string { return fmt.Sprintf("set hostname %q", string(h)) }

// Run implements Step.
func (h Hostname) Run(sys Syscalls) error {
	if err := validHostname(string(h)); err != nil {
		return err
	}
	return sys.Sethostname(string(h))
}

// validHostname accepts RFC 1123 labels joined by dots, at most 64 bytes
// (the kernel's limit): letters, digits and hyphens.
func validHostname(h string) error {
	if h == "" || len(h) > 64 {
		return fmt.Errorf("hostname length %d: want 1..64", len(h))
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.'
		if !ok {
			return fmt.Errorf("hostname: byte %#x at %d is not a letter, digit, '-' or '.'", c, i)
		}
	}
	return nil
}

// Setting writes Value to the kernel setting file Path (under /proc/sys or
// /sys).
type Setting struct{ Path, Value string }

// String implements Step.
func (k Setting) String() string { return fmt.Sprintf("set %s to %s", k.Path, k.Value) }

// Run implements Step.
func (k Setting) Run(sys Syscalls) error { return sys.WriteSetting(k.Path, k.Value) }

// ExpediteRCU makes the kernel's RCU grace periods expedited (on) or normal
// (off). The kernel expedites them during its own boot and stops just
// before it starts /init; PID 1 turns them on again for the firmware's
// start-up, whose mounts, network configuration and device opens wait for
// grace periods, and off once the device runs: an expedited grace period
// interrupts every CPU. On the QEMU board the start-up (main -> first
// frame) was ~45 ms shorter with them on (two runs of 8 and 10 boots each,
// interleaved).
func ExpediteRCU(on bool) Step {
	v := "0"
	if on {
		v = "1"
	}
	return Setting{Path: "/sys/kernel/rcu_expedited", Value: v}
}

// FileLimit sets PID 1's open-file limit (RLIMIT_NOFILE), soft and hard,
// instead of leaving it to the kernel's default for init (1024 soft, 4096
// hard) and to the Go runtime, which raises the soft limit to the hard one
// at start-up.
type FileLimit uint64

// DefaultFileLimit is the firmware's open-file limit. The firmware's use is
// bounded by design: the provisioning endpoint takes at most 32 connections
// (endpoint.DefaultMaxConns, the rest are closed at once), and the device's
// own files, devices and sockets are about twenty. The margin is wide, and a
// leak shows up as an error naming EMFILE rather than as the kernel's
// memory running out.
const DefaultFileLimit FileLimit = 1024

// String implements Step.
func (f FileLimit) String() string { return fmt.Sprintf("set the open-file limit to %d", uint64(f)) }

// Run implements Step.
func (f FileLimit) Run(sys Syscalls) error {
	if f == 0 {
		return errors.New("open-file limit 0")
	}
	return sys.SetFileLimit(uint64(f))
}

const (
	nodevNosuidNoexec = unix.MS_NODEV | unix.MS_NOSUID | unix.MS_NOEXEC
)

// PseudoMounts are the pseudo file systems every boot mounts, in order.
func PseudoMounts() []Step {
	return []Step{
		Mount{Source: "proc", Target: "/proc", FSType: "proc", Flags: nodevNosuidNoexec, Perm: 0o555},
		Mount{Source: "sysfs", Target: "/sys", FSType: "sysfs", Flags: nodevNosuidNoexec, Perm: 0o555},
		Mount{Source: "devtmpfs", Target: "/dev", FSType: "devtmpfs", Flags: unix.MS_NOSUID, Data: "mode=0755"},
		Mount{Source: "devpts", Target: "/dev/pts", FSType: "devpts", Flags: unix.MS_NOSUID | unix.MS_NOEXEC, Data: "gid=5,mode=0620,ptmxmode=0666"},
		Mount{Source: "tmpfs", Target: "/run", FSType: "tmpfs", Flags: nodevNosuidNoexec, Data: "mode=0755,size=8m"},
		Mount{Source: "tmpfs", Target: "/tmp", FSType: "tmpfs", Flags: unix.MS_NODEV | unix.MS_NOSUID, Data: "mode=1777,size=16m", Perm: 0o777},
	}
}

// DevFDLinks are the /dev links devtmpfs does not create.
func DevFDLinks() []Step {
	return []Step{
		Symlink{Target: "/proc/self/fd", Name: "/dev/fd"},
		Symlink{Target: "/proc/self/fd/0", Name: "/dev/stdin"},
		Symlink{Target: "/proc/self/fd/1", Name: "/dev/stdout"},
		Symlink{Target: "/proc/self/fd/2", Name: "/dev/stderr"},
	}
}

// DefaultSteps are the boot steps: PseudoMounts, DevFDLinks, the
// open-file limit (DefaultFileLimit) and, when hostname is not empty,
// Hostname.
func DefaultSteps(hostname string) []Step {
	s := append(PseudoMounts(), DevFDLinks()...)
	s = append(s, DefaultFileLimit)
	if hostname != "" {
		s = append(s, Hostname(hostname))
	}
	return s
}
