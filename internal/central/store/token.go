package store

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
)

// A technician's bearer token is "<id>.<secret>": the ID ("t-" and 8 hex
// digits) finds the technician, the secret (32 random bytes, base64url) is
// what proves it. Only the SHA-256 hash of the whole token is stored; the
// token itself is shown once, when the technician is added.
const (
	techIDPrefix    = "t-"
	techIDHexLen    = 8
	tokenSecretSize = 32
	tokenSecretLen  = 43 // base64url of 32 bytes, no padding
)

// ErrTokenFormat: a bearer token that is not of the form NewTechnicianToken
// makes.
var ErrTokenFormat = errors.New("technician token malformed")

// TechnicianToken is a new credential: ID and Hash are stored, Token is
// handed to the technician once and never stored.
type TechnicianToken struct {
	ID    string
	Token string
	Hash  []byte
}

// NewTechnicianToken draws a technician ID and token from r (crypto/rand
// when nil).
func NewTechnicianToken(r io.Reader) (TechnicianToken, error) {
	if r == nil {
		r = rand.Reader
	}
	var b [techIDHexLen/2 + tokenSecretSize]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return TechnicianToken{}, fmt.Errorf("technician token: %w", err)
	}
	id := techIDPrefix + hex.EncodeToString(b[:techIDHexLen/2])
	tok := id + "." + base64.RawURLEncoding.EncodeToString(b[techIDHexLen/2:])
	return TechnicianToken{ID: id, Token: tok, Hash: HashTechnicianToken(tok)}, nil
}

// HashTechnicianToken is the stored form of a token.
func HashTechnicianToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// TechnicianIDOfToken returns the technician ID a bearer token names,
// checking only its form.
func TechnicianIDOfToken(token string) (string, error) {
	id, secret, ok := strings.Cut(token, ".")
	if !ok || len(id) != len(techIDPrefix)+techIDHexLen || !strings.HasPrefix(id, techIDPrefix) || len(secret) != tokenSecretLen {
		return "", ErrTokenFormat
	}
	if _, err := hex.DecodeString(id[len(techIDPrefix):]); err != nil {
		return "", ErrTokenFormat
	}
	if _, err := base64.RawURLEncoding.Strict().DecodeString(secret); err != nil {
		return "", ErrTokenFormat
	}
	return id, nil
}

// TokenMatches reports in constant time whether token hashes to hash.
func TokenMatches(hash []byte, token string) bool {
	return subtle.ConstantTimeCompare(hash, HashTechnicianToken(token)) == 1
}

// SecretKind is a kind of credential of the form "<prefix><hex ID>.<secret>"
// other than a technician's bearer token: the ID finds the record, the
// SHA-256 of the whole token is what is stored and compared (TokenMatches,
// in constant time).
type SecretKind struct {
	prefix string
	idHex  int
}

// Kinds of secret the web app hands out.
var (
	// EnrollmentSecret is the token of a one-time passkey enrollment link.
	EnrollmentSecret = SecretKind{prefix: "e-", idHex: 16}
	// SessionSecret is the token of a browser session cookie.
	SessionSecret = SecretKind{prefix: "s-", idHex: 16}
)

// Secret is a new credential of a SecretKind: ID and Hash are stored,
// Token is handed out once and never stored.
type Secret struct {
	ID    string
	Token string
	Hash  []byte
}

// New draws a secret from r (crypto/rand when nil).
func (k SecretKind) New(r io.Reader) (Secret, error) {
	if r == nil {
		r = rand.Reader
	}
	b := make([]byte, k.idHex/2+tokenSecretSize)
	if _, err := io.ReadFull(r, b); err != nil {
		return Secret{}, fmt.Errorf("new secret: %w", err)
	}
	id := k.prefix + hex.EncodeToString(b[:k.idHex/2])
	tok := id + "." + base64.RawURLEncoding.EncodeToString(b[k.idHex/2:])
	return Secret{ID: id, Token: tok, Hash: HashTechnicianToken(tok)}, nil
}

// IDOf returns the ID a token of this kind names, checking only its form.
func (k SecretKind) IDOf(token string) (string, error) {
	id, secret, ok := strings.Cut(token, ".")
	if !ok || len(id) != len(k.prefix)+k.idHex || !strings.HasPrefix(id, k.prefix) || len(secret) != tokenSecretLen {
		return "", ErrTokenFormat
	}
	if _, err := hex.DecodeString(id[len(k.prefix):]); err != nil || strings.ToLower(id) != id {
		return "", ErrTokenFormat
	}
	if _, err := base64.RawURLEncoding.Strict().DecodeString(secret); err != nil {
		return "", ErrTokenFormat
	}
	return id, nil
}
