package tpm

import (
	"crypto"
	"crypto/ecdsa"
	"encoding/asn1"
	"fmt"
	"io"
	"math/big"

	"github.com/google/go-tpm/tpm2"
)

// signer is a crypto.Signer over TPM2_Sign with an ECDSA P-256 key whose
// scheme is ECDSA/SHA-256. It serves crypto/tls (ecdsa_secp256r1_sha256)
// and crypto/x509 (ECDSAWithSHA256, the default for P-256 keys).
type signer struct {
	store *Store
	what  string
	key   persistentKey // handle is transient for an uncommitted client key
	pub   *ecdsa.PublicKey
}

func newSigner(s *Store, what string, k persistentKey) (*signer, error) {
	pt, err := eccPoint(&k.public)
	if err != nil {
		return nil, fmt.Errorf("tpm: %s: %w", what, err)
	}
	pub, err := ecdsaPublic(pt)
	if err != nil {
		return nil, fmt.Errorf("tpm: %s: %w", what, err)
	}
	return &signer{store: s, what: what, key: k, pub: pub}, nil
}

// Public implements crypto.Signer: an *ecdsa.PublicKey.
func (k *signer) Public() crypto.PublicKey { return k.pub }

// Sign implements crypto.Signer. digest must be a SHA-256 digest
// (opts.HashFunc() == crypto.SHA256); the result is an ASN.1 DER
// ECDSA-Sig-Value, as crypto/ecdsa produces. rand is unused: the TPM makes
// its own nonce.
func (k *signer) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	step := "sign with " + k.what
	if opts == nil || opts.HashFunc() != crypto.SHA256 {
		h := crypto.Hash(0)
		if opts != nil {
			h = opts.HashFunc()
		}
		return nil, fmt.Errorf("tpm: %s: %w: hash %v (the key signs SHA-256 digests only)", step, ErrUnsupported, h)
	}
	if len(digest) != crypto.SHA256.Size() {
		return nil, fmt.Errorf("tpm: %s: %w: digest is %d bytes, SHA-256 needs %d", step, ErrUnsupported, len(digest), crypto.SHA256.Size())
	}
	s := k.store
	if err := s.lock(step); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	return k.signLocked(step, digest)
}

func (k *signer) signLocked(step string, digest []byte) ([]byte, error) {
	rsp, err := tpm2.Sign{
		KeyHandle: k.key.auth(),
		Digest:    tpm2.TPM2BDigest{Buffer: digest},
		InScheme: tpm2.TPMTSigScheme{
			Scheme:  tpm2.TPMAlgECDSA,
			Details: tpm2.NewTPMUSigScheme(tpm2.TPMAlgECDSA, &tpm2.TPMSSchemeHash{HashAlg: tpm2.TPMAlgSHA256}),
		},
		Validation: tpm2.TPMTTKHashCheck{Tag: tpm2.TPMSTHashCheck, Hierarchy: tpm2.TPMRHNull},
	}.Execute(k.store.tpm)
	if err != nil {
		return nil, wrap(step, err)
	}
	sig, err := rsp.Signature.Signature.ECDSA()
	if err != nil {
		return nil, wrap(step, err)
	}
	der, err := asn1.Marshal(struct{ R, S *big.Int }{
		new(big.Int).SetBytes(sig.SignatureR.Buffer),
		new(big.Int).SetBytes(sig.SignatureS.Buffer),
	})
	if err != nil {
		return nil, wrap(step+": encode signature", err)
	}
	return der, nil
}

var _ crypto.Signer = (*signer)(nil)
