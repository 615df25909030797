package ca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"testing"
	"time"

	"github.com/zmonitor/firmware/internal/testkit/testpki"
)

func csrFor(t *testing.T, curve elliptic.Curve, cn string) (*x509.CertificateRequest, *ecdsa.PrivateKey) {
	t.Helper()
	k, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}}, k)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		t.Fatal(err)
	}
	return csr, k
}

func TestIssueClient(t *testing.T) {
	now := time.Now()
	root, err := testpki.NewCA("device CA", now)
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(root.Cert, root.Key, nil)
	if err != nil {
		t.Fatal(err)
	}
	csr, k := csrFor(t, elliptic.P256(), "ZM-001")
	cert, err := c.IssueClient(csr, "ZM-001", now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: root.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, CurrentTime: now}); err != nil {
		t.Errorf("issued certificate does not verify for clientAuth: %v", err)
	}
	if !cert.PublicKey.(*ecdsa.PublicKey).Equal(&k.PublicKey) || cert.Subject.CommonName != "ZM-001" || len(cert.DNSNames) != 1 || cert.DNSNames[0] != "ZM-001" {
		t.Errorf("certificate = %v %v", cert.Subject, cert.DNSNames)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: root.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, CurrentTime: now}); err == nil {
		t.Error("a device certificate is valid for serverAuth")
	}
}

func TestIssueClientRefusals(t *testing.T) {
	now := time.Now()
	root, _ := testpki.NewCA("device CA", now)
	c, _ := New(root.Cert, root.Key, nil)
	wrongName, _ := csrFor(t, elliptic.P256(), "ZM-002")
	if _, err := c.IssueClient(wrongName, "ZM-001", now); err == nil {
		t.Error("issued for a CSR naming another device")
	}
	p384, _ := csrFor(t, elliptic.P384(), "ZM-001")
	if _, err := c.IssueClient(p384, "ZM-001", now); err == nil {
		t.Error("issued for a P-384 key")
	}
	tampered, _ := csrFor(t, elliptic.P256(), "ZM-001")
	tampered.Signature[len(tampered.Signature)-1] ^= 1
	if _, err := c.IssueClient(tampered, "ZM-001", now); err == nil {
		t.Error("issued for a CSR with a bad signature")
	}
	leaf, _ := root.NewLeaf(testpki.ClientTemplate("not a ca"), now)
	if _, err := New(leaf.Cert, leaf.Key, nil); err == nil {
		t.Error("New accepted a leaf certificate")
	}
	other, _ := testpki.NewCA("other", now)
	if _, err := New(root.Cert, other.Key, nil); err == nil {
		t.Error("New accepted a key that does not match")
	}
}
