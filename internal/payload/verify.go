package payload

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/zmonitor/firmware/internal/failure"
)

// WallClock is the device's wall clock (clock.Wall satisfies it).
type WallClock interface {
	Now() (time.Time, bool)
	Adopt(time.Time) error
}

// Expect is what the device expects of a payload.
type Expect struct {
	// Anchors are the provisioning trust anchors the signer chains to.
	Anchors *x509.CertPool
	// DeviceID is this device's ID.
	DeviceID string
	// SessionNonce is the nonce this device gave in hello (HPKE aad and the
	// payload's sessionNonce).
	SessionNonce []byte
	// CheckPairingCode checks the payload's pairing code against the
	// session (constant time, counting wrong attempts). Its error is
	// returned unchanged.
	CheckPairingCode func(typed string) error
	// Wall is the device's wall clock.
	Wall WallClock
	// MaxAge is how old a payload may be (default 1 hour), MaxFutureSkew
	// how far ahead of the device clock (default 5 minutes).
	MaxAge, MaxFutureSkew time.Duration
	// ClientKey is the public half of the client key created at hello; the
	// client certificate must be for it (or, when the payload carries
	// clientPrivateKey, for that key).
	ClientKey crypto.PublicKey
}

// Verified is a payload that passed every check.
type Verified struct {
	Config
	Signer     *x509.Certificate
	CACert     *x509.Certificate
	ClientCert *x509.Certificate
	ServerURL  *url.URL
	Time       time.Time // the payload's timestamp
	Adopted    bool      // the device clock adopted Time
}

// Verify decrypts the envelope and checks the payload in DESIGN.md's order:
// decrypt → signer chain → signature → deviceId → session nonce → pairing
// code → freshness → certificates. The first failing check decides the
// error's failure code; nothing after it runs.
func Verify(envelope []byte, key ecdh.KeyExchanger, exp Expect) (*Verified, error) {
	if exp.MaxAge == 0 {
		exp.MaxAge = time.Hour
	}
	if exp.MaxFutureSkew == 0 {
		exp.MaxFutureSkew = 5 * time.Minute
	}
	if exp.Anchors == nil || exp.Wall == nil || exp.CheckPairingCode == nil || len(exp.SessionNonce) == 0 {
		return nil, failure.Errorf(failure.Internal, "verify payload", "anchors, wall clock, pairing-code check and session nonce are required")
	}

	// 1. Decrypt.
	plain, err := Open(key, exp.SessionNonce, envelope)
	if err != nil {
		return nil, failure.New(failure.DecryptFailed, "decrypt payload", err)
	}
	c, err := Parse(plain)
	if err != nil {
		return nil, failure.New(failure.PayloadMalformed, "parse payload", err)
	}
	ts, err := time.Parse(time.RFC3339, c.Timestamp)
	if err != nil {
		return nil, failure.New(failure.PayloadMalformed, "parse payload", fmt.Errorf("timestamp: %w", err))
	}
	now, trusted := exp.Wall.Now()

	// 2. Signer chain to the anchor, with the signer's key usage.
	signer, inter, err := parseChain(c.SignerChain)
	if err != nil {
		return nil, failure.New(failure.SignerUntrusted, "check signer chain", err)
	}
	at := now
	if !trusted {
		// The clock is unknown: check the chain as of the signer's
		// issuance; validity is checked again once the clock is trusted.
		at = signer.NotBefore.Add(time.Second)
	}
	if err := verifySigner(signer, inter, exp.Anchors, at); err != nil {
		return nil, failure.New(failure.SignerUntrusted, "check signer chain", err)
	}

	// 3. Signature.
	pub, ok := signer.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return nil, failure.Errorf(failure.SignerUntrusted, "check signer chain", "signer key is not ECDSA P-256")
	}
	if err := verifySignature(plain, c.Signature, pub); err != nil {
		return nil, failure.New(failure.SignatureInvalid, "verify signature", err)
	}

	// 4. Device.
	if c.DeviceID != exp.DeviceID {
		return nil, failure.Errorf(failure.WrongDevice, "check device", "payload is for %q, this device is %q", c.DeviceID, exp.DeviceID)
	}

	// 5. Session nonce (the HPKE aad already bound it; checked again here
	// because the signature, not only the sender, must commit to it).
	nonce, err := base64.RawURLEncoding.DecodeString(c.SessionNonce)
	if err != nil || subtle.ConstantTimeCompare(nonce, exp.SessionNonce) != 1 {
		return nil, failure.Errorf(failure.SessionMismatch, "check session", "payload belongs to another pairing session")
	}

	// 6. Pairing code.
	if err := exp.CheckPairingCode(c.PairingCode); err != nil {
		return nil, err
	}

	// 7. Freshness; the verified, nonce-bound timestamp sets an unknown clock.
	v := &Verified{Config: c, Signer: signer, Time: ts}
	if !trusted {
		if err := exp.Wall.Adopt(ts); err != nil {
			return nil, failure.New(failure.PayloadExpired, "check freshness", fmt.Errorf("device clock unknown and the payload time is unusable: %w", err))
		}
		v.Adopted = true
		now, _ = exp.Wall.Now()
		if err := verifySigner(signer, inter, exp.Anchors, now); err != nil {
			return nil, failure.New(failure.SignerUntrusted, "check signer chain", err)
		}
	} else {
		if age := now.Sub(ts); age > exp.MaxAge {
			return nil, failure.Errorf(failure.PayloadExpired, "check freshness", "payload is %s old, limit %s", age.Round(time.Second), exp.MaxAge)
		}
		if ahead := ts.Sub(now); ahead > exp.MaxFutureSkew {
			return nil, failure.Errorf(failure.PayloadExpired, "check freshness", "payload time is %s ahead of the device clock", ahead.Round(time.Second))
		}
	}

	// 8. Certificates.
	if err := v.checkCertificates(exp.ClientKey, now); err != nil {
		return nil, err
	}
	u, err := url.Parse(c.ServerURL)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil {
		return nil, failure.Errorf(failure.PayloadMalformed, "check server URL", "serverUrl must be https://host[:port][/path]")
	}
	v.ServerURL = u
	return v, nil
}

func parseChain(b64 []string) (*x509.Certificate, *x509.CertPool, error) {
	inter := x509.NewCertPool()
	var leaf *x509.Certificate
	for i, s := range b64 {
		der, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, nil, fmt.Errorf("signerChain[%d] is not base64", i)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, nil, fmt.Errorf("signerChain[%d]: %w", i, err)
		}
		if i == 0 {
			leaf = c
		} else {
			inter.AddCert(c)
		}
	}
	if leaf == nil {
		return nil, nil, errors.New("signerChain is empty")
	}
	return leaf, inter, nil
}

func verifySigner(signer *x509.Certificate, inter, anchors *x509.CertPool, at time.Time) error {
	if _, err := signer.Verify(x509.VerifyOptions{Roots: anchors, Intermediates: inter, CurrentTime: at, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return fmt.Errorf("signer %q does not chain to the provisioning anchor: %w", signer.Subject.CommonName, err)
	}
	if signer.IsCA {
		return errors.New("signer certificate is a CA certificate")
	}
	if signer.KeyUsage != 0 && signer.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		return errors.New("signer certificate lacks digitalSignature")
	}
	for _, oid := range signer.UnknownExtKeyUsage {
		if oid.Equal(SignerEKU) {
			return nil
		}
	}
	return fmt.Errorf("signer certificate lacks the provisioning-signer usage %s", SignerEKU)
}

func verifySignature(plain []byte, sigB64 string, pub *ecdsa.PublicKey) error {
	sig, err := base64.StdEncoding.DecodeString(sigB64)
	if err != nil {
		return errors.New("signature is not base64")
	}
	in, err := SigningInput(plain)
	if err != nil {
		return err
	}
	d := sha256.Sum256(in)
	if !ecdsa.VerifyASN1(pub, d[:], sig) {
		return errors.New("signature does not verify with the signer's key: payload altered or signed by another key")
	}
	return nil
}

func (v *Verified) checkCertificates(clientKey crypto.PublicKey, now time.Time) error {
	fail := func(format string, a ...any) error {
		return failure.Errorf(failure.CertificateInvalid, "check certificates", format, a...)
	}
	caDER, err := base64.StdEncoding.DecodeString(v.CACertificate)
	if err != nil {
		return fail("caCertificate is not base64")
	}
	if v.CACert, err = x509.ParseCertificate(caDER); err != nil {
		return fail("caCertificate: %v", err)
	}
	if !v.CACert.IsCA || !v.CACert.BasicConstraintsValid {
		return fail("caCertificate is not a CA certificate")
	}
	certDER, err := base64.StdEncoding.DecodeString(v.ClientCertificate)
	if err != nil {
		return fail("clientCertificate is not base64")
	}
	if v.ClientCert, err = x509.ParseCertificate(certDER); err != nil {
		return fail("clientCertificate: %v", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(v.CACert)
	if _, err := v.ClientCert.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return fail("clientCertificate does not chain to caCertificate for clientAuth: %v", err)
	}
	want := clientKey
	if v.ClientPrivateKey != "" {
		pub, err := publicOfPrivate(v.ClientPrivateKey)
		if err != nil {
			return fail("clientPrivateKey: %v", err)
		}
		want = pub
	}
	got, ok := v.ClientCert.PublicKey.(*ecdsa.PublicKey)
	if !ok || want == nil || !got.Equal(want) {
		return fail("clientCertificate is not for this device's client key")
	}
	return nil
}

// publicOfPrivate returns the public half of a base64 private key, wiping
// the decoded bytes.
func publicOfPrivate(b64 string) (crypto.PublicKey, error) {
	der, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, errors.New("not base64")
	}
	defer clear(der)
	if k, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		ek, ok := k.(*ecdsa.PrivateKey)
		if !ok || ek.Curve != elliptic.P256() {
			return nil, errors.New("not an ECDSA P-256 key")
		}
		return ek.Public(), nil
	}
	ek, err := x509.ParseECPrivateKey(der)
	if err != nil || ek.Curve != elliptic.P256() {
		return nil, errors.New("not a PKCS#8 or SEC 1 ECDSA P-256 key")
	}
	return ek.Public(), nil
}
