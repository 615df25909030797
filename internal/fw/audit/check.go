package audit

import (
	"context"
	"errors"
	"fmt"
	"github.com/zmonitor/firmware/internal/proto/auditlog"
	"io"
	"os"
	"path/filepath"
	"time"
)

// CheckState is where the background check of the whole log is.
type CheckState int

// Check states.
const (
	CheckPending CheckState = iota // not started
	CheckRunning                   // reading the segments
	CheckPassed                    // every record verified
	CheckDamage                    // damage found, recorded and moved aside
	CheckFailed                    // the check itself could not run (Err)
)

func (s CheckState) String() string {
	switch s {
	case CheckPending:
		return "PENDING"
	case CheckRunning:
		return "RUNNING"
	case CheckPassed:
		return "PASSED"
	case CheckDamage:
		return "DAMAGE_FOUND"
	case CheckFailed:
		return "FAILED"
	}
	return fmt.Sprintf("CHECK(%d)", int(s))
}

// Check is the background check's result.
type Check struct {
	State    CheckState
	Records  int      // records verified
	Segments int      // files read
	Findings []string // what was found (each also an AUDIT_TAMPER_DETECTED record)
	Took     time.Duration
	Err      error
}

// damaged is a segment whose records do not verify.
type damaged struct {
	name   string
	info   os.FileInfo
	err    error
	before mark // the last good record before it
}

// CheckAll verifies the whole log as it was when it opened: every closed
// segment and the current one, each line, the chain across segments (a
// gap only where the firmware recorded that it removed the records), and
// every checkpoint's signature with the signer's key. Open checks only
// the records from the one the TPM anchors; the device runs this in the
// background once it is up, so that a long log does not hold the boot.
//
// What it finds is recorded as AUDIT_TAMPER_DETECTED: a segment that does
// not verify is moved aside as security_audit_log.tampered-N.jsonl (the
// current one after it is closed) with a span naming its records, and a
// gap nothing explains is recorded with a span naming it, so that the
// next check does not report the same damage again.
func (l *Log) CheckAll(ctx context.Context) Check {
	start := l.o.Mono.Now()
	l.mu.Lock()
	if l.f == nil {
		l.mu.Unlock()
		return Check{State: CheckFailed, Err: errors.New("audit: check: log is closed")}
	}
	l.bgCheck = Check{State: CheckRunning}
	size := l.size
	files, err := l.liveFiles()
	l.mu.Unlock()
	res := Check{State: CheckRunning}
	if err == nil {
		res, err = l.walkAll(ctx, files, size)
	}
	if err == nil {
		err = ctx.Err()
	}
	res.Took = l.o.Mono.Now().Sub(start)
	if err != nil {
		res.State, res.Err = CheckFailed, err
	}
	l.mu.Lock()
	l.bgCheck = res
	l.mu.Unlock()
	return res
}

// walkAll reads the files, then records and acts on what it found.
func (l *Log) walkAll(ctx context.Context, files []string, currentSize int64) (Check, error) {
	res := Check{State: CheckPassed}
	w := l.walker()
	var bad []damaged
	for i, name := range files {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		f, err := os.Open(filepath.Join(l.dir, name))
		if err != nil {
			if errors.Is(err, os.ErrNotExist) && i < len(files)-1 {
				continue // deleted by a rotation meanwhile
			}
			return res, fmt.Errorf("audit: check: %w", err)
		}
		info, err := f.Stat()
		if err != nil {
			f.Close()
			return res, fmt.Errorf("audit: check: %w", err)
		}
		end := info.Size()
		if i == len(files)-1 {
			end = min(end, currentSize)
		}
		c := auditlog.Chain{Walker: w.Clone()}
		_, err = auditlog.Scan(io.NewSectionReader(f, 0, end), &c, true, func([]byte, auditlog.Record) error { return nil })
		f.Close()
		res.Segments++
		var le *auditlog.LineError
		switch {
		case errors.As(err, &le):
			le.File = name
			bad = append(bad, damaged{name: name, info: info, err: le, before: lastMark(&w)})
		case err != nil:
			return res, fmt.Errorf("audit: check %s: %w", name, err)
		default:
			w = c.Walker
			res.Records += c.Line
		}
	}
	// Gaps right after a damaged segment are the ones moving it aside
	// explains; the others are findings of their own.
	var gapFindings []auditlog.Gap
	for _, g := range w.Gaps() {
		if w.Explained(g) || afterDamage(g, bad) {
			continue
		}
		gapFindings = append(gapFindings, g)
	}
	if len(bad) == 0 && len(gapFindings) == 0 {
		return res, nil
	}
	res.State = CheckDamage
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return res, errors.New("audit: check: log closed before the findings were recorded")
	}
	for _, d := range bad {
		finding, err := l.moveDamagedLocked(d, w.Gaps())
		if err != nil {
			return res, err
		}
		res.Findings = append(res.Findings, finding)
	}
	for _, g := range gapFindings {
		ge := &auditlog.GapError{From: g.From, To: g.To, Front: g.Front, HeadSeq: g.HeadSeq}
		span := &auditlog.Span{From: g.From, To: g.To, Prev: g.Prev, Last: g.Last}
		if g.Front {
			span.From, span.Prev = 1, ""
		}
		if span.From > span.To {
			span = nil
		}
		finding := trimPrefix(ge.Error())
		if _, err := l.appendLocked(Event{Event: auditlog.EventTamperDetected, Actor: "device", Reason: Sanitize(finding)}, nil, span); err != nil {
			return res, err
		}
		res.Findings = append(res.Findings, finding)
	}
	return res, nil
}

// afterDamage reports whether g is the gap a damaged segment leaves: the
// chain's last good record before it is where g starts.
func afterDamage(g auditlog.Gap, bad []damaged) bool {
	for _, d := range bad {
		if g.Front && d.before.seq == 0 || !g.Front && g.From == d.before.seq+1 && g.Prev == d.before.hash {
			return true
		}
	}
	return false
}

// moveDamagedLocked moves a damaged segment aside (closing the current
// segment first if it is the one) and records AUDIT_TAMPER_DETECTED with
// the span that leaves the live log. l.mu is held.
func (l *Log) moveDamagedLocked(d damaged, gaps []auditlog.Gap) (string, error) {
	name, ok := l.findFileLocked(d.info)
	if !ok {
		return fmt.Sprintf("%v; the segment was deleted by a rotation since", trimPrefix(d.err.Error())), nil
	}
	// The span: from the last good record before the segment to the last
	// record before the segment head that follows it.
	var span *auditlog.Span
	if name == FileName {
		if err := l.rotateLocked(); err != nil {
			return "", err
		}
		if n, ok := l.findFileLocked(d.info); ok {
			name = n
		}
		// The new head links to the damaged segment's last record.
		if r, ok, err := lastRecordBefore(l); err == nil && ok {
			span = &auditlog.Span{From: d.before.seq + 1, To: r.seq, Prev: d.before.hash, Last: r.hash}
		}
	} else {
		for _, g := range gaps {
			if g.Front && d.before.seq == 0 || !g.Front && g.From == d.before.seq+1 && g.Prev == d.before.hash {
				span = &auditlog.Span{From: d.before.seq + 1, To: g.To, Prev: d.before.hash, Last: g.Last}
				break
			}
		}
	}
	if span != nil && d.before.seq == 0 {
		span.Prev = auditlog.ZeroHash
	}
	if span != nil && span.From > span.To {
		span = nil
	}
	kept, err := moveAside(l.dir, name)
	if err != nil {
		return "", err
	}
	finding := fmt.Sprintf("%s; the segment was moved aside as %s", trimPrefix(d.err.Error()), kept)
	if _, err := l.appendLocked(Event{Event: auditlog.EventTamperDetected, Actor: "device", Reason: Sanitize(finding)}, nil, span); err != nil {
		return "", err
	}
	return finding, nil
}

// lastRecordBefore is the record the current segment's head links to:
// after a rotation, the head's prev.
func lastRecordBefore(l *Log) (mark, bool, error) {
	r, err := firstRecord(l.path)
	if err != nil {
		return mark{}, false, err
	}
	return mark{r.Seq - 1, r.Prev}, true, nil
}

// findFileLocked returns the live segment file that is info's file now
// (a rotation may have renamed it).
func (l *Log) findFileLocked(info os.FileInfo) (string, bool) {
	files, err := l.liveFiles()
	if err != nil {
		return "", false
	}
	for _, n := range files {
		st, err := os.Stat(filepath.Join(l.dir, n))
		if err == nil && os.SameFile(st, info) {
			return n, true
		}
	}
	return "", false
}

// lastMark is the last record w accepted (zeroMark: none).
func lastMark(w *auditlog.Walker) mark {
	seq, hash, _ := w.Last()
	return mark{seq, hash}
}
