package est

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func testCert(t testing.TB, cn string) *x509.Certificate {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func testCSR(t testing.TB) []byte {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "ZM-001"}}, k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestCertsRoundTrip(t *testing.T) {
	a, b := testCert(t, "leaf"), testCert(t, "ca")
	body, err := EncodeCerts(a, b)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeCerts(body)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !got[0].Equal(a) || !got[1].Equal(b) {
		t.Fatalf("decoded %d certificates, not the two sent in order", len(got))
	}
	// Servers wrap base64 at 64 or 76 columns with CRLF (RFC 2045).
	var wrapped bytes.Buffer
	for i := 0; i < len(body); i += 64 {
		wrapped.Write(body[i:min(i+64, len(body))])
		wrapped.WriteString("\r\n")
	}
	if got, err := DecodeCerts(wrapped.Bytes()); err != nil || len(got) != 2 {
		t.Fatalf("line-wrapped body: %d certificates, %v", len(got), err)
	}
}

// The certs-only answer is what OpenSSL reads as PKCS#7 with certificates:
// another EST implementation reads ours.
func TestCertsReadByOpenSSL(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed (scripts/install-deps.sh)")
	}
	a := testCert(t, "ZM-OPENSSL-LEAF")
	body, err := EncodeCerts(a)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := base64.StdEncoding.DecodeString(string(body))
	p := filepath.Join(t.TempDir(), "certs.p7")
	if err := os.WriteFile(p, der, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("openssl", "pkcs7", "-inform", "DER", "-in", p, "-print_certs", "-noout").CombinedOutput()
	if err != nil {
		t.Fatalf("openssl pkcs7: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "ZM-OPENSSL-LEAF") {
		t.Fatalf("openssl did not find the certificate:\n%s", out)
	}
}

func TestDecodeCertsRefuses(t *testing.T) {
	one, err := EncodeCerts(testCert(t, "x"))
	if err != nil {
		t.Fatal(err)
	}
	der, _ := base64.StdEncoding.DecodeString(string(one))
	many := make([]*x509.Certificate, MaxCerts+1)
	for i := range many {
		many[i] = testCert(t, "x")
	}
	for name, body := range map[string][]byte{
		"empty":         nil,
		"not base64":    []byte("@@@@"),
		"unpadded":      bytes.TrimRight(one, "="),
		"trailing data": []byte(base64.StdEncoding.EncodeToString(append(append([]byte{}, der...), 0))),
		"not PKCS#7":    []byte(base64.StdEncoding.EncodeToString(testCert(t, "x").Raw)),
		"too large":     bytes.Repeat([]byte("A"), MaxCertsBody+4),
		"space inside":  append(append(append([]byte{}, one[:8]...), ' '), one[8:]...),
		"url alphabet":  []byte(base64.URLEncoding.EncodeToString(der)),
	} {
		if bytes.Equal(body, one) {
			continue
		}
		if _, err := DecodeCerts(body); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := EncodeCerts(many...); err == nil {
		t.Errorf("EncodeCerts of %d certificates accepted", len(many))
	}
	if _, err := DecodeCerts(bytes.Repeat([]byte("A"), MaxCertsBody+4)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("too large: err = %v, want ErrTooLarge", err)
	}
}

func TestCSR(t *testing.T) {
	der := testCSR(t)
	csr, err := DecodeCSR(EncodeCSR(der))
	if err != nil {
		t.Fatal(err)
	}
	if csr.Subject.CommonName != "ZM-001" {
		t.Fatalf("CN %q", csr.Subject.CommonName)
	}
	bad := bytes.Clone(der)
	bad[len(bad)-3] ^= 0x40 // inside the signature
	for name, body := range map[string][]byte{
		"bad signature": EncodeCSR(bad),
		"trailing":      EncodeCSR(append(bytes.Clone(der), 0)),
		"not a CSR":     EncodeCSR(testCert(t, "x").Raw),
		"empty":         []byte("\r\n"),
		"too large":     bytes.Repeat([]byte("A"), MaxCSRBody+4),
	} {
		if _, err := DecodeCSR(body); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzDecodeCerts(f *testing.F) {
	one, _ := EncodeCerts(testCert(f, "fuzz"))
	f.Add(one)
	f.Add([]byte("MIIB"))
	f.Fuzz(func(t *testing.T, body []byte) {
		certs, err := DecodeCerts(body)
		if err == nil && (len(certs) == 0 || len(certs) > MaxCerts) {
			t.Fatalf("accepted %d certificates", len(certs))
		}
	})
}

func FuzzDecodeCSR(f *testing.F) {
	f.Add(EncodeCSR(testCSR(f)))
	f.Fuzz(func(t *testing.T, body []byte) {
		if csr, err := DecodeCSR(body); err == nil && csr.CheckSignature() != nil {
			t.Fatal("accepted a request whose signature does not verify")
		}
	})
}
