package payload

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/zmonitor/firmware/internal/failure"
	"github.com/zmonitor/firmware/internal/testpki"
)

// wall is a settable WallClock.
type wall struct {
	now     time.Time
	trusted bool
	adopted []time.Time
}

func (w *wall) Now() (time.Time, bool) { return w.now, w.trusted }
func (w *wall) Adopt(t time.Time) error {
	if t.Before(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) {
		return errors.New("before build time")
	}
	w.adopted = append(w.adopted, t)
	w.now, w.trusted = t, true
	return nil
}

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

func newFixture(t testing.TB) *fixture {
	t.Helper()
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	f := &fixture{now: now, wall: &wall{now: now, trusted: true}}
	var err error
	if f.root, err = testpki.NewCA("provisioning root", now); err != nil {
		t.Fatal(err)
	}
	tmpl := testpki.ClientTemplate("signer")
	tmpl.UnknownExtKeyUsage = []asn1OID{SignerEKU}
	if f.signer, err = f.root.NewLeaf(tmpl, now); err != nil {
		t.Fatal(err)
	}
	if f.hospital, err = testpki.NewCA("hospital CA", now); err != nil {
		t.Fatal(err)
	}
	f.payload, _ = ecdh.P256().GenerateKey(rand.Reader)
	f.clientKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cert, err := f.hospital.Issue(testpki.ClientTemplate("ZM-001"), f.clientKey.Public(), now)
	if err != nil {
		t.Fatal(err)
	}
	f.nonce = make([]byte, 32)
	rand.Read(f.nonce)
	f.cfg = Config{
		ServerURL:         "https://monitoring.hospital.test:8443",
		CACertificate:     b64(f.hospital.Cert.Raw),
		ClientCertificate: b64(cert.Raw),
		DeviceID:          "ZM-001",
		DeviceLabel:       "ICU-MON-04",
		Timestamp:         now.Add(-time.Minute).Format(time.RFC3339),
		PairingCode:       "ABC-123-XYZ",
		SessionNonce:      base64.RawURLEncoding.EncodeToString(f.nonce),
		ConfigVersion:     1,
		SignerChain:       []string{b64(f.signer.Cert.Raw)},
	}
	return f
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func (f *fixture) expect() Expect {
	return Expect{
		Anchors:      f.root.Pool(),
		DeviceID:     "ZM-001",
		SessionNonce: f.nonce,
		CheckPairingCode: func(s string) error {
			f.codeCalls++
			if s != "ABC-123-XYZ" {
				return failure.Errorf(failure.PairingCodeMismatch, "check pairing code", "wrong code")
			}
			return nil
		},
		Wall:      f.wall,
		ClientKey: f.clientKey.Public(),
	}
}

// seal signs and seals cfg (after edit) to the device.
func (f *fixture) seal(t testing.TB, edit func(*Config), editSigned func(*Config)) []byte {
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
	b, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	env, err := Seal(f.payload.PublicKey(), f.nonce, b)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func TestVerifyAccepts(t *testing.T) {
	f := newFixture(t)
	v, err := Verify(f.seal(t, nil, nil), f.payload, f.expect())
	if err != nil {
		t.Fatal(err)
	}
	if v.DeviceLabel != "ICU-MON-04" || v.ServerURL.Host != "monitoring.hospital.test:8443" || v.ClientCert == nil || v.CACert == nil || v.Adopted {
		t.Errorf("verified = %+v", v)
	}
	if f.codeCalls != 1 {
		t.Errorf("pairing code checked %d times", f.codeCalls)
	}
}

func TestEachCheckHasItsCodeAndStopsTheRest(t *testing.T) {
	rogue, _ := testpki.NewCA("rogue", time.Now())
	tmpl := testpki.ClientTemplate("rogue signer")
	tmpl.UnknownExtKeyUsage = []asn1OID{SignerEKU}
	rogueLeaf, _ := rogue.NewLeaf(tmpl, time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC))
	cases := []struct {
		name       string
		edit       func(*Config)
		editSigned func(*Config)
		expect     func(*fixture, *Expect)
		want       failure.Code
		codeCalled bool
	}{
		{name: "signer from another root", edit: func(c *Config) { c.SignerChain = []string{b64(rogueLeaf.Cert.Raw)} }, want: failure.SignerUntrusted},
		{name: "signer chain garbage", edit: func(c *Config) { c.SignerChain = []string{"AAAA"} }, want: failure.SignerUntrusted},
		{name: "label altered after signing", editSigned: func(c *Config) { c.DeviceLabel = "EVIL" }, want: failure.SignatureInvalid},
		{name: "server altered after signing", editSigned: func(c *Config) { c.ServerURL = "https://evil.test" }, want: failure.SignatureInvalid},
		{name: "signature garbage", editSigned: func(c *Config) { c.Signature = "!!" }, want: failure.SignatureInvalid},
		{name: "another device", edit: func(c *Config) { c.DeviceID = "ZM-002" }, want: failure.WrongDevice},
		{name: "another session nonce", edit: func(c *Config) { c.SessionNonce = base64.RawURLEncoding.EncodeToString(make([]byte, 32)) }, want: failure.SessionMismatch},
		{name: "wrong pairing code", edit: func(c *Config) { c.PairingCode = "ABC-123-XYY" }, want: failure.PairingCodeMismatch, codeCalled: true},
		{name: "61 minutes old", edit: func(c *Config) { c.Timestamp = "2026-11-27T08:59:00Z" }, want: failure.PayloadExpired, codeCalled: true},
		{name: "from the future", edit: func(c *Config) { c.Timestamp = "2026-11-27T10:06:00Z" }, want: failure.PayloadExpired, codeCalled: true},
		{name: "client certificate garbage", edit: func(c *Config) { c.ClientCertificate = b64([]byte("junk")) }, want: failure.CertificateInvalid, codeCalled: true},
		{name: "CA certificate not a CA", edit: func(c *Config) { c.CACertificate = c.ClientCertificate }, want: failure.CertificateInvalid, codeCalled: true},
		{name: "certificate for another key", expect: func(f *fixture, e *Expect) {
			k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			e.ClientKey = k.Public()
		}, want: failure.CertificateInvalid, codeCalled: true},
		{name: "http server URL", edit: func(c *Config) { c.ServerURL = "http://monitoring.test" }, want: failure.PayloadMalformed, codeCalled: true},
		{name: "wrong device and wrong code: the earlier check wins", edit: func(c *Config) { c.DeviceID = "ZM-002"; c.PairingCode = "XXX-000-XXX" }, want: failure.WrongDevice},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			e := f.expect()
			if c.expect != nil {
				c.expect(f, &e)
			}
			_, err := Verify(f.seal(t, c.edit, c.editSigned), f.payload, e)
			if got := failure.CodeOf(err); got != c.want {
				t.Fatalf("code %s (%v), want %s", got, err, c.want)
			}
			if (f.codeCalls > 0) != c.codeCalled {
				t.Errorf("pairing code check called %d times", f.codeCalls)
			}
			if len(f.wall.adopted) != 0 {
				t.Error("a trusted clock adopted a payload time")
			}
		})
	}
}

type asn1OID = asn1.ObjectIdentifier

func TestDecryptFailures(t *testing.T) {
	f := newFixture(t)
	env := f.seal(t, nil, nil)
	other, _ := ecdh.P256().GenerateKey(rand.Reader)
	if _, err := Verify(env, other, f.expect()); failure.CodeOf(err) != failure.DecryptFailed {
		t.Errorf("wrong key: %v", err)
	}
	e := f.expect()
	e.SessionNonce = make([]byte, 32)
	if _, err := Verify(env, f.payload, e); failure.CodeOf(err) != failure.DecryptFailed {
		t.Errorf("other session (aad): %v", err)
	}
	for _, bad := range []string{`{}`, `{"version":2,"enc":"","ciphertext":""}`, `not json`, `{"version":1,"enc":"AA","ciphertext":"AA"}`} {
		if _, err := Verify([]byte(bad), f.payload, f.expect()); failure.CodeOf(err) != failure.DecryptFailed {
			t.Errorf("%q: %v", bad, err)
		}
	}
	if f.codeCalls != 0 {
		t.Error("pairing code checked for an undecryptable payload")
	}
}

func TestUntrustedClockAdoptsVerifiedTime(t *testing.T) {
	f := newFixture(t)
	f.wall.now, f.wall.trusted = time.Unix(0, 0).UTC(), false
	v, err := Verify(f.seal(t, nil, nil), f.payload, f.expect())
	if err != nil {
		t.Fatal(err)
	}
	if !v.Adopted || len(f.wall.adopted) != 1 || f.wall.adopted[0].Format(time.RFC3339) != f.cfg.Timestamp {
		t.Errorf("adopted %v (Verified.Adopted %v)", f.wall.adopted, v.Adopted)
	}
	// A wrong code must not move the clock.
	f2 := newFixture(t)
	f2.wall.now, f2.wall.trusted = time.Unix(0, 0).UTC(), false
	_, err = Verify(f2.seal(t, func(c *Config) { c.PairingCode = "ABC-123-XYY" }, nil), f2.payload, f2.expect())
	if failure.CodeOf(err) != failure.PairingCodeMismatch || len(f2.wall.adopted) != 0 {
		t.Errorf("wrong code: %v, adopted %v", err, f2.wall.adopted)
	}
	// A time before the build is refused.
	f3 := newFixture(t)
	f3.wall.now, f3.wall.trusted = time.Unix(0, 0).UTC(), false
	_, err = Verify(f3.seal(t, func(c *Config) { c.Timestamp = "2020-01-01T00:00:00Z" }, nil), f3.payload, f3.expect())
	if failure.CodeOf(err) != failure.PayloadExpired {
		t.Errorf("pre-build time: %v", err)
	}
}

func TestImportedClientKeyMustMatchCertificate(t *testing.T) {
	f := newFixture(t)
	der, _ := x509.MarshalPKCS8PrivateKey(f.clientKey)
	e := f.expect()
	e.ClientKey = nil
	if _, err := Verify(f.seal(t, func(c *Config) { c.ClientPrivateKey = b64(der) }, nil), f.payload, e); err != nil {
		t.Fatalf("matching imported key: %v", err)
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der2, _ := x509.MarshalPKCS8PrivateKey(other)
	if _, err := Verify(f.seal(t, func(c *Config) { c.ClientPrivateKey = b64(der2) }, nil), f.payload, e); failure.CodeOf(err) != failure.CertificateInvalid {
		t.Fatalf("mismatched imported key: %v", err)
	}
}

func TestParseStrict(t *testing.T) {
	f := newFixture(t)
	c := f.cfg
	c.Signature = "c2ln"
	good, _ := c.Marshal()
	if _, err := Parse(good); err != nil {
		t.Fatal(err)
	}
	s := string(good)
	bad := map[string]string{
		"duplicate member":   strings.Replace(s, `"deviceId":"ZM-001"`, `"deviceId":"ZM-001","deviceId":"ZM-002"`, 1),
		"case-folded member": strings.Replace(s, `"deviceId"`, `"DeviceID"`, 1),
		"unknown member":     strings.Replace(s, `{`, `{"admin":true,`, 1),
		"missing member":     strings.Replace(s, `"deviceLabel":"ICU-MON-04",`, ``, 1),
		"null member":        strings.Replace(s, `"deviceLabel":"ICU-MON-04"`, `"deviceLabel":null`, 1),
		"trailing data":      s + `{}`,
		"version 0":          strings.Replace(s, `"configVersion":1`, `"configVersion":0`, 1),
		"not an object":      `[1,2]`,
		"too large":          `{"serverUrl":"` + strings.Repeat("a", MaxPayload) + `"}`,
		"empty chain":        strings.Replace(s, fmt.Sprintf(`"signerChain":[%q]`, c.SignerChain[0]), `"signerChain":[]`, 1),
	}
	for name, b := range bad {
		if _, err := Parse([]byte(b)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestSigningInputIgnoresOrderAndWhitespace(t *testing.T) {
	a := []byte(`{"b":1,"a":"x","signature":"zz"}`)
	_, err := SigningInput(a)
	if err == nil {
		t.Fatal("unknown members accepted")
	}
	f := newFixture(t)
	c := f.cfg
	if err := Sign(&c, f.signer.Key, rand.Reader); err != nil {
		t.Fatal(err)
	}
	compact, _ := c.Marshal()
	var m map[string]any
	json.Unmarshal(compact, &m)
	pretty, _ := json.MarshalIndent(m, "", "   ")
	if err := VerifySignature(pretty, f.signer.Key.Public().(*ecdsa.PublicKey)); err != nil {
		t.Fatalf("reordered, indented payload: %v", err)
	}
}

func TestConfigRedacts(t *testing.T) {
	f := newFixture(t)
	c := f.cfg
	c.ClientPrivateKey = "c2VjcmV0LWtleS1ieXRlcw=="
	for _, s := range []string{c.String(), fmt.Sprintf("%v", c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c)} {
		if strings.Contains(s, "ABC-123-XYZ") || strings.Contains(s, c.ClientPrivateKey) || strings.Contains(s, c.SessionNonce) {
			t.Errorf("secret in %q", s)
		}
	}
}

func FuzzParse(f *testing.F) {
	fx := newFixture(f)
	c := fx.cfg
	c.Signature = "c2ln"
	good, _ := c.Marshal()
	f.Add(good)
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"deviceId":"a","deviceId":"b"}`))
	f.Add([]byte(`{"configVersion":1e400}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Parse(b)
		if err == nil && (c.ConfigVersion < 1 || len(c.SignerChain) == 0) {
			t.Fatalf("accepted %+v", c)
		}
		_, _ = SigningInput(b)
	})
}

func FuzzParseEnvelope(f *testing.F) {
	fx := newFixture(f)
	f.Add(fx.seal(f, nil, nil))
	f.Add([]byte(`{"version":1,"enc":"","ciphertext":""}`))
	f.Add([]byte(`{"version":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		enc, ct, err := ParseEnvelope(b)
		if err == nil && (len(enc) != 65 || len(ct) < 16) {
			t.Fatalf("accepted enc %d ct %d", len(enc), len(ct))
		}
	})
}

func FuzzVerify(f *testing.F) {
	fx := newFixture(f)
	f.Add(fx.seal(f, nil, nil))
	f.Add([]byte(`{"version":1,"enc":"BBBB","ciphertext":"AAAA"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		fx.codeCalls = 0
		v, err := Verify(b, fx.payload, fx.expect())
		if err == nil && v == nil {
			t.Fatal("nil Verified without error")
		}
		if err != nil && failure.CodeOf(err) == failure.None {
			t.Fatalf("error without a code: %v", err)
		}
	})
}

func BenchmarkVerify(b *testing.B) {
	f := newFixture(b)
	env := f.seal(b, nil, nil)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Verify(env, f.payload, f.expect()); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSeal(b *testing.B) {
	f := newFixture(b)
	c := f.cfg
	Sign(&c, f.signer.Key, rand.Reader)
	plain, _ := c.Marshal()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Seal(f.payload.PublicKey(), f.nonce, plain); err != nil {
			b.Fatal(err)
		}
	}
}
