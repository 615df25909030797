package est

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/smallstep/pkcs7"
)

// Paths under an EST server's base (RFC 7030 §3.2.2): the base is
// https://host[:port]/.well-known/est, optionally followed by a label.
const (
	WellKnown          = "/.well-known/est"
	PathCACerts        = "/cacerts"
	PathSimpleReenroll = "/simplereenroll"
)

// ProblemDeviceDecommissioned is the RFC 9457 problem type (status 403)
// with which the Central Station's EST server answers any request
// authenticated by a certificate of a device an operator decommissioned
// (`zm-central devices decommission`). The device, having verified the
// server against its provisioning's CA, wipes its provisioning and shows
// "Decommissioned" (docs/lifecycle.md, Decommissioning).
const ProblemDeviceDecommissioned = "urn:zmonitor:problem:device-decommissioned"

// Media types (RFC 7030 §4.1.3, §4.2.1, §4.2.3).
const (
	TypeCSR       = "application/pkcs10"
	TypeCertsOnly = "application/pkcs7-mime; smime-type=certs-only"
	// TypeCertsOnlyBare is the media type without its parameter, as
	// servers that omit smime-type send it.
	TypeCertsOnlyBare = "application/pkcs7-mime"
	// TransferEncoding is the Content-Transfer-Encoding of every body.
	TransferEncoding = "base64"
)

// Limits on what is read from the network.
const (
	// MaxCSRBody bounds a request body: a P-256 CSR is ~400 bytes of DER.
	MaxCSRBody = 16 << 10
	// MaxCertsBody bounds a response body: a few certificates.
	MaxCertsBody = 64 << 10
	// MaxCerts bounds how many certificates a certs-only answer may hold.
	MaxCerts = 8
)

// Errors callers may test with errors.Is.
var (
	ErrTooLarge = errors.New("est: body too large")
	ErrBase64   = errors.New("est: body is not base64")
)

// EncodeCSR is the body of a simple re-enrollment request: the base64 of
// the DER certification request.
func EncodeCSR(der []byte) []byte {
	return []byte(base64.StdEncoding.EncodeToString(der))
}

// DecodeCSR reads a simple re-enrollment request body and parses the
// certification request in it. Its signature is checked: a request the
// holder of its key did not sign is refused.
func DecodeCSR(body []byte) (*x509.CertificateRequest, error) {
	der, err := decodeBase64(body, MaxCSRBody)
	if err != nil {
		return nil, fmt.Errorf("est: certification request: %w", err)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, fmt.Errorf("est: certification request: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("est: certification request: signature: %w", err)
	}
	return csr, nil
}

// EncodeCerts is the body of a certs-only answer: the base64 of a PKCS#7
// SignedData holding certs, in order, and nothing else.
func EncodeCerts(certs ...*x509.Certificate) ([]byte, error) {
	if len(certs) == 0 || len(certs) > MaxCerts {
		return nil, fmt.Errorf("est: certs-only: %d certificates, want 1 to %d", len(certs), MaxCerts)
	}
	var raw []byte
	for _, c := range certs {
		raw = append(raw, c.Raw...)
	}
	der, err := pkcs7.DegenerateCertificate(raw)
	if err != nil {
		return nil, fmt.Errorf("est: certs-only: %w", err)
	}
	return []byte(base64.StdEncoding.EncodeToString(der)), nil
}

// DecodeCerts reads a certs-only answer body: base64 of a PKCS#7
// SignedData with at least one and at most MaxCerts certificates, in the
// order they were sent.
func DecodeCerts(body []byte) ([]*x509.Certificate, error) {
	der, err := decodeBase64(body, MaxCertsBody)
	if err != nil {
		return nil, fmt.Errorf("est: certs-only: %w", err)
	}
	p7, err := parsePKCS7(der)
	if err != nil {
		return nil, fmt.Errorf("est: certs-only: %w", err)
	}
	switch n := len(p7.Certificates); {
	case n == 0:
		return nil, errors.New("est: certs-only: no certificate")
	case n > MaxCerts:
		return nil, fmt.Errorf("est: certs-only: %d certificates, more than %d", n, MaxCerts)
	}
	return p7.Certificates, nil
}

// parsePKCS7 parses with the library, turning a panic in it into an
// error: the bytes come from the network.
func parsePKCS7(der []byte) (p7 *pkcs7.PKCS7, err error) {
	defer func() {
		if r := recover(); r != nil {
			p7, err = nil, fmt.Errorf("malformed PKCS#7 (parser: %v)", r)
		}
	}()
	// The library converts BER to DER first and ignores what follows the
	// outer value: refuse trailing bytes after a DER value here (a BER
	// answer, which some EST servers send, is left to the library).
	var outer asn1.RawValue
	if rest, err := asn1.Unmarshal(der, &outer); err == nil && len(rest) > 0 {
		return nil, fmt.Errorf("PKCS#7: %d bytes after the structure", len(rest))
	}
	p7, err = pkcs7.Parse(der)
	if err != nil {
		return nil, fmt.Errorf("PKCS#7: %w", err)
	}
	return p7, nil
}

// decodeBase64 decodes standard base64, padded, with line breaks (CR, LF)
// allowed anywhere and nothing else, from a body of at most max bytes.
func decodeBase64(body []byte, max int) ([]byte, error) {
	if len(body) > max {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(body), max)
	}
	clean := make([]byte, 0, len(body))
	for _, c := range body {
		if c == '\r' || c == '\n' {
			continue
		}
		clean = append(clean, c)
	}
	clean = bytes.TrimRight(clean, " \t")
	if len(clean) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrBase64)
	}
	der := make([]byte, base64.StdEncoding.DecodedLen(len(clean)))
	n, err := base64.StdEncoding.Strict().Decode(der, clean)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBase64, err)
	}
	return der[:n], nil
}
