package audit

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/zmonitor/firmware/internal/proto/auditlog"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// The files of the log in its directory:
//
//	security_audit_log.jsonl           the current segment, appended to
//	security_audit_log.000001.jsonl    closed segments, oldest first
//	security_audit_log.tampered-N.jsonl   damaged records moved aside (kept)
const (
	// FileName is the current segment's file name in the data directory.
	FileName = "security_audit_log.jsonl"

	segmentPrefix = "security_audit_log."
	segmentSuffix = ".jsonl"
	tamperedName  = "security_audit_log.tampered-%d.jsonl"
)

// closedName is the name of closed segment n.
func closedName(n int) string { return fmt.Sprintf("%s%06d%s", segmentPrefix, n, segmentSuffix) }

// closedSegment is a closed segment's file.
type closedSegment struct {
	n    int
	name string
}

// listClosed returns the closed segments in dir, oldest first.
func listClosed(dir string) ([]closedSegment, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list segments: %w", err)
	}
	var out []closedSegment
	for _, e := range ents {
		name := e.Name()
		mid, ok := strings.CutPrefix(name, segmentPrefix)
		if !ok {
			continue
		}
		mid, ok = strings.CutSuffix(mid, segmentSuffix)
		if !ok || len(mid) != 6 {
			continue
		}
		n, err := strconv.Atoi(mid)
		if err != nil || n <= 0 || !e.Type().IsRegular() {
			continue
		}
		out = append(out, closedSegment{n: n, name: name})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].n < out[j].n })
	return out, nil
}

// nextClosed is the number the current segment gets when it is closed.
func nextClosed(closed []closedSegment) int {
	if len(closed) == 0 {
		return 1
	}
	return closed[len(closed)-1].n + 1
}

// moveAside renames the file name in dir to the first free tampered-N
// name and returns that name.
func moveAside(dir, name string) (string, error) {
	for n := 1; n < 1000; n++ {
		to := fmt.Sprintf(tamperedName, n)
		if _, err := os.Lstat(filepath.Join(dir, to)); !errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err := os.Rename(filepath.Join(dir, name), filepath.Join(dir, to)); err != nil {
			return "", fmt.Errorf("move damaged records aside: %w", err)
		}
		if err := syncDir(dir); err != nil {
			return "", err
		}
		return to, nil
	}
	return "", errors.New("move damaged records aside: too many damaged logs kept; clear the data partition")
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

// revLines reads a file's complete lines backwards, from its end.
type revLines struct {
	r   io.ReaderAt
	pos int64  // bytes before buf
	buf []byte // bytes [pos, pos+len(buf)) not handed out yet
}

const revChunk = 64 << 10

// newRevLines starts at size. frag is what follows the last newline: a
// line cut short by a power cut, or nothing.
func newRevLines(r io.ReaderAt, size int64) (rl *revLines, frag []byte, err error) {
	rl = &revLines{r: r, pos: size}
	for {
		if i := bytes.LastIndexByte(rl.buf, '\n'); i >= 0 {
			frag = bytes.Clone(rl.buf[i+1:])
			rl.buf = rl.buf[:i+1]
			return rl, frag, nil
		}
		if rl.pos == 0 || len(rl.buf) > auditlog.MaxLineBytes+1 {
			frag = rl.buf
			rl.buf = nil
			return rl, frag, nil
		}
		if err := rl.more(); err != nil {
			return nil, nil, err
		}
	}
}

// more prepends the chunk before buf.
func (rl *revLines) more() error {
	n := int64(revChunk)
	if n > rl.pos {
		n = rl.pos
	}
	chunk := make([]byte, n, int(n)+len(rl.buf))
	if _, err := rl.r.ReadAt(chunk, rl.pos-n); err != nil {
		return fmt.Errorf("read: %w", err)
	}
	rl.buf = append(chunk, rl.buf...)
	rl.pos -= n
	return nil
}

// prev returns the line before the ones handed out (newline included) and
// its offset, or io.EOF at the start of the file. A line longer than
// MaxLineBytes is returned cut to its last MaxLineBytes+1 bytes (and fails
// to parse).
func (rl *revLines) prev() ([]byte, int64, error) {
	if len(rl.buf) == 0 {
		if rl.pos == 0 {
			return nil, 0, io.EOF
		}
		if err := rl.more(); err != nil {
			return nil, 0, err
		}
	}
	for {
		i := bytes.LastIndexByte(rl.buf[:len(rl.buf)-1], '\n')
		if i >= 0 || rl.pos == 0 || len(rl.buf) > auditlog.MaxLineBytes+1 {
			line := rl.buf[i+1:]
			off := rl.pos + int64(i+1)
			rl.buf = rl.buf[:i+1]
			return line, off, nil
		}
		if err := rl.more(); err != nil {
			return nil, 0, err
		}
	}
}

// seqOf reads the seq at the start of a line in the canonical form
// ({"seq":N,...) without parsing the rest; ok is false for anything else.
func seqOf(line []byte) (uint64, bool) {
	rest, ok := bytes.CutPrefix(line, []byte(`{"seq":`))
	if !ok {
		return 0, false
	}
	i := bytes.IndexByte(rest, ',')
	if i <= 0 || i > 20 {
		return 0, false
	}
	n, err := strconv.ParseUint(string(rest[:i]), 10, 64)
	if err != nil {
		return 0, false
	}
	return n, true
}

// lastRecord parses the last complete line of the file at path; ok is
// false for an empty file.
func lastRecord(path string) (rec auditlog.Record, ok bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return auditlog.Record{}, false, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return auditlog.Record{}, false, err
	}
	rl, _, err := newRevLines(f, st.Size())
	if err != nil {
		return auditlog.Record{}, false, err
	}
	line, _, err := rl.prev()
	if err == io.EOF {
		return auditlog.Record{}, false, nil
	}
	if err != nil {
		return auditlog.Record{}, false, err
	}
	r, why := auditlog.ParseLine(bytes.TrimSuffix(line, []byte("\n")))
	if why != "" {
		return auditlog.Record{}, false, fmt.Errorf("%s: last line: %s", filepath.Base(path), why)
	}
	return r, true, nil
}

// firstRecord parses the first line of the file at path.
func firstRecord(path string) (auditlog.Record, error) {
	f, err := os.Open(path)
	if err != nil {
		return auditlog.Record{}, err
	}
	defer f.Close()
	line, err := auditlog.ReadLine(auditlog.NewLineReader(f))
	if err != nil && err != io.EOF {
		return auditlog.Record{}, err
	}
	r, why := auditlog.ParseLine(bytes.TrimSuffix(line, []byte("\n")))
	if why != "" {
		return auditlog.Record{}, fmt.Errorf("%s: first line: %s", filepath.Base(path), why)
	}
	return r, nil
}
