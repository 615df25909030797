package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zmonitor/firmware/internal/central/store"
)

// certificates revoke and crl: the certificate issued with the
// distribution point is revoked with an operator's reason, audited; the CRL
// verifies with OpenSSL against the device CA, and OpenSSL's own
// revocation check refuses the revoked certificate and accepts the other.
func TestRevokeAndCRLVerifyWithOpenSSL(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not found: run scripts/install-deps.sh")
	}
	dir, _ := initCentral(t)
	js, _ := json.Marshal([]map[string]string{newEnrolled(t, "ZM-001").rec})
	f := filepath.Join(t.TempDir(), "d.json")
	os.WriteFile(f, js, 0o644)
	if code, out, _ := runCLI(t, "devices", "import", "--dir", dir, f); code != 0 {
		t.Fatalf("import: %s", out)
	}
	const crlURL = "http://central.test:9464/crl"
	c, err := deviceCA(dir, crlURL)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(dir, dbFile), nil)
	if err != nil {
		t.Fatal(err)
	}
	var certs []*x509.Certificate
	for range 2 {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "ZM-001"}}, k)
		csr, _ := x509.ParseCertificateRequest(der)
		cert, err := c.IssueClient(csr, "ZM-001", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if err := st.RecordCertificate(ctx, "ZM-001", "p", cert.Raw); err != nil {
			t.Fatal(err)
		}
		if len(cert.CRLDistributionPoints) != 1 || cert.CRLDistributionPoints[0] != crlURL {
			t.Errorf("distribution points %v", cert.CRLDistributionPoints)
		}
		certs = append(certs, cert)
	}
	st.Close()
	revoked, kept := store.CertificateSerial(certs[0]), store.CertificateSerial(certs[1])

	for _, bad := range [][]string{{revoked}, {revoked, "--reason", "superseded"}, {revoked, "--reason", "lost"}, {"--reason", "key-compromise"}} {
		if code, _, _ := runCLI(t, append([]string{"certificates", "revoke", "--dir", dir}, bad...)...); code != 2 {
			t.Errorf("certificates revoke %v: exit %d, want 2", bad, code)
		}
	}
	if code, _, errs := runCLI(t, "certificates", "revoke", "--dir", dir, "--reason", "key-compromise", "ffff"); code != 1 || !strings.Contains(errs, "not found") {
		t.Errorf("unknown serial: exit %d %s", code, errs)
	}
	code, out, errs := runCLI(t, "certificates", "revoke", "--dir", dir, "--reason", "key-compromise", "--note", "monitor stolen from ward 4", strings.ToUpper(revoked))
	if code != 0 || !strings.Contains(out, "revoked (key-compromise)") {
		t.Fatalf("revoke: exit %d\n%s%s", code, out, errs)
	}
	if code, out, _ := runCLI(t, "audit", "export", "--dir", dir); code != 0 || !strings.Contains(out, `"certificate.revoked"`) || !strings.Contains(out, "monitor stolen from ward 4") {
		t.Errorf("audit:\n%s", out)
	}

	tmp := t.TempDir()
	crlFile := filepath.Join(tmp, "crl.pem")
	if code, out, errs := runCLI(t, "crl", "--dir", dir, "--out", crlFile); code != 0 {
		t.Fatalf("crl: exit %d\n%s%s", code, out, errs)
	}
	ossl := func(args ...string) (string, error) {
		out, err := exec.CommandContext(ctx, openssl, args...).CombinedOutput()
		return string(out), err
	}
	caFile := filepath.Join(dir, deviceCACert)
	if out, err := ossl("crl", "-in", crlFile, "-noout", "-verify", "-CAfile", caFile); err != nil || !strings.Contains(out, "verify OK") {
		t.Errorf("openssl crl -verify: %v\n%s", err, out)
	}
	if out, err := ossl("crl", "-in", crlFile, "-noout", "-text"); err != nil || !strings.Contains(strings.ToUpper(out), strings.ToUpper(revoked)) ||
		strings.Contains(strings.ToUpper(out), strings.ToUpper(kept)) || !strings.Contains(out, "Key Compromise") {
		t.Errorf("openssl crl -text: %v\n%s", err, out)
	}
	for i, cert := range certs {
		pemFile := filepath.Join(tmp, "cert.pem")
		os.WriteFile(pemFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o644)
		out, err := ossl("verify", "-crl_check", "-purpose", "sslclient", "-CAfile", caFile, "-CRLfile", crlFile, pemFile)
		if i == 0 && (err == nil || !strings.Contains(out, "certificate revoked")) {
			t.Errorf("openssl verify -crl_check of the revoked certificate: %v\n%s", err, out)
		}
		if i == 1 && (err != nil || !strings.Contains(out, ": OK")) {
			t.Errorf("openssl verify -crl_check of the other certificate: %v\n%s", err, out)
		}
	}
	// devices revoke revokes the device's other certificate too.
	if code, out, errs := runCLI(t, "devices", "revoke", "--dir", dir, "ZM-001"); code != 0 || !strings.Contains(out, "and 1 certificate(s)") {
		t.Fatalf("devices revoke: exit %d\n%s%s", code, out, errs)
	}
	if code, _, errs := runCLI(t, "crl", "--dir", dir, "--out", crlFile); code != 0 {
		t.Fatalf("crl: %s", errs)
	}
	pemFile := filepath.Join(tmp, "kept.pem")
	os.WriteFile(pemFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certs[1].Raw}), 0o644)
	if out, err := ossl("verify", "-crl_check", "-CAfile", caFile, "-CRLfile", crlFile, pemFile); err == nil || !strings.Contains(out, "certificate revoked") {
		t.Errorf("after devices revoke, openssl verify -crl_check: %v\n%s", err, out)
	}
	// Revoking again says so and changes nothing.
	if code, out, _ := runCLI(t, "certificates", "revoke", "--dir", dir, "--reason", "cessation-of-operation", revoked); code != 0 || !strings.Contains(out, "already revoked (key-compromise)") {
		t.Errorf("second revoke: exit %d %s", code, out)
	}
}
