package tpm

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"errors"
	"fmt"
	"io"

	"github.com/google/go-tpm/tpm2"

	"github.com/zmonitor/firmware/internal/fw/keys"
)

// clientState is where a ClientKey is in its life.
type clientState int

const (
	clientPending   clientState = iota + 1 // loaded in a transient handle
	clientCommitted                        // persistent at Opts.ClientHandle
	clientDiscarded                        // flushed
)

// String implements fmt.Stringer.
func (c clientState) String() string {
	switch c {
	case clientPending:
		return "pending"
	case clientCommitted:
		return "committed"
	case clientDiscarded:
		return "discarded"
	}
	return fmt.Sprintf("clientState(%d)", int(c))
}

// ClientKey is a client TLS key made during pairing. Until Commit it lives
// in one transient TPM handle (one of the TPM's few object slots: pair each
// NewClientKey with Commit or Discard); Commit makes it persistent at
// Opts.ClientHandle, Discard flushes it. It implements keys.ClientKey.
type ClientKey struct {
	signer
	state clientState // guarded by store.mu
}

// Sign implements crypto.Signer (see the identity key's Sign).
func (c *ClientKey) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	// Validate before taking the lock, as signer.Sign does, then check the
	// state under it.
	if opts == nil || opts.HashFunc() != crypto.SHA256 || len(digest) != crypto.SHA256.Size() {
		return c.signer.Sign(r, digest, opts)
	}
	const step = "sign with client key"
	s := c.store
	if err := s.lock(step); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	if c.state == clientDiscarded {
		return nil, fmt.Errorf("tpm: %s: key was discarded: %w", step, ErrClosed)
	}
	return c.signLocked(step, digest)
}

// Commit makes the key the device's committed client key in slot A:
// CommitTo(keys.SlotA).
func (c *ClientKey) Commit() error { return c.CommitTo(keys.SlotA) }

// CommitTo makes the key the committed client key of slot: an earlier key
// at the slot's handle (Opts.ClientHandle for A, Opts.ClientHandleB for B)
// is evicted, this one is made persistent there and its transient handle
// flushed. The other slot is not touched.
func (c *ClientKey) CommitTo(slot keys.Slot) error {
	step := "commit client key to slot " + slot.String()
	s := c.store
	h, err := s.slotHandle(slot)
	if err != nil {
		return fmt.Errorf("tpm: %s: %w", step, err)
	}
	if err := s.lock(step); err != nil {
		return err
	}
	defer s.mu.Unlock()
	switch c.state {
	case clientCommitted:
		return nil
	case clientDiscarded:
		return fmt.Errorf("tpm: %s: key was discarded: %w", step, ErrClosed)
	}
	if old, ok, err := s.readAny(step, h); err != nil {
		return err
	} else if ok {
		if err := s.evict(step+": evict previous key", old); err != nil {
			return err
		}
	}
	if err := s.persist(step, c.key.handle, c.key.name, h); err != nil {
		return err
	}
	s.flush(c.key.handle)
	k, ok, err := s.readKey(RoleClient, h)
	if err == nil && !ok {
		err = fmt.Errorf("tpm: %s: %w: not at 0x%08x after EvictControl", step, ErrKeyMissing, uint32(h))
	}
	if err != nil {
		// The key is persistent but unreadable; do not leave the signer
		// pointing at the flushed transient handle.
		c.state = clientDiscarded
		return err
	}
	c.key = k
	c.state = clientCommitted
	return nil
}

// Discard flushes the uncommitted key (rollback). Discarding twice is not
// an error; discarding a committed key is (use Store.ForgetClientKey).
func (c *ClientKey) Discard() error {
	const step = "discard client key"
	s := c.store
	if err := s.lock(step); err != nil {
		return err
	}
	defer s.mu.Unlock()
	switch c.state {
	case clientCommitted:
		return fmt.Errorf("tpm: %s: key is committed (use ForgetClientKey)", step)
	case clientDiscarded:
		return nil
	}
	_, err := tpm2.FlushContext{FlushHandle: c.key.handle}.Execute(s.tpm)
	if err != nil && !isRC(err, tpm2.TPMRCHandle) {
		return wrap(step, err)
	}
	c.state = clientDiscarded
	return nil
}

// readAny reads whatever object is at persistent handle h (no template
// check): used to evict it.
func (s *Store) readAny(step string, h tpm2.TPMHandle) (persistentKey, bool, error) {
	rsp, err := tpm2.ReadPublic{ObjectHandle: h}.Execute(s.tpm)
	if isRC(err, tpm2.TPMRCHandle) {
		return persistentKey{}, false, nil
	}
	if err != nil {
		return persistentKey{}, false, wrap(step+": read handle", err)
	}
	return persistentKey{handle: h, name: rsp.Name}, true, nil
}

// NewClientKey implements keys.Store: a fresh ECDSA P-256 key generated in
// the TPM under the SRK, loaded until Commit or Discard.
func (s *Store) NewClientKey() (keys.ClientKey, error) {
	const step = "create client key"
	if err := s.lock(step); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	h, name, pub, err := s.createLoaded(step, SigningTemplate())
	if err != nil {
		return nil, err
	}
	return s.pendingKey(step, h, name, pub)
}

func (s *Store) pendingKey(step string, h tpm2.TPMHandle, name tpm2.TPM2BName, pub tpm2.TPMTPublic) (*ClientKey, error) {
	sg, err := newSigner(s, "client key", persistentKey{handle: h, name: name, public: pub})
	if err != nil {
		s.flush(h)
		return nil, fmt.Errorf("tpm: %s: %w", step, err)
	}
	return &ClientKey{signer: *sg, state: clientPending}, nil
}

// ImportClientKey implements keys.Store: the PKCS#8 or SEC 1 DER P-256 key
// (the spec's clientPrivateKey) is wrapped on the host to the SRK's public
// key (TPM2 duplication outer wrapper, so it never crosses the bus in
// plaintext), imported with TPM2_Import and loaded. The plaintext copies
// this function makes are zeroed; the caller still owns and must wipe der.
func (s *Store) ImportClientKey(der []byte) (keys.ClientKey, error) {
	const step = "import client key"
	priv, err := parseP256(der)
	if err != nil {
		return nil, fmt.Errorf("tpm: %s: %w", step, err)
	}
	defer wipeKey(priv)
	d, err := priv.Bytes()
	if err != nil {
		return nil, fmt.Errorf("tpm: %s: %w", step, err)
	}
	defer clear(d)
	pubPoint, err := priv.PublicKey.ECDH()
	if err != nil {
		return nil, fmt.Errorf("tpm: %s: public key: %w", step, err)
	}

	if err := s.lock(step); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()

	pub := ImportedTemplate()
	pt := pointOf(pubPoint)
	pub.Unique = tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &pt)
	name, err := tpm2.ObjectName(&pub)
	if err != nil {
		return nil, wrap(step+": object name", err)
	}
	sensitive := tpm2.Marshal(tpm2.TPMTSensitive{
		SensitiveType: tpm2.TPMAlgECC,
		Sensitive:     tpm2.NewTPMUSensitiveComposite(tpm2.TPMAlgECC, &tpm2.TPM2BECCParameter{Buffer: d}),
	})
	defer clear(sensitive)
	wrapKey, err := tpm2.ImportEncapsulationKey(&s.srk.public)
	if err != nil {
		return nil, wrap(step+": SRK wrapping key", err)
	}
	dup, seed, err := tpm2.CreateDuplicate(s.opts.Rand, wrapKey, name.Buffer, sensitive)
	if err != nil {
		return nil, wrap(step+": wrap to SRK", err)
	}
	ir, err := tpm2.Import{
		ParentHandle: s.srk.auth(),
		ObjectPublic: tpm2.New2B(pub),
		Duplicate:    tpm2.TPM2BPrivate{Buffer: dup},
		InSymSeed:    tpm2.TPM2BEncryptedSecret{Buffer: seed},
		Symmetric:    tpm2.TPMTSymDef{Algorithm: tpm2.TPMAlgNull},
	}.Execute(s.tpm)
	if err != nil {
		return nil, wrap(step, err)
	}
	lr, err := tpm2.Load{
		ParentHandle: s.srk.auth(),
		InPrivate:    ir.OutPrivate,
		InPublic:     tpm2.New2B(pub),
	}.Execute(s.tpm)
	if err != nil {
		return nil, wrap(step+": load", err)
	}
	return s.pendingKey(step, lr.ObjectHandle, lr.Name, pub)
}

// parseP256 parses a PKCS#8 or SEC 1 DER ECDSA P-256 private key.
func parseP256(der []byte) (*ecdsa.PrivateKey, error) {
	var k *ecdsa.PrivateKey
	if p, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		ek, ok := p.(*ecdsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("%w: PKCS#8 key is %T, not ECDSA", ErrUnsupported, p)
		}
		k = ek
	} else if ek, err2 := x509.ParseECPrivateKey(der); err2 == nil {
		k = ek
	} else {
		return nil, errors.New("key is neither PKCS#8 nor SEC 1 DER")
	}
	if k.Curve != elliptic.P256() {
		wipeKey(k)
		return nil, fmt.Errorf("%w: key is on %s, not P-256", ErrUnsupported, k.Curve.Params().Name)
	}
	return k, nil
}

// wipeKey zeroes the private scalar's words. (crypto/ecdsa keeps a second,
// internal copy that Go gives no way to wipe; it is garbage once the key is
// unreachable.)
func wipeKey(k *ecdsa.PrivateKey) {
	//lint:ignore SA1019 D is read only to overwrite its words with zeros.
	if k == nil || k.D == nil {
		return
	}
	//lint:ignore SA1019 D is read only to overwrite its words with zeros.
	clear(k.D.Bits())
}

// slotHandle is the persistent handle of a client key slot.
func (s *Store) slotHandle(slot keys.Slot) (tpm2.TPMHandle, error) {
	switch slot {
	case keys.SlotA:
		return s.opts.ClientHandle, nil
	case keys.SlotB:
		return s.opts.ClientHandleB, nil
	}
	return 0, fmt.Errorf("%s is not a client key slot", slot)
}

// CommittedClientKey implements keys.Store: the client key of slot A.
func (s *Store) CommittedClientKey() (crypto.Signer, error) { return s.ClientKeyAt(keys.SlotA) }

// ClientKeyAt implements keys.Slotted: the client key persistent at the
// slot's handle, or keys.ErrNoClientKey.
func (s *Store) ClientKeyAt(slot keys.Slot) (crypto.Signer, error) {
	step := "committed client key of slot " + slot.String()
	h, err := s.slotHandle(slot)
	if err != nil {
		return nil, fmt.Errorf("tpm: %s: %w", step, err)
	}
	if err := s.lock(step); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	k, ok, err := s.readKey(RoleClient, h)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("tpm: %s: %w", step, keys.ErrNoClientKey)
	}
	sg, err := newSigner(s, "committed client key", k)
	if err != nil {
		return nil, err
	}
	return &ClientKey{signer: *sg, state: clientCommitted}, nil
}

// ForgetClientKey implements keys.Store: it evicts the committed client
// keys of both slots (factory reset). Forgetting when there is none is not
// an error.
func (s *Store) ForgetClientKey() error {
	for _, slot := range keys.Slots {
		if err := s.ForgetClientKeyAt(slot); err != nil {
			return err
		}
	}
	return nil
}

// ForgetClientKeyAt implements keys.Slotted: it evicts the key at the
// slot's handle, if any.
func (s *Store) ForgetClientKeyAt(slot keys.Slot) error {
	step := "forget client key of slot " + slot.String()
	h, err := s.slotHandle(slot)
	if err != nil {
		return fmt.Errorf("tpm: %s: %w", step, err)
	}
	if err := s.lock(step); err != nil {
		return err
	}
	defer s.mu.Unlock()
	k, ok, err := s.readAny(step, h)
	if err != nil || !ok {
		return err
	}
	return s.evict(step, k)
}

// PersistentHandles lists the persistent object handles the TPM holds now
// (diagnostics and tests: which client key slots are in use).
func (s *Store) PersistentHandles() ([]tpm2.TPMHandle, error) {
	if err := s.lock("list persistent handles"); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	rsp, err := tpm2.GetCapability{
		Capability:    tpm2.TPMCapHandles,
		Property:      uint32(tpm2.TPMHTPersistent) << 24,
		PropertyCount: 64,
	}.Execute(s.tpm)
	if err != nil {
		return nil, wrap("list persistent handles", err)
	}
	hl, err := rsp.CapabilityData.Data.Handles()
	if err != nil {
		return nil, wrap("list persistent handles", err)
	}
	var out []tpm2.TPMHandle
	for _, h := range hl.Handle {
		if h>>24 == tpm2.TPMHandle(tpm2.TPMHTPersistent) {
			out = append(out, h)
		}
	}
	return out, nil
}

var _ keys.ClientKey = (*ClientKey)(nil)
