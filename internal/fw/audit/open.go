package audit

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/zmonitor/firmware/internal/proto/auditlog"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// mark is a record's place in the chain.
type mark struct {
	seq  uint64
	hash string
}

var zeroMark = mark{0, auditlog.ZeroHash}

// AnchorError reports that the log does not reach the record the TPM
// anchors, or holds another record there: records were deleted, or changed
// and the chain recomputed after them. It wraps ErrTampered.
type AnchorError struct {
	Reason string
}

func (e *AnchorError) Error() string { return "audit: " + e.Reason }

// Unwrap returns ErrTampered.
func (e *AnchorError) Unwrap() error { return ErrTampered }

// opened is what checking the log at Open found.
type opened struct {
	closed  []closedSegment
	newFile bool  // the current segment was created by this open
	size    int64 // the current segment's size
	good    int64 // its bytes that verified (up to the end of its last good line)
	last    mark  // the last good record of the log (zeroMark: none)
	lastSet bool
	// bad is the damage found, nil if none: a *LineError, *AnchorError
	// or *GapError. torn is set instead when it is what a power cut leaves.
	bad  error
	torn []byte
	// badFile is the first file the damage is in (index in closed, or
	// len(closed) for the current segment).
	badFile int
	// resume is where the chain goes on after damage: the last record that
	// verified, or the anchored record when the log lost it.
	resume mark
	// anchor is what the TPM anchors (nil: nothing, or no anchor).
	anchor *mark
	// unanchored are the records after the anchored one when the log
	// opened ((anchor.seq, last.seq]).
	unanchoredFrom, unanchoredTo uint64
}

// Open opens (creating if needed) the log in dir and checks it: with an
// anchor, the records from the one the TPM anchors to the end (the rest
// of the log is checked by CheckAll, in the background); without one, the
// whole current segment. A torn last line is repaired and audited. Any
// other damage is returned as an error wrapping ErrTampered (a *LineError
// naming the first bad line, or an *AnchorError when the log does not reach
// the anchored record or holds another one there); the caller should then
// call Recover, keep running and show the damage.
func Open(dir string, o Opts) (*Log, error) { return open(dir, o, false) }

// Recover opens the log like Open, but when it is damaged it moves the
// damaged segment (and any after it) aside as
// security_audit_log.tampered-N.jsonl (N = 1, 2, ...) and starts a new
// segment. The new segment's first record is AUDIT_TAMPER_DETECTED; its seq
// and prev continue from the last record that verified (or the record the
// TPM anchors, when the log lost it), its reason says what was found and
// where the damaged records were kept, and its span names the records that
// left the live log. Verify accepts such a segment.
func Recover(dir string, o Opts) (*Log, error) { return open(dir, o, true) }

func open(dir string, o Opts, recover bool) (*Log, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return nil, fmt.Errorf("audit: open: boot id: %w", err)
	}
	l := newLog(dir, o, hex.EncodeToString(id))
	var anchorErr error
	if o.Anchor != nil {
		seq, h, ok, err := o.Anchor.ReadAuditAnchor()
		switch {
		case err != nil:
			// The TPM's NV cannot be read: the log works unanchored this
			// boot and says so.
			anchorErr = err
			l.o.Anchor = nil
		case ok:
			l.anchorAtOpen = &mark{seq, hex.EncodeToString(h[:])}
		}
	}
	op, err := l.checkAtOpen()
	if err != nil {
		l.closeFile()
		return nil, err
	}
	if op.bad != nil && !recover {
		l.closeFile()
		return nil, fmt.Errorf("audit: open %s: %w", l.path, op.bad)
	}
	if op.bad != nil {
		if err := l.recoverFrom(op); err != nil {
			l.closeFile()
			return nil, fmt.Errorf("audit: recover: %w", err)
		}
	} else if err := l.finishOpen(op); err != nil {
		l.closeFile()
		return nil, err
	}
	if err := l.makeReserve(); err != nil {
		l.closeFile()
		return nil, err
	}
	if l.diskFull != "" {
		// Recorded if it still fits; Status says so either way.
		_, _ = l.append(Event{Event: auditlog.EventDiskFull, Actor: "device", Reason: Sanitize(l.diskFull)}, nil)
	}
	if anchorErr != nil {
		l.anchorErr = anchorErr
		if _, err := l.append(Event{Event: auditlog.EventAnchorFailed, Actor: "device",
			Reason: Sanitize("the TPM anchor could not be read; the log is not anchored until the next boot: " + anchorErr.Error())}, nil); err != nil {
			l.closeFile()
			return nil, err
		}
	}
	l.start()
	return l, nil
}

// checkAtOpen opens the current segment (creating it) and checks what Open
// checks. It sets l.f, l.seq, l.last and l.size to the verified end.
func (l *Log) checkAtOpen() (opened, error) {
	var op opened
	closed, err := listClosed(l.dir)
	if err != nil {
		return op, fmt.Errorf("audit: open: %w", err)
	}
	op.closed = closed
	op.anchor = l.anchorAtOpen
	_, err = os.Stat(l.path)
	op.newFile = errors.Is(err, fs.ErrNotExist)
	f, err := os.OpenFile(l.path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return op, fmt.Errorf("audit: open: %w", err)
	}
	l.f = f
	if op.newFile {
		if err := syncDir(l.dir); err != nil {
			return op, fmt.Errorf("audit: open: %w", err)
		}
	}
	st, err := f.Stat()
	if err != nil {
		return op, fmt.Errorf("audit: open: %w", err)
	}
	op.size = st.Size()
	// The last record of the closed segments: what the current segment's
	// head continues from.
	prevEnd, havePrev := zeroMark, false
	if n := len(closed); n > 0 {
		r, ok, err := lastRecord(filepath.Join(l.dir, closed[n-1].name))
		if err == nil && ok {
			prevEnd, havePrev = mark{r.Seq, r.Hash}, true
		}
	}
	if op.anchor == nil {
		err = l.checkWhole(&op)
	} else {
		err = l.checkFromAnchor(&op, prevEnd)
	}
	if err != nil {
		return op, err
	}
	if op.bad != nil && op.resume.hash == "" {
		// Nothing of the current segment verified: the chain goes on from
		// the closed segments.
		op.resume = prevEnd
	}
	if !op.lastSet && op.bad == nil {
		op.last = prevEnd
		op.lastSet = havePrev
	}
	l.seq, l.last, l.size = op.last.seq, op.last.hash, op.good
	if !op.lastSet {
		l.last = auditlog.ZeroHash
	}
	return op, nil
}

// checkWhole verifies the whole current segment (no anchor: there is no
// trusted place to start from).
func (l *Log) checkWhole(op *opened) error {
	c := auditlog.Chain{}
	good, err := auditlog.Scan(io.NewSectionReader(l.f, 0, op.size), &c, true, func([]byte, auditlog.Record) error { return nil })
	op.good = good
	if seq, hash, ok := c.Last(); ok {
		op.last, op.lastSet = mark{seq, hash}, true
		op.resume = op.last
	}
	var le *auditlog.LineError
	if err != nil && !errors.As(err, &le) {
		return fmt.Errorf("audit: open %s: %w", l.path, err)
	}
	if le != nil {
		rest, rerr := io.ReadAll(io.NewSectionReader(l.f, good, op.size-good))
		if rerr != nil {
			return fmt.Errorf("audit: open %s: %w", l.path, rerr)
		}
		if isTornTail(rest) {
			op.torn = rest
		} else {
			op.bad, op.badFile = le, len(op.closed)
		}
	}
	return nil
}

// checkFromAnchor finds the record the TPM anchors, at the end of the log
// (reading back from its end, in the current segment or, after a rotation
// that was not anchored yet, the closed segments before it), checks that
// it is the record anchored, and verifies the records from it to the end.
// prevEnd is the last record of the closed segments.
func (l *Log) checkFromAnchor(op *opened, prevEnd mark) error {
	a := *op.anchor
	files := make([]string, 0, len(op.closed)+1)
	for _, c := range op.closed {
		files = append(files, filepath.Join(l.dir, c.name))
	}
	files = append(files, l.path)
	// The end of the log: the current segment's last complete line, else
	// the closed segments'.
	lastSeq := prevEnd.seq
	rl, _, err := newRevLines(l.f, op.size)
	if err != nil {
		return fmt.Errorf("audit: open %s: %w", l.path, err)
	}
	if line, _, err := rl.prev(); err == nil {
		if n, ok := seqOf(line); ok {
			lastSeq = n
		}
	}
	if lastSeq < a.seq {
		op.bad = &AnchorError{Reason: fmt.Sprintf("the log ends at record %d, but the TPM anchors record %d: records %d-%d were deleted", lastSeq, a.seq, lastSeq+1, a.seq)}
		op.badFile, op.resume = len(op.closed), a
		op.good = op.size
		return nil
	}
	// Find the anchored line, newest file first.
	fi, off := -1, int64(0)
	for i := len(files) - 1; i >= 0 && fi < 0; i-- {
		f, err := os.Open(files[i])
		if err != nil {
			return fmt.Errorf("audit: open: %w", err)
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return fmt.Errorf("audit: open: %w", err)
		}
		rl, _, err := newRevLines(f, st.Size())
		if err != nil {
			f.Close()
			return fmt.Errorf("audit: open %s: %w", files[i], err)
		}
		for {
			line, o, err := rl.prev()
			if err == io.EOF {
				break
			}
			if err != nil {
				f.Close()
				return fmt.Errorf("audit: open %s: %w", files[i], err)
			}
			n, ok := seqOf(line)
			if ok && n == a.seq {
				fi, off = i, o
				break
			}
			if ok && n < a.seq {
				break
			}
		}
		f.Close()
	}
	if fi < 0 {
		op.bad = &AnchorError{Reason: fmt.Sprintf("record %d, which the TPM anchors, is not in the log: the records around it were deleted or renumbered", a.seq)}
		op.badFile, op.resume = len(op.closed), a
		op.good = op.size
		return nil
	}
	// Verify from the anchored line to the end of the log. The walker
	// takes the anchored record as its start: what is before it is the
	// background check's (CheckAll).
	c := auditlog.Chain{Walker: auditlog.Walker{StartAnywhere: true}}
	anchoredOK := false
	for i := fi; i < len(files); i++ {
		var r io.ReaderAt
		size := op.size
		if i == len(files)-1 {
			r = l.f
		} else {
			f, err := os.Open(files[i])
			if err != nil {
				return fmt.Errorf("audit: open: %w", err)
			}
			defer f.Close()
			st, err := f.Stat()
			if err != nil {
				return fmt.Errorf("audit: open: %w", err)
			}
			r, size = f, st.Size()
		}
		start := int64(0)
		if i == fi {
			start = off
		}
		c.Line = 0
		good, err := auditlog.Scan(io.NewSectionReader(r, start, size-start), &c, i != fi, func(line []byte, rec auditlog.Record) error {
			if !anchoredOK {
				if rec.Hash != a.hash {
					return &AnchorError{Reason: fmt.Sprintf("record %d's hash differs from the one the TPM anchors (%.16s…): the log was changed and its chain recomputed", a.seq, a.hash)}
				}
				anchoredOK = true
			}
			return nil
		})
		var ae *AnchorError
		if errors.As(err, &ae) {
			op.bad, op.badFile, op.resume = ae, len(op.closed), a
			op.good = op.size
			return nil
		}
		if seq, hash, ok := c.Last(); ok {
			op.resume = mark{seq, hash}
		}
		if i == len(files)-1 {
			op.good = start + good
		}
		var le *auditlog.LineError
		if err != nil && !errors.As(err, &le) {
			return fmt.Errorf("audit: open %s: %w", files[i], err)
		}
		if le != nil {
			le.File = filepath.Base(files[i])
			le.Line += lineNumberAt(r, start)
			if i == len(files)-1 {
				rest, rerr := io.ReadAll(io.NewSectionReader(r, start+good, size-start-good))
				if rerr != nil {
					return fmt.Errorf("audit: open %s: %w", files[i], rerr)
				}
				if isTornTail(rest) && anchoredOK {
					op.torn = rest
					break
				}
			}
			op.bad, op.badFile = le, i
			if i < len(files)-1 {
				op.good = 0
			}
			return nil
		}
	}
	seq, hash, ok := c.Last()
	op.last, op.lastSet = mark{seq, hash}, ok
	if op.last.seq > a.seq {
		op.unanchoredFrom, op.unanchoredTo = a.seq+1, op.last.seq
	}
	return nil
}

// lineNumberAt returns how many lines end before offset off.
func lineNumberAt(r io.ReaderAt, off int64) int {
	n := 0
	buf := make([]byte, 64<<10)
	for pos := int64(0); pos < off; {
		m := int64(len(buf))
		if m > off-pos {
			m = off - pos
		}
		k, err := r.ReadAt(buf[:m], pos)
		n += bytes.Count(buf[:k], []byte("\n"))
		if err != nil || k == 0 {
			break
		}
		pos += int64(k)
	}
	return n
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

// finishOpen completes an open that found no damage: a torn tail is cut
// off and audited; a current segment lost in a rotation is started again;
// records on the disk that the TPM did not anchor are named; a log the
// TPM holds no anchor for says so.
func (l *Log) finishOpen(op opened) error {
	if op.torn != nil {
		sum := sha256.Sum256(op.torn)
		if err := l.f.Truncate(op.good); err != nil {
			return fmt.Errorf("audit: repair torn tail: %w", err)
		}
		if err := l.f.Sync(); err != nil {
			return fmt.Errorf("audit: repair torn tail: %w", err)
		}
		reason := fmt.Sprintf("removed %d bytes after line %d (sha256 %s)", len(op.torn), lineNumberAt(l.f, op.good), hex.EncodeToString(sum[:8]))
		if _, err := l.append(Event{Event: auditlog.EventTornTailRepaired, Actor: "device", Reason: reason}, nil); err != nil {
			return fmt.Errorf("audit: repair torn tail: %w", err)
		}
	}
	if l.size == 0 && l.seq > 0 {
		// A rotation renamed the current segment and stopped before it
		// wrote the new one's head: write it now.
		if _, err := l.append(Event{Event: auditlog.EventSegmentStarted, Actor: "device",
			Reason: fmt.Sprintf("continues from record %d of %s", l.seq, op.closed[len(op.closed)-1].name)}, nil); err != nil {
			return err
		}
	}
	if op.unanchoredTo > 0 {
		l.untrustedFrom, l.untrustedTo = op.unanchoredFrom, op.unanchoredTo
		if _, err := l.append(Event{Event: auditlog.EventRecordsUnanchored, Actor: "device",
			Reason: fmt.Sprintf("records %d-%d were on the disk but not anchored in the TPM: a power cut before the anchor was written, or records added by someone with the disk", op.unanchoredFrom, op.unanchoredTo)}, nil); err != nil {
			return err
		}
	}
	if l.o.Anchor != nil && op.anchor == nil && l.seq > 0 {
		if _, err := l.append(Event{Event: auditlog.EventAnchorCreated, Actor: "device",
			Reason: fmt.Sprintf("the TPM held no anchor for this log of %d records: the first boot of a firmware that anchors its log, or the anchor was removed from the TPM", l.seq)}, nil); err != nil {
			return err
		}
	}
	return nil
}

// recoverFrom moves the damaged segments aside and starts a new segment
// whose head, AUDIT_TAMPER_DETECTED, says what was found and continues the
// chain from op.resume.
func (l *Log) recoverFrom(op opened) error {
	if err := l.f.Close(); err != nil {
		return fmt.Errorf("close damaged segment: %w", err)
	}
	l.f = nil
	// The damaged segment and every segment after it leave the live log.
	names := make([]string, 0, len(op.closed)+1)
	for i := op.badFile; i < len(op.closed); i++ {
		names = append(names, op.closed[i].name)
	}
	names = append(names, FileName)
	var kept []string
	for _, n := range names {
		to, err := moveAside(l.dir, n)
		if err != nil {
			return err
		}
		kept = append(kept, to)
	}
	// The record the live log now ends with, before the new head.
	before, haveBefore := zeroMark, false
	if op.badFile > 0 {
		if r, ok, err := lastRecord(filepath.Join(l.dir, op.closed[op.badFile-1].name)); err == nil && ok {
			before, haveBefore = mark{r.Seq, r.Hash}, true
		}
	}
	f, err := os.OpenFile(l.path, os.O_RDWR|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("create new segment: %w", err)
	}
	l.f = f
	l.segments++
	if err := syncDir(l.dir); err != nil {
		return err
	}
	l.seq, l.last, l.size = op.resume.seq, op.resume.hash, 0
	if l.last == "" {
		l.last = auditlog.ZeroHash
	}
	var span *auditlog.Span
	if op.resume.seq > before.seq {
		span = &auditlog.Span{From: before.seq + 1, To: op.resume.seq, Prev: before.hash, Last: op.resume.hash}
		if !haveBefore && before.seq == 0 {
			span.Prev = auditlog.ZeroHash
		}
	}
	what := op.bad.Error()
	reason := fmt.Sprintf("%s; damaged records kept as %s", trimPrefix(what), joinNames(kept))
	if _, err := l.append(Event{Event: auditlog.EventTamperDetected, Actor: "device", Reason: Sanitize(reason)}, span); err != nil {
		return err
	}
	l.atOpen = reason
	return nil
}

func trimPrefix(s string) string { return strings.TrimPrefix(s, "audit: ") }

func joinNames(ns []string) string { return strings.Join(ns, ", ") }
