package payload

import (
	"crypto"
	"crypto/ecdh"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"time"
)

// Central Station side. These helpers build what Verify accepts; the
// reference Central Station and the tests use them.

// EncodeCert is the payload's certificate encoding: standard base64 of DER.
func EncodeCert(c *x509.Certificate) string { return base64.StdEncoding.EncodeToString(c.Raw) }

// EncodeChain encodes a signer chain, the signer first.
func EncodeChain(chain []*x509.Certificate) []string {
	out := make([]string, len(chain))
	for i, c := range chain {
		out[i] = EncodeCert(c)
	}
	return out
}

// EncodeNonce is the payload's session nonce encoding: base64url without
// padding.
func EncodeNonce(nonce []byte) string { return base64.RawURLEncoding.EncodeToString(nonce) }

// FormatTimestamp is the payload's timestamp encoding: RFC 3339, UTC, whole
// seconds.
func FormatTimestamp(t time.Time) string { return t.UTC().Truncate(time.Second).Format(time.RFC3339) }

// SignAndSeal signs c with signer, checks that the device's parser accepts
// the result, and seals it to the device's payload key for the session nonce: the envelope
// for the config request. The plaintext is wiped after sealing.
func SignAndSeal(c Config, signer crypto.Signer, rand io.Reader, recipient *ecdh.PublicKey, sessionNonce []byte) ([]byte, error) {
	if err := Sign(&c, signer, rand); err != nil {
		return nil, err
	}
	plain, err := c.Marshal()
	if err != nil {
		return nil, fmt.Errorf("build payload: %w", err)
	}
	defer clear(plain)
	if _, err := Parse(plain); err != nil {
		return nil, fmt.Errorf("build payload: the device would refuse it: %w", err)
	}
	return Seal(recipient, sessionNonce, plain)
}
