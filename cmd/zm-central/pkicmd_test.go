package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/asn1"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zmonitor/firmware/internal/central/store"
	"github.com/zmonitor/firmware/internal/proto/payload"
)

func pkiStatus(t *testing.T, dir string) map[string]certStatus {
	t.Helper()
	code, out, errs := runCLI(t, "pki", "status", "--json", "--dir", dir)
	if code != 0 {
		t.Fatalf("pki status: exit %d\n%s%s", code, out, errs)
	}
	m := map[string]certStatus{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var s certStatus
		if err := json.Unmarshal([]byte(l), &s); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		m[s.Name] = s
	}
	return m
}

// makeExpireSoon re-issues the tablet certificate (same key) to end in
// 10 days.
func makeExpireSoon(t *testing.T, dir string) {
	t.Helper()
	ca, err := loadPair(dir, deviceCACert, deviceCAKey)
	if err != nil {
		t.Fatal(err)
	}
	old, err := loadPair(dir, tabletCert, tabletKey)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := serverTemplate(old.cert.Subject.CommonName, []string{"localhost", "127.0.0.1"}, time.Now())
	tmpl.NotAfter = time.Now().Add(10 * 24 * time.Hour)
	c, err := issue(tmpl, &old.key.PublicKey, ca.cert, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, tabletCert))
	if err := writeCert(dir, tabletCert, c); err != nil {
		t.Fatal(err)
	}
}

func TestPKIStatusAndRenew(t *testing.T) {
	dir, _ := initCentral(t)
	st := pkiStatus(t, dir)
	for name, days := range map[string]int{"device-ca": 3649, "provisioning-root": 3649, "provisioning-signer": 729, "tablet-server": 396} {
		s, ok := st[name]
		if !ok || s.DaysLeft != days || s.Warning != "" || s.Serial == "" || s.Subject == "" {
			t.Errorf("%s: %+v, want %d days left and no warning", name, s, days)
		}
	}
	if !strings.HasPrefix(st["device-ca"].Renew, "not renewable") || st["tablet-server"].Renew != "zm-central pki renew tablet-server" {
		t.Errorf("renew hints: %q, %q", st["device-ca"].Renew, st["tablet-server"].Renew)
	}

	makeExpireSoon(t, dir)
	code, out, _ := runCLI(t, "pki", "status", "--dir", dir)
	if code != 0 || !strings.Contains(out, "expires within 30 days") || !strings.Contains(out, "tablet-server") {
		t.Fatalf("pki status with the tablet certificate ending in 10 days: exit %d\n%s", code, out)
	}
	before, _ := loadPair(dir, tabletCert, tabletKey)

	code, out, errs := runCLI(t, "pki", "renew", "--dir", dir, "tablet-server")
	if code != 0 || !strings.Contains(out, "tablet-server renewed") {
		t.Fatalf("pki renew tablet-server: exit %d\n%s%s", code, out, errs)
	}
	after, err := loadPair(dir, tabletCert, tabletKey)
	if err != nil {
		t.Fatalf("the renewed pair: %v", err)
	}
	if after.key.Equal(before.key) || after.cert.SerialNumber.Cmp(before.cert.SerialNumber) == 0 {
		t.Error("renewal kept the key or the serial")
	}
	if !slices.Equal(after.cert.DNSNames, []string{"localhost"}) || len(after.cert.IPAddresses) != 1 || after.cert.Subject.String() != before.cert.Subject.String() {
		t.Errorf("renewed names %v %v subject %v", after.cert.DNSNames, after.cert.IPAddresses, after.cert.Subject)
	}
	ca, _ := loadCert(dir, deviceCACert)
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	if _, err := after.cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: "localhost", KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		t.Errorf("renewed tablet certificate: %v", err)
	}
	if fi, _ := os.Stat(filepath.Join(dir, tabletKey)); fi.Mode().Perm() != keyFileMode {
		t.Errorf("key mode %o", fi.Mode().Perm())
	}
	if s := pkiStatus(t, dir)["tablet-server"]; s.Warning != "" || s.DaysLeft != 396 {
		t.Errorf("after renewal: %+v", s)
	}

	// The signer needs the provisioning root's key, kept offline.
	offline := filepath.Join(t.TempDir(), "root.key")
	if err := os.Rename(filepath.Join(dir, provRootKey), offline); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := runCLI(t, "pki", "renew", "--dir", dir, "provisioning-signer"); code != 1 || !strings.Contains(errs, "--root-key") {
		t.Errorf("signer renewal without the root key: exit %d %s", code, errs)
	}
	oldSigner, _ := loadCert(dir, provSignerCert)
	if code, out, errs := runCLI(t, "pki", "renew", "--dir", dir, "--root-key", offline, "provisioning-signer"); code != 0 {
		t.Fatalf("signer renewal: exit %d\n%s%s", code, out, errs)
	}
	signer, err := loadPair(dir, provSignerCert, provSignerKey)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := loadCert(dir, provRootCert)
	rootPool := x509.NewCertPool()
	rootPool.AddCert(root)
	if _, err := signer.cert.Verify(x509.VerifyOptions{Roots: rootPool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Errorf("renewed signer: %v", err)
	}
	if !slices.ContainsFunc(signer.cert.UnknownExtKeyUsage, func(o asn1.ObjectIdentifier) bool { return o.Equal(payload.SignerEKU) }) || signer.cert.Equal(oldSigner) {
		t.Errorf("renewed signer lacks the signer EKU or is the old one")
	}

	for _, name := range []string{"device-ca", "provisioning-root"} {
		if code, _, errs := runCLI(t, "pki", "renew", "--dir", dir, name); code != 1 || !strings.Contains(errs, "not renewable in place") {
			t.Errorf("pki renew %s: exit %d %s", name, code, errs)
		}
	}
	if code, _, _ := runCLI(t, "pki", "renew", "--dir", dir, "monitor"); code != 2 {
		t.Errorf("pki renew of an unknown name: exit %d, want 2", code)
	}

	var audits []string
	s, err := store.Open(context.Background(), "sqlite:"+filepath.Join(dir, dbFile), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.ExportAudit(context.Background(), func(r store.AuditRecord) error { //nolint:errcheck // checked by the count
		if r.Event == "pki.renewed" {
			audits = append(audits, r.Detail)
		}
		return nil
	})
	if len(audits) != 2 || !strings.HasPrefix(audits[0], "tablet-server: serial "+store.CertificateSerial(before.cert)+" -> "+store.CertificateSerial(after.cert)) ||
		!strings.HasPrefix(audits[1], "provisioning-signer: ") {
		t.Errorf("pki.renewed audit: %q", audits)
	}
}

// A renewal interrupted at each point of the replacement leaves the old
// pair or the new one once the next command ran completeRenewals.
func TestRenewalInterrupted(t *testing.T) {
	dir, _ := initCentral(t)
	old, _ := loadPair(dir, tabletCert, tabletKey)
	ca, _ := loadPair(dir, deviceCACert, deviceCAKey)
	newPair := func() pair {
		k, _ := newKey()
		c, err := issue(serverTemplate("x", []string{"localhost"}, time.Now()), &k.PublicKey, ca.cert, ca.key)
		if err != nil {
			t.Fatal(err)
		}
		return pair{c, k}
	}
	reset := func() {
		for _, n := range []string{tabletCert, tabletKey, tabletCert + newSuffix, tabletKey + newSuffix} {
			os.Remove(filepath.Join(dir, n))
		}
		writeCert(dir, tabletCert, old.cert) //nolint:errcheck // checked by loadPair below
		writeKey(dir, tabletKey, old.key)    //nolint:errcheck // checked by loadPair below
	}
	for _, tc := range []struct {
		name    string
		crash   func(p pair)
		wantNew bool
	}{
		{"key .new half written", func(p pair) {
			os.WriteFile(filepath.Join(dir, tabletKey+newSuffix), []byte("-----BEGIN"), 0o600) //nolint:errcheck
		}, false},
		{"both .new written", func(p pair) {
			writeKey(dir, tabletKey+newSuffix, p.key)    //nolint:errcheck
			writeCert(dir, tabletCert+newSuffix, p.cert) //nolint:errcheck
		}, false},
		{"key renamed", func(p pair) {
			writeKey(dir, tabletKey+newSuffix, p.key)                                         //nolint:errcheck
			writeCert(dir, tabletCert+newSuffix, p.cert)                                      //nolint:errcheck
			os.Rename(filepath.Join(dir, tabletKey+newSuffix), filepath.Join(dir, tabletKey)) //nolint:errcheck
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reset()
			p := newPair()
			tc.crash(p)
			if code, out, errs := runCLI(t, "pki", "status", "--dir", dir); code != 0 {
				t.Fatalf("pki status after the crash: exit %d\n%s%s", code, out, errs)
			}
			got, err := loadPair(dir, tabletCert, tabletKey)
			if err != nil {
				t.Fatalf("pair after recovery: %v", err)
			}
			want := old.cert
			if tc.wantNew {
				want = p.cert
			}
			if !bytes.Equal(got.cert.Raw, want.Raw) {
				t.Errorf("recovered to the wrong pair (want new: %v)", tc.wantNew)
			}
			for _, n := range []string{tabletCert + newSuffix, tabletKey + newSuffix} {
				if _, err := os.Stat(filepath.Join(dir, n)); err == nil {
					t.Errorf("%s left behind", n)
				}
			}
		})
	}
}
