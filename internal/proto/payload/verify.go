package payload

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"time"

	"github.com/zmonitor/firmware/internal/proto/failure"
)

// WallClock is the device's wall clock; *clock.Wall satisfies it.
type WallClock interface {
	// Now returns the wall time and whether it is trusted.
	Now() (time.Time, bool)
	// Adopt sets an untrusted clock to an authenticated time.
	Adopt(time.Time) error
}

// Defaults for Expect.
const (
	DefaultMaxAge        = time.Hour
	DefaultMaxFutureSkew = 5 * time.Minute
)

// Expect is what the device expects of a payload.
type Expect struct {
	// Anchors are the provisioning trust anchors the signer chains to.
	Anchors *x509.CertPool
	// DeviceID is this device's ID.
	DeviceID string
	// SessionNonce is the NonceSize-byte nonce this device gave in hello:
	// HPKE's aad and the payload's sessionNonce.
	SessionNonce []byte
	// CheckPairingCode checks the payload's pairing code against the
	// pairing session (constant time, counting wrong attempts). Verify
	// returns its error unchanged.
	CheckPairingCode func(typed string) error
	// Wall is the device's wall clock.
	Wall WallClock
	// MaxAge is how old a payload may be when the clock is trusted
	// (DefaultMaxAge when zero); MaxFutureSkew how far ahead of the clock
	// its timestamp may be (DefaultMaxFutureSkew when zero).
	MaxAge, MaxFutureSkew time.Duration
	// ClientKey is the public half of the TPM client key created at hello:
	// the client certificate must be for it. It is ignored when the payload
	// carries clientPrivateKey; then the certificate must be for that key.
	ClientKey crypto.PublicKey
}

// Verified is a payload that passed every check. Printing it (through the
// embedded Config's String or LogValue) redacts the secrets.
type Verified struct {
	Config
	Signer     *x509.Certificate // the provisioning signer
	CACert     *x509.Certificate // caCertificate: the only root the connection test trusts
	ClientCert *x509.Certificate // clientCertificate
	ServerURL  *url.URL          // serverUrl
	ESTURL     *url.URL          // estUrl; nil when the payload names no EST server
	Time       time.Time         // the payload's timestamp
	Adopted    bool              // the device clock was untrusted and adopted Time
}

// Verify opens the envelope with the device's payload key and checks the
// payload in the order of DESIGN.md section 5; the first failing check
// decides the error's failure.Code and nothing after it runs:
//
//  1. decrypt with key and exp.SessionNonce as aad      DecryptFailed
//  2. parse strictly (syntax, serverUrl https)          PayloadMalformed
//  3. signer chain to exp.Anchors, signer usage         SignerUntrusted
//  4. signature over the canonical received bytes       SignatureInvalid
//  5. deviceId                                          WrongDevice
//  6. sessionNonce, constant time                       SessionMismatch
//  7. pairing code through exp.CheckPairingCode         its own error (PairingCodeMismatch, TooManyAttempts, ...)
//  8. freshness, or adoption by an untrusted clock      PayloadExpired (SignerUntrusted on the re-check)
//  9. certificates and the client key                   CertificateInvalid
//
// With an untrusted clock, step 3 checks validity periods as of the
// payload's own timestamp (not yet authenticated: a forged one fails step 4),
// and step 8 re-checks the signer chain at the adopted time.
func Verify(envelope []byte, key ecdh.KeyExchanger, exp Expect) (*Verified, error) {
	if exp.MaxAge <= 0 {
		exp.MaxAge = DefaultMaxAge
	}
	if exp.MaxFutureSkew <= 0 {
		exp.MaxFutureSkew = DefaultMaxFutureSkew
	}
	if exp.Anchors == nil || exp.Wall == nil || exp.CheckPairingCode == nil || len(exp.SessionNonce) != NonceSize || key == nil {
		return nil, failure.Errorf(failure.Internal, "verify payload", "key, anchors, wall clock, pairing-code check and a %d-byte session nonce are required", NonceSize)
	}

	// 1. Decrypt.
	plain, err := Open(key, exp.SessionNonce, envelope)
	if err != nil {
		return nil, failure.New(failure.DecryptFailed, "decrypt payload", err)
	}

	// 2. Parse.
	c, signingInput, err := parse(plain)
	if err != nil {
		return nil, failure.New(failure.PayloadMalformed, "parse payload", err)
	}
	ts, _ := ParseTimestamp(c.Timestamp) // checked by Parse
	serverURL, _ := parseServerURL(c.ServerURL)
	now, trusted := exp.Wall.Now()

	// 3. Signer chain to the anchor, with the signer's usage.
	signer, inter, err := parseChain(c.SignerChain)
	if err != nil {
		return nil, failure.New(failure.SignerUntrusted, "check signer chain", err)
	}
	at := now
	if !trusted {
		at = ts
	}
	if err := verifySigner(signer, inter, exp.Anchors, at); err != nil {
		return nil, failure.New(failure.SignerUntrusted, "check signer chain", err)
	}
	pub, ok := signer.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return nil, failure.Errorf(failure.SignerUntrusted, "check signer chain", "signer key is not ECDSA P-256")
	}

	// 4. Signature, over the canonical form of the bytes received.
	if err := verifyDigest(signingInput, c.Signature, pub); err != nil {
		return nil, failure.New(failure.SignatureInvalid, "verify signature", err)
	}

	// 5. Device.
	if c.DeviceID != exp.DeviceID {
		return nil, failure.Errorf(failure.WrongDevice, "check device", "payload is for %q, this device is %q", c.DeviceID, exp.DeviceID)
	}

	// 6. Session nonce. HPKE's aad already bound the envelope to it; the
	// signer must commit to it too, or a payload signed for one session
	// could be re-sealed for another.
	nonce, err := base64.RawURLEncoding.Strict().DecodeString(c.SessionNonce)
	if err != nil || subtle.ConstantTimeCompare(nonce, exp.SessionNonce) != 1 {
		return nil, failure.Errorf(failure.SessionMismatch, "check session", "payload belongs to another pairing session")
	}

	// 7. Pairing code: the session's check is constant time and counts
	// attempts; its error (and code) is the caller's.
	if err := exp.CheckPairingCode(c.PairingCode); err != nil {
		return nil, err
	}

	// 8. Freshness. An untrusted clock adopts the timestamp, which is now
	// authenticated and bound to this session, before certificates are
	// checked against it.
	v := &Verified{Config: c, Signer: signer, ServerURL: serverURL, Time: ts}
	if c.ESTURL != "" {
		v.ESTURL, _ = ParseESTURL(c.ESTURL) // checked by parse
	}
	if !trusted {
		if err := exp.Wall.Adopt(ts); err != nil {
			return nil, failure.New(failure.PayloadExpired, "check freshness", fmt.Errorf("device clock is unknown and the payload time cannot set it: %w", err))
		}
		v.Adopted = true
		now, _ = exp.Wall.Now()
		if err := verifySigner(signer, inter, exp.Anchors, now); err != nil {
			return nil, failure.New(failure.SignerUntrusted, "check signer chain", fmt.Errorf("at the adopted time: %w", err))
		}
	} else {
		if age := now.Sub(ts); age > exp.MaxAge {
			return nil, failure.Errorf(failure.PayloadExpired, "check freshness", "payload is %s old, limit %s", age.Round(time.Second), exp.MaxAge)
		}
		if ahead := ts.Sub(now); ahead > exp.MaxFutureSkew {
			return nil, failure.Errorf(failure.PayloadExpired, "check freshness", "payload time is %s ahead of the device clock, limit %s", ahead.Round(time.Second), exp.MaxFutureSkew)
		}
	}

	// 9. Certificates.
	if err := v.checkCertificates(exp.ClientKey, now); err != nil {
		return nil, failure.New(failure.CertificateInvalid, "check certificates", err)
	}
	return v, nil
}

func parseChain(b64 []string) (*x509.Certificate, *x509.CertPool, error) {
	inter := x509.NewCertPool()
	var leaf *x509.Certificate
	for i, s := range b64 {
		der, err := base64.StdEncoding.Strict().DecodeString(s)
		if err != nil {
			return nil, nil, fmt.Errorf("signerChain[%d] is not standard base64", i)
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

// verifySigner checks that signer chains to anchors at time at and is a
// provisioning signer: not a CA, digitalSignature allowed (when key usage is
// present), and SignerEKU among its extended key usages. Go's verifier
// cannot check a private EKU along the chain, so the chain is built with
// ExtKeyUsageAny and the EKU is checked on the signer only.
func verifySigner(signer *x509.Certificate, inter, anchors *x509.CertPool, at time.Time) error {
	if _, err := signer.Verify(x509.VerifyOptions{Roots: anchors, Intermediates: inter, CurrentTime: at, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return fmt.Errorf("signer %q does not chain to the provisioning anchor at %s: %w", signer.Subject.CommonName, at.UTC().Format(time.RFC3339), err)
	}
	if signer.IsCA {
		return errors.New("signer certificate is a CA certificate")
	}
	if signer.KeyUsage != 0 && signer.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		return errors.New("signer certificate does not allow digitalSignature")
	}
	if !slices.ContainsFunc(signer.UnknownExtKeyUsage, SignerEKU.Equal) {
		return fmt.Errorf("signer certificate lacks the provisioning-signer usage %s", SignerEKU)
	}
	return nil
}

func (v *Verified) checkCertificates(clientKey crypto.PublicKey, now time.Time) error {
	caDER, err := base64.StdEncoding.Strict().DecodeString(v.CACertificate)
	if err != nil {
		return errors.New("caCertificate is not standard base64")
	}
	if v.CACert, err = x509.ParseCertificate(caDER); err != nil {
		return fmt.Errorf("caCertificate: %w", err)
	}
	if !v.CACert.IsCA || !v.CACert.BasicConstraintsValid {
		return errors.New("caCertificate is not a CA certificate")
	}
	certDER, err := base64.StdEncoding.Strict().DecodeString(v.ClientCertificate)
	if err != nil {
		return errors.New("clientCertificate is not standard base64")
	}
	if v.ClientCert, err = x509.ParseCertificate(certDER); err != nil {
		return fmt.Errorf("clientCertificate: %w", err)
	}
	if !slices.Contains(v.ClientCert.ExtKeyUsage, x509.ExtKeyUsageClientAuth) {
		return errors.New("clientCertificate does not carry the clientAuth extended key usage")
	}
	pool := x509.NewCertPool()
	pool.AddCert(v.CACert)
	if _, err := v.ClientCert.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return fmt.Errorf("clientCertificate does not chain to caCertificate for clientAuth at %s: %w", now.UTC().Format(time.RFC3339), err)
	}
	want := clientKey
	if v.ClientPrivateKey != "" {
		pub, err := publicOfPrivate(v.ClientPrivateKey)
		if err != nil {
			return fmt.Errorf("clientPrivateKey: %w", err)
		}
		want = pub
	}
	got, ok := v.ClientCert.PublicKey.(*ecdsa.PublicKey)
	if !ok || want == nil || !got.Equal(want) {
		return errors.New("clientCertificate is not for this device's client key")
	}
	return nil
}

// publicOfPrivate returns the public half of a base64 PKCS#8 or SEC 1 P-256
// private key, wiping the decoded bytes. The key itself is imported into the
// TPM by the caller, from the Config; it is parsed here only to compare.
func publicOfPrivate(b64 string) (crypto.PublicKey, error) {
	der, err := base64.StdEncoding.Strict().DecodeString(b64)
	if err != nil {
		return nil, errors.New("not standard base64")
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
