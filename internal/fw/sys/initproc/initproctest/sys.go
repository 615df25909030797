// Package initproctest has a recording fake of initproc.Syscalls for tests
// on a development host.
package initproctest

import (
	"fmt"
	"io/fs"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Call is one recorded system call, rendered as text
// ("mount devtmpfs /dev devtmpfs 0x2 mode=0755").
type Call string

// Sys records calls and answers from its fields. The zero value is a
// non-PID-1 process where every call succeeds and every path is missing.
type Sys struct {
	mu sync.Mutex

	// PID is what Getpid returns.
	PID int
	// Calls records every call, in order.
	Calls []Call
	// Errs makes a call fail: key is the recorded Call text.
	Errs map[Call]error
	// Files answers Stat and ReadAt: path → contents.
	Files map[string][]byte
	// AppearAfter makes a path in Files visible only after this many
	// Sleep calls (a block device that shows up late).
	AppearAfter map[string]int
	// Slept is the total of Sleep durations.
	Slept time.Duration
	// Children are exit statuses Wait4 hands out, one per call, then ECHILD.
	Children []int
	// Now is the system time set by Settimeofday; RTC the last RTC write.
	Now, RTC time.Time
	sleeps   int
	// mounted are the targets of the mounts that succeeded and were not
	// unmounted since.
	mounted map[string]bool
}

func (s *Sys) record(format string, args ...any) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := Call(fmt.Sprintf(format, args...))
	s.Calls = append(s.Calls, c)
	return s.Errs[c]
}

// Recorded returns a copy of the calls so far.
func (s *Sys) Recorded() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.Calls...)
}

// Getpid implements initproc.Syscalls.
func (s *Sys) Getpid() int { return s.PID }

// Mount implements initproc.Syscalls. Like the kernel, it stacks a second
// mount on a target that has one (IsMountPoint reports the targets), and it
// refuses (EINVAL) to mount as ext4 a source in Files that has no ext4
// superblock magic.
func (s *Sys) Mount(source, target, fstype string, flags uintptr, data string) error {
	if err := s.record("mount %s %s %s %#x %s", source, target, fstype, flags, data); err != nil {
		return err
	}
	if b, ok := s.visible(source); ok && fstype == "ext4" && !HasExt4Magic(b) {
		return unix.EINVAL
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mounted == nil {
		s.mounted = map[string]bool{}
	}
	s.mounted[target] = true
	return nil
}

// Unmount implements initproc.Syscalls.
func (s *Sys) Unmount(target string, flags int) error {
	if err := s.record("unmount %s %d", target, flags); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.mounted, target)
	return nil
}

// IsMountPoint implements initproc.Syscalls (not recorded): true for the
// targets of the mounts that succeeded and were not unmounted since.
func (s *Sys) IsMountPoint(path string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mounted[path], nil
}

// MkdirAll implements initproc.Syscalls.
func (s *Sys) MkdirAll(path string, perm fs.FileMode) error {
	return s.record("mkdir %s %v", path, perm)
}

// Symlink implements initproc.Syscalls.
func (s *Sys) Symlink(oldname, newname string) error {
	return s.record("symlink %s %s", oldname, newname)
}

// Sethostname implements initproc.Syscalls.
func (s *Sys) Sethostname(name string) error { return s.record("sethostname %s", name) }

func (s *Sys) visible(path string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.Files[path]
	if ok && s.sleeps < s.AppearAfter[path] {
		return nil, false
	}
	return b, ok
}

// Stat implements initproc.Syscalls (not recorded: it is polled).
func (s *Sys) Stat(path string) error {
	if _, ok := s.visible(path); !ok {
		return &fs.PathError{Op: "stat", Path: path, Err: fs.ErrNotExist}
	}
	return nil
}

// ReadAt implements initproc.Syscalls.
func (s *Sys) ReadAt(path string, off int64, b []byte) error {
	if err := s.record("read %s %d %d", path, off, len(b)); err != nil {
		return err
	}
	data, ok := s.visible(path)
	if !ok {
		return &fs.PathError{Op: "open", Path: path, Err: fs.ErrNotExist}
	}
	if off+int64(len(b)) > int64(len(data)) {
		return fmt.Errorf("read %s: short file", path)
	}
	copy(b, data[off:])
	return nil
}

// WriteSetting implements initproc.Syscalls.
func (s *Sys) WriteSetting(path, value string) error {
	return s.record("write %s %s", path, value)
}

// SetFileLimit implements initproc.Syscalls.
func (s *Sys) SetFileLimit(n uint64) error { return s.record("setrlimit nofile %d", n) }

// Sync implements initproc.Syscalls.
func (s *Sys) Sync() { _ = s.record("sync") }

// Reboot implements initproc.Syscalls.
func (s *Sys) Reboot(cmd int) error { return s.record("reboot %#x", uint32(cmd)) }

// Wait4 implements initproc.Syscalls.
func (s *Sys) Wait4(pid int, ws *unix.WaitStatus, options int) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.Children) == 0 {
		return -1, unix.ECHILD
	}
	*ws = unix.WaitStatus(s.Children[0] << 8)
	s.Children = s.Children[1:]
	return 100 + len(s.Children), nil
}

// Settimeofday implements initproc.Syscalls.
func (s *Sys) Settimeofday(t time.Time) error {
	if err := s.record("settimeofday %d", t.Unix()); err != nil {
		return err
	}
	s.mu.Lock()
	s.Now = t
	s.mu.Unlock()
	return nil
}

// SetRTC implements initproc.Syscalls.
func (s *Sys) SetRTC(path string, t time.Time) error {
	if err := s.record("setrtc %s %s", path, t.Format(time.RFC3339)); err != nil {
		return err
	}
	s.mu.Lock()
	s.RTC = t
	s.mu.Unlock()
	return nil
}

// Sleep implements initproc.Syscalls without sleeping: it advances Slept.
func (s *Sys) Sleep(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sleeps++
	s.Slept += d
}

// HasExt4Magic reports whether b holds the ext4 superblock magic (0xEF53 at
// byte 1024+0x38).
func HasExt4Magic(b []byte) bool {
	const off = 1024 + 0x38
	return len(b) >= off+2 && b[off] == 0x53 && b[off+1] == 0xEF
}
