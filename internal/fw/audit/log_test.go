package audit_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zmonitor/firmware/internal/base/clock"
	"github.com/zmonitor/firmware/internal/base/clock/clocktest"
	"github.com/zmonitor/firmware/internal/fw/audit"
	"github.com/zmonitor/firmware/internal/proto/auditlog"
)

var build = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

type env struct {
	dir  string
	mono *clocktest.Fake
	wall *clock.Wall
}

func newEnv(t testing.TB) *env {
	fc := clocktest.New(build.Add(time.Hour))
	return &env{dir: t.TempDir(), mono: fc, wall: clock.NewWall(fc, build, nil)}
}

func (e *env) open(t testing.TB) *audit.Log {
	t.Helper()
	l, err := audit.Open(e.dir, audit.Opts{Wall: e.wall, Mono: e.mono})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func (e *env) path() string { return filepath.Join(e.dir, audit.FileName) }

func (e *env) read(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile(e.path())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (e *env) write(t testing.TB, b []byte) {
	t.Helper()
	if err := os.WriteFile(e.path(), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// fill writes n records and closes the log.
func (e *env) fill(t testing.TB, n int) {
	t.Helper()
	l := e.open(t)
	for i := 0; i < n; i++ {
		e.mono.Advance(time.Second)
		ev := audit.Event{Event: "STATE_CHANGED", From: "UNPROVISIONED", To: "READY_TO_PAIR", Actor: "button", Reason: fmt.Sprintf("press %d <&>", i)}
		if err := l.Record(ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// lines splits b after each newline; every element keeps its newline.
func lines(b []byte) [][]byte {
	ls := bytes.SplitAfter(b, []byte("\n"))
	if len(ls[len(ls)-1]) == 0 {
		ls = ls[:len(ls)-1]
	}
	return ls
}

// lineOf returns the 1-based line holding byte i.
func lineOf(b []byte, i int) int { return bytes.Count(b[:i], []byte("\n")) + 1 }

func wantLineError(t *testing.T, err error, line int, what string) {
	t.Helper()
	var le *auditlog.LineError
	if !errors.As(err, &le) || !errors.Is(err, audit.ErrTampered) {
		t.Fatalf("%s: got %v, want a *LineError wrapping ErrTampered", what, err)
	}
	if le.Line != line {
		t.Fatalf("%s: error %q names line %d, want %d", what, err, le.Line, line)
	}
}

func TestChainVerifies(t *testing.T) {
	e := newEnv(t)
	l := e.open(t)
	var recs []auditlog.Record
	for i, ev := range []audit.Event{
		{Event: "BOOT", To: "UNPROVISIONED", Reason: "firmware 1.2.3"},
		{Event: "BUTTON_PRESSED", Actor: "button"},
		{Event: "PAIRING_REFUSED", Code: "PAIRING_CODE_MISMATCH", Actor: "central-station:CS 01", Reason: "wrong code, 4 attempts left"},
	} {
		e.mono.Advance(time.Duration(i+1) * time.Millisecond)
		r, err := l.Append(ev)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	for i, r := range recs {
		if r.Seq != uint64(i+1) {
			t.Errorf("record %d: seq %d", i, r.Seq)
		}
		if !r.ClockTrusted || !r.WallTime.Equal(e.mono.Now().Add(-time.Duration(6-[]int{1, 3, 6}[i])*time.Millisecond)) {
			t.Errorf("record %d: wall time %v trusted %v", i, r.WallTime, r.ClockTrusted)
		}
		if want := int64([]int{1, 3, 6}[i]) * int64(time.Millisecond); r.MonoNanos != want {
			t.Errorf("record %d: monoNanos %d, want %d", i, r.MonoNanos, want)
		}
		if i == 0 && r.Prev != auditlog.ZeroHash || i > 0 && r.Prev != recs[i-1].Hash {
			t.Errorf("record %d: prev %s", i, r.Prev)
		}
		if r.BootID != recs[0].BootID || len(r.BootID) != 32 {
			t.Errorf("record %d: boot id %q", i, r.BootID)
		}
	}
	data := e.read(t)
	n, last, err := auditlog.Verify(bytes.NewReader(data))
	if err != nil || n != 3 || last != recs[2].Hash {
		t.Fatalf("Verify = %d, %s, %v; want 3, %s, nil", n, last, err, recs[2].Hash)
	}
	if !bytes.HasPrefix(data, []byte(`{"seq":1,"wallTime":"2026-11-01T01:00:00.001Z","monoNanos":1000000,"bootId":"`)) {
		t.Errorf("first line not in the documented form: %s", lines(data)[0])
	}
	tail, err := l.Tail(2)
	if err != nil || len(tail) != 2 || tail[0] != recs[1] || tail[1] != recs[2] {
		t.Fatalf("Tail(2) = %+v, %v", tail, err)
	}
	var out bytes.Buffer
	if err := l.Export(&out); err != nil || !bytes.Equal(out.Bytes(), data) {
		t.Fatalf("Export differs from the file (err %v)", err)
	}
}

func TestUntrustedClockIsRecorded(t *testing.T) {
	fc := clocktest.New(time.Date(1970, 1, 1, 0, 0, 9, 0, time.UTC))
	l, err := audit.Open(t.TempDir(), audit.Opts{Wall: clock.NewWall(fc, build, nil), Mono: fc})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	r, err := l.Append(audit.Event{Event: "BOOT"})
	if err != nil || r.ClockTrusted {
		t.Fatalf("Append = %+v, %v; want clockTrusted false", r, err)
	}
}

func TestEveryByteFlipIsDetected(t *testing.T) {
	e := newEnv(t)
	e.fill(t, 4)
	orig := e.read(t)
	for i := range orig {
		for _, x := range []byte{0x01, 0x20, 0x80} {
			mut := bytes.Clone(orig)
			mut[i] ^= x
			_, _, err := auditlog.Verify(bytes.NewReader(mut))
			wantLineError(t, err, lineOf(orig, i), fmt.Sprintf("Verify, byte %d ^ %#x", i, x))
		}
	}
	// Open: any flip but one of the final newline (indistinguishable
	// from a power cut) is tampering. Every 7th byte keeps this quick;
	// Verify above saw every byte.
	for i := 0; i < len(orig)-1; i += 7 {
		mut := bytes.Clone(orig)
		mut[i] ^= 0x01
		e.write(t, mut)
		l, err := audit.Open(e.dir, audit.Opts{Wall: e.wall, Mono: e.mono})
		if err == nil {
			l.Close()
		}
		wantLineError(t, err, lineOf(orig, i), fmt.Sprintf("Open, byte %d", i))
	}
}

func TestDeletedLineDetected(t *testing.T) {
	e := newEnv(t)
	e.fill(t, 5)
	ls := lines(e.read(t))
	mut := bytes.Join(append(ls[:2:2], ls[3:]...), nil)
	_, _, err := auditlog.Verify(bytes.NewReader(mut))
	wantLineError(t, err, 3, "deleted line 3")
	if !strings.Contains(err.Error(), "line 3: seq gap") {
		t.Errorf("error %q does not say seq gap", err)
	}
	e.write(t, mut)
	if _, err := audit.Open(e.dir, audit.Opts{Wall: e.wall, Mono: e.mono}); !errors.Is(err, audit.ErrTampered) {
		t.Fatalf("Open after a deleted line: %v", err)
	}
	// Deleting the first line is caught too.
	_, _, err = auditlog.Verify(bytes.NewReader(bytes.Join(ls[1:], nil)))
	wantLineError(t, err, 1, "deleted line 1")
}

func TestReorderDetected(t *testing.T) {
	e := newEnv(t)
	e.fill(t, 5)
	ls := lines(e.read(t))
	ls[2], ls[3] = ls[3], ls[2]
	_, _, err := auditlog.Verify(bytes.NewReader(bytes.Join(ls, nil)))
	wantLineError(t, err, 3, "swapped lines 3 and 4")
}

func TestRehashedLineBreaksTheNextPrev(t *testing.T) {
	// An attacker who edits line 2 and recomputes its hash is caught at
	// line 3, whose prev still names the old line 2.
	e := newEnv(t)
	e.fill(t, 3)
	l := e.open(t)
	r, err := l.Tail(3)
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	ls := lines(e.read(t))
	forged := strings.Replace(string(ls[1]), "press 1", "press 9", 1)
	forged = strings.Replace(forged, r[1].Hash, rehash(t, forged), 1)
	ls[1] = []byte(forged)
	_, _, err = auditlog.Verify(bytes.NewReader(bytes.Join(ls, nil)))
	wantLineError(t, err, 3, "rehashed line 2")
	if !strings.Contains(err.Error(), "prev does not match line 2") {
		t.Errorf("error %q does not name the prev mismatch", err)
	}
}

// rehash recomputes the hash of a line in which "hash" is the last member.
func rehash(t *testing.T, line string) string {
	t.Helper()
	i := strings.LastIndex(line, `,"hash":"`)
	body := []byte(line[:i] + "}")
	return fmt.Sprintf("%x", sha256Sum(body))
}

func TestTornTailRepaired(t *testing.T) {
	for _, tc := range []struct {
		name string
		tail func(next []byte) []byte
	}{
		{"cut short", func(next []byte) []byte { return next[:len(next)/2] }},
		{"no newline", func(next []byte) []byte { return next[:len(next)-1] }},
		{"zero blocks", func(next []byte) []byte { return append(make([]byte, 300), '\n') }},
		{"zeros without newline", func(next []byte) []byte { return make([]byte, 4096) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.fill(t, 4)
			whole := e.read(t)
			ls := lines(whole)
			good := bytes.Join(ls[:3], nil)
			torn := tc.tail(ls[3])
			e.write(t, append(bytes.Clone(good), torn...))
			l := e.open(t)
			recs, err := l.Tail(10)
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != 4 {
				t.Fatalf("%d records after repair, want 3 kept + 1 repair record", len(recs))
			}
			rep := recs[3]
			if rep.Event.Event != auditlog.EventTornTailRepaired || rep.Seq != 4 || rep.Prev != recs[2].Hash {
				t.Fatalf("repair record %+v", rep)
			}
			if !strings.Contains(rep.Reason, fmt.Sprintf("removed %d bytes after line 3", len(torn))) {
				t.Errorf("repair reason %q", rep.Reason)
			}
			if err := l.Record(audit.Event{Event: "BOOT"}); err != nil {
				t.Fatal(err)
			}
			if n, _, err := auditlog.Verify(bytes.NewReader(e.read(t))); err != nil || n != 5 {
				t.Fatalf("Verify after repair = %d, %v", n, err)
			}
		})
	}
}

func TestCompleteBadLastLineIsTampering(t *testing.T) {
	e := newEnv(t)
	e.fill(t, 3)
	e.write(t, append(e.read(t), []byte("{\"seq\":4}\n")...))
	_, err := audit.Open(e.dir, audit.Opts{Wall: e.wall, Mono: e.mono})
	var le *auditlog.LineError
	if !errors.As(err, &le) || le.Line != 4 {
		t.Fatalf("Open with a complete bad last line: %v, want tampering at line 4", err)
	}
}

func TestReopenContinuesTheChain(t *testing.T) {
	e := newEnv(t)
	e.fill(t, 3)
	e.fill(t, 2)
	data := e.read(t)
	n, _, err := auditlog.Verify(bytes.NewReader(data))
	if err != nil || n != 5 {
		t.Fatalf("Verify = %d, %v", n, err)
	}
	l := e.open(t)
	recs, err := l.Tail(5)
	if err != nil {
		t.Fatal(err)
	}
	if recs[2].BootID == recs[3].BootID {
		t.Error("two opens share a boot id")
	}
	if recs[3].MonoNanos != int64(time.Second) {
		t.Errorf("monoNanos after reopen = %d, want 1s from the new open", recs[3].MonoNanos)
	}
}

func TestConcurrentAppends(t *testing.T) {
	e := newEnv(t)
	l := e.open(t)
	const workers, each = 8, 20
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if err := l.Record(audit.Event{Event: "HELLO", Actor: fmt.Sprintf("worker-%d", w)}); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	n, _, err := auditlog.Verify(bytes.NewReader(e.read(t)))
	if err != nil || n != workers*each {
		t.Fatalf("Verify = %d, %v; want %d", n, err, workers*each)
	}
}

func TestRefusedEvents(t *testing.T) {
	e := newEnv(t)
	l := e.open(t)
	pem := "-----BEGIN EC PRIVATE KEY-----MHcCAQEEIBkg-----END EC PRIVATE KEY-----"
	b64key := strings.Repeat("MHcCAQEEIBkgQ2lhb3NlY3JldGtleW1hdGVyaWFs", 5)
	token := strings.Repeat("A1b2_", 21) // 105 chars, a pairing-token shape
	for _, tc := range []struct {
		name string
		ev   audit.Event
	}{
		{"empty name", audit.Event{}},
		{"lower case name", audit.Event{Event: "boot"}},
		{"name with space", audit.Event{Event: "BOOT NOW"}},
		{"long name", audit.Event{Event: strings.Repeat("A", auditlog.MaxNameBytes+1)}},
		{"bad state", audit.Event{Event: "STATE_CHANGED", To: "ready to pair"}},
		{"bad code", audit.Event{Event: "FAILED", Code: "x\n"}},
		{"pem reason", audit.Event{Event: "X", Reason: "key " + pem}},
		{"base64 reason", audit.Event{Event: "X", Reason: "key=" + b64key}},
		{"token reason", audit.Event{Event: "X", Reason: "token " + token}},
		{"newline reason", audit.Event{Event: "X", Reason: "a\nb"}},
		{"escape reason", audit.Event{Event: "X", Reason: "a\x1b[2Jb"}},
		{"line separator", audit.Event{Event: "X", Reason: "a\u2028b"}},
		{"invalid utf8", audit.Event{Event: "X", Reason: "a\xffb"}},
		{"long reason", audit.Event{Event: "X", Reason: strings.Repeat("word ", 300)}},
		{"secret actor", audit.Event{Event: "X", Actor: "central-station:" + b64key}},
		{"reserved torn", audit.Event{Event: auditlog.EventTornTailRepaired}},
		{"reserved tamper", audit.Event{Event: auditlog.EventTamperDetected}},
	} {
		_, err := l.Append(tc.ev)
		if !errors.Is(err, auditlog.ErrRefused) {
			t.Errorf("%s: Append = %v, want ErrRefused", tc.name, err)
			continue
		}
		for _, secret := range []string{"MHcCAQEEIBkg", "A1b2_A1b2_"} {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("%s: the error repeats the refused text: %v", tc.name, err)
			}
		}
	}
	if b := e.read(t); len(b) != 0 {
		t.Fatalf("refused events were written: %q", b)
	}
	// What must pass: a hex fingerprint, a URL host, a failure code.
	ok := audit.Event{Event: "CONFIG_VERIFIED", Code: "CODE(17)", Actor: "central-station:CS-01 (ICU)",
		Reason: "config version 3 for monitoring.hospital.com:8443, CA sha256 " + strings.Repeat("ab", 32)}
	if _, err := l.Append(ok); err != nil {
		t.Fatalf("ordinary event refused: %v", err)
	}
}

func TestSanitize(t *testing.T) {
	in := "dial: x\nkey -----BEGIN EC PRIVATE KEY-----\nMHcC\n-----END EC PRIVATE KEY-----\ntoken " + strings.Repeat("Ab9_", 30) + " \xff end"
	got := audit.Sanitize(in)
	if err := (audit.Event{Event: "X", Reason: got}).Validate(); err != nil {
		t.Fatalf("Sanitize(%q) = %q, still refused: %v", in, got, err)
	}
	if want := "dial: x key [redacted] token [redacted] \uFFFD end"; got != want {
		t.Errorf("Sanitize = %q, want %q", got, want)
	}
	long := audit.Sanitize(strings.Repeat("é", 1000))
	if len(long) > auditlog.MaxReasonBytes || !strings.HasSuffix(long, "...") {
		t.Errorf("long text sanitized to %d bytes", len(long))
	}
}

func TestRecoverStartsANewSegment(t *testing.T) {
	e := newEnv(t)
	e.fill(t, 5)
	orig := e.read(t)
	l := e.open(t)
	good, err := l.Tail(5)
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	mut := bytes.Clone(orig)
	i := bytes.Index(mut, []byte("press 2")) // line 3
	mut[i] = 'P'
	e.write(t, mut)

	_, err = audit.Open(e.dir, audit.Opts{Wall: e.wall, Mono: e.mono})
	wantLineError(t, err, 3, "Open")
	l, err = audit.Recover(e.dir, audit.Opts{Wall: e.wall, Mono: e.mono})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	kept, err := os.ReadFile(filepath.Join(e.dir, "security_audit_log.tampered-1.jsonl"))
	if err != nil || !bytes.Equal(kept, mut) {
		t.Fatalf("damaged log not kept as it was (err %v)", err)
	}
	recs, err := l.Tail(10)
	if err != nil || len(recs) != 1 {
		t.Fatalf("new segment: %+v, %v", recs, err)
	}
	head := recs[0]
	if head.Event.Event != auditlog.EventTamperDetected || head.Seq != 3 || head.Prev != good[1].Hash {
		t.Fatalf("segment head %+v; want seq 3 continuing from line 2 (%s)", head, good[1].Hash)
	}
	if !strings.Contains(head.Reason, "line 3: hash mismatch") || !strings.Contains(head.Reason, "tampered-1.jsonl") {
		t.Errorf("head reason %q", head.Reason)
	}
	if err := l.Record(audit.Event{Event: "BOOT"}); err != nil {
		t.Fatal(err)
	}
	if n, _, err := auditlog.Verify(bytes.NewReader(e.read(t))); err != nil || n != 2 {
		t.Fatalf("Verify new segment = %d, %v", n, err)
	}
	l.Close()
	// The new segment reopens with Open; a second damage goes to -2.
	e.open(t).Close()
	e.write(t, []byte("garbage\n{}\n"))
	l, err = audit.Recover(e.dir, audit.Opts{Wall: e.wall, Mono: e.mono})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	if _, err := os.Stat(filepath.Join(e.dir, "security_audit_log.tampered-2.jsonl")); err != nil {
		t.Fatal(err)
	}
	// Recover on a healthy log is Open.
	l, err = audit.Recover(e.dir, audit.Opts{Wall: e.wall, Mono: e.mono})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	if _, err := os.Stat(filepath.Join(e.dir, "security_audit_log.tampered-3.jsonl")); err == nil {
		t.Fatal("Recover moved a healthy log aside")
	}
}

func TestExportStopsAtTampering(t *testing.T) {
	e := newEnv(t)
	l := e.open(t)
	for i := 0; i < 4; i++ {
		if err := l.Record(audit.Event{Event: "HELLO"}); err != nil {
			t.Fatal(err)
		}
	}
	orig := e.read(t)
	ls := lines(orig)
	// Changed behind the log's back while it is open.
	mut := bytes.Clone(orig)
	mut[len(ls[0])+len(ls[1])+5] ^= 1
	e.write(t, mut)
	var out bytes.Buffer
	err := l.Export(&out)
	wantLineError(t, err, 3, "Export")
	if !bytes.Equal(out.Bytes(), bytes.Join(ls[:2], nil)) {
		t.Errorf("Export wrote %q, want the 2 verified lines", out.Bytes())
	}
	// Tail reads back from the end: the last record still verifies, the
	// changed one is found when the tail reaches it.
	if recs, err := l.Tail(1); err != nil || len(recs) != 1 || recs[0].Seq != 4 {
		t.Errorf("Tail(1) past the changed line: %+v, %v", recs, err)
	}
	_, err = l.Tail(2)
	wantLineError(t, err, 3, "Tail(2)")
}

func TestClosedLog(t *testing.T) {
	e := newEnv(t)
	l := e.open(t)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Record(audit.Event{Event: "BOOT"}); err == nil {
		t.Fatal("Record on a closed log succeeded")
	}
	if _, err := l.Tail(1); err == nil {
		t.Fatal("Tail on a closed log succeeded")
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	e := newEnv(t)
	if _, err := audit.Open(filepath.Join(e.dir, "missing"), audit.Opts{Wall: e.wall, Mono: e.mono}); err == nil {
		t.Error("Open in a missing directory succeeded")
	}
	if _, err := audit.Open(e.dir, audit.Opts{Wall: nil, Mono: e.mono}); err == nil {
		t.Error("Open without a wall clock succeeded")
	}
	if tail, err := e.open(t).Tail(0); err != nil || tail != nil {
		t.Errorf("Tail(0) = %v, %v", tail, err)
	}
}

func TestVerifyRejects(t *testing.T) {
	e := newEnv(t)
	e.fill(t, 2)
	data := e.read(t)
	first := lines(data)[0]
	for _, tc := range []struct {
		name string
		in   []byte
		line int
	}{
		{"no final newline", data[:len(data)-1], 2},
		{"upper-case key", bytes.Replace(data, []byte(`"seq":2`), []byte(`"Seq":2`), 1), 2},
		{"space", bytes.Replace(data, []byte(`"seq":2,`), []byte(`"seq":2, `), 1), 2},
		{"duplicate key", bytes.Replace(data, []byte(`"seq":2,`), []byte(`"seq":2,"seq":2,`), 1), 2},
		{"unknown key", bytes.Replace(data, []byte(`"seq":2,`), []byte(`"seq":2,"x":1,`), 1), 2},
		{"two objects", append(bytes.TrimSuffix(first, []byte("\n")), first...), 1},
		{"blank line", append([]byte("\n"), data...), 1},
		{"huge line", bytes.Repeat([]byte("a"), auditlog.MaxLineBytes+10), 1},
	} {
		_, _, err := auditlog.Verify(bytes.NewReader(tc.in))
		wantLineError(t, err, tc.line, tc.name)
	}
	if n, h, err := auditlog.Verify(strings.NewReader("")); err != nil || n != 0 || h != auditlog.ZeroHash {
		t.Errorf("Verify(empty) = %d, %s, %v", n, h, err)
	}
}
