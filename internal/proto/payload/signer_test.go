package payload

import (
	"crypto"
	"crypto/ed25519"
	"io"
)

// ed25519Signer is a crypto.Signer with a key Sign must refuse.
type ed25519Signer struct{}

func (ed25519Signer) Public() crypto.PublicKey {
	return ed25519.PublicKey(make([]byte, ed25519.PublicKeySize))
}
func (ed25519Signer) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	panic("Sign must not be reached")
}
