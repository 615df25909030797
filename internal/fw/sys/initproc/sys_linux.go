package initproc

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Linux is the real Syscalls: direct system calls, no commands.
type Linux struct{}

var _ Syscalls = Linux{}

// Getpid implements Syscalls.
func (Linux) Getpid() int { return unix.Getpid() }

// Mount implements Syscalls.
func (Linux) Mount(source, target, fstype string, flags uintptr, data string) error {
	return unix.Mount(source, target, fstype, flags, data)
}

// Unmount implements Syscalls.
func (Linux) Unmount(target string, flags int) error { return unix.Unmount(target, flags) }

// MkdirAll implements Syscalls.
func (Linux) MkdirAll(path string, perm fs.FileMode) error { return os.MkdirAll(path, perm) }

// Symlink implements Syscalls.
func (Linux) Symlink(oldname, newname string) error { return os.Symlink(oldname, newname) }

// Sethostname implements Syscalls.
func (Linux) Sethostname(name string) error { return unix.Sethostname([]byte(name)) }

// Stat implements Syscalls.
func (Linux) Stat(path string) error {
	_, err := os.Stat(path)
	return err
}

// IsMountPoint implements Syscalls with statx's STATX_ATTR_MOUNT_ROOT
// (Linux 5.8 and later), and otherwise by comparing path's device with its
// parent directory's.
func (Linux) IsMountPoint(path string) (bool, error) {
	var st unix.Statx_t
	err := unix.Statx(unix.AT_FDCWD, path, unix.AT_SYMLINK_NOFOLLOW, unix.STATX_BASIC_STATS, &st)
	if errors.Is(err, unix.ENOENT) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if st.Attributes_mask&unix.STATX_ATTR_MOUNT_ROOT != 0 {
		return st.Attributes&unix.STATX_ATTR_MOUNT_ROOT != 0, nil
	}
	clean := filepath.Clean(path)
	if clean == "/" {
		return true, nil
	}
	var parent unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, filepath.Dir(clean), 0, unix.STATX_BASIC_STATS, &parent); err != nil {
		return false, err
	}
	return st.Dev_major != parent.Dev_major || st.Dev_minor != parent.Dev_minor, nil
}

// ReadAt implements Syscalls.
func (Linux) ReadAt(path string, off int64, b []byte) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.ReadAt(b, off); err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("device shorter than %d bytes: %w", off+int64(len(b)), err)
		}
		return err
	}
	return nil
}

// WriteSetting implements Syscalls.
func (Linux) WriteSetting(path, value string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(value); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// SetFileLimit implements Syscalls with setrlimit(2), through package
// syscall so that the Go runtime knows the limit was set on purpose (it
// would otherwise restore its start-up value for child processes).
func (Linux) SetFileLimit(n uint64) error {
	return syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: n, Max: n})
}

// Sync implements Syscalls.
func (Linux) Sync() { unix.Sync() }

// Reboot implements Syscalls.
func (Linux) Reboot(cmd int) error { return unix.Reboot(cmd) }

// Wait4 implements Syscalls.
func (Linux) Wait4(pid int, ws *unix.WaitStatus, options int) (int, error) {
	return unix.Wait4(pid, ws, options, nil)
}

// Settimeofday implements Syscalls.
func (Linux) Settimeofday(t time.Time) error {
	tv := unix.NsecToTimeval(t.UnixNano())
	return unix.Settimeofday(&tv)
}

// SetRTC implements Syscalls with the RTC_SET_TIME ioctl.
func (Linux) SetRTC(path string, t time.Time) error {
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	t = t.UTC()
	rt := unix.RTCTime{
		Sec: int32(t.Second()), Min: int32(t.Minute()), Hour: int32(t.Hour()),
		Mday: int32(t.Day()), Mon: int32(t.Month()) - 1, Year: int32(t.Year()) - 1900,
		Wday: int32(t.Weekday()), Yday: int32(t.YearDay()) - 1,
	}
	return unix.IoctlSetRTCTime(fd, &rt)
}

// Sleep implements Syscalls.
func (Linux) Sleep(d time.Duration) { time.Sleep(d) }
