package audit_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zmonitor/firmware/internal/fw/audit"
	"github.com/zmonitor/firmware/internal/fw/audit/audittest"
	"github.com/zmonitor/firmware/internal/proto/auditlog"
)

// anchored is a log directory with a TPM anchor and an identity key.
type anchored struct {
	*env
	anchor *audittest.Anchor
	key    *ecdsa.PrivateKey
	tweak  func(*audit.Opts)
}

func newAnchored(t testing.TB) *anchored {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &anchored{env: newEnv(t), anchor: &audittest.Anchor{}, key: k}
}

func (a *anchored) opts() audit.Opts {
	o := audit.Opts{Wall: a.wall, Mono: a.mono, Anchor: a.anchor, Signer: a.key, DeviceID: "ZM-001"}
	if a.tweak != nil {
		a.tweak(&o)
	}
	return o
}

func (a *anchored) openA(t testing.TB) *audit.Log {
	t.Helper()
	l, err := audit.Open(a.dir, a.opts())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// fillA writes n records, letting the anchorer catch up after each, and
// closes the log (which anchors the last).
func (a *anchored) fillA(t testing.TB, n int) {
	t.Helper()
	l := a.openA(t)
	for i := 0; i < n; i++ {
		a.mono.Advance(time.Second)
		if err := l.Record(audit.Event{Event: "STATE_CHANGED", From: "UNPROVISIONED", To: "READY_TO_PAIR", Actor: "button", Reason: fmt.Sprintf("press %d", i)}); err != nil {
			t.Fatal(err)
		}
		// The anchorer's checkpoints (due after each rotation) land where
		// they would between records a second apart, not by chance.
		l.Flush()
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// records parses the lines of b.
func records(t testing.TB, b []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, ln := range lines(b) {
		var m map[string]any
		if err := json.Unmarshal(ln, &m); err != nil {
			t.Fatalf("line %q: %v", ln, err)
		}
		out = append(out, m)
	}
	return out
}

// rechain recomputes every line's hash and the next line's prev, as
// someone with the disk who edited a line would.
func rechain(t testing.TB, b []byte) []byte {
	t.Helper()
	var out []byte
	prev := ""
	for _, ln := range lines(b) {
		s := strings.TrimSuffix(string(ln), "\n")
		if prev != "" {
			i := strings.LastIndex(s, `,"prev":"`) + 1
			s = s[:i+8] + prev + s[i+8+64:]
		}
		i := strings.LastIndex(s, `,"hash":"`)
		sum := sha256.Sum256([]byte(s[:i] + "}"))
		prev = hex.EncodeToString(sum[:])
		s = s[:i] + `,"hash":"` + prev + `"}`
		out = append(out, s+"\n"...)
	}
	return out
}

// lastOwn returns the log's last record that is not a checkpoint, once
// the anchorer is done: a checkpoint the anchorer writes at open may
// follow the record a test looks for.
func lastOwn(t testing.TB, l *audit.Log) auditlog.Record {
	t.Helper()
	l.Flush()
	recs, err := l.Tail(4)
	if err != nil || len(recs) == 0 {
		t.Fatalf("tail: %+v, %v", recs, err)
	}
	for i := len(recs) - 1; i >= 0; i-- {
		if recs[i].Event.Event != auditlog.EventCheckpoint {
			return recs[i]
		}
	}
	return recs[len(recs)-1]
}

func wantAnchorError(t *testing.T, err error, want string) {
	t.Helper()
	var ae *audit.AnchorError
	if !errors.As(err, &ae) || !errors.Is(err, audit.ErrTampered) || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v, want an *AnchorError wrapping ErrTampered saying %q", err, want)
	}
}

// Deleting the last records passes the hash chain (Verify) but not the
// TPM's anchor: Open refuses, Recover keeps the log aside and starts a
// segment that continues from the anchored record and says what was lost.
func TestTruncatedLogIsDetectedByTheAnchor(t *testing.T) {
	a := newAnchored(t)
	a.fillA(t, 6)
	seq, hash, ok := a.anchor.Get()
	whole := a.read(t)
	n := len(lines(whole))
	if !ok || seq != uint64(n) {
		t.Fatalf("anchor after Close: record %d (ok %v), want the last, %d", seq, ok, n)
	}
	cut := bytes.Join(lines(whole)[:n-2], nil)
	a.write(t, cut)
	if k, _, err := auditlog.Verify(bytes.NewReader(cut)); err != nil || k != n-2 {
		t.Fatalf("the hash chain alone: %d, %v (it cannot see the cut)", k, err)
	}
	_, err := audit.Open(a.dir, a.opts())
	wantAnchorError(t, err, fmt.Sprintf("the log ends at record %d, but the TPM anchors record %d: records %d-%d were deleted", n-2, n, n-1, n))

	l, err := audit.Recover(a.dir, a.opts())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	kept, err := os.ReadFile(filepath.Join(a.dir, "security_audit_log.tampered-1.jsonl"))
	if err != nil || !bytes.Equal(kept, cut) {
		t.Fatalf("the truncated log was not kept as it was: %v", err)
	}
	recs, err := l.Tail(3)
	if err != nil {
		t.Fatal(err)
	}
	var head auditlog.Record
	for _, r := range recs {
		if r.Event.Event == auditlog.EventTamperDetected {
			head = r
		}
	}
	if head.Event.Event != auditlog.EventTamperDetected || head.Seq != seq+1 || head.Prev != hash {
		t.Fatalf("new head %+v, want seq %d continuing from the anchored record", head, seq+1)
	}
	if !strings.Contains(head.Reason, fmt.Sprintf("records %d-%d were deleted", n-1, n)) || !strings.Contains(head.Reason, "kept as security_audit_log.tampered-1.jsonl") {
		t.Errorf("head reason %q", head.Reason)
	}
	if st := l.Status(); st.AtOpen == "" {
		t.Error("Status does not report the damage found at open")
	}
	// The live log verifies, and the TPM now anchors the new head.
	l.Flush()
	var out bytes.Buffer
	if err := l.Export(&out); err != nil {
		t.Fatal(err)
	}
	if _, err := auditlog.VerifyExport(&out, &a.key.PublicKey, "ZM-001"); err != nil {
		t.Fatal(err)
	}
	if s, h, _ := a.anchor.Get(); s < head.Seq || h == hash {
		t.Errorf("anchor after recovery at %d", s)
	}
}

// Editing a record and recomputing the chain after it passes Verify, but
// the record the TPM anchors no longer has the anchored hash.
func TestRechainedEditIsDetectedByTheAnchor(t *testing.T) {
	a := newAnchored(t)
	a.fillA(t, 6)
	edited := rechain(t, bytes.Replace(a.read(t), []byte("press 2"), []byte("press 9"), 1))
	a.write(t, edited)
	if _, _, err := auditlog.Verify(bytes.NewReader(edited)); err != nil {
		t.Fatalf("the rechained log does not even pass the chain: %v", err)
	}
	seq, _, _ := a.anchor.Get()
	_, err := audit.Open(a.dir, a.opts())
	wantAnchorError(t, err, fmt.Sprintf("record %d's hash differs from the one the TPM anchors", seq))
}

// The whole log deleted: the anchor says records existed.
func TestDeletedLogIsDetectedByTheAnchor(t *testing.T) {
	a := newAnchored(t)
	a.fillA(t, 3)
	if err := os.Remove(a.path()); err != nil {
		t.Fatal(err)
	}
	_, err := audit.Open(a.dir, a.opts())
	wantAnchorError(t, err, "the log ends at record 0")
}

// A clean reopen verifies only from the anchored record: a damaged line
// before it passes Open, and the background check (CheckAll) finds it,
// moves the segment aside, records it once, and the next check passes.
func TestCheckAllFindsWhatOpenDoesNotRead(t *testing.T) {
	a := newAnchored(t)
	a.fillA(t, 8)
	mut := a.read(t)
	mut[bytes.Index(mut, []byte("press 2"))] = 'P' // line 4: hash mismatch, not re-chained
	a.write(t, mut)
	l := a.openA(t)
	res := l.CheckAll(context.Background())
	if res.State != audit.CheckDamage || len(res.Findings) != 1 || !strings.Contains(res.Findings[0], "security_audit_log.jsonl line 3: hash mismatch") {
		t.Fatalf("CheckAll = %+v", res)
	}
	if _, err := os.Stat(filepath.Join(a.dir, "security_audit_log.tampered-1.jsonl")); err != nil {
		t.Fatalf("the damaged segment was not moved aside: %v", err)
	}
	// The last record, or the one before a checkpoint the anchorer wrote
	// after it, is AUDIT_TAMPER_DETECTED with a span.
	recs, err := l.Tail(2)
	if err != nil || len(recs) == 0 {
		t.Fatalf("tail: %v", err)
	}
	if last := recs[len(recs)-1]; last.Event.Event == auditlog.EventCheckpoint && len(recs) == 2 {
		recs = recs[:1]
	}
	if last := recs[len(recs)-1]; last.Event.Event != auditlog.EventTamperDetected || last.Span == nil {
		t.Fatalf("last records %+v; want AUDIT_TAMPER_DETECTED with a span", recs)
	}
	var out bytes.Buffer
	if err := l.Export(&out); err != nil {
		t.Fatal(err)
	}
	if _, err := auditlog.VerifyExport(&out, &a.key.PublicKey, "ZM-001"); err != nil {
		t.Fatalf("the live log after the move: %v", err)
	}
	l.Close()
	l = a.openA(t)
	if res := l.CheckAll(context.Background()); res.State != audit.CheckPassed {
		t.Fatalf("second check: %+v", res)
	}
}

// Records on the disk that the TPM did not anchor (a power cut before the
// anchor was written, or added by someone with the disk) are named.
func TestUnanchoredRecordsAreNamed(t *testing.T) {
	a := newAnchored(t)
	a.fillA(t, 3)
	seq, _, _ := a.anchor.Get()
	// Two records written by something that does not anchor.
	l, err := audit.Open(a.dir, audit.Opts{Wall: a.wall, Mono: a.mono})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if err := l.Record(audit.Event{Event: "EXTRA"}); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	l = a.openA(t)
	last := lastOwn(t, l)
	want := fmt.Sprintf("records %d-%d were on the disk but not anchored", seq+1, seq+2)
	if last.Event.Event != auditlog.EventRecordsUnanchored || !strings.Contains(last.Reason, want) {
		t.Fatalf("last record %+v, want %s", last, want)
	}
}

// small makes segments of about a dozen records, two closed ones kept.
func small(o *audit.Opts) { o.SegmentBytes = 4 << 10; o.KeepSegments = 2 }

// The log rotates into segments, deletes the oldest beyond the cap and
// records it; the chain and the checkpoints verify across all of it.
// Deleting a segment by hand is found by CheckAll, once.
func TestRotationIsRecordedAndAHandDeletedSegmentIsNot(t *testing.T) {
	a := newAnchored(t)
	a.tweak = small
	a.fillA(t, 80)
	closed, _ := filepath.Glob(filepath.Join(a.dir, "security_audit_log.0*.jsonl"))
	if len(closed) != 2 {
		t.Fatalf("closed segments %v, want the 2 kept", closed)
	}
	l := a.openA(t)
	l.Flush()
	var out bytes.Buffer
	if err := l.Export(&out); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(out.Bytes(), []byte(auditlog.EventSegmentDeleted)) || !bytes.Contains(out.Bytes(), []byte(auditlog.EventSegmentStarted)) {
		t.Fatal("no rotation records in the export")
	}
	s, err := auditlog.VerifyExport(bytes.NewReader(out.Bytes()), &a.key.PublicKey, "ZM-001")
	if err != nil || s.Checkpoints < 3 {
		t.Fatalf("VerifyExport = %+v, %v; want a checkpoint per open and rotation", s, err)
	}
	if res := l.CheckAll(context.Background()); res.State != audit.CheckPassed {
		t.Fatalf("CheckAll of a rotated log: %+v", res)
	}
	l.Close()
	// Someone deletes the oldest closed segment.
	if err := os.Remove(closed[0]); err != nil {
		t.Fatal(err)
	}
	l = a.openA(t)
	res := l.CheckAll(context.Background())
	if res.State != audit.CheckDamage || len(res.Findings) != 1 || !strings.Contains(res.Findings[0], "no record of the firmware says it removed them") {
		t.Fatalf("CheckAll after a hand-deleted segment: %+v", res)
	}
	l.Close()
	l = a.openA(t)
	if res := l.CheckAll(context.Background()); res.State != audit.CheckPassed {
		t.Fatalf("the finding was reported again: %+v", res)
	}
}

// A record added after the anchored one cannot explain a gap: someone who
// deletes the oldest segment and appends a forged AUDIT_SEGMENT_DELETED
// naming it is still found out.
func TestAForgedDeletionRecordExplainsNothing(t *testing.T) {
	a := newAnchored(t)
	a.tweak = small
	a.fillA(t, 40)
	closed, _ := filepath.Glob(filepath.Join(a.dir, "security_audit_log.0*.jsonl"))
	oldest, _ := os.ReadFile(closed[0])
	ls := lines(oldest)
	first, last := records(t, ls[0])[0], records(t, ls[len(ls)-1])[0]
	if err := os.Remove(closed[0]); err != nil {
		t.Fatal(err)
	}
	// The forged record, chained properly after the current last line.
	cur := a.read(t)
	cl := lines(cur)
	prev := records(t, cl[len(cl)-1])[0]
	forged := fmt.Sprintf(`{"seq":%d,"wallTime":"2026-11-01T02:00:00Z","monoNanos":1,"bootId":"%s","clockTrusted":true,"event":"AUDIT_SEGMENT_DELETED","actor":"device","span":{"from":%d,"to":%d,"prev":"%s","last":"%s"},"prev":"%s","hash":"%s"}`,
		int(prev["seq"].(float64))+1, prev["bootId"], int(first["seq"].(float64)), int(last["seq"].(float64)), first["prev"], last["hash"], prev["hash"], strings.Repeat("0", 64))
	a.write(t, rechain(t, append(cur, forged+"\n"...)))
	l := a.openA(t)
	res := l.CheckAll(context.Background())
	if res.State != audit.CheckDamage || len(res.Findings) == 0 {
		t.Fatalf("CheckAll accepted a forged deletion record: %+v", res)
	}
}

// Anchor writes are batched: records written while a write is in flight
// share the next one, and past the burst one write per refill.
func TestAnchorWritesAreBatched(t *testing.T) {
	a := newAnchored(t)
	a.tweak = func(o *audit.Opts) { o.AnchorBurst = 2; o.Signer = nil }
	gate, started := make(chan struct{}), make(chan uint64, 16)
	a.anchor.Gate, a.anchor.Started = gate, started
	l := a.openA(t)
	rec := func() {
		if err := l.Record(audit.Event{Event: "X"}); err != nil {
			t.Fatal(err)
		}
	}
	rec()
	if seq := <-started; seq != 1 {
		t.Fatalf("the first write carries record %d, want 1", seq)
	}
	for i := 0; i < 5; i++ {
		rec() // while the write of record 1 is in flight
	}
	gate <- struct{}{} // the write of record 1 completes
	if seq := <-started; seq != 6 {
		t.Fatalf("the second write carries record %d, want 6 (the five records written meanwhile)", seq)
	}
	gate <- struct{}{}
	l.Flush()
	if seq, _, _ := a.anchor.Get(); seq != 6 || a.anchor.Writes() != 2 {
		t.Fatalf("after 6 records: anchored %d in %d writes, want 6 in 2", seq, a.anchor.Writes())
	}
	// The burst is spent: the next record waits for a refill.
	rec()
	l.Flush()
	if seq, _, _ := a.anchor.Get(); seq != 6 {
		t.Fatalf("anchored %d past the burst", seq)
	}
	close(gate)
	a.mono.Advance(audit.DefaultAnchorRefill)
	l.Flush()
	if seq, _, _ := a.anchor.Get(); seq != 7 || a.anchor.Writes() != 3 {
		t.Fatalf("after a refill: anchored %d in %d writes", seq, a.anchor.Writes())
	}
}

// A checkpoint is written at every open; it verifies offline with the
// identity public key, and a re-chained edit before it fails offline
// verification even without the TPM's anchor.
func TestCheckpointsVerifyOffline(t *testing.T) {
	a := newAnchored(t)
	a.fillA(t, 5)
	l := a.openA(t)
	l.Flush()
	cp, ok := l.Checkpoint()
	if !ok {
		t.Fatal("no checkpoint after open")
	}
	if err := cp.Verify(&a.key.PublicKey); err != nil || cp.Seq != 5 {
		t.Fatalf("checkpoint %+v: %v", cp, err)
	}
	for i := 0; i < 3; i++ {
		if err := l.Record(audit.Event{Event: "AFTER"}); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	if err := l.Export(&out); err != nil {
		t.Fatal(err)
	}
	l.Close()
	if _, err := auditlog.VerifyExport(bytes.NewReader(out.Bytes()), &a.key.PublicKey, "ZM-001"); err != nil {
		t.Fatal(err)
	}
	// Edited and re-chained: the checkpoint names record 5 with its old
	// hash, which the chain alone already sees.
	edited := rechain(t, bytes.Replace(out.Bytes(), []byte("press 1"), []byte("press 7"), 1))
	if _, _, err := auditlog.Verify(bytes.NewReader(edited)); !errors.Is(err, audit.ErrTampered) || !strings.Contains(err.Error(), "checkpoint names record 5 with another hash") {
		t.Fatalf("a re-chained edit under a checkpoint: %v", err)
	}
	// Then the checkpoint's hash edited too: only the signature, checked
	// with the enrollment record's identity key, tells.
	ls := lines(edited)
	rec5 := records(t, ls[4])[0]["hash"].(string)
	orig5 := records(t, lines(out.Bytes())[4])[0]["hash"].(string)
	forged := rechain(t, bytes.Replace(edited, []byte(`"checkpoint":{"seq":5,"hash":"`+orig5), []byte(`"checkpoint":{"seq":5,"hash":"`+rec5), 1))
	if _, _, err := auditlog.Verify(bytes.NewReader(forged)); err != nil {
		t.Fatalf("the chain alone, checkpoint hash edited: %v", err)
	}
	_, err := auditlog.VerifyExport(bytes.NewReader(forged), &a.key.PublicKey, "ZM-001")
	if !errors.Is(err, audit.ErrTampered) || !strings.Contains(err.Error(), "checkpoint of record 5 does not verify with the device identity key") {
		t.Fatalf("offline verification of a re-chained edit: %v", err)
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if _, err := auditlog.VerifyExport(bytes.NewReader(out.Bytes()), &other.PublicKey, "ZM-001"); err == nil {
		t.Fatal("another device's key verified the checkpoints")
	}
}

// The TPM's NV failing does not stop the log: it runs unanchored and
// records why.
func TestAnchorFailuresAreRecorded(t *testing.T) {
	a := newAnchored(t)
	a.anchor.ReadErr = errors.New("NV read failed")
	l := a.openA(t)
	if last := lastOwn(t, l); last.Event.Event != auditlog.EventAnchorFailed || !strings.Contains(last.Reason, "NV read failed") {
		t.Fatalf("last record %+v", last)
	}
	l.Close()
	a.anchor.ReadErr = nil
	a.anchor.WriteErr = errors.New("NV write failed")
	l = a.openA(t)
	for i := 0; i < 3; i++ {
		if err := l.Record(audit.Event{Event: "X"}); err != nil {
			t.Fatal(err)
		}
		l.Flush()
	}
	var n int
	var out bytes.Buffer
	if err := l.Export(&out); err != nil {
		t.Fatal(err)
	}
	n = bytes.Count(out.Bytes(), []byte(`"event":"AUDIT_ANCHOR_FAILED","reason":"record`))
	if n != 1 {
		t.Fatalf("%d AUDIT_ANCHOR_FAILED records for write failures, want 1:\n%s", n, out.Bytes())
	}
	if st := l.Status(); st.AnchorErr == nil {
		t.Error("Status does not report the failure")
	}
}

// BenchmarkOpen measures what the boot waits for: opening a log of n
// records. "whole" is the log without a TPM anchor, every record verified
// (what every boot did before the anchor); "anchored" checks only the
// records from the one the TPM anchors to the end, reading back from the
// end of the file (the rest is CheckAll's, in the background).
func BenchmarkOpen(b *testing.B) {
	for _, n := range []int{300, 3000} {
		a := newAnchored(b)
		a.tweak = func(o *audit.Opts) { o.Signer = nil }
		a.fillA(b, n)
		for _, mode := range []string{"whole", "anchored"} {
			b.Run(fmt.Sprintf("records=%d/%s", n, mode), func(b *testing.B) {
				o := a.opts()
				if mode == "whole" {
					o.Anchor = nil
				}
				for b.Loop() {
					l, err := audit.Open(a.dir, o)
					if err != nil {
						b.Fatal(err)
					}
					l.Close()
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/record")
			})
		}
	}
}
