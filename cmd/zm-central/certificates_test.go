package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zmonitor/firmware/internal/central/store"
)

func TestCertificatesList(t *testing.T) {
	dir, _ := initCentral(t)
	var recs []map[string]string
	for _, id := range []string{"ZM-001", "ZM-002"} {
		recs = append(recs, newEnrolled(t, id).rec)
	}
	js, _ := json.Marshal(recs)
	f := filepath.Join(t.TempDir(), "d.json")
	os.WriteFile(f, js, 0o644)
	if code, out, _ := runCLI(t, "devices", "import", "--dir", dir, f); code != 0 {
		t.Fatalf("import: %s", out)
	}
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(dir, dbFile), nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for i, c := range []struct{ device, pairing string }{{"ZM-001", "p-a"}, {"ZM-001", "p-b"}, {"ZM-002", "p-c"}} {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(int64(0xa1 + i)), Subject: pkix.Name{CommonName: c.device}, NotBefore: now, NotAfter: now.Add(time.Hour)}
		der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
		if err := st.RecordCertificate(ctx, c.device, c.pairing, der); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.RevokeCertificate(ctx, "a1", store.ReasonNotDelivered); err != nil {
		t.Fatal(err)
	}
	if err := st.MarkCertificateInUse(ctx, "a2"); err != nil {
		t.Fatal(err)
	}
	st.Close()

	rows := func(args ...string) []string {
		t.Helper()
		code, out, errs := runCLI(t, append([]string{"certificates", "list", "--dir", dir}, args...)...)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if code != 0 || !strings.HasPrefix(lines[0], "SERIAL  DEVICE  STATE") {
			t.Fatalf("certificates list %v: exit %d\n%s%s", args, code, out, errs)
		}
		return lines[1:]
	}
	all := rows()
	if len(all) != 3 || !strings.HasPrefix(all[0], "a1 ") || !strings.Contains(all[0], " revoked ") || !strings.Contains(all[0], " not-delivered ") ||
		!strings.Contains(all[1], " in-use ") || !strings.Contains(all[2], " issued ") || !strings.HasSuffix(all[2], " p-c") {
		t.Errorf("all:\n%s", strings.Join(all, "\n"))
	}
	if got := rows("--state", "revoked"); len(got) != 1 || !strings.HasPrefix(got[0], "a1 ") {
		t.Errorf("--state revoked:\n%s", strings.Join(got, "\n"))
	}
	if got := rows("--state", "issued"); len(got) != 1 || !strings.HasPrefix(got[0], "a3 ") {
		t.Errorf("--state issued:\n%s", strings.Join(got, "\n"))
	}
	if got := rows("--device", "ZM-001"); len(got) != 2 {
		t.Errorf("--device ZM-001:\n%s", strings.Join(got, "\n"))
	}
	if got := rows("--device", "ZM-404"); len(got) != 0 {
		t.Errorf("unknown device:\n%s", strings.Join(got, "\n"))
	}
	for _, bad := range [][]string{{"--state", "lost"}, {"extra"}} {
		if code, _, _ := runCLI(t, append([]string{"certificates", "list", "--dir", dir}, bad...)...); code != 2 {
			t.Errorf("%v: exit %d, want 2", bad, code)
		}
	}
	if code, _, _ := runCLI(t, "certificates"); code != 2 {
		t.Errorf("certificates without subcommand: exit %d, want 2", code)
	}
}
