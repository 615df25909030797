package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/zmonitor/firmware/internal/proto/payload"
)

// Files of a Central Station directory.
const (
	dbFile          = "central.db"
	deviceCACert    = "device-ca.pem"
	deviceCAKey     = "device-ca.key"
	provRootCert    = "provisioning-root.pem"
	provRootKey     = "provisioning-root.key"
	provSignerCert  = "provisioning-signer.pem"
	provSignerKey   = "provisioning-signer.key"
	tabletCert      = "tablet-server.pem"
	tabletKey       = "tablet-server.key"
	caValidity      = 10 * 365 * 24 * time.Hour
	signerValidity  = 2 * 365 * 24 * time.Hour
	serverValidity  = 397 * 24 * time.Hour
	backdate        = 5 * time.Minute
	keyFileMode     = 0o600
	certFileMode    = 0o644
	centralDirMode  = 0o700
	serialBits      = 127
	maxPEMFileBytes = 1 << 20
)

func newKey() (*ecdsa.PrivateKey, error) {
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

func newSerial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), serialBits))
}

// issue signs tmpl for pub with parent/parentKey (self-signed when parent
// is nil).
func issue(tmpl *x509.Certificate, pub crypto.PublicKey, parent *x509.Certificate, parentKey crypto.Signer) (*x509.Certificate, error) {
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, parentKey)
	if err != nil {
		return nil, fmt.Errorf("sign %s: %w", tmpl.Subject.CommonName, err)
	}
	return x509.ParseCertificate(der)
}

func caTemplate(cn string, now time.Time) *x509.Certificate {
	return &x509.Certificate{
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"Z Monitor Central Station"}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
}

// signerTemplate is the provisioning signer: it signs payloads (the
// provisioning-signer EKU internal/proto/payload requires) and is the TLS client
// certificate toward devices' provisioning endpoints (clientAuth).
func signerTemplate(now time.Time) *x509.Certificate {
	return &x509.Certificate{
		Subject:               pkix.Name{CommonName: "Z Monitor provisioning signer", Organization: []string{"Z Monitor Central Station"}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(signerValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		UnknownExtKeyUsage:    []asn1.ObjectIdentifier{payload.SignerEKU},
		BasicConstraintsValid: true,
	}
}

// serverTemplate is a TLS server certificate for hosts (names or IPs).
func serverTemplate(cn string, hosts []string, now time.Time) *x509.Certificate {
	t := &x509.Certificate{
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"Z Monitor Central Station"}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(serverValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			t.IPAddresses = append(t.IPAddresses, ip)
		} else if h != "" {
			t.DNSNames = append(t.DNSNames, h)
		}
	}
	return t
}

// writeNew writes a file that must not exist yet.
func writeNew(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return f.Close()
}

func writeCert(dir, name string, c *x509.Certificate) error {
	return writeNew(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}), certFileMode)
}

func writeKey(dir, name string, k *ecdsa.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return fmt.Errorf("encode key %s: %w", name, err)
	}
	b := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	clear(der)
	return writeNew(filepath.Join(dir, name), b, keyFileMode)
}

func readPEM(path, typ string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxPEMFileBytes))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != typ {
		return nil, fmt.Errorf("%s: no PEM %s block", path, typ)
	}
	return blk.Bytes, nil
}

func loadCert(dir, name string) (*x509.Certificate, error) {
	der, err := readPEM(filepath.Join(dir, name), "CERTIFICATE")
	if err != nil {
		return nil, err
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return c, nil
}

// loadKey reads a private key, refusing one readable by others.
func loadKey(dir, name string) (*ecdsa.PrivateKey, error) {
	path := filepath.Join(dir, name)
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s: permissions %o: a private key must be readable by its owner only (chmod 600)", path, fi.Mode().Perm())
	}
	der, err := readPEM(path, "PRIVATE KEY")
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	clear(der)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: not an ECDSA key", name)
	}
	return ek, nil
}

// pair is a certificate with its key.
type pair struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func loadPair(dir, certName, keyName string) (pair, error) {
	c, err := loadCert(dir, certName)
	if err != nil {
		return pair{}, err
	}
	k, err := loadKey(dir, keyName)
	if err != nil {
		return pair{}, err
	}
	if !k.PublicKey.Equal(c.PublicKey) {
		return pair{}, fmt.Errorf("%s does not match %s", keyName, certName)
	}
	return pair{c, k}, nil
}

func (p pair) tls(chain ...*x509.Certificate) tls.Certificate {
	c := tls.Certificate{Certificate: [][]byte{p.cert.Raw}, PrivateKey: p.key, Leaf: p.cert}
	for _, x := range chain {
		c.Certificate = append(c.Certificate, x.Raw)
	}
	return c
}

var errDirNotEmpty = errors.New("directory exists and is not empty: refusing to overwrite a Central Station")
