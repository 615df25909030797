package boot

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zmonitor/firmware/internal/fw/audit"
	"github.com/zmonitor/firmware/internal/fw/audit/audittest"
	"github.com/zmonitor/firmware/internal/fw/keys"
	"github.com/zmonitor/firmware/internal/proto/auditlog"
)

// anchoredKeys is a key store with a TPM anchor for the audit log, as
// drivers/tpm.Store is.
type anchoredKeys struct {
	keys.Store
	*audittest.Anchor
}

// statusOf runs c until its engine runs, asks the console for status and
// returns what it printed up to the last audit line, then stops Run.
func statusOf(t *testing.T, c Config) string {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	c.Console = pipeRW{inR, outW}
	r := startRun(t, c)
	go inW.Write([]byte("status\r"))
	got := make(chan string, 1)
	go func() {
		var all strings.Builder
		sc := bufio.NewScanner(outR)
		for sc.Scan() {
			all.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), "audit log: whole-log check") || strings.Contains(sc.Text(), "audit log: checkpoint") {
				break
			}
		}
		got <- all.String()
	}()
	var out string
	select {
	case out = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("console status did not answer")
	}
	r.cancel()
	inW.Close()
	outR.Close()
	if err := <-r.done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	return out
}

// An attacker with the disk deletes the audit log's last record between
// two boots: the hash chain still verifies, but the TPM's anchor names a
// record the log no longer holds. The next boot keeps the cut log aside,
// starts a new segment with AUDIT_TAMPER_DETECTED and the console's status
// says so. Before the anchor, the boot was silent.
func TestBootDetectsTruncatedAuditLog(t *testing.T) {
	dir := t.TempDir()
	ks := anchoredKeys{softKeys(t), &audittest.Anchor{}}
	c := baseConfig(t, dir, ks)
	if out := statusOf(t, c); strings.Contains(out, "TAMPERED") || !strings.Contains(out, "TPM anchor at record") {
		t.Fatalf("first boot status:\n%s", out)
	}
	if warningBarShown(c) {
		t.Fatal("the first boot's panel shows a warning bar")
	}
	path := filepath.Join(dir, audit.FileName)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(b, []byte("\n"))
	lines = lines[:len(lines)-1] // the empty string after the last newline
	if len(lines) < 2 {
		t.Fatalf("the first boot wrote %d records", len(lines))
	}
	cut := bytes.Join(lines[:len(lines)-1], nil)
	if _, _, err := auditlog.Verify(bytes.NewReader(cut)); err != nil {
		t.Fatalf("the cut log should pass the hash chain alone: %v", err)
	}
	if err := os.WriteFile(path, cut, 0o600); err != nil {
		t.Fatal(err)
	}

	out := statusOf(t, c)
	if !strings.Contains(out, "audit log: TAMPERED: found at boot: the log ends at record") || !strings.Contains(out, "were deleted") {
		t.Fatalf("second boot status does not report the cut:\n%s", out)
	}
	if !warningBarShown(c) {
		t.Error("the panel does not show the tampered log's warning bar (W-AUD-01)")
	}
	kept, err := os.ReadFile(filepath.Join(dir, "security_audit_log.tampered-1.jsonl"))
	if err != nil || !bytes.Equal(kept, cut) {
		t.Fatalf("the cut log was not kept aside as it was: %v", err)
	}
	now, err := os.ReadFile(path)
	if err != nil || !bytes.Contains(now, []byte(`"`+auditlog.EventTamperDetected+`"`)) {
		t.Fatalf("the new segment does not record the tampering (%v):\n%s", err, now)
	}
}

// The console's status puts what a technician must act on first: damage
// found at boot, then a full disk, then the anchor and the checks.
func TestAuditLinesSayTheDamageFirst(t *testing.T) {
	got := auditLines(audit.Status{Records: 9, Anchoring: true, AnchorSeq: 9, AtOpen: "records 8-9 were deleted", DiskFull: "the disk is full", Check: audit.Check{State: audit.CheckPassed, Records: 9, Segments: 1}})
	want := []string{"TAMPERED: found at boot: records 8-9 were deleted", "DISK FULL: the disk is full", "9 records, TPM anchor at record 9 (0 writes this boot)", "whole-log check PASSED: 9 records in 1 segments"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("auditLines =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// warningBarShown reports whether the panel's last frame has the red
// warning bar across its bottom (screen.View.Warning): a red pixel at both
// bottom corners, where every screen without one is white.
func warningBarShown(c Config) bool {
	img := c.Display.(*panel).img
	b := img.Rect
	for _, x := range []int{b.Min.X + 1, b.Max.X - 2} {
		p := img.RGBAAt(x, b.Max.Y-2)
		if p.R < 150 || p.G > 80 || p.B > 80 {
			return false
		}
	}
	return true
}
