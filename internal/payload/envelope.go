package payload

import (
	"bytes"
	"crypto/ecdh"
	"crypto/hpke"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
)

// Envelope constants (RFC 9180 base mode).
const (
	// Info is HPKE's info parameter: binds the key schedule to this protocol.
	Info = "zmonitor-provisioning-v1 config"
	// EnvelopeVersion is the envelope format version.
	EnvelopeVersion = 1
	// MaxEnvelope bounds an envelope on the wire.
	MaxEnvelope = 64 << 10
	// Suite identifiers: DHKEM(P-256, HKDF-SHA256), HKDF-SHA256, AES-256-GCM.
	KEMID  = 0x0010
	KDFID  = 0x0001
	AEADID = 0x0002
)

type envelope struct {
	Version    int    `json:"version"`
	Enc        string `json:"enc"`
	Ciphertext string `json:"ciphertext"`
}

// Seal encrypts plaintext to recipient, binding it to the session nonce.
func Seal(recipient *ecdh.PublicKey, sessionNonce, plaintext []byte) ([]byte, error) {
	pk, err := hpke.NewDHKEMPublicKey(recipient)
	if err != nil {
		return nil, fmt.Errorf("seal: recipient key: %w", err)
	}
	enc, s, err := hpke.NewSender(pk, hpke.HKDFSHA256(), hpke.AES256GCM(), []byte(Info))
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	ct, err := s.Seal(sessionNonce, plaintext)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	return json.Marshal(envelope{Version: EnvelopeVersion, Enc: base64.RawURLEncoding.EncodeToString(enc), Ciphertext: base64.RawURLEncoding.EncodeToString(ct)})
}

// ParseEnvelope decodes an envelope strictly and returns enc and ciphertext.
func ParseEnvelope(b []byte) (enc, ct []byte, err error) {
	if len(b) > MaxEnvelope {
		return nil, nil, fmt.Errorf("envelope: %d bytes, limit %d", len(b), MaxEnvelope)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var e envelope
	if err := dec.Decode(&e); err != nil {
		return nil, nil, fmt.Errorf("envelope: %w", err)
	}
	if dec.More() || len(bytes.TrimSpace(b[dec.InputOffset():])) != 0 {
		return nil, nil, errors.New("envelope: trailing data")
	}
	if e.Version != EnvelopeVersion {
		return nil, nil, fmt.Errorf("envelope: version %d, want %d", e.Version, EnvelopeVersion)
	}
	if enc, err = base64.RawURLEncoding.DecodeString(e.Enc); err != nil || len(enc) != 65 {
		return nil, nil, errors.New("envelope: enc is not a base64url 65-byte P-256 point")
	}
	if ct, err = base64.RawURLEncoding.DecodeString(e.Ciphertext); err != nil || len(ct) < 16 {
		return nil, nil, errors.New("envelope: ciphertext is not base64url or shorter than the AEAD tag")
	}
	return enc, ct, nil
}

// Open decrypts an envelope with key (which may live in a TPM: only its
// ECDH method is used), checking it was sealed for this session nonce.
func Open(key ecdh.KeyExchanger, sessionNonce, b []byte) ([]byte, error) {
	enc, ct, err := ParseEnvelope(b)
	if err != nil {
		return nil, err
	}
	priv, err := hpke.NewDHKEMPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("open: key: %w", err)
	}
	r, err := hpke.NewRecipient(enc, priv, hpke.HKDFSHA256(), hpke.AES256GCM(), []byte(Info))
	if err != nil {
		return nil, fmt.Errorf("open: %w", err)
	}
	pt, err := r.Open(sessionNonce, ct)
	if err != nil {
		return nil, fmt.Errorf("open: not sealed to this device for this session: %w", err)
	}
	return pt, nil
}
