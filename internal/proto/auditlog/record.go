package auditlog

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/zmonitor/firmware/internal/proto/auditcheckpoint"
)

// Record is one line of the log.
type Record struct {
	Seq          uint64    // 1, 2, 3, ... without gaps (see Span)
	WallTime     time.Time // UTC wall time when written
	MonoNanos    int64     // monotonic nanoseconds since Open, within BootID
	BootID       string    // random per Open (32 hex characters)
	ClockTrusted bool      // whether WallTime was trusted (clock.Wall)
	Event                  // what happened
	// Checkpoint is set on AUDIT_CHECKPOINT only: the device identity
	// key's signature of an earlier record.
	Checkpoint *Covered
	// Span is set on AUDIT_SEGMENT_DELETED and AUDIT_TAMPER_DETECTED
	// records that took records out of the live log: it names them.
	Span *Span
	Prev string // hex SHA-256 of the previous record (zeros first)
	Hash string // hex SHA-256 of this record's line without "hash"
}

// Span names records the firmware took out of the live log (a segment it
// deleted to keep the log within its size, or moved aside as damaged) by
// the records around them: records From to To, the one before them having
// hash Prev ("" when unknown), the last of them hash Last. A verifier
// accepts a gap in the chain only where a trusted record's Span says
// exactly that gap was made by the firmware.
type Span struct {
	From uint64 `json:"from"`
	To   uint64 `json:"to"`
	Prev string `json:"prev"`
	Last string `json:"last"`
}

// Covered is what a checkpoint signs: record Seq of the chain, whose hash
// is Hash; Sig is the device identity key's signature, r‖s in 128 hex
// characters (internal/proto/auditcheckpoint). The record is a recent one
// (at most MaxCheckpointLag records before the checkpoint): the signature
// is made off the log's lock, while records may still be written.
type Covered struct {
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash"`
	Sig  string `json:"sig"`
}

// MaxCheckpointLag bounds how far back a checkpoint's record may be.
const MaxCheckpointLag = 128

// ZeroHash is the prev of the first record.
const ZeroHash = "0000000000000000000000000000000000000000000000000000000000000000"

// MaxLineBytes bounds one line (the field limits keep real lines far below).
const MaxLineBytes = 16 << 10

// ErrTampered is wrapped by every verification failure: a line that is not
// what this package wrote, in the place it wrote it, or a log that does not
// reach the record the TPM anchors.
var ErrTampered = errors.New("audit: log does not verify")

// LineError reports the first line (1-based) that does not verify. It
// wraps ErrTampered. File is the segment's file name when the log has
// several ("" for a stream).
type LineError struct {
	File   string
	Line   int
	Reason string
}

func (e *LineError) Error() string {
	if e.File != "" {
		return fmt.Sprintf("audit: %s line %d: %s", e.File, e.Line, e.Reason)
	}
	return fmt.Sprintf("audit: line %d: %s", e.Line, e.Reason)
}

// Unwrap returns ErrTampered.
func (e *LineError) Unwrap() error { return ErrTampered }

// wire is the on-disk form. Field order is the canonical order.
type wire struct {
	Seq          uint64   `json:"seq"`
	WallTime     string   `json:"wallTime"`
	MonoNanos    int64    `json:"monoNanos"`
	BootID       string   `json:"bootId"`
	ClockTrusted bool     `json:"clockTrusted"`
	Event        string   `json:"event"`
	From         string   `json:"from,omitempty"`
	To           string   `json:"to,omitempty"`
	Code         string   `json:"code,omitempty"`
	Reason       string   `json:"reason,omitempty"`
	Actor        string   `json:"actor,omitempty"`
	Checkpoint   *Covered `json:"checkpoint,omitempty"`
	Span         *Span    `json:"span,omitempty"`
	Prev         string   `json:"prev"`
	Hash         string   `json:"hash,omitempty"`
}

func toWire(r Record) wire {
	return wire{
		Seq: r.Seq, WallTime: r.WallTime.UTC().Format(time.RFC3339Nano), MonoNanos: r.MonoNanos,
		BootID: r.BootID, ClockTrusted: r.ClockTrusted,
		Event: r.Event.Event, From: r.From, To: r.To, Code: r.Code, Reason: r.Reason, Actor: r.Actor,
		Checkpoint: r.Checkpoint, Span: r.Span, Prev: r.Prev, Hash: r.Hash,
	}
}

// Seal fills r.Hash and returns the line to write, newline included.
func Seal(r *Record) ([]byte, error) {
	w := toWire(*r)
	w.Hash = ""
	body, err := json.Marshal(w)
	if err != nil {
		return nil, fmt.Errorf("audit: encode record: %w", err)
	}
	sum := sha256.Sum256(body)
	r.Hash = hex.EncodeToString(sum[:])
	w.Hash = r.Hash
	line, err := json.Marshal(w)
	if err != nil {
		return nil, fmt.Errorf("audit: encode record: %w", err)
	}
	return append(line, '\n'), nil
}

// hashSuffix starts the last member of every line.
const hashSuffix = `,"hash":"`

// ParseLine decodes one line (without its newline) and checks that it is
// exactly in canonical form and that its hash is right. It does not check
// its place in the chain.
func ParseLine(line []byte) (Record, string) {
	if len(line) > MaxLineBytes {
		return Record{}, fmt.Sprintf("longer than %d bytes", MaxLineBytes)
	}
	var w wire
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return Record{}, "not a record: " + err.Error()
	}
	if dec.More() {
		return Record{}, "not a record: data after the JSON object"
	}
	canon, err := json.Marshal(w)
	if err != nil || !bytes.Equal(canon, line) {
		return Record{}, "not in canonical form"
	}
	wt, err := time.Parse(time.RFC3339Nano, w.WallTime)
	if err != nil || wt.UTC().Format(time.RFC3339Nano) != w.WallTime {
		return Record{}, "bad wallTime"
	}
	if !isHex(w.BootID, 16) {
		return Record{}, "bad bootId"
	}
	if !isHex(w.Prev, sha256.Size) {
		return Record{}, "bad prev"
	}
	if !isHex(w.Hash, sha256.Size) {
		return Record{}, "bad hash"
	}
	if w.Event == "" {
		return Record{}, "no event"
	}
	if (w.Checkpoint != nil) != (w.Event == EventCheckpoint) {
		return Record{}, "checkpoint member and event disagree"
	}
	if cp := w.Checkpoint; cp != nil && (cp.Seq >= w.Seq || cp.Seq+MaxCheckpointLag < w.Seq || !isHex(cp.Hash, sha256.Size) || !isHex(cp.Sig, 64)) {
		return Record{}, "bad checkpoint"
	}
	if w.Span != nil {
		sp := w.Span
		if w.Event != EventSegmentDeleted && w.Event != EventTamperDetected {
			return Record{}, "span on a record that removes nothing"
		}
		if sp.From > sp.To || sp.To >= w.Seq || !isHex(sp.Last, sha256.Size) || sp.Prev != "" && !isHex(sp.Prev, sha256.Size) {
			return Record{}, "bad span"
		}
	}
	r := Record{
		Seq: w.Seq, WallTime: wt, MonoNanos: w.MonoNanos, BootID: w.BootID, ClockTrusted: w.ClockTrusted,
		Event:      Event{Event: w.Event, From: w.From, To: w.To, Code: w.Code, Reason: w.Reason, Actor: w.Actor},
		Checkpoint: w.Checkpoint, Span: w.Span, Prev: w.Prev, Hash: w.Hash,
	}
	// The line is canonical, so it ends with `,"hash":"<64 hex>"}` and
	// the bytes before that plus "}" are exactly what Seal hashed.
	body := make([]byte, 0, len(line))
	body = append(body, line[:len(line)-len(hashSuffix)-2*sha256.Size-2]...)
	body = append(body, '}')
	sum := sha256.Sum256(body)
	if hex.EncodeToString(sum[:]) != w.Hash {
		return Record{}, "hash mismatch"
	}
	return r, ""
}

// isHex reports whether s is the lower-case hex encoding of n bytes.
func isHex(s string, n int) bool {
	if len(s) != 2*n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// Chain checks the records of a log one after the other, across its
// segments, in the order they were written (see Walker).
type Chain struct {
	Walker
	Line int // lines accepted so far (of the stream, or of the file)
}

// Next checks line (without newline) as the next line of the chain and
// accepts it. firstOfFile says that the line starts a segment's file.
func (c *Chain) Next(line []byte, firstOfFile bool) (Record, *LineError) {
	n := c.Line + 1
	r, why := ParseLine(line)
	if why == "" {
		why = c.accept(r, firstOfFile, c.Line)
	}
	if why != "" {
		return Record{}, &LineError{Line: n, Reason: why}
	}
	c.Line = n
	return r, nil
}

// Verify reads an exported log (its segments, oldest first, as Export
// writes them; or one file) and checks every line and the chain. It returns
// the number of records and the hash of the last one (ZeroHash for an
// empty log), which a verifier should remember and compare at the next
// export. A gap in the chain is accepted only where a record of the log
// says the firmware made it (a segment deleted or moved aside). A last line
// without its newline is an error. Errors about the content wrap
// ErrTampered. VerifyExport also checks the signed checkpoints.
func Verify(r io.Reader) (count int, lastHash string, err error) {
	s, err := VerifyExport(r, nil, "")
	return s.Records, s.LastHash, err
}

// Summary is what VerifyExport found.
type Summary struct {
	Records  int
	LastHash string
	// Checkpoints is the number of AUDIT_CHECKPOINT records; Checkpoint
	// the last of them (nil if none).
	Checkpoints int
	Checkpoint  *auditcheckpoint.Checkpoint
}

// VerifyExport is Verify, and also checks the signature of every
// checkpoint with identity, the device identity key of deviceID's
// enrollment record (nil: checkpoints are not checked). A checkpoint
// that does not verify means the records before it were changed.
func VerifyExport(r io.Reader, identity *ecdsa.PublicKey, deviceID string) (Summary, error) {
	c := Chain{Walker: Walker{Identity: identity, DeviceID: deviceID}}
	_, err := Scan(r, &c, false, func([]byte, Record) error { return nil })
	if err == nil {
		err = c.Finish()
	}
	_, last, _ := c.Last()
	s := Summary{Records: c.Line, LastHash: last, Checkpoints: c.checkpoints, Checkpoint: c.checkpoint}
	return s, err
}

// Scan feeds the lines of r to c and each accepted line (newline included)
// and its record to fn. fileStart says that r is a segment's file. It
// returns the number of bytes accepted.
func Scan(r io.Reader, c *Chain, fileStart bool, fn func(line []byte, rec Record) error) (int64, error) {
	br := NewLineReader(r)
	var done int64
	first := fileStart
	for {
		line, err := ReadLine(br)
		if len(line) > 0 {
			if line[len(line)-1] != '\n' {
				if len(line) > MaxLineBytes {
					return done, &LineError{Line: c.Line + 1, Reason: fmt.Sprintf("longer than %d bytes", MaxLineBytes)}
				}
				return done, &LineError{Line: c.Line + 1, Reason: "no newline at the end (torn)"}
			}
			rec, lerr := c.Next(line[:len(line)-1], first)
			if lerr != nil {
				return done, lerr
			}
			first = false
			if err := fn(line, rec); err != nil {
				return done, err
			}
			done += int64(len(line))
		}
		if err == io.EOF {
			return done, nil
		}
		if err != nil {
			return done, fmt.Errorf("audit: read line %d: %w", c.Line+1, err)
		}
	}
}

// NewLineReader buffers r for ReadLine.
func NewLineReader(r io.Reader) *bufio.Reader { return bufio.NewReaderSize(r, 64<<10) }

// ReadLine reads up to and including '\n', but stops after MaxLineBytes+1
// bytes so that a huge line cannot exhaust memory.
func ReadLine(br *bufio.Reader) ([]byte, error) {
	var buf []byte
	for {
		frag, err := br.ReadSlice('\n')
		buf = append(buf, frag...)
		if err == bufio.ErrBufferFull {
			if len(buf) > MaxLineBytes {
				return buf, nil
			}
			continue
		}
		return buf, err
	}
}
