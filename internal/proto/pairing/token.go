package pairing

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/big"
)

// Token layout: base64url without padding of nonce || r || s.
const (
	// NonceBytes is 9, not the design's 12: 72 random bits are plenty for a
	// nonce that only has to differ between the ~20 rotations of a session,
	// and the 4 characters saved put the spec's example QR at version 12
	// (286 bytes of the 287 level M holds) instead of version 13.
	NonceBytes = 9
	sigHalf    = 32
	TokenBytes = NonceBytes + 2*sigHalf // 73
	TokenChars = 98                     // base64url of 73 bytes, no padding
)

// TokenLabel is the domain-separation label that starts the signed message.
const TokenLabel = "zmonitor-pairing-token-v1"

// Token errors.
var (
	ErrTokenMalformed = errors.New("pairing token malformed")
	ErrTokenSignature = errors.New("pairing token: bad signature")
	ErrTokenKey       = errors.New("pairing token: key is not ECDSA P-256")
)

// TokenDigest returns the SHA-256 digest the token signs: the label and the
// six other QR fields and the nonce, each preceded by its length as a
// two-byte big-endian integer (see the package documentation). It fails only
// for a field longer than 65535 bytes.
func TokenDigest(q QRContent, nonce [NonceBytes]byte) ([]byte, error) {
	h := sha256.New()
	items := []string{TokenLabel, q.DeviceID, q.DeviceSerial, q.IPAddress, q.PairingCode, q.ExpiresAt, q.FirmwareVersion, string(nonce[:])}
	var l [2]byte
	for _, it := range items {
		if len(it) > 0xffff {
			return nil, fmt.Errorf("%w: field of %d bytes", ErrTokenMalformed, len(it))
		}
		binary.BigEndian.PutUint16(l[:], uint16(len(it)))
		h.Write(l[:])
		io.WriteString(h, it)
	}
	return h.Sum(nil), nil
}

// SignToken draws a fresh nonce from rand and returns the pairing token for
// q: base64url (no padding) of nonce(12) || r(32) || s(32), where (r, s) is
// the ECDSA P-256 signature by signer over TokenDigest. q's PairingToken is
// ignored; its other fields must be valid. signer is the device identity
// key (a TPM key in production): its Sign returns ASN.1 DER, converted here
// to the fixed-width form. The signature is verified before it is returned,
// so a faulty signer cannot publish a bad token.
func SignToken(signer crypto.Signer, rand io.Reader, q QRContent) (string, error) {
	if signer == nil {
		return "", errors.New("sign pairing token: no signer")
	}
	pub, ok := signer.Public().(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return "", fmt.Errorf("sign pairing token: %w", ErrTokenKey)
	}
	if err := q.validateFields(); err != nil {
		return "", fmt.Errorf("sign pairing token: %w", err)
	}
	var nonce [NonceBytes]byte
	if _, err := io.ReadFull(rand, nonce[:]); err != nil {
		return "", fmt.Errorf("sign pairing token: nonce: %w", err)
	}
	digest, err := TokenDigest(q, nonce)
	if err != nil {
		return "", fmt.Errorf("sign pairing token: %w", err)
	}
	der, err := signer.Sign(rand, digest, crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("sign pairing token: %w", err)
	}
	r, s, err := parseDERSignature(der)
	if err != nil {
		return "", fmt.Errorf("sign pairing token: signer output: %w", err)
	}
	if !ecdsa.Verify(pub, digest, r, s) {
		return "", errors.New("sign pairing token: signer produced a signature that does not verify")
	}
	raw := make([]byte, 0, TokenBytes)
	raw = append(raw, nonce[:]...)
	raw = append(raw, r.FillBytes(make([]byte, sigHalf))...)
	raw = append(raw, s.FillBytes(make([]byte, sigHalf))...)
	return base64.RawURLEncoding.EncodeToString(raw), nil
}

// VerifyToken checks q.PairingToken against the device identity key pub (from
// the Central Station's inventory) and the other fields of q, and returns the
// token's nonce. Errors wrap ErrTokenMalformed (encoding, length, key) or
// ErrTokenSignature. It does not check expiry or field formats: call
// ParseQR first.
func VerifyToken(pub *ecdsa.PublicKey, q QRContent) (nonce [NonceBytes]byte, err error) {
	if pub == nil || pub.Curve != elliptic.P256() {
		return nonce, fmt.Errorf("verify pairing token: %w", ErrTokenKey)
	}
	raw, err := decodeToken(q.PairingToken)
	if err != nil {
		return nonce, fmt.Errorf("verify pairing token: %w", err)
	}
	copy(nonce[:], raw[:NonceBytes])
	r := new(big.Int).SetBytes(raw[NonceBytes : NonceBytes+sigHalf])
	s := new(big.Int).SetBytes(raw[NonceBytes+sigHalf:])
	digest, err := TokenDigest(q, nonce)
	if err != nil {
		return [NonceBytes]byte{}, fmt.Errorf("verify pairing token: %w", err)
	}
	// ecdsa.Verify refuses r or s outside [1, N-1].
	if !ecdsa.Verify(pub, digest, r, s) {
		return [NonceBytes]byte{}, fmt.Errorf("verify pairing token: %w", ErrTokenSignature)
	}
	return nonce, nil
}

// decodeToken returns the TokenBytes raw bytes of a token.
func decodeToken(s string) ([]byte, error) {
	if len(s) != TokenChars {
		return nil, fmt.Errorf("%w: %d characters, want %d", ErrTokenMalformed, len(s), TokenChars)
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: not base64url without padding", ErrTokenMalformed)
	}
	if len(raw) != TokenBytes {
		return nil, fmt.Errorf("%w: %d bytes, want %d", ErrTokenMalformed, len(raw), TokenBytes)
	}
	return raw, nil
}

// parseDERSignature decodes an ASN.1 DER ECDSA signature and checks that r
// and s fit the fixed width.
func parseDERSignature(der []byte) (r, s *big.Int, err error) {
	var sig struct{ R, S *big.Int }
	rest, err := asn1.Unmarshal(der, &sig)
	if err != nil {
		return nil, nil, fmt.Errorf("not an ASN.1 ECDSA signature: %w", err)
	}
	if len(rest) != 0 {
		return nil, nil, errors.New("trailing bytes after the ASN.1 signature")
	}
	if sig.R.Sign() <= 0 || sig.S.Sign() <= 0 || sig.R.BitLen() > 8*sigHalf || sig.S.BitLen() > 8*sigHalf {
		return nil, nil, errors.New("signature values out of range")
	}
	return sig.R, sig.S, nil
}
