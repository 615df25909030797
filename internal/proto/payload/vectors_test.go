package payload

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"math/big"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/zmonitor/firmware/internal/proto/failure"
)

var (
	update     = flag.Bool("update", false, "rewrite the test-vector section of docs/protocol.md from testdata/vectors.json")
	regenerate = flag.Bool("regenerate-vectors", false, "make a new testdata/vectors.json (new certificates, signature and envelope) and update docs/protocol.md")
)

// vectors is a fixed key set and one payload through every step. Keys come
// from fixed scalars; certificates, the signature and the envelope were made
// once (ECDSA and HPKE are randomized) and are checked, not re-made.
type vectors struct {
	Now                 string `json:"now"`
	RootScalar          string `json:"rootScalar"`
	RootCert            string `json:"rootCertificate"`
	SignerScalar        string `json:"signerScalar"`
	SignerCert          string `json:"signerCertificate"`
	HospitalCAScalar    string `json:"hospitalCaScalar"`
	HospitalCACert      string `json:"hospitalCaCertificate"`
	ClientScalar        string `json:"clientKeyScalar"`
	ClientCert          string `json:"clientCertificate"`
	DevicePayloadScalar string `json:"devicePayloadKeyScalar"`
	DevicePayloadPublic string `json:"devicePayloadPublicKey"`
	DeviceID            string `json:"deviceId"`
	PairingCode         string `json:"pairingCode"`
	SessionNonce        string `json:"sessionNonce"`
	Payload             string `json:"payload"`
	SigningInput        string `json:"signingInput"`
	SigningInputSHA256  string `json:"signingInputSha256"`
	Signature           string `json:"signature"`
	Info                string `json:"hpkeInfo"`
	Envelope            string `json:"envelope"`
}

const (
	vectorsPath = "testdata/vectors.json"
	docPath     = "../../../docs/protocol.md"
	beginMarker = "<!-- vectors:begin"
	endMarker   = "<!-- vectors:end -->\n"
)

// scalar is a fixed private scalar: 32 bytes of n.
func scalar(n byte) string { return hex.EncodeToString(bytes.Repeat([]byte{n}, 32)) }

func ecdsaKey(t testing.TB, hexScalar string) *ecdsa.PrivateKey {
	t.Helper()
	b, err := hex.DecodeString(hexScalar)
	if err != nil {
		t.Fatal(err)
	}
	return must[*ecdsa.PrivateKey](t)(ecdsa.ParseRawPrivateKey(elliptic.P256(), b))
}

func ecdhKey(t testing.TB, hexScalar string) *ecdh.PrivateKey {
	t.Helper()
	b, err := hex.DecodeString(hexScalar)
	if err != nil {
		t.Fatal(err)
	}
	return must[*ecdh.PrivateKey](t)(ecdh.P256().NewPrivateKey(b))
}

func makeVectors(t *testing.T) vectors {
	v := vectors{
		Now: "2026-11-27T12:00:00Z", RootScalar: scalar(1), SignerScalar: scalar(2), HospitalCAScalar: scalar(3),
		ClientScalar: scalar(4), DevicePayloadScalar: scalar(5), DeviceID: "ZM-001", PairingCode: "ABC-123-XYW", Info: Info,
	}
	from, to := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2036, 1, 1, 0, 0, 0, 0, time.UTC)
	rootKey, signerKey, hospitalKey, clientKey := ecdsaKey(t, v.RootScalar), ecdsaKey(t, v.SignerScalar), ecdsaKey(t, v.HospitalCAScalar), ecdsaKey(t, v.ClientScalar)
	devKey := ecdhKey(t, v.DevicePayloadScalar)
	issue := func(tmpl, parent *x509.Certificate, pub any, key *ecdsa.PrivateKey) *x509.Certificate {
		tmpl.NotBefore, tmpl.NotAfter = from, to
		return must[*x509.Certificate](t)(x509.ParseCertificate(must[[]byte](t)(x509.CreateCertificate(rand.Reader, tmpl, parent, pub, key))))
	}
	ca := func(cn string, serial int64) *x509.Certificate {
		return &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn}, IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	}
	rootTmpl := ca("Z Monitor provisioning root (test vector)", 1)
	root := issue(rootTmpl, rootTmpl, rootKey.Public(), rootKey)
	signer := issue(&x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "Central Station signer (test vector)"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, UnknownExtKeyUsage: []asn1.ObjectIdentifier{SignerEKU}},
		root, signerKey.Public(), rootKey)
	hospitalTmpl := ca("Hospital device CA (test vector)", 3)
	hospital := issue(hospitalTmpl, hospitalTmpl, hospitalKey.Public(), hospitalKey)
	client := issue(&x509.Certificate{SerialNumber: big.NewInt(4), Subject: pkix.Name{CommonName: v.DeviceID},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, hospital, clientKey.Public(), hospitalKey)
	nonce := bytes.Repeat([]byte{0x6e}, NonceSize)
	c := Config{
		ServerURL: "https://monitoring.hospital.com:8443", CACertificate: EncodeCert(hospital), ClientCertificate: EncodeCert(client),
		DeviceID: v.DeviceID, DeviceLabel: "ICU-MON-04", Timestamp: "2026-11-27T11:55:00Z", PairingCode: v.PairingCode,
		SessionNonce: EncodeNonce(nonce), ConfigVersion: 1, SignerChain: EncodeChain([]*x509.Certificate{signer}),
		PayloadVersion: Version, ESTURL: "https://central.hospital.com:9445/.well-known/est",
	}
	if err := Sign(&c, signerKey, rand.Reader); err != nil {
		t.Fatal(err)
	}
	p := must[[]byte](t)(c.Marshal())
	in := must[[]byte](t)(SigningInput(p))
	sum := sha256.Sum256(in)
	v.RootCert, v.SignerCert, v.HospitalCACert, v.ClientCert = EncodeCert(root), EncodeCert(signer), EncodeCert(hospital), EncodeCert(client)
	v.DevicePayloadPublic = b64(devKey.PublicKey().Bytes())
	v.SessionNonce, v.Payload, v.SigningInput, v.SigningInputSHA256, v.Signature = c.SessionNonce, string(p), string(in), hex.EncodeToString(sum[:]), c.Signature
	v.Envelope = string(must[[]byte](t)(Seal(devKey.PublicKey(), nonce, p)))
	return v
}

// renderDoc is the test-vector section of docs/protocol.md.
func renderDoc(v vectors) string {
	var b strings.Builder
	b.WriteString(beginMarker + " (generated from internal/proto/payload/testdata/vectors.json by `go test ./internal/proto/payload -run TestVectors -update`; do not edit) -->\n")
	field := func(name, val string) { fmt.Fprintf(&b, "**%s**\n\n```text\n%s\n```\n\n", name, val) }
	field("now (device wall clock, trusted)", v.Now)
	field("provisioning root: private scalar (hex; test only)", v.RootScalar)
	field("provisioning root: certificate (base64 DER), the anchor", v.RootCert)
	field("signer: private scalar (hex; test only)", v.SignerScalar)
	field("signer: certificate (base64 DER)", v.SignerCert)
	field("hospital CA: private scalar (hex; test only)", v.HospitalCAScalar)
	field("client key: private scalar (hex; test only)", v.ClientScalar)
	field("device payload key: private scalar (hex; test only)", v.DevicePayloadScalar)
	field("device payload key: public key (base64 of the uncompressed point)", v.DevicePayloadPublic)
	field("deviceId", v.DeviceID)
	field("pairing code of the session", v.PairingCode)
	field("session nonce (base64url; HPKE aad = its 32 decoded bytes)", v.SessionNonce)
	field("payload (plaintext JSON, as sealed)", v.Payload)
	field("signing input (RFC 8785 form without signature)", v.SigningInput)
	field("SHA-256 of the signing input (hex)", v.SigningInputSHA256)
	field("signature (base64 ASN.1 DER; also inside the payload)", v.Signature)
	field("HPKE info", v.Info)
	field("envelope (JSON)", v.Envelope)
	b.WriteString(endMarker)
	return b.String()
}

func rewriteDoc(t *testing.T, v vectors) {
	doc := must[[]byte](t)(os.ReadFile(docPath))
	i, j := bytes.Index(doc, []byte(beginMarker)), bytes.Index(doc, []byte(endMarker))
	if i < 0 || j < i {
		t.Fatal("docs/protocol.md has no vectors markers")
	}
	out := append(append(append([]byte{}, doc[:i]...), renderDoc(v)...), doc[j+len(endMarker):]...)
	if err := os.WriteFile(docPath, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestVectors(t *testing.T) {
	if *regenerate {
		b := must[[]byte](t)(json.MarshalIndent(makeVectors(t), "", "  "))
		if err := os.WriteFile(vectorsPath, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var v vectors
	dec := json.NewDecoder(bytes.NewReader(must[[]byte](t)(os.ReadFile(vectorsPath))))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	if *update || *regenerate {
		rewriteDoc(t, v)
	}

	t.Run("doc quotes the vectors", func(t *testing.T) {
		doc := must[[]byte](t)(os.ReadFile(docPath))
		if !strings.Contains(string(doc), renderDoc(v)) {
			t.Error("docs/protocol.md does not quote testdata/vectors.json (run go test ./internal/proto/payload -run TestVectors -update)")
		}
		if !strings.Contains(string(doc), "`"+Info+"`") {
			t.Error("docs/protocol.md does not give the HPKE info string")
		}
		if !strings.Contains(string(doc), "`"+SignerEKU.String()+"`") {
			t.Error("docs/protocol.md does not give the signer EKU")
		}
	})
	t.Run("keys come from the scalars", func(t *testing.T) {
		for name, c := range map[string]struct{ cert, scalar string }{
			"root": {v.RootCert, v.RootScalar}, "signer": {v.SignerCert, v.SignerScalar},
			"hospital CA": {v.HospitalCACert, v.HospitalCAScalar}, "client": {v.ClientCert, v.ClientScalar},
		} {
			cert := must[*x509.Certificate](t)(x509.ParseCertificate(must[[]byte](t)(base64.StdEncoding.DecodeString(c.cert))))
			if !cert.PublicKey.(*ecdsa.PublicKey).Equal(ecdsaKey(t, c.scalar).Public()) {
				t.Errorf("%s certificate is not for its scalar", name)
			}
		}
		if b64(ecdhKey(t, v.DevicePayloadScalar).PublicKey().Bytes()) != v.DevicePayloadPublic {
			t.Error("device payload public key differs from its scalar's")
		}
		if v.Info != Info {
			t.Errorf("info %q, code has %q", v.Info, Info)
		}
	})
	t.Run("canonical form", func(t *testing.T) {
		in := must[[]byte](t)(SigningInput([]byte(v.Payload)))
		sum := sha256.Sum256(in)
		if string(in) != v.SigningInput || hex.EncodeToString(sum[:]) != v.SigningInputSHA256 {
			t.Fatalf("signing input differs:\n%s", in)
		}
		c := must[Config](t)(Parse([]byte(v.Payload)))
		if string(must[[]byte](t)(c.CanonicalForSigning())) != v.SigningInput || c.Signature != v.Signature {
			t.Fatal("parsed payload's canonical form or signature differs")
		}
	})
	t.Run("signature verifies", func(t *testing.T) {
		c := must[Config](t)(Parse([]byte(v.Payload)))
		if err := VerifySignature(c, &ecdsaKey(t, v.SignerScalar).PublicKey); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("envelope opens to the payload", func(t *testing.T) {
		nonce := must[[]byte](t)(base64.RawURLEncoding.DecodeString(v.SessionNonce))
		plain := must[[]byte](t)(Open(ecdhKey(t, v.DevicePayloadScalar), nonce, []byte(v.Envelope)))
		if string(plain) != v.Payload {
			t.Fatalf("opened to\n%s", plain)
		}
	})
	t.Run("device accepts it", func(t *testing.T) {
		root := must[*x509.Certificate](t)(x509.ParseCertificate(must[[]byte](t)(base64.StdEncoding.DecodeString(v.RootCert))))
		pool := x509.NewCertPool()
		pool.AddCert(root)
		now := must[time.Time](t)(time.Parse(time.RFC3339, v.Now))
		nonce := must[[]byte](t)(base64.RawURLEncoding.DecodeString(v.SessionNonce))
		_, err := Verify([]byte(v.Envelope), ecdhKey(t, v.DevicePayloadScalar), Expect{
			Anchors: pool, DeviceID: v.DeviceID, SessionNonce: nonce, Wall: &wall{now: now, trusted: true},
			CheckPairingCode: func(s string) error {
				if s != v.PairingCode {
					return failure.Errorf(failure.PairingCodeMismatch, "check pairing code", "mismatch")
				}
				return nil
			},
			ClientKey: ecdsaKey(t, v.ClientScalar).Public(),
		})
		if err != nil {
			t.Fatalf("vector payload does not verify: %v", err)
		}
	})
}
