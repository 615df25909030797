package payload

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"testing"
	"time"

	"github.com/zmonitor/firmware/internal/proto/failure"
	"github.com/zmonitor/firmware/internal/testkit/testpki"
)

// buildTime is the fake wall clock's floor.
var buildTime = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// wall is a settable WallClock that records adoptions.
type wall struct {
	now     time.Time
	trusted bool
	floor   time.Time // the build time; buildTime when zero
	adopted []time.Time
}

func (w *wall) Now() (time.Time, bool) { return w.now, w.trusted }

func (w *wall) Adopt(t time.Time) error {
	if w.trusted {
		return errors.New("already trusted")
	}
	floor := w.floor
	if floor.IsZero() {
		floor = buildTime
	}
	if t.Before(floor) {
		return errors.New("before build time")
	}
	w.adopted = append(w.adopted, t)
	w.now, w.trusted = t, true
	return nil
}

// fixture is one pairing session: a provisioning root and signer, a
// hospital CA that issued the client certificate for the device's client
// key, the device's payload key and the session nonce.
type fixture struct {
	now       time.Time
	root      *testpki.CA
	signer    *testpki.Leaf
	hospital  *testpki.CA
	payload   *ecdh.PrivateKey
	clientKey *ecdsa.PrivateKey
	nonce     []byte
	cfg       Config
	codeCalls int
	wall      *wall
}

const testCode = "ABC-123-XYZ"

func signerTemplate(cn string) *x509.Certificate {
	t := testpki.ClientTemplate(cn)
	t.UnknownExtKeyUsage = []asn1.ObjectIdentifier{SignerEKU}
	return t
}

func must[T any](t testing.TB) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	f := &fixture{now: now, wall: &wall{now: now, trusted: true}}
	f.root = must[*testpki.CA](t)(testpki.NewCA("provisioning root", now))
	f.signer = must[*testpki.Leaf](t)(f.root.NewLeaf(signerTemplate("signer"), now))
	f.hospital = must[*testpki.CA](t)(testpki.NewCA("hospital CA", now))
	f.payload = must[*ecdh.PrivateKey](t)(ecdh.P256().GenerateKey(rand.Reader))
	f.clientKey = must[*ecdsa.PrivateKey](t)(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	cert := must[*x509.Certificate](t)(f.hospital.Issue(testpki.ClientTemplate("ZM-001"), f.clientKey.Public(), now))
	f.nonce = make([]byte, NonceSize)
	rand.Read(f.nonce)
	f.cfg = Config{
		ServerURL:         "https://monitoring.hospital.test:8443",
		CACertificate:     EncodeCert(f.hospital.Cert),
		ClientCertificate: EncodeCert(cert),
		DeviceID:          "ZM-001",
		DeviceLabel:       "ICU-MON-04",
		Timestamp:         FormatTimestamp(now.Add(-time.Minute)),
		PairingCode:       testCode,
		SessionNonce:      EncodeNonce(f.nonce),
		ConfigVersion:     1,
		SignerChain:       EncodeChain([]*x509.Certificate{f.signer.Cert}),
	}
	return f
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func (f *fixture) untrusted() {
	f.wall.now, f.wall.trusted = time.Date(1970, 1, 1, 0, 0, 42, 0, time.UTC), false
}

func (f *fixture) expect() Expect {
	return Expect{
		Anchors:      f.root.Pool(),
		DeviceID:     "ZM-001",
		SessionNonce: f.nonce,
		CheckPairingCode: func(s string) error {
			f.codeCalls++
			if s != testCode {
				return failure.Errorf(failure.PairingCodeMismatch, "check pairing code", "wrong code")
			}
			return nil
		},
		Wall:      f.wall,
		ClientKey: f.clientKey.Public(),
	}
}

// signed returns the fixture's config after edit, signed by the fixture's
// signer, then after editSigned.
func (f *fixture) signed(t testing.TB, edit, editSigned func(*Config)) Config {
	t.Helper()
	c := f.cfg
	c.SignerChain = append([]string(nil), f.cfg.SignerChain...)
	if edit != nil {
		edit(&c)
	}
	if err := Sign(&c, f.signer.Key, rand.Reader); err != nil {
		t.Fatal(err)
	}
	if editSigned != nil {
		editSigned(&c)
	}
	return c
}

// seal is signed, marshalled and sealed to the device for the session.
func (f *fixture) seal(t testing.TB, edit, editSigned func(*Config)) []byte {
	t.Helper()
	return f.sealBytes(t, must[[]byte](t)(f.signed(t, edit, editSigned).Marshal()))
}

func (f *fixture) sealBytes(t testing.TB, plain []byte) []byte {
	t.Helper()
	return must[[]byte](t)(Seal(f.payload.PublicKey(), f.nonce, plain))
}
