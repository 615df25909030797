package auditlog

import (
	"crypto/ecdsa"
	"fmt"

	"github.com/zmonitor/firmware/internal/proto/auditcheckpoint"
)

// Walker holds the rules that link one record to the next, across the
// log's segments:
//
//   - the first record of the log is record 1 (prev all zeros), or the
//     head of a segment whose predecessors are gone;
//   - every other record links to the one before it (seq one more, prev
//     its hash), except a segment's head, which may start after a gap;
//   - a gap before an AUDIT_SEGMENT_STARTED head (rotation) must be
//     explained by a trusted record's Span naming exactly the records that
//     are gone (finish checks this, since the explanation comes later in
//     the log); an AUDIT_TAMPER_DETECTED head explains its own gap (the
//     firmware wrote it when it moved damaged records aside);
//   - a checkpoint names a recent record with the hash the chain has
//     there, and its signature, when the identity key is known, verifies;
//   - a file of the log (not a stream) starts with the log's first record
//     or a segment's head.
type Walker struct {
	// Identity and DeviceID check checkpoints (Identity nil: not checked).
	Identity *ecdsa.PublicKey
	DeviceID string
	// Trusted reports whether a record's Span may explain a gap (nil: every
	// record's): not one that was on the disk, unanchored, when the log
	// opened, which someone with the disk may have added.
	Trusted func(seq uint64) bool
	// StartAnywhere takes the first record as the start, whatever its seq
	// and prev: the firmware's check from the record the TPM anchors.
	StartAnywhere bool

	have bool   // a record was accepted
	seq  uint64 // the last accepted record's
	last string // and its hash

	gaps        []Gap
	spans       []Span
	checkpoints int
	checkpoint  *auditcheckpoint.Checkpoint
	// recent holds the hashes of the last MaxCheckpointLag records, by
	// seq, for the records checkpoints name.
	recent [MaxCheckpointLag]seen
}

// seen is an accepted record's seq and hash.
type seen struct {
	seq  uint64
	hash string
}

// Last returns the last accepted record's seq and hash, and whether there
// was one (0 and ZeroHash if not).
func (w *Walker) Last() (seq uint64, hash string, ok bool) {
	if !w.have {
		return 0, ZeroHash, false
	}
	return w.seq, w.last, true
}

// Gaps returns the places the chain did not link, so far.
func (w *Walker) Gaps() []Gap { return w.gaps }

// Checkpoints returns the number of checkpoints accepted and the last.
func (w *Walker) Checkpoints() (int, *auditcheckpoint.Checkpoint) { return w.checkpoints, w.checkpoint }

// Clone returns a copy of w that accepts records without changing w.
func (w *Walker) Clone() Walker {
	c := *w
	c.gaps = append([]Gap(nil), w.gaps...)
	c.spans = append([]Span(nil), w.spans...)
	return c
}

// Gap is a place where the chain does not link, before a segment head:
// records From to To are missing, the one before them has hash Prev, the
// last of them hash Last (the head's prev).
type Gap struct {
	Front    bool // nothing of the log is before it
	From     uint64
	Prev     string
	To       uint64
	Last     string
	HeadSeq  uint64 // the head after the gap
	HeadLine int
}

// IsHead reports whether ev heads a segment. EventSegmentStarted links to the record before
// it, unless a Span explains the gap; EventTamperDetected may follow a gap
// it explains itself.
func IsHead(ev string) bool { return ev == EventSegmentStarted || ev == EventTamperDetected }

// accept checks r as the next record and takes it; linesBefore is how
// many lines of the stream or file were accepted before it (for messages).
// It returns why r is refused, or "".
func (w *Walker) accept(r Record, firstOfFile bool, linesBefore int) string {
	ev := r.Event.Event
	links := w.have && r.Seq == w.seq+1 && r.Prev == w.last
	switch {
	case !w.have && w.StartAnywhere:
	case !w.have && r.Seq == 1 && r.Prev == ZeroHash:
		// The log's first record.
	case !w.have && ev == EventSegmentStarted:
		w.gaps = append(w.gaps, Gap{Front: true, To: r.Seq - 1, Last: r.Prev, HeadSeq: r.Seq, HeadLine: linesBefore + 1})
	case !w.have && ev == EventTamperDetected && r.Seq >= 1:
		// The head of a segment started by Recover: it continues a chain
		// whose earlier part was moved aside.
	case !w.have && r.Seq != 1:
		return fmt.Sprintf("seq gap: first record has seq %d, want 1", r.Seq)
	case !w.have:
		return "prev of the first record is not zero"
	case firstOfFile && !IsHead(ev):
		return fmt.Sprintf("a segment's first record (seq %d, %s) is not the head of a segment", r.Seq, ev)
	case links:
	case ev == EventTamperDetected:
	case ev == EventSegmentStarted:
		w.gaps = append(w.gaps, Gap{From: w.seq + 1, Prev: w.last, To: r.Seq - 1, Last: r.Prev, HeadSeq: r.Seq, HeadLine: linesBefore + 1})
	case r.Seq != w.seq+1:
		return fmt.Sprintf("seq gap: seq %d after %d", r.Seq, w.seq)
	default:
		return fmt.Sprintf("prev does not match line %d", linesBefore)
	}
	if c := r.Checkpoint; c != nil {
		// The record it names must be the one the chain has there (unless
		// the walk started after it: Open's check from the anchor).
		if got := w.recent[c.Seq%MaxCheckpointLag]; got.seq == c.Seq && got.hash != "" {
			if got.hash != c.Hash {
				return fmt.Sprintf("checkpoint names record %d with another hash than the chain's: the records up to %d were changed", c.Seq, c.Seq)
			}
		} else if !w.StartAnywhere {
			return fmt.Sprintf("checkpoint names record %d, which is not among the %d records before it", c.Seq, MaxCheckpointLag)
		}
		cp := auditcheckpoint.Checkpoint{DeviceID: w.DeviceID, Seq: c.Seq, Hash: c.Hash, Signature: c.Sig}
		if w.Identity != nil {
			if err := cp.Verify(w.Identity); err != nil {
				return fmt.Sprintf("checkpoint of record %d does not verify with the device identity key: %v", c.Seq, err)
			}
		}
		w.checkpoints++
		w.checkpoint = &cp
	}
	if r.Span != nil && (w.Trusted == nil || w.Trusted(r.Seq)) {
		w.spans = append(w.spans, *r.Span)
	}
	w.have, w.seq, w.last = true, r.Seq, r.Hash
	w.recent[r.Seq%MaxCheckpointLag] = seen{r.Seq, r.Hash}
	return ""
}

// Finish checks that every gap is one a trusted record says the firmware
// made. It returns the first that is not, as a *GapError.
func (w *Walker) Finish() error {
	for _, g := range w.gaps {
		if !w.Explained(g) {
			return &GapError{From: g.From, To: g.To, Front: g.Front, HeadSeq: g.HeadSeq, Line: g.HeadLine}
		}
	}
	return nil
}

// Explained reports whether a trusted record's Span says the firmware
// made gap g.
func (w *Walker) Explained(g Gap) bool {
	for _, s := range w.spans {
		if s.To == g.To && s.Last == g.Last && (g.Front || s.From == g.From && s.Prev == g.Prev) {
			return true
		}
	}
	return false
}

// GapError reports records missing from the chain that no trusted record
// of the firmware says it removed: a segment deleted or rewritten by
// someone else. It wraps ErrTampered.
type GapError struct {
	From, To uint64 // the missing records (From is 0 when Front)
	Front    bool   // they were before the oldest record kept
	HeadSeq  uint64 // the segment head after the gap
	Line     int    // its line (in its stream or file)
	File     string // its file, when known
}

func (e *GapError) Error() string {
	where := fmt.Sprintf("the segment head at record %d", e.HeadSeq)
	if e.File != "" {
		where += " (" + e.File + ")"
	}
	if e.Front {
		return fmt.Sprintf("audit: records up to %d, before %s, are gone and no record of the firmware says it removed them", e.To, where)
	}
	return fmt.Sprintf("audit: records %d-%d, before %s, are gone and no record of the firmware says it removed them", e.From, e.To, where)
}

// Unwrap returns ErrTampered.
func (e *GapError) Unwrap() error { return ErrTampered }
