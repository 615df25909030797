package initproc

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"time"

	"golang.org/x/sys/unix"
)

// Syscalls is the system interface PID 1 needs. Linux implements it with
// direct system calls; initproctest.Sys records the calls.
type Syscalls interface {
	Getpid() int
	Mount(source, target, fstype string, flags uintptr, data string) error
	Unmount(target string, flags int) error
	MkdirAll(path string, perm fs.FileMode) error
	Symlink(oldname, newname string) error
	Sethostname(name string) error
	// Stat reports whether path exists (nil) or why not.
	Stat(path string) error
	// IsMountPoint reports whether a file system is mounted on path (false
	// for a missing path).
	IsMountPoint(path string) (bool, error)
	// ReadAt reads len(b) bytes of the file at path from offset off.
	ReadAt(path string, off int64, b []byte) error
	// WriteSetting writes value to an existing kernel setting file (under
	// /proc/sys or /sys).
	WriteSetting(path, value string) error
	// SetFileLimit sets the process's open-file limit (RLIMIT_NOFILE),
	// soft and hard, to n.
	SetFileLimit(n uint64) error
	Sync()
	Reboot(cmd int) error
	Wait4(pid int, ws *unix.WaitStatus, options int) (int, error)
	Settimeofday(t time.Time) error
	// SetRTC writes t (UTC) into the real-time clock device at path.
	SetRTC(path string, t time.Time) error
	// Sleep pauses the caller (polling for a device node at boot).
	Sleep(d time.Duration)
}

// Opts configure an Init. A nil *Opts means the defaults.
type Opts struct {
	// Sys is the system interface; nil means Linux{}.
	Sys Syscalls
	// Log receives one line per boot step and shutdown; nil discards.
	Log *slog.Logger
	// RTC is the real-time clock device SetSystemTime writes; empty means
	// DefaultRTC.
	RTC string
}

// DefaultRTC is the RTC device (PL031 on QEMU's virt board).
const DefaultRTC = "/dev/rtc0"

// Init carries out the duties of PID 1.
type Init struct {
	sys Syscalls
	log *slog.Logger
	rtc string
}

// New returns an Init. The caller's Opts is not retained.
func New(o *Opts) *Init {
	var opts Opts
	if o != nil {
		opts = *o
	}
	if opts.Sys == nil {
		opts.Sys = Linux{}
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.RTC == "" {
		opts.RTC = DefaultRTC
	}
	return &Init{sys: opts.Sys, log: opts.Log, rtc: opts.RTC}
}

// IsPID1 reports whether this process is init. When it is not (a
// development host), callers skip Boot, MountData and Shutdown.
func (p *Init) IsPID1() bool { return p.sys.Getpid() == 1 }

// Boot runs steps in order and stops at the first failure; a nil steps
// means DefaultSteps(""). It also turns ctrl-alt-del into SIGINT for PID 1
// (instead of an immediate reboot).
func (p *Init) Boot(steps []Step) error {
	if steps == nil {
		steps = DefaultSteps("")
	}
	if err := p.Do(steps...); err != nil {
		return err
	}
	if err := p.sys.Reboot(unix.LINUX_REBOOT_CMD_CAD_OFF); err != nil {
		return fmt.Errorf("ctrl-alt-del off: %w", err)
	}
	return nil
}

// Do runs steps in order and stops at the first that fails, naming it in
// the error.
func (p *Init) Do(steps ...Step) error {
	for _, s := range steps {
		if err := s.Run(p.sys); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
		p.log.Debug("boot step", "step", s.String())
	}
	return nil
}

// How is the way the machine goes down.
type How int

// The shutdown kinds.
const (
	PowerOff How = iota + 1
	Reboot
	Halt
)

var howNames = map[How]string{PowerOff: "power off", Reboot: "reboot", Halt: "halt"}

// String implements fmt.Stringer.
func (h How) String() string {
	if s, ok := howNames[h]; ok {
		return s
	}
	return fmt.Sprintf("How(%d)", int(h))
}

func (h How) cmd() (int, error) {
	switch h {
	case PowerOff:
		return unix.LINUX_REBOOT_CMD_POWER_OFF, nil
	case Reboot:
		return unix.LINUX_REBOOT_CMD_RESTART, nil
	case Halt:
		return unix.LINUX_REBOOT_CMD_HALT, nil
	}
	return 0, fmt.Errorf("unknown shutdown kind %d", int(h))
}

// Shutdown syncs, unmounts the data partition at dataMount (or, when it is
// busy, remounts it read-only), syncs again and reboots, halts or powers off.
// dataMount may be empty when there is none. Shutdown returns only when the
// machine could not go down; PID 1 should then call Forever.
func (p *Init) Shutdown(how How, dataMount string) error {
	cmd, err := how.cmd()
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	p.log.Info("shutdown", "how", how.String())
	p.sys.Sync()
	var dataErr error
	if dataMount != "" {
		if err := p.sys.Unmount(dataMount, 0); err != nil && !errors.Is(err, unix.EINVAL) {
			// EINVAL: not mounted. Anything else (EBUSY: open files): make
			// it read-only so the journal is clean.
			if rerr := p.sys.Mount("", dataMount, "", unix.MS_REMOUNT|unix.MS_RDONLY, ""); rerr != nil {
				dataErr = fmt.Errorf("shutdown: unmount %s: %w; remount read-only: %w", dataMount, err, rerr)
				p.log.Error("shutdown", "err", dataErr)
			}
		}
		p.sys.Sync()
	}
	if err := p.sys.Reboot(cmd); err != nil {
		return errors.Join(dataErr, fmt.Errorf("shutdown: %s: %w", how, err))
	}
	return dataErr
}

// Forever blocks the calling goroutine for good. PID 1 ends in it.
func Forever() {
	for {
		// A sleeping timer keeps the runtime's deadlock detector quiet.
		time.Sleep(time.Hour)
	}
}
