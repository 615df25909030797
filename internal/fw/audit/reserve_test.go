package audit_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/zmonitor/firmware/internal/fw/audit"
	"github.com/zmonitor/firmware/internal/proto/auditlog"
)

// fullDisk fails every write with ENOSPC while the file at keep exists
// (the disk's last free space is the log's reserve), or always.
func fullDisk(keep string, always bool) func(*os.File, []byte) (int, error) {
	return func(f *os.File, b []byte) (int, error) {
		if _, err := os.Stat(keep); always || err == nil {
			return 0, &os.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
		}
		return f.Write(b)
	}
}

// On a full disk the record is still written: the log releases its
// reserve, writes the record, records AUDIT_DISK_FULL after it, and its
// status says so. Before the reserve, Append failed with ENOSPC and the
// engine only logged it: the record was lost.
func TestFullDiskReleasesTheReserve(t *testing.T) {
	e := newEnv(t)
	l := e.open(t)
	reserve := filepath.Join(e.dir, audit.ReserveName)
	if st, err := os.Stat(reserve); err != nil || st.Size() != audit.DefaultReserveBytes {
		t.Fatalf("no %d-byte reserve after Open: %v", audit.DefaultReserveBytes, err)
	}
	audit.SetWrite(l, fullDisk(reserve, false))
	if err := l.Record(audit.Event{Event: "STATE_CHANGED", From: "READY_TO_PAIR", To: "PAIRING_RECEIVED", Actor: "device"}); err != nil {
		t.Fatalf("record on a full disk: %v", err)
	}
	if _, err := os.Stat(reserve); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the reserve was not released: %v", err)
	}
	recs, err := l.Tail(2)
	if err != nil || len(recs) != 2 || recs[0].Event.Event != "STATE_CHANGED" || recs[1].Event.Event != auditlog.EventDiskFull {
		t.Fatalf("last records %+v, %v; want STATE_CHANGED then %s", recs, err, auditlog.EventDiskFull)
	}
	if s := l.Status(); !strings.Contains(s.DiskFull, "released its 256 KiB reserve") {
		t.Fatalf("Status().DiskFull = %q", s.DiskFull)
	}

	// The reserve used up too: the record is refused with ENOSPC (the
	// caller says so), and the status says records are lost.
	audit.SetWrite(l, fullDisk(reserve, true))
	if err := l.Record(audit.Event{Event: "BUTTON_PRESSED", Actor: "button"}); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("record with the reserve used up: %v, want ENOSPC", err)
	}
	if s := l.Status(); !strings.Contains(s.DiskFull, "records are lost") {
		t.Fatalf("Status().DiskFull = %q", s.DiskFull)
	}
	// The chain is whole: what was written verifies.
	l.Close()
	l = e.open(t)
	if s := l.Status(); s.DiskFull != "" {
		t.Errorf("after space came back the reserve was not made again: %q", s.DiskFull)
	}
	if _, err := os.Stat(reserve); err != nil {
		t.Errorf("reserve after reopen: %v", err)
	}
}
