package payload

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"github.com/zmonitor/firmware/internal/base/clock"
	"github.com/zmonitor/firmware/internal/base/clock/clocktest"
	"github.com/zmonitor/firmware/internal/proto/failure"
	"github.com/zmonitor/firmware/internal/testkit/testpki"
)

var _ WallClock = (*clock.Wall)(nil)

func TestVerifyAccepts(t *testing.T) {
	f := newFixture(t)
	v, err := Verify(f.seal(t, nil, nil), f.payload, f.expect())
	if err != nil {
		t.Fatal(err)
	}
	if v.DeviceLabel != "ICU-MON-04" || v.ServerURL.Host != "monitoring.hospital.test:8443" || v.Adopted ||
		!v.ClientCert.PublicKey.(*ecdsa.PublicKey).Equal(f.clientKey.Public()) || !v.CACert.Equal(f.hospital.Cert) || !v.Signer.Equal(f.signer.Cert) {
		t.Errorf("verified = %v", v)
	}
	if !v.Time.Equal(f.now.Add(-time.Minute)) {
		t.Errorf("time %v", v.Time)
	}
	if f.codeCalls != 1 {
		t.Errorf("pairing code checked %d times", f.codeCalls)
	}
}

// TestEachCheckHasItsCodeAndStopsTheRest runs payloads wrong in one way (or
// two: then the earlier check must win) and checks the code, whether the
// pairing-code check (which costs an attempt) ran, and that a trusted clock
// never adopts anything.
func TestEachCheckHasItsCodeAndStopsTheRest(t *testing.T) {
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	rogue := must[*testpki.CA](t)(testpki.NewCA("rogue", now))
	rogueSigner := must[*testpki.Leaf](t)(rogue.NewLeaf(signerTemplate("rogue signer"), now))
	other := must[*ecdsa.PrivateKey](t)(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	otherNonce := EncodeNonce(make([]byte, NonceSize))
	cases := []struct {
		name       string
		edit       func(*Config)
		editSigned func(*Config)
		expect     func(*fixture, *Expect)
		want       failure.Code
		codeCalled bool
	}{
		{name: "signer from another root", edit: func(c *Config) { c.SignerChain = EncodeChain([]*x509.Certificate{rogueSigner.Cert}) }, want: failure.SignerUntrusted},
		{name: "signer chain not DER", edit: func(c *Config) { c.SignerChain = []string{"AAAA"} }, want: failure.SignerUntrusted},
		{name: "signer chain not base64", edit: func(c *Config) { c.SignerChain = []string{"!!"} }, want: failure.SignerUntrusted},
		{name: "label altered after signing", editSigned: func(c *Config) { c.DeviceLabel = "EVIL" }, want: failure.SignatureInvalid},
		{name: "signature not base64", editSigned: func(c *Config) { c.Signature = "!!" }, want: failure.SignatureInvalid},
		{name: "signature by another key", editSigned: func(c *Config) {
			d := *c
			if err := Sign(&d, other, rand.Reader); err != nil {
				panic(err)
			}
			c.Signature = d.Signature
		}, want: failure.SignatureInvalid},
		{name: "another device", edit: func(c *Config) { c.DeviceID = "ZM-002" }, want: failure.WrongDevice},
		{name: "another session nonce", edit: func(c *Config) { c.SessionNonce = otherNonce }, want: failure.SessionMismatch},
		{name: "session nonce too short", edit: func(c *Config) { c.SessionNonce = "AAAA" }, want: failure.SessionMismatch},
		{name: "wrong pairing code", edit: func(c *Config) { c.PairingCode = "ABC-123-XYY" }, want: failure.PairingCodeMismatch, codeCalled: true},
		{name: "too many attempts passes through", expect: func(_ *fixture, e *Expect) {
			e.CheckPairingCode = func(string) error { return failure.Errorf(failure.TooManyAttempts, "check pairing code", "locked") }
		}, want: failure.TooManyAttempts},
		{name: "61 minutes old", edit: func(c *Config) { c.Timestamp = "2026-11-27T08:59:00Z" }, want: failure.PayloadExpired, codeCalled: true},
		{name: "6 minutes in the future", edit: func(c *Config) { c.Timestamp = "2026-11-27T10:06:00Z" }, want: failure.PayloadExpired, codeCalled: true},
		{name: "client certificate not DER", edit: func(c *Config) { c.ClientCertificate = b64([]byte("junk")) }, want: failure.CertificateInvalid, codeCalled: true},
		{name: "CA certificate not a CA", edit: func(c *Config) { c.CACertificate = c.ClientCertificate }, want: failure.CertificateInvalid, codeCalled: true},
		{name: "certificate for another key", expect: func(_ *fixture, e *Expect) { e.ClientKey = other.Public() }, want: failure.CertificateInvalid, codeCalled: true},
		{name: "no client key at all", expect: func(_ *fixture, e *Expect) { e.ClientKey = nil }, want: failure.CertificateInvalid, codeCalled: true},
		{name: "http server URL", edit: func(c *Config) { c.ServerURL = "http://monitoring.test" }, want: failure.PayloadMalformed},
		// Wrong in two ways: the earlier check decides.
		{name: "untrusted signer and wrong device", edit: func(c *Config) {
			c.SignerChain = EncodeChain([]*x509.Certificate{rogueSigner.Cert})
			c.DeviceID = "ZM-002"
		}, want: failure.SignerUntrusted},
		{name: "altered and wrong device", edit: func(c *Config) { c.DeviceID = "ZM-002" }, editSigned: func(c *Config) { c.DeviceLabel = "x" }, want: failure.SignatureInvalid},
		{name: "wrong device and wrong code", edit: func(c *Config) { c.DeviceID = "ZM-002"; c.PairingCode = "XXX-000-XXX" }, want: failure.WrongDevice},
		{name: "wrong session and wrong code", edit: func(c *Config) { c.SessionNonce = otherNonce; c.PairingCode = "XXX-000-XXX" }, want: failure.SessionMismatch},
		{name: "wrong code and expired", edit: func(c *Config) { c.PairingCode = "XXX-000-XXX"; c.Timestamp = "2026-11-27T08:00:00Z" }, want: failure.PairingCodeMismatch, codeCalled: true},
		{name: "expired and bad certificate", edit: func(c *Config) { c.Timestamp = "2026-11-27T08:00:00Z"; c.ClientCertificate = b64([]byte("junk")) }, want: failure.PayloadExpired, codeCalled: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			e := f.expect()
			if c.expect != nil {
				c.expect(f, &e)
			}
			v, err := Verify(f.seal(t, c.edit, c.editSigned), f.payload, e)
			if got := failure.CodeOf(err); got != c.want || v != nil {
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

// TestTamperingAnySignedMemberIsCaught alters each member after signing to a
// value that is well-formed (so parsing passes) and checks the signature
// catches it before any other check.
func TestTamperingAnySignedMemberIsCaught(t *testing.T) {
	f := newFixture(t)
	other := must[*testpki.CA](t)(testpki.NewCA("other CA", f.now))
	pk8 := must[[]byte](t)(x509.MarshalPKCS8PrivateKey(f.clientKey))
	tamper := map[string]func(*Config){
		"serverUrl":         func(c *Config) { c.ServerURL = "https://evil.test" },
		"caCertificate":     func(c *Config) { c.CACertificate = EncodeCert(other.Cert) },
		"clientCertificate": func(c *Config) { c.ClientCertificate = EncodeCert(other.Cert) },
		"clientPrivateKey":  func(c *Config) { c.ClientPrivateKey = b64(pk8) },
		"deviceId":          func(c *Config) { c.DeviceID = "ZM-002" },
		"deviceLabel":       func(c *Config) { c.DeviceLabel = "ICU-MON-05" },
		"timestamp":         func(c *Config) { c.Timestamp = FormatTimestamp(f.now.Add(-time.Minute + time.Second)) },
		"pairingCode":       func(c *Config) { c.PairingCode = "ABC-123-XYY" },
		"sessionNonce":      func(c *Config) { c.SessionNonce = EncodeNonce(make([]byte, NonceSize)) },
		"configVersion":     func(c *Config) { c.ConfigVersion = 2 },
		"signerChain":       func(c *Config) { c.SignerChain = append(c.SignerChain, EncodeCert(f.root.Cert)) },
	}
	for _, m := range requiredMembers {
		if _, ok := tamper[m]; !ok && m != "signature" {
			t.Errorf("member %q has no tampering case", m)
		}
	}
	for name, edit := range tamper {
		t.Run(name, func(t *testing.T) {
			f.codeCalls = 0
			_, err := Verify(f.seal(t, nil, edit), f.payload, f.expect())
			if failure.CodeOf(err) != failure.SignatureInvalid || f.codeCalls != 0 {
				t.Fatalf("%v (code checked %d times)", err, f.codeCalls)
			}
		})
	}
	t.Run("clientPrivateKey removed", func(t *testing.T) {
		e := f.expect()
		e.ClientKey = nil
		if _, err := Verify(f.seal(t, tamper["clientPrivateKey"], nil), f.payload, e); err != nil {
			t.Fatalf("untampered: %v", err)
		}
		_, err := Verify(f.seal(t, tamper["clientPrivateKey"], func(c *Config) { c.ClientPrivateKey = "" }), f.payload, e)
		if failure.CodeOf(err) != failure.SignatureInvalid {
			t.Fatal(err)
		}
	})
}

func TestSignerPolicy(t *testing.T) {
	f := newFixture(t)
	noEKU := must[*testpki.Leaf](t)(f.root.NewLeaf(testpki.ClientTemplate("no EKU"), f.now))
	caTmpl := signerTemplate("CA signer")
	caTmpl.IsCA, caTmpl.BasicConstraintsValid, caTmpl.KeyUsage = true, true, x509.KeyUsageCertSign|x509.KeyUsageDigitalSignature
	caSigner := must[*testpki.Leaf](t)(f.root.NewLeaf(caTmpl, f.now))
	noDS := signerTemplate("no digitalSignature")
	noDS.KeyUsage = x509.KeyUsageKeyEncipherment
	noDSSigner := must[*testpki.Leaf](t)(f.root.NewLeaf(noDS, f.now))
	expired := signerTemplate("expired")
	expired.NotBefore, expired.NotAfter = f.now.Add(-48*time.Hour), f.now.Add(-24*time.Hour)
	expiredSigner := must[*testpki.Leaf](t)(f.root.NewLeaf(expired, f.now))

	// An intermediate between the anchor and the signer.
	interTmpl := &x509.Certificate{Subject: caTmpl.Subject, IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	interKey := must[*ecdsa.PrivateKey](t)(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	inter := &testpki.CA{Cert: must[*x509.Certificate](t)(f.root.Issue(interTmpl, interKey.Public(), f.now)), Key: interKey}
	viaInter := must[*testpki.Leaf](t)(inter.NewLeaf(signerTemplate("signer via intermediate"), f.now))

	cases := []struct {
		name  string
		chain []*x509.Certificate
		key   *ecdsa.PrivateKey
		want  failure.Code
	}{
		{"via intermediate", []*x509.Certificate{viaInter.Cert, inter.Cert}, viaInter.Key, failure.None},
		{"via intermediate, anchor included", []*x509.Certificate{viaInter.Cert, inter.Cert, f.root.Cert}, viaInter.Key, failure.None},
		{"intermediate missing", []*x509.Certificate{viaInter.Cert}, viaInter.Key, failure.SignerUntrusted},
		{"no provisioning EKU", []*x509.Certificate{noEKU.Cert}, noEKU.Key, failure.SignerUntrusted},
		{"signer is a CA", []*x509.Certificate{caSigner.Cert}, caSigner.Key, failure.SignerUntrusted},
		{"no digitalSignature", []*x509.Certificate{noDSSigner.Cert}, noDSSigner.Key, failure.SignerUntrusted},
		{"expired", []*x509.Certificate{expiredSigner.Cert}, expiredSigner.Key, failure.SignerUntrusted},
		{"anchor signs itself", []*x509.Certificate{f.root.Cert}, f.root.Key, failure.SignerUntrusted},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := f.cfg
			cfg.SignerChain = EncodeChain(c.chain)
			if err := Sign(&cfg, c.key, rand.Reader); err != nil {
				t.Fatal(err)
			}
			_, err := Verify(f.sealBytes(t, must[[]byte](t)(cfg.Marshal())), f.payload, f.expect())
			if got := failure.CodeOf(err); got != c.want {
				t.Fatalf("code %s (%v), want %s", got, err, c.want)
			}
		})
	}
}

func TestDecryptFailures(t *testing.T) {
	f := newFixture(t)
	env := f.seal(t, nil, nil)
	other := must[*ecdh.PrivateKey](t)(ecdh.P256().GenerateKey(rand.Reader))
	if _, err := Verify(env, other, f.expect()); failure.CodeOf(err) != failure.DecryptFailed || !errors.Is(err, ErrNotForThisSession) {
		t.Errorf("wrong key: %v", err)
	}
	e := f.expect()
	e.SessionNonce = make([]byte, NonceSize)
	if _, err := Verify(env, f.payload, e); failure.CodeOf(err) != failure.DecryptFailed || !errors.Is(err, ErrNotForThisSession) {
		t.Errorf("other session (aad): %v", err)
	}
	flipped := []byte(string(env))
	flipped[len(flipped)-5] ^= 1 // inside the ciphertext's base64
	if _, err := Verify(flipped, f.payload, f.expect()); failure.CodeOf(err) != failure.DecryptFailed {
		t.Errorf("altered ciphertext: %v", err)
	}
	for _, bad := range []string{`{}`, `{"version":2,"enc":"","ciphertext":""}`, `not json`, `{"version":1,"enc":"AA","ciphertext":"AA"}`} {
		if _, err := Verify([]byte(bad), f.payload, f.expect()); failure.CodeOf(err) != failure.DecryptFailed || !errors.Is(err, ErrMalformed) {
			t.Errorf("%q: %v", bad, err)
		}
	}
	if f.codeCalls != 0 {
		t.Error("pairing code checked for an undecryptable payload")
	}
}

func TestMalformedPlaintextIsPayloadMalformed(t *testing.T) {
	f := newFixture(t)
	good := must[[]byte](t)(f.signed(t, nil, nil).Marshal())
	for name, plain := range map[string][]byte{
		"not JSON":         []byte("hello"),
		"duplicate member": append([]byte(`{"deviceId":"ZM-002",`), good[1:]...),
	} {
		_, err := Verify(f.sealBytes(t, plain), f.payload, f.expect())
		if failure.CodeOf(err) != failure.PayloadMalformed || f.codeCalls != 0 {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestVerifyRequiresExpectations(t *testing.T) {
	f := newFixture(t)
	env := f.seal(t, nil, nil)
	for name, edit := range map[string]func(*Expect){
		"anchors": func(e *Expect) { e.Anchors = nil },
		"wall":    func(e *Expect) { e.Wall = nil },
		"code":    func(e *Expect) { e.CheckPairingCode = nil },
		"nonce":   func(e *Expect) { e.SessionNonce = e.SessionNonce[:16] },
	} {
		e := f.expect()
		edit(&e)
		if _, err := Verify(env, f.payload, e); failure.CodeOf(err) != failure.Internal {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestUntrustedClockAdoptsOnlyAVerifiedTime(t *testing.T) {
	f := newFixture(t)
	f.untrusted()
	v, err := Verify(f.seal(t, nil, nil), f.payload, f.expect())
	if err != nil {
		t.Fatal(err)
	}
	if !v.Adopted || len(f.wall.adopted) != 1 || FormatTimestamp(f.wall.adopted[0]) != f.cfg.Timestamp {
		t.Errorf("adopted %v (Verified.Adopted %v)", f.wall.adopted, v.Adopted)
	}

	// Nothing before the pairing code passes may move the clock.
	for name, c := range map[string]struct {
		edit, editSigned func(*Config)
		want             failure.Code
	}{
		"altered":       {editSigned: func(c *Config) { c.Timestamp = "2027-01-01T00:00:00Z" }, want: failure.SignatureInvalid},
		"other device":  {edit: func(c *Config) { c.DeviceID = "ZM-002" }, want: failure.WrongDevice},
		"other session": {edit: func(c *Config) { c.SessionNonce = EncodeNonce(make([]byte, NonceSize)) }, want: failure.SessionMismatch},
		"wrong code":    {edit: func(c *Config) { c.PairingCode = "ABC-123-XYY" }, want: failure.PairingCodeMismatch},
	} {
		f := newFixture(t)
		f.untrusted()
		_, err := Verify(f.seal(t, c.edit, c.editSigned), f.payload, f.expect())
		if failure.CodeOf(err) != c.want || len(f.wall.adopted) != 0 {
			t.Errorf("%s: %v, adopted %v", name, err, f.wall.adopted)
		}
	}

	// A time before the build is refused by the clock (the signer is valid
	// then, so the chain check passes).
	f3 := newFixture(t)
	f3.untrusted()
	f3.wall.floor = f3.now
	_, err = Verify(f3.seal(t, func(c *Config) { c.Timestamp = "2026-11-27T09:30:00Z" }, nil), f3.payload, f3.expect())
	if failure.CodeOf(err) != failure.PayloadExpired || len(f3.wall.adopted) != 0 {
		t.Errorf("pre-build time: %v", err)
	}

	// The signer chain is checked as of the payload time: a signer that had
	// expired by then is refused before anything is adopted.
	f4 := newFixture(t)
	f4.untrusted()
	_, err = Verify(f4.seal(t, func(c *Config) { c.Timestamp = "2028-06-01T00:00:00Z" }, nil), f4.payload, f4.expect())
	if failure.CodeOf(err) != failure.SignerUntrusted || len(f4.wall.adopted) != 0 {
		t.Errorf("signer expired at the payload time: %v, adopted %v", err, f4.wall.adopted)
	}
}

// TestWithClockWall runs Verify against the real clock.Wall over a fake
// clock that starts before the build time.
func TestWithClockWall(t *testing.T) {
	f := newFixture(t)
	fake := clocktest.New(time.Date(1970, 1, 1, 0, 0, 5, 0, time.UTC))
	var set []time.Time
	w := clock.NewWall(fake, buildTime, func(t time.Time) error { set = append(set, t); return nil })
	e := f.expect()
	e.Wall = w
	v, err := Verify(f.seal(t, nil, nil), f.payload, e)
	if err != nil {
		t.Fatal(err)
	}
	now, trusted := w.Now()
	if !v.Adopted || !trusted || !now.Equal(v.Time) || len(set) != 1 {
		t.Errorf("adopted %v, wall %v %v, set %v", v.Adopted, now, trusted, set)
	}
	// The clock is trusted now: a second payload is checked for freshness.
	fake.Advance(2 * time.Hour)
	_, err = Verify(f.seal(t, nil, nil), f.payload, e)
	if failure.CodeOf(err) != failure.PayloadExpired || len(set) != 1 {
		t.Errorf("after adoption: %v", err)
	}
}

func TestImportedClientKeyMustMatchCertificate(t *testing.T) {
	f := newFixture(t)
	e := f.expect()
	e.ClientKey = nil
	for name, der := range map[string][]byte{
		"PKCS#8": must[[]byte](t)(x509.MarshalPKCS8PrivateKey(f.clientKey)),
		"SEC 1":  must[[]byte](t)(x509.MarshalECPrivateKey(f.clientKey)),
	} {
		if _, err := Verify(f.seal(t, func(c *Config) { c.ClientPrivateKey = b64(der) }, nil), f.payload, e); err != nil {
			t.Fatalf("matching %s key: %v", name, err)
		}
	}
	other := must[*ecdsa.PrivateKey](t)(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	der2 := must[[]byte](t)(x509.MarshalPKCS8PrivateKey(other))
	// The imported key wins over the hello key: even a matching ClientKey
	// does not rescue a certificate for another imported key.
	e.ClientKey = f.clientKey.Public()
	for name, key := range map[string]string{"other key": b64(der2), "not a key": b64([]byte("junk")), "not base64": "!!"} {
		_, err := Verify(f.seal(t, func(c *Config) { c.ClientPrivateKey = key }, nil), f.payload, e)
		if failure.CodeOf(err) != failure.CertificateInvalid {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestClientCertificatePolicy(t *testing.T) {
	f := newFixture(t)
	serverOnly := must[*x509.Certificate](t)(f.hospital.Issue(testpki.ServerTemplate("ZM-001"), f.clientKey.Public(), f.now))
	noEKU := testpki.ClientTemplate("ZM-001")
	noEKU.ExtKeyUsage = nil
	noEKUCert := must[*x509.Certificate](t)(f.hospital.Issue(noEKU, f.clientKey.Public(), f.now))
	expired := testpki.ClientTemplate("ZM-001")
	expired.NotBefore, expired.NotAfter = f.now.Add(-48*time.Hour), f.now.Add(-time.Hour)
	expiredCert := must[*x509.Certificate](t)(f.hospital.Issue(expired, f.clientKey.Public(), f.now))
	otherCA := must[*testpki.CA](t)(testpki.NewCA("other CA", f.now))
	for name, edit := range map[string]func(*Config){
		"serverAuth only":      func(c *Config) { c.ClientCertificate = EncodeCert(serverOnly) },
		"no EKU":               func(c *Config) { c.ClientCertificate = EncodeCert(noEKUCert) },
		"expired":              func(c *Config) { c.ClientCertificate = EncodeCert(expiredCert) },
		"issued by another CA": func(c *Config) { c.CACertificate = EncodeCert(otherCA.Cert) },
	} {
		_, err := Verify(f.seal(t, edit, nil), f.payload, f.expect())
		if failure.CodeOf(err) != failure.CertificateInvalid {
			t.Errorf("%s: %v", name, err)
		}
	}
}
