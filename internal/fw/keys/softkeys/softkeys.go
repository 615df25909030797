package softkeys

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/zmonitor/firmware/internal/fw/keys"
)

// Store is an in-memory keys.Store. The zero value is not usable; call New.
type Store struct {
	rand     io.Reader
	identity *ecdsa.PrivateKey
	payload  *ecdh.PrivateKey

	mu        sync.Mutex
	committed map[keys.Slot]*ecdsa.PrivateKey
}

// New creates an identity and a payload key from rand.
func New(rand io.Reader) (*Store, error) {
	id, err := ecdsa.GenerateKey(elliptic.P256(), rand)
	if err != nil {
		return nil, fmt.Errorf("softkeys: identity key: %w", err)
	}
	pk, err := ecdh.P256().GenerateKey(rand)
	if err != nil {
		return nil, fmt.Errorf("softkeys: payload key: %w", err)
	}
	return &Store{rand: rand, identity: id, payload: pk, committed: map[keys.Slot]*ecdsa.PrivateKey{}}, nil
}

// Identity implements keys.Store.
func (s *Store) Identity() crypto.Signer { return s.identity }

// PayloadKey implements keys.Store.
func (s *Store) PayloadKey() ecdh.KeyExchanger { return s.payload }

// NewClientKey implements keys.Store.
func (s *Store) NewClientKey() (keys.ClientKey, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), s.rand)
	if err != nil {
		return nil, fmt.Errorf("softkeys: client key: %w", err)
	}
	return &clientKey{PrivateKey: k, store: s}, nil
}

// ImportClientKey implements keys.Store.
func (s *Store) ImportClientKey(der []byte) (keys.ClientKey, error) {
	var k *ecdsa.PrivateKey
	if p, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		ek, ok := p.(*ecdsa.PrivateKey)
		if !ok {
			return nil, errors.New("softkeys: import: PKCS#8 key is not ECDSA")
		}
		k = ek
	} else if ek, err2 := x509.ParseECPrivateKey(der); err2 == nil {
		k = ek
	} else {
		return nil, fmt.Errorf("softkeys: import: not a PKCS#8 or SEC 1 key: %w", err)
	}
	if k.Curve != elliptic.P256() {
		return nil, errors.New("softkeys: import: key is not on P-256")
	}
	return &clientKey{PrivateKey: k, store: s}, nil
}

// CommittedClientKey implements keys.Store.
func (s *Store) CommittedClientKey() (crypto.Signer, error) { return s.ClientKeyAt(keys.SlotA) }

// ClientKeyAt implements keys.Slotted.
func (s *Store) ClientKeyAt(slot keys.Slot) (crypto.Signer, error) {
	if !slot.Valid() {
		return nil, fmt.Errorf("softkeys: %s is not a key slot", slot)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.committed[slot]
	if k == nil {
		return nil, keys.ErrNoClientKey
	}
	return k, nil
}

// ForgetClientKey implements keys.Store: both slots.
func (s *Store) ForgetClientKey() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.committed)
	return nil
}

// ForgetClientKeyAt implements keys.Slotted.
func (s *Store) ForgetClientKeyAt(slot keys.Slot) error {
	if !slot.Valid() {
		return fmt.Errorf("softkeys: %s is not a key slot", slot)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.committed, slot)
	return nil
}

type clientKey struct {
	*ecdsa.PrivateKey
	store     *Store
	mu        sync.Mutex
	committed bool
	discarded bool
}

func (k *clientKey) Commit() error { return k.CommitTo(keys.SlotA) }

func (k *clientKey) CommitTo(slot keys.Slot) error {
	if !slot.Valid() {
		return fmt.Errorf("softkeys: %s is not a key slot", slot)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.discarded {
		return errors.New("softkeys: commit of a discarded client key")
	}
	k.committed = true
	k.store.mu.Lock()
	k.store.committed[slot] = k.PrivateKey
	k.store.mu.Unlock()
	return nil
}

func (k *clientKey) Discard() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.committed {
		return errors.New("softkeys: discard of a committed client key")
	}
	k.discarded = true
	return nil
}

var _ keys.Store = (*Store)(nil)
