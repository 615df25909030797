package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zmonitor/firmware/internal/base/clock"
	"github.com/zmonitor/firmware/internal/central/store"
	"github.com/zmonitor/firmware/internal/fw/audit"
	"github.com/zmonitor/firmware/internal/proto/auditlog"
)

// deviceExport writes an audit log as the device does (checkpoints signed
// by e's identity key) and returns its export, as `audit export` prints
// it on the serial console (prompt, markers, CR LF).
func deviceExport(t *testing.T, e enrolled) (capture, records []byte) {
	t.Helper()
	mono := clock.System{}
	wall := clock.NewWall(mono, time.Now(), nil)
	dir := t.TempDir()
	var l *audit.Log
	// Two boots: the second signs a checkpoint of the first's records.
	for _, evs := range [][]string{{"BOOT", "BUTTON_PRESSED", "STATE_CHANGED"}, {"BOOT", "PROVISIONED"}} {
		if l != nil {
			l.Close()
		}
		var err error
		if l, err = audit.Open(dir, audit.Opts{Wall: wall, Mono: mono, Signer: e.key, DeviceID: e.id}); err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			if err := l.Record(audit.Event{Event: ev, Actor: "device"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	l.Flush() // the checkpoint is signed in the background
	var out bytes.Buffer
	if err := l.Export(&out); err != nil {
		t.Fatal(err)
	}
	l.Close()
	records = out.Bytes()
	capture = []byte("zm> audit export\r\n" + auditlog.ExportBegin + "\r\n" +
		strings.ReplaceAll(string(records), "\n", "\r\n") + auditlog.ExportEnd + "\r\nzm> ")
	return capture, records
}

// rewrite changes the first record's reason and recomputes the chain after
// it, checkpoints' hashes included, as an attacker with the disk (but not
// the TPM's identity key) can.
func rewrite(t *testing.T, records []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	prev := auditlog.ZeroHash
	hashes := map[uint64]string{}
	for i, line := range bytes.SplitAfter(bytes.TrimSuffix(records, []byte("\n")), []byte("\n")) {
		r, why := auditlog.ParseLine(bytes.TrimSuffix(line, []byte("\n")))
		if why != "" {
			t.Fatal(why)
		}
		if i == 0 {
			r.Reason = "nothing happened here"
		}
		if cp := r.Checkpoint; cp != nil {
			cp.Hash = hashes[cp.Seq] // the signature he cannot make again
		}
		r.Prev = prev
		sealed, err := auditlog.Seal(&r)
		if err != nil {
			t.Fatal(err)
		}
		out.Write(sealed)
		prev = r.Hash
		hashes[r.Seq] = r.Hash
	}
	if _, _, err := auditlog.Verify(bytes.NewReader(out.Bytes())); err != nil {
		t.Fatalf("the rewritten chain should pass without the checkpoints' key: %v", err)
	}
	return out.Bytes()
}

// TestDevicesVerifyAudit: the Central Station verifies a device's exported
// audit log against the identity key of its enrollment record. A log
// rewritten with its chain recomputed passes the chain alone but not the
// signed checkpoints; another device's log, a cut-short capture and an
// edited line are refused; every verification is audited.
func TestDevicesVerifyAudit(t *testing.T) {
	dir, _ := initCentral(t)
	a, b := newEnrolled(t, "ZM-001"), newEnrolled(t, "ZM-002")
	js, _ := json.Marshal([]map[string]string{a.rec, b.rec})
	inv := filepath.Join(t.TempDir(), "d.json")
	os.WriteFile(inv, js, 0o644)
	if code, out, _ := runCLI(t, "devices", "import", "--dir", dir, inv); code != 0 {
		t.Fatalf("import: %s", out)
	}
	capture, records := deviceExport(t, a)
	file := func(name string, b []byte) string {
		p := filepath.Join(t.TempDir(), name)
		os.WriteFile(p, b, 0o600)
		return p
	}
	code, out, errs := runCLI(t, "devices", "verify-audit", "--dir", dir, "ZM-001", file("capture.txt", capture))
	if code != 0 || !strings.Contains(out, "audit log of ZM-001 verified: ") || !strings.Contains(out, "signed checkpoints") {
		t.Fatalf("good capture: exit %d\n%s%s", code, out, errs)
	}
	if code, out, errs := runCLI(t, "devices", "verify-audit", "--dir", dir, "ZM-001", file("log.jsonl", records)); code != 0 {
		t.Fatalf("the JSON Lines alone: exit %d\n%s%s", code, out, errs)
	}
	edited := bytes.Replace(records, []byte(`"BUTTON_PRESSED"`), []byte(`"BUTTON_PRESSEX"`), 1)
	for name, c := range map[string]struct {
		device string
		body   []byte
		want   string
	}{
		"rewritten, chain recomputed": {"ZM-001", rewrite(t, records), "does not verify with the device identity key"},
		"another device's log":        {"ZM-002", records, "does not verify with the device identity key"},
		"a line edited":               {"ZM-001", edited, "hash mismatch"},
		"cut short":                   {"ZM-001", capture[:bytes.Index(capture, []byte(auditlog.ExportEnd))], "cut short"},
		"no checkpoint":               {"ZM-001", records[:0], "no signed checkpoint"},
	} {
		code, out, errs := runCLI(t, "devices", "verify-audit", "--dir", dir, c.device, file("x", c.body))
		if code != 1 || !strings.Contains(errs, c.want) || strings.Contains(out, "verified") {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want 1 and %q", name, code, out, errs, c.want)
		}
	}
	if code, _, errs := runCLI(t, "devices", "verify-audit", "--dir", dir, "ZM-404", file("y", records)); code != 1 || !strings.Contains(errs, "ZM-404") {
		t.Errorf("unknown device: exit %d %q", code, errs)
	}
	// Audited: two that verified, four that did not (cut short is refused
	// before the log is read, as an unknown device is).
	st, err := store.Open(context.Background(), "sqlite:"+filepath.Join(dir, dbFile), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	got := map[string]int{}
	st.ExportAudit(context.Background(), func(r store.AuditRecord) error { got[r.Event]++; return nil })
	if got["device.audit_verified"] != 2 || got["device.audit_verify_failed"] != 4 {
		t.Errorf("audit trail: %v", got)
	}
}
