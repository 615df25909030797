package audit

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// Record is one line of the log.
type Record struct {
	Seq          uint64    // 1, 2, 3, ... without gaps
	WallTime     time.Time // UTC wall time when written
	MonoNanos    int64     // monotonic nanoseconds since Open, within BootID
	BootID       string    // random per Open (32 hex characters)
	ClockTrusted bool      // whether WallTime was trusted (clock.Wall)
	Event                  // what happened
	Prev         string    // hex SHA-256 of the previous record (zeros first)
	Hash         string    // hex SHA-256 of this record's line without "hash"
}

// ZeroHash is the prev of the first record.
const ZeroHash = "0000000000000000000000000000000000000000000000000000000000000000"

// MaxLineBytes bounds one line (the field limits keep real lines far below).
const MaxLineBytes = 16 << 10

// ErrTampered is wrapped by every verification failure: a line that is not
// what this package wrote, in the place it wrote it.
var ErrTampered = errors.New("audit: log does not verify")

// LineError reports the first line (1-based) that does not verify. It
// wraps ErrTampered.
type LineError struct {
	Line   int
	Reason string
}

func (e *LineError) Error() string { return fmt.Sprintf("audit: line %d: %s", e.Line, e.Reason) }

// Unwrap returns ErrTampered.
func (e *LineError) Unwrap() error { return ErrTampered }

// wire is the on-disk form. Field order is the canonical order.
type wire struct {
	Seq          uint64 `json:"seq"`
	WallTime     string `json:"wallTime"`
	MonoNanos    int64  `json:"monoNanos"`
	BootID       string `json:"bootId"`
	ClockTrusted bool   `json:"clockTrusted"`
	Event        string `json:"event"`
	From         string `json:"from,omitempty"`
	To           string `json:"to,omitempty"`
	Code         string `json:"code,omitempty"`
	Reason       string `json:"reason,omitempty"`
	Actor        string `json:"actor,omitempty"`
	Prev         string `json:"prev"`
	Hash         string `json:"hash,omitempty"`
}

func toWire(r Record) wire {
	return wire{
		Seq: r.Seq, WallTime: r.WallTime.UTC().Format(time.RFC3339Nano), MonoNanos: r.MonoNanos,
		BootID: r.BootID, ClockTrusted: r.ClockTrusted,
		Event: r.Event.Event, From: r.From, To: r.To, Code: r.Code, Reason: r.Reason, Actor: r.Actor,
		Prev: r.Prev, Hash: r.Hash,
	}
}

// seal fills r.Hash and returns the line to write, newline included.
func seal(r *Record) ([]byte, error) {
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

// parseLine decodes one line (without its newline) and checks that it is
// exactly in canonical form and that its hash is right. It does not check
// its place in the chain.
func parseLine(line []byte) (Record, string) {
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
	r := Record{
		Seq: w.Seq, WallTime: wt, MonoNanos: w.MonoNanos, BootID: w.BootID, ClockTrusted: w.ClockTrusted,
		Event: Event{Event: w.Event, From: w.From, To: w.To, Code: w.Code, Reason: w.Reason, Actor: w.Actor},
		Prev:  w.Prev, Hash: w.Hash,
	}
	// The line is canonical, so it ends with `,"hash":"<64 hex>"}` and
	// the bytes before that plus "}" are exactly what seal hashed.
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

// chain checks lines one after the other.
type chain struct {
	line int    // lines accepted so far
	seq  uint64 // seq of the last accepted record
	last string // hash of the last accepted record
}

// next checks line (without newline) as the next line of the chain and
// accepts it.
func (c *chain) next(line []byte) (Record, *LineError) {
	n := c.line + 1
	r, why := parseLine(line)
	if why != "" {
		return Record{}, &LineError{Line: n, Reason: why}
	}
	switch {
	case c.line == 0 && r.Event.Event == EventTamperDetected && r.Seq >= 1:
		// The head of a segment started by Recover: it continues a chain
		// whose earlier part was moved aside, so seq and prev are taken
		// as they are.
	case c.line == 0 && r.Seq != 1:
		return Record{}, &LineError{Line: n, Reason: fmt.Sprintf("seq gap: first record has seq %d, want 1", r.Seq)}
	case c.line == 0 && r.Prev != ZeroHash:
		return Record{}, &LineError{Line: n, Reason: "prev of the first record is not zero"}
	case c.line > 0 && r.Seq != c.seq+1:
		return Record{}, &LineError{Line: n, Reason: fmt.Sprintf("seq gap: seq %d after %d", r.Seq, c.seq)}
	case c.line > 0 && r.Prev != c.last:
		return Record{}, &LineError{Line: n, Reason: fmt.Sprintf("prev does not match line %d", c.line)}
	}
	c.line, c.seq, c.last = n, r.Seq, r.Hash
	return r, nil
}

// Verify reads an exported log (or the file itself) and checks every line
// and the chain. It returns the number of records and the hash of the last
// one (ZeroHash for an empty log), which a verifier should remember and
// compare at the next export: the chain alone cannot show that lines were
// cut off the end. A last line without its newline is an error. Errors
// about the content are *LineError and wrap ErrTampered.
func Verify(r io.Reader) (count int, lastHash string, err error) {
	var c chain
	c.last = ZeroHash
	_, err = scan(r, &c, func([]byte, Record) error { return nil })
	return c.line, c.last, err
}

// scan feeds the lines of r to c and each accepted line (newline included)
// and its record to fn. It returns the number of bytes accepted.
func scan(r io.Reader, c *chain, fn func(line []byte, rec Record) error) (int64, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var done int64
	for {
		line, err := readLine(br)
		if len(line) > 0 {
			if line[len(line)-1] != '\n' {
				if len(line) > MaxLineBytes {
					return done, &LineError{Line: c.line + 1, Reason: fmt.Sprintf("longer than %d bytes", MaxLineBytes)}
				}
				return done, &LineError{Line: c.line + 1, Reason: "no newline at the end (torn)"}
			}
			rec, lerr := c.next(line[:len(line)-1])
			if lerr != nil {
				return done, lerr
			}
			if err := fn(line, rec); err != nil {
				return done, err
			}
			done += int64(len(line))
		}
		if err == io.EOF {
			return done, nil
		}
		if err != nil {
			return done, fmt.Errorf("audit: read line %d: %w", c.line+1, err)
		}
	}
}

// readLine reads up to and including '\n', but stops after MaxLineBytes+1
// bytes so that a huge line cannot exhaust memory.
func readLine(br *bufio.Reader) ([]byte, error) {
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
