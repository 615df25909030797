package audit

import (
	"crypto"
	"errors"
	"fmt"
	"github.com/zmonitor/firmware/internal/proto/auditlog"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/zmonitor/firmware/internal/base/clock"
	"github.com/zmonitor/firmware/internal/proto/auditcheckpoint"
)

// WallClock gives the wall time and whether it is trusted; *clock.Wall
// implements it.
type WallClock interface {
	Now() (time.Time, bool)
}

// Anchor keeps the place of the log's last record where someone with the
// disk cannot change it: the TPM's NV (drivers/tpm.Store implements it).
type Anchor interface {
	// ReadAuditAnchor returns the anchored record's seq and hash; ok is
	// false when the TPM holds no anchor yet.
	ReadAuditAnchor() (seq uint64, hash [32]byte, ok bool, err error)
	// WriteAuditAnchor anchors record seq with hash, replacing the
	// anchor before it. Each call is one NV write of the TPM.
	WriteAuditAnchor(seq uint64, hash [32]byte) error
}

// Defaults of Opts.
const (
	// DefaultSegmentBytes is the size past which the current segment is
	// closed and a new one started: about 3,000 records.
	DefaultSegmentBytes = 1 << 20
	// DefaultKeepSegments is how many closed segments are kept; the
	// oldest beyond it is deleted (and that is recorded). With the
	// current segment the log stays under 9 MiB.
	DefaultKeepSegments = 8
	// DefaultCheckpointEvery is how many records may pass between two
	// signed checkpoints (one is also written at every open and after
	// every rotation).
	DefaultCheckpointEvery = 1000
	// DefaultAnchorBurst and DefaultAnchorRefill bound the TPM's NV writes
	// for the anchor: a burst of 32, then one per 30 s while records keep
	// coming. See docs/architecture.md, "Audit log tamper evidence".
	DefaultAnchorBurst  = 32
	DefaultAnchorRefill = 30 * time.Second
)

// Opts configure a Log. Wall and Mono are required.
type Opts struct {
	Wall WallClock
	Mono clock.Clock
	// Anchor, if set, anchors the log in the TPM: after records are
	// written (batched, see AnchorBurst) the last one's seq and hash go to
	// the TPM's NV, and Open checks the log against it. Nil: the log is not
	// anchored (a host without a TPM).
	Anchor Anchor
	// Signer, if set, signs checkpoints: the device identity key.
	// DeviceID names the device in them.
	Signer   crypto.Signer
	DeviceID string
	// SegmentBytes, KeepSegments: see the defaults.
	SegmentBytes int64
	KeepSegments int
	// CheckpointEvery: see DefaultCheckpointEvery.
	CheckpointEvery int
	// AnchorBurst NV writes may follow one another at once; after that,
	// one per AnchorRefill. A write carries every record written before
	// it, so a burst of records costs far fewer writes.
	AnchorBurst  int
	AnchorRefill time.Duration
	// ReserveBytes is the disk space the log keeps for itself in a file of
	// zeros (ReserveName), released when a record does not fit (default
	// DefaultReserveBytes).
	ReserveBytes int64
	// Log receives what goes wrong in the background (default: discarded).
	Log *slog.Logger
}

func (o Opts) withDefaults() (Opts, error) {
	if o.Wall == nil || o.Mono == nil {
		return o, errors.New("audit: open: wall and monotonic clocks are required")
	}
	if o.Signer != nil && o.DeviceID == "" {
		return o, errors.New("audit: open: a checkpoint signer needs the device ID")
	}
	if o.SegmentBytes <= 0 {
		o.SegmentBytes = DefaultSegmentBytes
	}
	if o.KeepSegments <= 0 {
		o.KeepSegments = DefaultKeepSegments
	}
	if o.CheckpointEvery <= 0 {
		o.CheckpointEvery = DefaultCheckpointEvery
	}
	if o.AnchorBurst <= 0 {
		o.AnchorBurst = DefaultAnchorBurst
	}
	if o.AnchorRefill <= 0 {
		o.AnchorRefill = DefaultAnchorRefill
	}
	if o.ReserveBytes <= 0 {
		o.ReserveBytes = DefaultReserveBytes
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return o, nil
}

// Log is the open audit log. It is safe for concurrent use.
type Log struct {
	dir      string
	path     string
	o        Opts
	openedAt time.Time
	bootID   string

	// Set by open, read-only afterwards.
	anchorAtOpen *mark
	// untrustedFrom..untrustedTo were on the disk, unanchored, at open:
	// someone with the disk may have added them, so their spans explain
	// no gap.
	untrustedFrom, untrustedTo uint64
	// atOpen is the damage Recover found ("" none).
	atOpen string

	mu     sync.Mutex
	f      *os.File // nil once closed
	seq    uint64   // seq of the last record
	last   string   // hash of the last record
	size   int64    // bytes of verified records in the current segment
	broken error    // set when the file may no longer match seq/size
	// sinceCheckpoint counts records since the last checkpoint;
	// checkpointDue asks the anchorer for one.
	sinceCheckpoint int
	checkpointDue   bool
	checkpoint      *auditcheckpoint.Checkpoint
	anchored        mark // what the TPM holds, as far as this boot wrote it
	anchorWrites    int
	anchorErr       error
	anchorFailRec   bool // AUDIT_ANCHOR_FAILED was recorded this boot
	bgCheck         Check
	// diskFull says why records stopped fitting on the disk ("" they fit):
	// the reserve was released, or could not be made. diskFullDue asks
	// for the AUDIT_DISK_FULL record after the record that released it.
	diskFull    string
	diskFullDue bool
	// write writes a record's line to f ((*os.File).Write; tests fail it).
	write func(f *os.File, b []byte) (int, error)
	// segments counts the segments this open started (rotations and
	// recoveries): a checkpoint is written only in the segment of the
	// record it names.
	segments uint64

	// The anchorer goroutine.
	kick    chan struct{}
	flush   chan chan struct{}
	stop    chan struct{}
	stopped chan struct{}
}

func newLog(dir string, o Opts, bootID string) *Log {
	return &Log{
		dir: dir, path: filepath.Join(dir, FileName), o: o, openedAt: o.Mono.Now(), bootID: bootID, write: (*os.File).Write,
		kick: make(chan struct{}, 1), flush: make(chan chan struct{}), stop: make(chan struct{}), stopped: make(chan struct{}),
	}
}

// closeFile closes the file of a log that failed to open.
func (l *Log) closeFile() {
	if l.f != nil {
		l.f.Close()
		l.f = nil
	}
}

// Path returns the file the log writes to (the current segment).
func (l *Log) Path() string { return l.path }

// Record implements Recorder.
func (l *Log) Record(ev Event) error {
	_, err := l.Append(ev)
	return err
}

// reserved are the event names this package writes itself.
var reserved = map[string]bool{
	auditlog.EventTornTailRepaired: true, auditlog.EventTamperDetected: true, auditlog.EventSegmentStarted: true, auditlog.EventSegmentDeleted: true,
	auditlog.EventCheckpoint: true, auditlog.EventAnchorCreated: true, auditlog.EventAnchorFailed: true, auditlog.EventRecordsUnanchored: true,
	auditlog.EventDiskFull: true,
}

// Append validates ev, writes it as the next record with a single write
// and fsyncs before returning it. The event names this package reserves
// (AUDIT_...) are refused.
//
// After a failed write that could not be undone, or a failed fsync, the
// log refuses further records: the file may no longer match what the log
// believes (reopen it to verify).
func (l *Log) Append(ev Event) (auditlog.Record, error) {
	if err := ev.Validate(); err != nil {
		return auditlog.Record{}, err
	}
	if reserved[ev.Event] {
		return auditlog.Record{}, fmt.Errorf("%w: %s is reserved for the log itself", auditlog.ErrRefused, ev.Event)
	}
	return l.append(ev, nil)
}

func (l *Log) append(ev Event, span *auditlog.Span) (auditlog.Record, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.appendLocked(ev, nil, span)
}

// appendLocked writes one record, rotating the segment first when it is
// full. l.mu is held.
func (l *Log) appendLocked(ev Event, cp *auditlog.Covered, span *auditlog.Span) (auditlog.Record, error) {
	if l.f == nil {
		return auditlog.Record{}, errors.New("audit: log is closed")
	}
	if l.broken != nil {
		return auditlog.Record{}, fmt.Errorf("audit: log unusable after an earlier failure, reopen it: %w", l.broken)
	}
	r, line, err := l.seal(ev, cp, span)
	if err != nil {
		return auditlog.Record{}, err
	}
	if l.size > 0 && l.size+int64(len(line)) > l.o.SegmentBytes && cp == nil {
		if err := l.rotateLocked(); err != nil {
			return auditlog.Record{}, err
		}
		if r, line, err = l.seal(ev, cp, span); err != nil {
			return auditlog.Record{}, err
		}
	}
	if err := l.writeLocked(r, line); err != nil {
		return auditlog.Record{}, err
	}
	if l.diskFullDue {
		l.diskFullDue = false
		ev := Event{Event: auditlog.EventDiskFull, Actor: "device", Reason: Sanitize(l.diskFull)}
		if dr, dline, err := l.seal(ev, nil, nil); err == nil {
			if err := l.writeLocked(dr, dline); err != nil {
				l.o.Log.Error("audit: record that the disk is full", "err", err)
			}
		}
	}
	if cp == nil {
		l.sinceCheckpoint++
		if l.sinceCheckpoint >= l.o.CheckpointEvery {
			l.checkpointDue = true
		}
	}
	l.poke()
	return r, nil
}

// seal makes the next record of ev.
func (l *Log) seal(ev Event, cp *auditlog.Covered, span *auditlog.Span) (auditlog.Record, []byte, error) {
	wt, trusted := l.o.Wall.Now()
	r := auditlog.Record{
		Seq: l.seq + 1, WallTime: wt.UTC(), MonoNanos: int64(l.o.Mono.Now().Sub(l.openedAt)),
		BootID: l.bootID, ClockTrusted: trusted, Event: ev, Checkpoint: cp, Span: span, Prev: l.last,
	}
	line, err := auditlog.Seal(&r)
	return r, line, err
}

// writeLocked appends line (record r) to the current segment and fsyncs.
// A line that does not fit on the disk (ENOSPC) releases the reserve and
// is written again; the AUDIT_DISK_FULL record follows it (appendLocked).
func (l *Log) writeLocked(r auditlog.Record, line []byte) error {
	n, err := l.write(l.f, line)
	if err != nil && errors.Is(err, syscall.ENOSPC) && l.releaseReserveLocked() {
		if n > 0 {
			if terr := l.f.Truncate(l.size); terr != nil {
				l.broken = fmt.Errorf("undo partial write: %w", terr)
				return fmt.Errorf("audit: write record %d: %w", r.Seq, err)
			}
		}
		n, err = l.write(l.f, line)
	}
	if err != nil {
		if n > 0 {
			if terr := l.f.Truncate(l.size); terr != nil {
				l.broken = fmt.Errorf("undo partial write: %w", terr)
			}
		}
		if errors.Is(err, syscall.ENOSPC) {
			l.diskFull = "the disk is full and the audit log's reserve is used up: records are lost until space is freed"
		}
		return fmt.Errorf("audit: write record %d: %w", r.Seq, err)
	}
	l.seq, l.last, l.size = r.Seq, r.Hash, l.size+int64(len(line))
	if err := l.f.Sync(); err != nil {
		l.broken = fmt.Errorf("fsync: %w", err)
		return fmt.Errorf("audit: sync record %d: %w", r.Seq, err)
	}
	return nil
}

// rotateLocked closes the current segment (renamed to the next closed
// name), starts a new one whose head, AUDIT_SEGMENT_STARTED, continues the
// chain, and deletes the oldest closed segments beyond KeepSegments, each
// after recording AUDIT_SEGMENT_DELETED with the span it removes, so that
// a verifier knows the firmware deleted it. l.mu is held.
func (l *Log) rotateLocked() error {
	closed, err := listClosed(l.dir)
	if err != nil {
		return fmt.Errorf("audit: rotate: %w", err)
	}
	name := closedName(nextClosed(closed))
	if err := l.f.Close(); err != nil {
		l.broken = fmt.Errorf("close segment: %w", err)
		return fmt.Errorf("audit: rotate: %w", l.broken)
	}
	l.f = nil
	if err := os.Rename(l.path, filepath.Join(l.dir, name)); err != nil {
		l.broken = fmt.Errorf("close segment: %w", err)
		return fmt.Errorf("audit: rotate: %w", l.broken)
	}
	f, err := os.OpenFile(l.path, os.O_RDWR|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
	if err != nil {
		l.broken = fmt.Errorf("start segment: %w", err)
		return fmt.Errorf("audit: rotate: %w", l.broken)
	}
	l.f, l.size = f, 0
	l.segments++
	if err := syncDir(l.dir); err != nil {
		l.broken = err
		return fmt.Errorf("audit: rotate: %w", err)
	}
	first := uint64(0)
	if r, err := firstRecord(filepath.Join(l.dir, name)); err == nil {
		first = r.Seq
	}
	head := Event{Event: auditlog.EventSegmentStarted, Actor: "device", Reason: fmt.Sprintf("the segment before, records %d-%d, is %s", first, l.seq, name)}
	r, line, err := l.seal(head, nil, nil)
	if err != nil {
		return err
	}
	if err := l.writeLocked(r, line); err != nil {
		return err
	}
	l.checkpointDue = true
	closed = append(closed, closedSegment{n: nextClosed(closed), name: name})
	for len(closed) > l.o.KeepSegments {
		if err := l.deleteOldestLocked(closed[0].name); err != nil {
			l.o.Log.Error("audit: delete the oldest segment", "err", err)
			break
		}
		closed = closed[1:]
	}
	return nil
}

// deleteOldestLocked records that the firmware deletes the oldest closed
// segment name (its first and last records: the span), then deletes it.
// A power cut between the two leaves the file, which the next rotation
// deletes.
func (l *Log) deleteOldestLocked(name string) error {
	path := filepath.Join(l.dir, name)
	first, err := firstRecord(path)
	if err != nil {
		return err
	}
	lastRec, ok, err := lastRecord(path)
	if err != nil || !ok {
		return fmt.Errorf("%s: no last record: %v", name, err)
	}
	span := &auditlog.Span{From: first.Seq, To: lastRec.Seq, Prev: first.Prev, Last: lastRec.Hash}
	ev := Event{Event: auditlog.EventSegmentDeleted, Actor: "device", Reason: fmt.Sprintf("%s, records %d-%d, deleted to keep the log within %d segments", name, first.Seq, lastRec.Seq, l.o.KeepSegments+1)}
	r, line, err := l.seal(ev, nil, span)
	if err != nil {
		return err
	}
	if err := l.writeLocked(r, line); err != nil {
		return err
	}
	if err := os.Remove(path); err != nil {
		return err
	}
	return syncDir(l.dir)
}

// poke wakes the anchorer without waiting.
func (l *Log) poke() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// liveFiles lists the live segments, oldest first, the current last.
func (l *Log) liveFiles() ([]string, error) {
	closed, err := listClosed(l.dir)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(closed)+1)
	for _, c := range closed {
		out = append(out, c.name)
	}
	return append(out, FileName), nil
}

// Tail returns the last n records, oldest first, reading back from the
// end of the log. It re-verifies each record it returns and that each
// links to the one after it (a segment's head may follow a gap, which
// Export and CheckAll judge); records before them are not read.
func (l *Log) Tail(n int) ([]auditlog.Record, error) {
	if n <= 0 {
		return nil, nil
	}
	l.mu.Lock()
	if l.f == nil {
		l.mu.Unlock()
		return nil, errors.New("audit: tail: log is closed")
	}
	size := l.size
	files, err := l.liveFiles()
	l.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("audit: tail: %w", err)
	}
	var out []auditlog.Record // newest first
	for i := len(files) - 1; i >= 0 && len(out) < n; i-- {
		f, err := os.Open(filepath.Join(l.dir, files[i]))
		if err != nil {
			if i < len(files)-1 && errors.Is(err, os.ErrNotExist) {
				break // deleted by a rotation meanwhile
			}
			return nil, fmt.Errorf("audit: tail: %w", err)
		}
		end := size
		if i < len(files)-1 {
			st, err := f.Stat()
			if err != nil {
				f.Close()
				return nil, fmt.Errorf("audit: tail: %w", err)
			}
			end = st.Size()
		}
		err = tailOf(f, end, files[i], n, &out)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("audit: tail: %w", err)
		}
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}

// tailOf adds the records of f (up to end) to out, newest first, until out
// holds n.
func tailOf(f *os.File, end int64, name string, n int, out *[]auditlog.Record) error {
	rl, frag, err := newRevLines(f, end)
	if err != nil {
		return err
	}
	if len(frag) > 0 {
		return &auditlog.LineError{File: name, Line: lineNumberAt(f, end-int64(len(frag))) + 1, Reason: "no newline at the end (torn)"}
	}
	for len(*out) < n {
		line, off, err := rl.prev()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		r, why := auditlog.ParseLine(line[:len(line)-1])
		if why == "" && len(*out) > 0 {
			next := (*out)[len(*out)-1]
			if !auditlog.IsHead(next.Event.Event) && (next.Seq != r.Seq+1 || next.Prev != r.Hash) {
				why = fmt.Sprintf("record %d does not link to record %d after it", r.Seq, next.Seq)
			}
		}
		if why != "" {
			return &auditlog.LineError{File: name, Line: lineNumberAt(f, off) + 1, Reason: why}
		}
		*out = append(*out, r)
	}
	return nil
}

// Export writes the log as JSON Lines: its live segments, oldest first,
// byte for byte as stored, re-verifying each line (and the chain across
// the segments) before writing it. If a line no longer verifies (a file
// was changed behind the log's back) Export stops before it and returns
// the error, so the output holds only verified records. VerifyExport
// checks the result.
func (l *Log) Export(w io.Writer) error {
	l.mu.Lock()
	if l.f == nil {
		l.mu.Unlock()
		return errors.New("audit: export: log is closed")
	}
	size := l.size
	files, err := l.liveFiles()
	l.mu.Unlock()
	if err != nil {
		return fmt.Errorf("audit: export: %w", err)
	}
	c := auditlog.Chain{Walker: l.walker()}
	for i, name := range files {
		f, err := os.Open(filepath.Join(l.dir, name))
		if err != nil {
			return fmt.Errorf("audit: export: %w", err)
		}
		end := size
		if i < len(files)-1 {
			st, err := f.Stat()
			if err != nil {
				f.Close()
				return fmt.Errorf("audit: export: %w", err)
			}
			end = st.Size()
		}
		c.Line = 0
		_, err = auditlog.Scan(io.NewSectionReader(f, 0, end), &c, true, func(line []byte, _ auditlog.Record) error {
			if _, err := w.Write(line); err != nil {
				return fmt.Errorf("write: %w", err)
			}
			return nil
		})
		f.Close()
		var le *auditlog.LineError
		if errors.As(err, &le) {
			le.File = name
		}
		if err != nil {
			return fmt.Errorf("audit: export: %w", err)
		}
	}
	return nil
}

// walker is the walker this log's checks use: checkpoints verified with the
// signer's key, spans trusted unless the records were unanchored at open.
func (l *Log) walker() auditlog.Walker {
	w := auditlog.Walker{DeviceID: l.o.DeviceID, Trusted: l.trusted}
	if l.o.Signer != nil {
		w.Identity = identityKey(l.o.Signer)
	}
	return w
}

// trusted reports whether record seq may explain a gap: not one that was
// on the disk, unanchored, when the log opened.
func (l *Log) trusted(seq uint64) bool {
	return l.untrustedTo == 0 || seq < l.untrustedFrom || seq > l.untrustedTo
}

// Close anchors the last record (whatever the batching), stops the
// background work and closes the file. Later Appends fail.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.f == nil {
		l.mu.Unlock()
		return nil
	}
	l.mu.Unlock()
	l.halt()
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
