package audit

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/zmonitor/firmware/internal/base/clock"
)

// FileName is the log's file name in the data directory.
const FileName = "security_audit_log.jsonl"

// tamperedName is the name pattern a damaged log is moved to by Recover.
const tamperedName = "security_audit_log.tampered-%d.jsonl"

// WallClock gives the wall time and whether it is trusted; *clock.Wall
// implements it.
type WallClock interface {
	Now() (time.Time, bool)
}

// Log is the open audit log. It is safe for concurrent use.
type Log struct {
	path     string
	wall     WallClock
	mono     clock.Clock
	openedAt time.Time
	bootID   string

	mu     sync.Mutex
	f      *os.File // nil once closed
	seq    uint64   // seq of the last record
	last   string   // hash of the last record
	size   int64    // bytes of verified records in the file
	broken error    // set when the file may no longer match seq/size
}

// loaded is what reading an existing file found.
type loaded struct {
	c     chain      // the verified prefix
	good  int64      // its length in bytes
	size  int64      // file size
	bad   *LineError // first bad line, nil if none
	torn  bool       // bad is a torn last line (power cut), not tampering
	rest  []byte     // the bytes after the verified prefix
	isNew bool       // the file was created by this open
}

// Open opens (creating if needed) the log in dir and verifies it. A torn
// last line is repaired and audited. Any other damage is returned as an
// error wrapping ErrTampered that names the first bad line (a *LineError);
// the caller should then call Recover, keep running and show the damage.
func Open(dir string, wall WallClock, mono clock.Clock) (*Log, error) {
	l, ld, err := openFile(dir, wall, mono)
	if err != nil {
		return nil, err
	}
	if ld.bad != nil && !ld.torn {
		l.f.Close()
		return nil, fmt.Errorf("audit: open %s: %w", l.path, ld.bad)
	}
	if err := l.finishOpen(ld); err != nil {
		l.f.Close()
		return nil, err
	}
	return l, nil
}

// Recover opens the log like Open, but when the log is damaged it moves
// the file aside as security_audit_log.tampered-N.jsonl (N = 1, 2, ...) and
// starts a new segment. The new segment's first record is
// AUDIT_TAMPER_DETECTED; its seq and prev continue from the last record
// that verified, and its reason names the first bad line and the file the
// damaged log was kept in. Verify accepts such a segment.
func Recover(dir string, wall WallClock, mono clock.Clock) (*Log, error) {
	l, ld, err := openFile(dir, wall, mono)
	if err != nil {
		return nil, err
	}
	if ld.bad == nil || ld.torn {
		if err := l.finishOpen(ld); err != nil {
			l.f.Close()
			return nil, err
		}
		return l, nil
	}
	if err := l.f.Close(); err != nil {
		return nil, fmt.Errorf("audit: recover: close damaged log: %w", err)
	}
	l.f = nil
	aside, err := moveAside(dir)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(l.path, os.O_RDWR|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: recover: create new segment: %w", err)
	}
	l.f = f
	if err := syncDir(dir); err != nil {
		f.Close()
		return nil, fmt.Errorf("audit: recover: %w", err)
	}
	l.seq, l.last, l.size = ld.c.seq, ld.c.last, 0
	reason := Sanitize(fmt.Sprintf("%s; %d records before it verified; damaged log kept as %s", ld.bad.Error(), ld.c.line, filepath.Base(aside)))
	if _, err := l.append(Event{Event: EventTamperDetected, Actor: "device", Reason: reason}); err != nil {
		f.Close()
		return nil, fmt.Errorf("audit: recover: %w", err)
	}
	return l, nil
}

// openFile opens or creates the file and verifies what is in it.
func openFile(dir string, wall WallClock, mono clock.Clock) (*Log, loaded, error) {
	var ld loaded
	if wall == nil || mono == nil {
		return nil, ld, errors.New("audit: open: wall and monotonic clocks are required")
	}
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return nil, ld, fmt.Errorf("audit: open: boot id: %w", err)
	}
	l := &Log{path: filepath.Join(dir, FileName), wall: wall, mono: mono, openedAt: mono.Now(), bootID: hex.EncodeToString(id)}
	_, err := os.Stat(l.path)
	ld.isNew = errors.Is(err, fs.ErrNotExist)
	f, err := os.OpenFile(l.path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, ld, fmt.Errorf("audit: open: %w", err)
	}
	l.f = f
	if ld.isNew {
		if err := syncDir(dir); err != nil {
			f.Close()
			return nil, ld, fmt.Errorf("audit: open: %w", err)
		}
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, ld, fmt.Errorf("audit: open: %w", err)
	}
	ld.size = st.Size()
	ld.c.last = ZeroHash
	good, err := scan(io.NewSectionReader(f, 0, ld.size), &ld.c, func([]byte, Record) error { return nil })
	ld.good = good
	if err != nil && !errors.As(err, &ld.bad) {
		f.Close()
		return nil, ld, fmt.Errorf("audit: open %s: %w", l.path, err)
	}
	if ld.bad != nil {
		ld.rest, err = io.ReadAll(io.NewSectionReader(f, good, ld.size-good))
		if err != nil {
			f.Close()
			return nil, ld, fmt.Errorf("audit: open %s: %w", l.path, err)
		}
		ld.torn = isTornTail(ld.rest)
	}
	l.seq, l.last, l.size = ld.c.seq, ld.c.last, good
	return l, ld, nil
}

// isTornTail reports whether rest, the bytes after the last good line, is
// what a power cut during one append can leave: a line cut short (no
// newline), or a single line holding NUL bytes (blocks the file system
// allocated but never wrote). A complete line that merely fails to verify
// is not a power cut: that is tampering.
func isTornTail(rest []byte) bool {
	i := bytes.IndexByte(rest, '\n')
	if i < 0 {
		return true
	}
	return i == len(rest)-1 && bytes.IndexByte(rest, 0) >= 0
}

// finishOpen repairs a torn tail.
func (l *Log) finishOpen(ld loaded) error {
	if !ld.torn {
		return nil
	}
	sum := sha256.Sum256(ld.rest)
	if err := l.f.Truncate(ld.good); err != nil {
		return fmt.Errorf("audit: repair torn tail: %w", err)
	}
	if err := l.f.Sync(); err != nil {
		return fmt.Errorf("audit: repair torn tail: %w", err)
	}
	reason := fmt.Sprintf("removed %d bytes after line %d (sha256 %s)", len(ld.rest), ld.c.line, hex.EncodeToString(sum[:8]))
	if _, err := l.append(Event{Event: EventTornTailRepaired, Actor: "device", Reason: reason}); err != nil {
		return fmt.Errorf("audit: repair torn tail: %w", err)
	}
	return nil
}

// moveAside renames the log to the first free tampered-N name.
func moveAside(dir string) (string, error) {
	for n := 1; n < 1000; n++ {
		to := filepath.Join(dir, fmt.Sprintf(tamperedName, n))
		if _, err := os.Lstat(to); !errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err := os.Rename(filepath.Join(dir, FileName), to); err != nil {
			return "", fmt.Errorf("audit: recover: move damaged log aside: %w", err)
		}
		if err := syncDir(dir); err != nil {
			return "", fmt.Errorf("audit: recover: %w", err)
		}
		return to, nil
	}
	return "", errors.New("audit: recover: too many damaged logs kept; clear the data partition")
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory: %w", err)
	}
	return nil
}

// Path returns the file the log writes to.
func (l *Log) Path() string { return l.path }

// Record implements Recorder.
func (l *Log) Record(ev Event) error {
	_, err := l.Append(ev)
	return err
}

// Append validates ev, writes it as the next record with a single write
// and fsyncs before returning it. The event names this package reserves
// (AUDIT_TORN_TAIL_REPAIRED, AUDIT_TAMPER_DETECTED) are refused.
//
// After a failed write that could not be undone, or a failed fsync, the
// log refuses further records: the file may no longer match what the log
// believes (reopen it to verify).
func (l *Log) Append(ev Event) (Record, error) {
	if err := ev.Validate(); err != nil {
		return Record{}, err
	}
	if ev.Event == EventTornTailRepaired || ev.Event == EventTamperDetected {
		return Record{}, fmt.Errorf("%w: %s is reserved for the log itself", ErrRefused, ev.Event)
	}
	return l.append(ev)
}

func (l *Log) append(ev Event) (Record, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return Record{}, errors.New("audit: log is closed")
	}
	if l.broken != nil {
		return Record{}, fmt.Errorf("audit: log unusable after an earlier failure, reopen it: %w", l.broken)
	}
	wt, trusted := l.wall.Now()
	r := Record{
		Seq: l.seq + 1, WallTime: wt.UTC(), MonoNanos: int64(l.mono.Now().Sub(l.openedAt)),
		BootID: l.bootID, ClockTrusted: trusted, Event: ev, Prev: l.last,
	}
	line, err := seal(&r)
	if err != nil {
		return Record{}, err
	}
	n, err := l.f.Write(line)
	if err != nil {
		if n > 0 {
			if terr := l.f.Truncate(l.size); terr != nil {
				l.broken = fmt.Errorf("undo partial write: %w", terr)
			}
		}
		return Record{}, fmt.Errorf("audit: write record %d: %w", r.Seq, err)
	}
	l.seq, l.last, l.size = r.Seq, r.Hash, l.size+int64(len(line))
	if err := l.f.Sync(); err != nil {
		l.broken = fmt.Errorf("fsync: %w", err)
		return Record{}, fmt.Errorf("audit: sync record %d: %w", r.Seq, err)
	}
	return r, nil
}

// snapshot returns the verified size of the file now.
func (l *Log) snapshot() (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return 0, errors.New("audit: log is closed")
	}
	return l.size, nil
}

// each re-reads and re-verifies the file up to its current size and calls
// fn for each line.
func (l *Log) each(fn func(line []byte, rec Record) error) error {
	size, err := l.snapshot()
	if err != nil {
		return err
	}
	f, err := os.Open(l.path)
	if err != nil {
		return fmt.Errorf("audit: read log: %w", err)
	}
	defer f.Close()
	c := chain{last: ZeroHash}
	if _, err := scan(io.NewSectionReader(f, 0, size), &c, fn); err != nil {
		return err
	}
	return nil
}

// Tail re-reads and re-verifies the log and returns its last n records,
// oldest first.
func (l *Log) Tail(n int) ([]Record, error) {
	if n <= 0 {
		return nil, nil
	}
	ring := make([]Record, 0, n)
	next := 0
	err := l.each(func(_ []byte, rec Record) error {
		if len(ring) < n {
			ring = append(ring, rec)
			return nil
		}
		ring[next] = rec
		next = (next + 1) % n
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("audit: tail: %w", err)
	}
	return append(ring[next:], ring[:next]...), nil
}

// Export writes the log as JSON Lines, byte for byte as stored, re-verifying
// each line before writing it. If a line no longer verifies (the file was
// changed behind the log's back) Export stops before it and returns the
// error, so the output holds only verified records.
func (l *Log) Export(w io.Writer) error {
	err := l.each(func(line []byte, _ Record) error {
		if _, err := w.Write(line); err != nil {
			return fmt.Errorf("write: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("audit: export: %w", err)
	}
	return nil
}

// Close closes the file. Later Appends fail.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	if err != nil {
		return fmt.Errorf("audit: close: %w", err)
	}
	return nil
}

var _ Recorder = (*Log)(nil)
