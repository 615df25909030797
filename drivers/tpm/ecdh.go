package tpm

import (
	"crypto/ecdh"
	"fmt"

	"github.com/google/go-tpm/tpm2"
)

// exchanger is an ecdh.KeyExchanger over TPM2_ECDH_ZGen with the payload
// key: crypto/hpke's DHKEM(P-256) decapsulates through it
// (hpke.NewDHKEMPrivateKey).
type exchanger struct {
	store *Store
	key   persistentKey
	pub   *ecdh.PublicKey
}

func newExchanger(s *Store, k persistentKey) (*exchanger, error) {
	pub, err := eccPoint(&k.public)
	if err != nil {
		return nil, fmt.Errorf("tpm: payload key: %w", err)
	}
	return &exchanger{store: s, key: k, pub: pub}, nil
}

// PublicKey implements ecdh.KeyExchanger.
func (x *exchanger) PublicKey() *ecdh.PublicKey { return x.pub }

// Curve implements ecdh.KeyExchanger: P-256.
func (x *exchanger) Curve() ecdh.Curve { return ecdh.P256() }

// ECDH implements ecdh.KeyExchanger: the shared secret is the X coordinate
// of d·peer (32 bytes), as crypto/ecdh returns it. The TPM refuses points
// that are not on the curve.
func (x *exchanger) ECDH(peer *ecdh.PublicKey) ([]byte, error) {
	const step = "ECDH with payload key"
	if peer == nil || peer.Curve() != ecdh.P256() {
		return nil, fmt.Errorf("tpm: %s: %w: %w", step, ErrUnsupported, errNotP256)
	}
	s := x.store
	if err := s.lock(step); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	rsp, err := tpm2.ECDHZGen{
		KeyHandle: x.key.auth(),
		InPoint:   tpm2.New2B(pointOf(peer)),
	}.Execute(s.tpm)
	if err != nil {
		return nil, wrap(step, err)
	}
	pt, err := rsp.OutPoint.Contents()
	if err != nil {
		return nil, wrap(step, err)
	}
	if len(pt.X.Buffer) > 32 {
		return nil, fmt.Errorf("tpm: %s: X coordinate is %d bytes", step, len(pt.X.Buffer))
	}
	z := make([]byte, 32)
	copy(z[32-len(pt.X.Buffer):], pt.X.Buffer)
	return z, nil
}

var _ ecdh.KeyExchanger = (*exchanger)(nil)
