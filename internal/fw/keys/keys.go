package keys

import (
	"crypto"
	"crypto/ecdh"
	"errors"
)

// ErrNoClientKey is returned by Store.CommittedClientKey when the device has
// not been provisioned yet (or was factory-reset).
var ErrNoClientKey = errors.New("keys: no committed client key")

// Store holds the device's keys. Implementations keep private keys in
// hardware where the board has it; nothing here ever returns private bytes.
type Store interface {
	// Identity is the device identity key (DevID): ECDSA P-256. It signs
	// pairing tokens, hello responses and the provisioning port's TLS
	// handshakes.
	Identity() crypto.Signer
	// PayloadKey is the P-256 key-agreement key the Central Station encrypts
	// the configuration to (HPKE DHKEM(P-256)).
	PayloadKey() ecdh.KeyExchanger
	// NewClientKey creates a fresh ECDSA P-256 client TLS key. It stays
	// transient until Commit; Discard removes it.
	NewClientKey() (ClientKey, error)
	// ImportClientKey places a PKCS#8 or SEC 1 DER ECDSA P-256 private key
	// (the spec's optional clientPrivateKey) under the store's protection.
	// The caller must wipe der afterwards; the store keeps no plaintext copy.
	ImportClientKey(der []byte) (ClientKey, error)
	// CommittedClientKey returns the client key committed in SlotA, or
	// ErrNoClientKey (ClientKeyAt(SlotA)).
	CommittedClientKey() (crypto.Signer, error)
	// ForgetClientKey removes the committed client keys of both slots
	// (factory reset).
	ForgetClientKey() error
	// Slotted: the committed client key of each slot (renewal).
	Slotted
}

// ClientKey is a client TLS key created or imported during pairing.
type ClientKey interface {
	crypto.Signer
	// Commit makes the key the committed client key of SlotA, replacing
	// any earlier one (CommitTo(SlotA)). It is called once the
	// provisioning commits.
	Commit() error
	// SlotCommitter: commit to a given slot (renewal, re-pairing).
	SlotCommitter
	// Discard throws the key away (rollback). Discard after Commit is an
	// error.
	Discard() error
}
