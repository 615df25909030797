package payload

import (
	"crypto/ecdh"
	"crypto/hpke"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
)

// Envelope constants (RFC 9180 base mode).
const (
	// Info is HPKE's info parameter: it binds the key schedule to this
	// protocol and this use, so a ciphertext made for anything else never
	// opens here.
	Info = "zmonitor-provisioning-v1 config"
	// EnvelopeVersion is the envelope format version.
	EnvelopeVersion = 1
	// MaxEnvelope bounds an envelope on the wire.
	MaxEnvelope = 64 << 10
	// NonceSize is the size of the session nonce, HPKE's aad.
	NonceSize = 32
	// Suite identifiers: DHKEM(P-256, HKDF-SHA256), HKDF-SHA256, AES-256-GCM.
	KEMID  = 0x0010
	KDFID  = 0x0001
	AEADID = 0x0002

	encSize = 65 // an uncompressed P-256 point
	tagSize = 16 // the AES-GCM tag
)

type envelope struct {
	Version    int    `json:"version"`
	Enc        string `json:"enc"`
	Ciphertext string `json:"ciphertext"`
}

var envelopeMembers = nameSet("version", "enc", "ciphertext")

// Seal encrypts plaintext (at most MaxPayload bytes) to the device's payload
// key recipient with HPKE, with the session nonce as aad, and returns the
// envelope JSON. HPKE draws its ephemeral key from crypto/rand.
func Seal(recipient *ecdh.PublicKey, sessionNonce, plaintext []byte) ([]byte, error) {
	if len(sessionNonce) != NonceSize {
		return nil, fmt.Errorf("seal: session nonce is %d bytes, want %d", len(sessionNonce), NonceSize)
	}
	if len(plaintext) > MaxPayload {
		return nil, fmt.Errorf("seal: payload is %d bytes, limit %d", len(plaintext), MaxPayload)
	}
	if recipient == nil || recipient.Curve() != ecdh.P256() {
		return nil, errors.New("seal: recipient key is not P-256")
	}
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

// ParseEnvelope decodes an envelope strictly (at most MaxEnvelope bytes, one
// object with exactly the members version, enc and ciphertext, no duplicates,
// version 1, unpadded base64url) and returns the encapsulated key and the
// ciphertext. Every error wraps ErrMalformed.
func ParseEnvelope(b []byte) (enc, ct []byte, err error) {
	m, err := strictObject(b, MaxEnvelope, envelopeMembers)
	if err != nil {
		return nil, nil, fmt.Errorf("envelope: %w", err)
	}
	for name := range envelopeMembers {
		if _, ok := m[name]; !ok {
			return nil, nil, fmt.Errorf("envelope: %w: member %q missing", ErrMalformed, name)
		}
	}
	if string(m["version"]) != "1" {
		return nil, nil, fmt.Errorf("envelope: %w: version %s, want %d", ErrMalformed, m["version"], EnvelopeVersion)
	}
	var e envelope
	if err := json.Unmarshal(m["enc"], &e.Enc); err != nil {
		return nil, nil, fmt.Errorf("envelope: %w: enc is not a string", ErrMalformed)
	}
	if err := json.Unmarshal(m["ciphertext"], &e.Ciphertext); err != nil {
		return nil, nil, fmt.Errorf("envelope: %w: ciphertext is not a string", ErrMalformed)
	}
	b64 := base64.RawURLEncoding.Strict()
	if enc, err = b64.DecodeString(e.Enc); err != nil || len(enc) != encSize || enc[0] != 4 {
		return nil, nil, fmt.Errorf("envelope: %w: enc is not the base64url of an uncompressed P-256 point", ErrMalformed)
	}
	if ct, err = b64.DecodeString(e.Ciphertext); err != nil || len(ct) < tagSize {
		return nil, nil, fmt.Errorf("envelope: %w: ciphertext is not base64url or is shorter than the AEAD tag", ErrMalformed)
	}
	return enc, ct, nil
}

// ErrNotForThisSession is wrapped when the envelope does not open: it was
// sealed to another key, for another session nonce, or altered.
var ErrNotForThisSession = errors.New("envelope was not sealed to this device for this session, or was altered")

// Open decrypts an envelope with the device's payload key. key may live in a
// TPM: only its ECDH method is used (KeyExchanger.Bytes is never called).
// sessionNonce must be the nonce of the current session (the aad).
func Open(key ecdh.KeyExchanger, sessionNonce, b []byte) ([]byte, error) {
	if len(sessionNonce) != NonceSize {
		return nil, fmt.Errorf("open envelope: session nonce is %d bytes, want %d", len(sessionNonce), NonceSize)
	}
	enc, ct, err := ParseEnvelope(b)
	if err != nil {
		return nil, fmt.Errorf("open envelope: %w", err)
	}
	priv, err := hpke.NewDHKEMPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("open envelope: payload key: %w", err)
	}
	r, err := hpke.NewRecipient(enc, priv, hpke.HKDFSHA256(), hpke.AES256GCM(), []byte(Info))
	if err != nil {
		return nil, fmt.Errorf("open envelope: %w: %v", ErrNotForThisSession, err)
	}
	pt, err := r.Open(sessionNonce, ct)
	if err != nil {
		return nil, fmt.Errorf("open envelope: %w", ErrNotForThisSession)
	}
	return pt, nil
}
