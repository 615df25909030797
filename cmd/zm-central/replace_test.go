package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zmonitor/firmware/internal/central/store"
)

func writeRecord(t *testing.T, e enrolled) string {
	t.Helper()
	b, _ := json.Marshal(e.rec)
	p := filepath.Join(t.TempDir(), e.id+".json")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestDevicesReplace: a device whose keys changed (TPM or board swap) can
// be re-enrolled only by the explicit, audited devices replace; its old
// keys are kept and never accepted again, its certificates are revoked.
func TestDevicesReplace(t *testing.T) {
	dir, _ := initCentral(t)
	old := newEnrolled(t, "ZM-001")
	if code, out, _ := runCLI(t, "devices", "import", "--dir", dir, writeRecord(t, old)); code != 0 {
		t.Fatal(out)
	}
	// Revoked (which revokes the certificates it has so far), then a
	// certificate issued with the old keys that replace must revoke.
	runCLI(t, "devices", "revoke", "--dir", dir, "ZM-001")
	st, err := store.Open(context.Background(), "sqlite:"+filepath.Join(dir, dbFile), nil)
	if err != nil {
		t.Fatal(err)
	}
	der := issueTestCert(t, dir, "ZM-001")
	if err := st.RecordCertificate(context.Background(), "ZM-001", "p-1", der); err != nil {
		t.Fatal(err)
	}
	st.Close()

	swapped := newEnrolled(t, "ZM-001")
	swapped.rec["deviceSerial"] = "SN-NEW-BOARD"
	newFile := writeRecord(t, swapped)
	// Import never replaces an enrolled identity, revoked or not.
	if code, out, _ := runCLI(t, "devices", "import", "--dir", dir, newFile); code != 1 || !strings.Contains(out, "different identity key") {
		t.Fatalf("import of new keys: %d %s", code, out)
	}
	if code, _, errOut := runCLI(t, "devices", "replace", "--dir", dir, newFile); code != 2 || !strings.Contains(errOut, "--reason is required") {
		t.Errorf("replace without a reason: %d %s", code, errOut)
	}
	if code, _, errOut := runCLI(t, "devices", "replace", "--dir", dir, "--reason", "TPM replaced", writeRecord(t, old)); code != 1 || !strings.Contains(errOut, "nothing to replace") {
		t.Errorf("replace with the same keys: %d %s", code, errOut)
	}
	code, out, errOut := runCLI(t, "devices", "replace", "--dir", dir, "--reason", "TPM replaced, work order 4711", newFile)
	if code != 0 || !strings.Contains(out, "device ZM-001 replaced (was revoked") || !strings.Contains(out, "1 certificate(s) revoked") {
		t.Fatalf("replace: %d %s %s", code, out, errOut)
	}
	_, list, _ := runCLI(t, "devices", "list", "--dir", dir)
	if !strings.Contains(list, "SN-NEW-BOARD") || strings.Contains(list, "revoked") {
		t.Errorf("after replace: %s", list)
	}
	// The old keys never come back, for this device or another.
	if code, _, errOut := runCLI(t, "devices", "replace", "--dir", dir, "--reason", "back", writeRecord(t, old)); code != 1 || !strings.Contains(errOut, "before it was replaced") {
		t.Errorf("replace back to the old keys: %d %s", code, errOut)
	}
	other := old
	other.rec = map[string]string{}
	for k, v := range old.rec {
		other.rec[k] = v
	}
	other.id, other.rec["deviceId"], other.rec["deviceSerial"] = "ZM-009", "ZM-009", "SN-ZM-009"
	if code, out, _ := runCLI(t, "devices", "import", "--dir", dir, writeRecord(t, other)); code != 1 || !strings.Contains(out, "was ZM-001's before it was replaced") {
		t.Errorf("import of replaced keys for another device: %d %s", code, out)
	}
	_, certs, _ := runCLI(t, "certificates", "list", "--dir", dir, "--device", "ZM-001")
	if !strings.Contains(certs, "device-replaced") {
		t.Errorf("certificate of the old keys: %s", certs)
	}
	_, audit, _ := runCLI(t, "audit", "export", "--dir", dir)
	if !strings.Contains(audit, `"event":"device.replace"`) || !strings.Contains(audit, `TPM replaced, work order 4711`) ||
		!strings.Contains(audit, `"event":"device.replace_refused"`) || !strings.Contains(audit, "reason=device-replaced") {
		t.Errorf("audit: %s", audit)
	}
	st, _ = store.Open(context.Background(), "sqlite:"+filepath.Join(dir, dbFile), nil)
	defer st.Close()
	h, err := st.KeyHistory(context.Background(), "ZM-001")
	if err != nil || len(h) != 1 || h[0].Serial != "SN-ZM-001" || h[0].RevokedAt.IsZero() || h[0].Reason != "TPM replaced, work order 4711" {
		t.Errorf("key history %+v %v", h, err)
	}
}

// issueTestCert issues a client certificate for deviceID from the
// directory's device CA, as the pusher does.
func issueTestCert(t *testing.T, dir, deviceID string) []byte {
	t.Helper()
	ca, err := loadPair(dir, deviceCACert, deviceCAKey)
	if err != nil {
		t.Fatal(err)
	}
	k, _ := newKey()
	tmpl := serverTemplate(deviceID, nil, time.Now())
	tmpl.Subject.CommonName = deviceID
	c, err := issue(tmpl, &k.PublicKey, ca.cert, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return c.Raw
}
