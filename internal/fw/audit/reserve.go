package audit

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
)

// The reserve: disk space the log keeps for itself, so that the records a
// full data partition would otherwise drop (the state changes and refusals
// a technician or an investigator needs) are still written. Open makes
// ReserveName, ReserveBytes of zeros beside the segments; when a record
// does not fit (ENOSPC) the log deletes it, writes the record, and records
// AUDIT_DISK_FULL after it. Status().DiskFull says so from then on, for the
// console. The next Open makes the reserve again if the space is back.

const (
	// ReserveName is the reserve's file in the log's directory.
	ReserveName = "security_audit_log.reserve"
	// DefaultReserveBytes is the reserve's size: some 700 records.
	DefaultReserveBytes = 256 << 10
)

// makeReserve makes the reserve file, or keeps the one there. A disk too
// full for it sets diskFull; other errors are returned.
func (l *Log) makeReserve() error {
	path := filepath.Join(l.dir, ReserveName)
	if st, err := os.Stat(path); err == nil && st.Mode().IsRegular() && st.Size() >= l.o.ReserveBytes {
		return nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("audit: make the reserve: %w", err)
	}
	_, err = io.CopyN(f, zeroReader{}, l.o.ReserveBytes)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if errors.Is(err, syscall.ENOSPC) {
		os.Remove(path)
		l.diskFull = fmt.Sprintf("the disk has no room for the audit log's %d KiB reserve: records may be lost when it fills", l.o.ReserveBytes>>10)
		return nil
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("audit: make the reserve: %w", err)
	}
	return syncDir(l.dir)
}

// releaseReserveLocked deletes the reserve so that a record fits. It
// reports whether there was one to release. l.mu is held.
func (l *Log) releaseReserveLocked() bool {
	path := filepath.Join(l.dir, ReserveName)
	if err := os.Remove(path); err != nil {
		return false
	}
	_ = syncDir(l.dir)
	l.diskFull = fmt.Sprintf("the disk is full: the audit log released its %d KiB reserve and goes on in it; free space on the data partition", l.o.ReserveBytes>>10)
	l.diskFullDue = true
	l.o.Log.Error("audit: " + l.diskFull)
	return true
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
