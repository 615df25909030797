package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"time"
)

// CA issues device client certificates.
type CA struct {
	cert     *x509.Certificate
	key      crypto.Signer
	validity time.Duration
	rand     io.Reader
	crlURL   string
}

// Opts tune a CA.
type Opts struct {
	// Validity of issued certificates (default 397 days).
	Validity time.Duration
	// Rand is the randomness for serial numbers and signatures (default
	// crypto/rand).
	Rand io.Reader
	// CRLURL, when set, is the CRL distribution point written into every
	// certificate issued (RFC 5280 section 4.2.1.13), e.g.
	// http://central.hospital:9464/crl.
	CRLURL string
}

// New returns a CA signing with key under cert. cert must be a CA
// certificate for key.
func New(cert *x509.Certificate, key crypto.Signer, o *Opts) (*CA, error) {
	var opts Opts
	if o != nil {
		opts = *o
	}
	if opts.Validity == 0 {
		opts.Validity = 397 * 24 * time.Hour
	}
	if opts.Rand == nil {
		opts.Rand = rand.Reader
	}
	if !cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, errors.New("ca: certificate is not a CA certificate with certSign")
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return nil, errors.New("ca: key does not match the CA certificate")
	}
	return &CA{cert: cert, key: key, validity: opts.Validity, rand: opts.Rand, crlURL: opts.CRLURL}, nil
}

// Certificate is the CA certificate (the device's caCertificate trusts the
// monitoring server through it; the server trusts devices through it).
func (c *CA) Certificate() *x509.Certificate { return c.cert }

// IssueClient checks csr and issues a clientAuth certificate for deviceID:
// subject CN and DNS SAN = deviceID, ECDSA P-256 keys only.
func (c *CA) IssueClient(csr *x509.CertificateRequest, deviceID string, now time.Time) (*x509.Certificate, error) {
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("ca: CSR signature: %w", err)
	}
	pub, ok := csr.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return nil, errors.New("ca: CSR key is not ECDSA P-256")
	}
	if csr.Subject.CommonName != deviceID {
		return nil, fmt.Errorf("ca: CSR is for %q, expected %q", csr.Subject.CommonName, deviceID)
	}
	serial, err := rand.Int(c.rand, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("ca: serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: deviceID, SerialNumber: csr.Subject.SerialNumber, Organization: []string{"Z Monitor devices"}},
		DNSNames:     []string{deviceID},
		NotBefore:    now.Add(-5 * time.Minute),
		NotAfter:     now.Add(c.validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if c.crlURL != "" {
		tmpl.CRLDistributionPoints = []string{c.crlURL}
	}
	if tmpl.NotAfter.After(c.cert.NotAfter) {
		tmpl.NotAfter = c.cert.NotAfter
	}
	der, err := x509.CreateCertificate(c.rand, tmpl, c.cert, pub, c.key)
	if err != nil {
		return nil, fmt.Errorf("ca: sign: %w", err)
	}
	return x509.ParseCertificate(der)
}

// CRLValidity is how long a CRL is valid (its nextUpdate after thisUpdate):
// relying parties fetch a new one before.
const CRLValidity = 7 * 24 * time.Hour

// CRL signs a certificate revocation list of the revoked entries (RFC 5280
// section 5, version 2, with the authority key identifier and CRL number
// crypto/x509 writes). number must grow with each CRL the CA publishes.
func (c *CA) CRL(entries []x509.RevocationListEntry, number *big.Int, now time.Time) ([]byte, error) {
	der, err := x509.CreateRevocationList(c.rand, &x509.RevocationList{
		RevokedCertificateEntries: entries,
		Number:                    number,
		ThisUpdate:                now,
		NextUpdate:                now.Add(CRLValidity),
	}, c.cert, c.key)
	if err != nil {
		return nil, fmt.Errorf("ca: CRL: %w", err)
	}
	return der, nil
}
