package payload

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zmonitor/firmware/internal/failure"
)

var update = flag.Bool("update", false, "regenerate testdata/vectors.json and the vectors section of docs/protocol.md")

// vectors is a fixed key set and one payload through every step. Keys come
// from fixed scalars; certificates, the signature and the envelope were made
// once (ECDSA and HPKE are randomized) and are checked, not re-made.
type vectors struct {
	Now                 string `json:"now"`
	RootCert            string `json:"rootCertificate"`
	SignerScalar        string `json:"signerScalar"`
	SignerCert          string `json:"signerCertificate"`
	HospitalCACert      string `json:"hospitalCaCertificate"`
	ClientScalar        string `json:"clientKeyScalar"`
	ClientCert          string `json:"clientCertificate"`
	DevicePayloadScalar string `json:"devicePayloadKeyScalar"`
	DevicePayloadPublic string `json:"devicePayloadPublicKey"`
	SessionNonce        string `json:"sessionNonce"`
	Payload             string `json:"payload"`
	SigningInput        string `json:"signingInput"`
	SigningInputSHA256  string `json:"signingInputSha256"`
	Envelope            string `json:"envelope"`
}

const vectorsPath = "testdata/vectors.json"
const docPath = "../../docs/protocol.md"

func scalar(n byte) []byte {
	b := make([]byte, 32)
	for i := range b {
		b[i] = n
	}
	return b
}

func mustECDSA(t testing.TB, hexScalar string) *ecdsa.PrivateKey {
	b, err := hex.DecodeString(hexScalar)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), b)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func cert(t testing.TB, tmpl, parent *x509.Certificate, pub any, key *ecdsa.PrivateKey) *x509.Certificate {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c
}

func makeVectors(t *testing.T) vectors {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	from, to := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2036, 1, 1, 0, 0, 0, 0, time.UTC)
	rootKey := mustECDSA(t, hex.EncodeToString(scalar(1)))
	signerKey := mustECDSA(t, hex.EncodeToString(scalar(2)))
	hospitalKey := mustECDSA(t, hex.EncodeToString(scalar(3)))
	clientKey := mustECDSA(t, hex.EncodeToString(scalar(4)))
	devKey, _ := ecdh.P256().NewPrivateKey(scalar(5))
	ca := func(cn string, serial int64) *x509.Certificate {
		return &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn}, NotBefore: from, NotAfter: to,
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	}
	root := cert(t, ca("Z Monitor provisioning root (test vector)", 1), ca("Z Monitor provisioning root (test vector)", 1), rootKey.Public(), rootKey)
	signer := cert(t, &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "Central Station signer (test vector)"}, NotBefore: from, NotAfter: to,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, UnknownExtKeyUsage: []asn1OID{SignerEKU}}, root, signerKey.Public(), rootKey)
	hospital := cert(t, ca("Hospital device CA (test vector)", 3), ca("Hospital device CA (test vector)", 3), hospitalKey.Public(), hospitalKey)
	client := cert(t, &x509.Certificate{SerialNumber: big.NewInt(4), Subject: pkix.Name{CommonName: "ZM-001"}, DNSNames: []string{"ZM-001"}, NotBefore: from, NotAfter: to,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, hospital, clientKey.Public(), hospitalKey)
	nonce := bytes.Repeat([]byte{0x6e}, 32)
	c := Config{
		ServerURL: "https://monitoring.hospital.com:8443", CACertificate: b64(hospital.Raw), ClientCertificate: b64(client.Raw),
		DeviceID: "ZM-001", DeviceLabel: "ICU-MON-04", Timestamp: "2026-11-27T11:55:00Z", PairingCode: "ABC-123-XYW",
		SessionNonce: base64.RawURLEncoding.EncodeToString(nonce), ConfigVersion: 1, SignerChain: []string{b64(signer.Raw)},
	}
	if err := Sign(&c, signerKey, rand.Reader); err != nil {
		t.Fatal(err)
	}
	p, _ := c.Marshal()
	in, _ := SigningInput(p)
	env, err := Seal(devKey.PublicKey(), nonce, p)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256hex(in)
	return vectors{
		Now: now.Format(time.RFC3339), RootCert: b64(root.Raw),
		SignerScalar: hex.EncodeToString(scalar(2)), SignerCert: b64(signer.Raw), HospitalCACert: b64(hospital.Raw),
		ClientScalar: hex.EncodeToString(scalar(4)), ClientCert: b64(client.Raw),
		DevicePayloadScalar: hex.EncodeToString(scalar(5)), DevicePayloadPublic: b64(devKey.PublicKey().Bytes()),
		SessionNonce: base64.RawURLEncoding.EncodeToString(nonce), Payload: string(p), SigningInput: string(in),
		SigningInputSHA256: sum, Envelope: string(env),
	}
}

func sha256hex(b []byte) string {
	d := sha256Sum(b)
	return hex.EncodeToString(d[:])
}

func renderDoc(v vectors) string {
	var b strings.Builder
	b.WriteString("<!-- vectors:begin (generated by `go test ./internal/payload -run TestVectors -update`; do not edit) -->\n")
	field := func(name, val string) { fmt.Fprintf(&b, "**%s**\n\n```\n%s\n```\n\n", name, val) }
	field("now (device wall clock, trusted)", v.Now)
	field("provisioning root certificate (base64 DER)", v.RootCert)
	field("signer private scalar (hex; test only)", v.SignerScalar)
	field("signer certificate (base64 DER)", v.SignerCert)
	field("device payload key private scalar (hex; test only)", v.DevicePayloadScalar)
	field("device payload public key (base64, uncompressed point)", v.DevicePayloadPublic)
	field("client key private scalar (hex; test only)", v.ClientScalar)
	field("session nonce (base64url)", v.SessionNonce)
	field("payload (plaintext JSON, as sealed)", v.Payload)
	field("signing input (RFC 8785 form without signature)", v.SigningInput)
	field("SHA-256 of the signing input (hex)", v.SigningInputSHA256)
	field("envelope (JSON)", v.Envelope)
	b.WriteString("<!-- vectors:end -->\n")
	return b.String()
}

func TestVectors(t *testing.T) {
	if *update {
		v := makeVectors(t)
		b, _ := json.MarshalIndent(v, "", "  ")
		if err := os.WriteFile(vectorsPath, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		doc, err := os.ReadFile(docPath)
		if err != nil {
			t.Fatal(err)
		}
		i, j := bytes.Index(doc, []byte("<!-- vectors:begin")), bytes.Index(doc, []byte("<!-- vectors:end -->\n"))
		if i < 0 || j < 0 {
			t.Fatal("docs/protocol.md has no vectors markers")
		}
		out := append(append(append([]byte{}, doc[:i]...), renderDoc(v)...), doc[j+len("<!-- vectors:end -->\n"):]...)
		if err := os.WriteFile(docPath, out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := os.ReadFile(vectorsPath)
	if err != nil {
		t.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Clean(docPath))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), renderDoc(v)) {
		t.Error("docs/protocol.md does not quote testdata/vectors.json (run with -update)")
	}
	// The canonical form and its hash.
	in, err := SigningInput([]byte(v.Payload))
	if err != nil || string(in) != v.SigningInput || sha256hex(in) != v.SigningInputSHA256 {
		t.Fatalf("signing input differs: %v\n%s", err, in)
	}
	// The signature verifies with the signer certificate, whose key is the
	// fixed scalar's.
	sc, _ := base64.StdEncoding.DecodeString(v.SignerCert)
	signer, err := x509.ParseCertificate(sc)
	if err != nil {
		t.Fatal(err)
	}
	if !signer.PublicKey.(*ecdsa.PublicKey).Equal(mustECDSA(t, v.SignerScalar).Public()) {
		t.Fatal("signer certificate is not for the signer scalar")
	}
	if err := VerifySignature([]byte(v.Payload), signer.PublicKey.(*ecdsa.PublicKey)); err != nil {
		t.Fatal(err)
	}
	// The envelope opens with the fixed device key to the exact payload.
	ds, _ := hex.DecodeString(v.DevicePayloadScalar)
	dev, _ := ecdh.P256().NewPrivateKey(ds)
	if b64(dev.PublicKey().Bytes()) != v.DevicePayloadPublic {
		t.Fatal("device payload public key differs from its scalar's")
	}
	nonce, _ := base64.RawURLEncoding.DecodeString(v.SessionNonce)
	plain, err := Open(dev, nonce, []byte(v.Envelope))
	if err != nil || string(plain) != v.Payload {
		t.Fatalf("envelope: %v", err)
	}
	// And the whole device-side verification passes at the vector's time.
	rc, _ := base64.StdEncoding.DecodeString(v.RootCert)
	root, _ := x509.ParseCertificate(rc)
	pool := x509.NewCertPool()
	pool.AddCert(root)
	now, _ := time.Parse(time.RFC3339, v.Now)
	_, err = Verify([]byte(v.Envelope), dev, Expect{
		Anchors: pool, DeviceID: "ZM-001", SessionNonce: nonce, Wall: &wall{now: now, trusted: true},
		CheckPairingCode: func(s string) error {
			if s != "ABC-123-XYW" {
				return failure.Errorf(failure.PairingCodeMismatch, "code", "mismatch")
			}
			return nil
		},
		ClientKey: mustECDSA(t, v.ClientScalar).Public(),
	})
	if err != nil {
		t.Fatalf("vector payload does not verify: %v", err)
	}
}
