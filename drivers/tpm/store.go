package tpm

import (
	"crypto"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"

	"github.com/zmonitor/firmware/internal/fw/keys"
)

// Default persistent handles. 0x81000001 is the TCG-registered SRK handle;
// 0x81010001 is the range the TCG provisioning guidance gives to the
// platform's device identity (IDevID/DevID) keys, and the payload and
// client keys follow it.
const (
	DefaultSRKHandle      tpm2.TPMHandle = 0x81000001
	DefaultIdentityHandle tpm2.TPMHandle = 0x81010001
	DefaultPayloadHandle  tpm2.TPMHandle = 0x81010002
	DefaultClientHandle   tpm2.TPMHandle = 0x81010003
	// DefaultClientHandleB is the second client key slot (keys.SlotB): a
	// renewal makes its new key there while the key at
	// DefaultClientHandle is still in use, and the other way round.
	DefaultClientHandleB tpm2.TPMHandle = 0x81010004
)

// Opts configure a Store. A nil *Opts, and every zero field, mean the
// default; New copies the struct and never writes to it.
type Opts struct {
	// Persistent handles of the keys (Default*Handle): ClientHandle is
	// client key slot A, ClientHandleB slot B.
	SRKHandle, IdentityHandle, PayloadHandle, ClientHandle, ClientHandleB tpm2.TPMHandle
	// AttestationHandle is the attestation key's (DefaultAttestationHandle).
	AttestationHandle tpm2.TPMHandle
	// AuditAnchorIndex is the NV index of the audit log's anchor
	// (DefaultAuditAnchorIndex).
	AuditAnchorIndex tpm2.TPMHandle
	// OwnerAuth is the owner hierarchy's authorization value (empty by
	// default): needed to create the SRK and to make keys persistent.
	OwnerAuth []byte
	// Provision allows New to create the device keys on a TPM that holds no
	// identity key yet (first boot on the manufacturing line). Without it,
	// a missing identity or payload key is ErrKeyMissing. An identity key
	// that is present is never replaced, with or without Provision.
	Provision bool
	// Attempts bounds how often one command is sent while the TPM answers
	// RETRY, YIELDED or TESTING (default 5); Backoff is the first wait
	// (default 20 ms), doubled after each attempt; Sleep waits (default
	// time.Sleep; tests inject their own).
	Attempts int
	Backoff  time.Duration
	Sleep    func(time.Duration)
	// Rand is the randomness used to wrap an imported key to the SRK
	// (default crypto/rand).
	Rand io.Reader
}

// DefaultOpts are the options a nil *Opts stands for.
var DefaultOpts = Opts{
	SRKHandle:         DefaultSRKHandle,
	IdentityHandle:    DefaultIdentityHandle,
	PayloadHandle:     DefaultPayloadHandle,
	ClientHandle:      DefaultClientHandle,
	ClientHandleB:     DefaultClientHandleB,
	AttestationHandle: DefaultAttestationHandle,
	// AuditAnchorIndex is not a key's: see anchor.go.
	AuditAnchorIndex: DefaultAuditAnchorIndex,
	Attempts:         5,
	Backoff:          20 * time.Millisecond,
}

func (o *Opts) withDefaults() Opts {
	var c Opts
	if o != nil {
		c = *o
		c.OwnerAuth = append([]byte(nil), o.OwnerAuth...)
	}
	d := DefaultOpts
	if c.SRKHandle == 0 {
		c.SRKHandle = d.SRKHandle
	}
	if c.IdentityHandle == 0 {
		c.IdentityHandle = d.IdentityHandle
	}
	if c.PayloadHandle == 0 {
		c.PayloadHandle = d.PayloadHandle
	}
	if c.ClientHandle == 0 {
		c.ClientHandle = d.ClientHandle
	}
	if c.ClientHandleB == 0 {
		c.ClientHandleB = d.ClientHandleB
	}
	if c.AttestationHandle == 0 {
		c.AttestationHandle = d.AttestationHandle
	}
	if c.AuditAnchorIndex == 0 {
		c.AuditAnchorIndex = d.AuditAnchorIndex
	}
	if c.Attempts <= 0 {
		c.Attempts = d.Attempts
	}
	if c.Backoff <= 0 {
		c.Backoff = d.Backoff
	}
	if c.Sleep == nil {
		c.Sleep = time.Sleep
	}
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
	return c
}

func (o *Opts) validate() error {
	hs := map[tpm2.TPMHandle]string{}
	for _, h := range []struct {
		name string
		h    tpm2.TPMHandle
	}{{"SRK", o.SRKHandle}, {"identity", o.IdentityHandle}, {"payload", o.PayloadHandle}, {"client", o.ClientHandle}, {"client B", o.ClientHandleB}, {"attestation", o.AttestationHandle}} {
		if h.h>>24 != tpm2.TPMHandle(tpm2.TPMHTPersistent) {
			return fmt.Errorf("tpm: options: %s handle 0x%08x is not a persistent handle", h.name, uint32(h.h))
		}
		if other, dup := hs[h.h]; dup {
			return fmt.Errorf("tpm: options: %s and %s share handle 0x%08x", other, h.name, uint32(h.h))
		}
		hs[h.h] = h.name
	}
	if o.AuditAnchorIndex>>24 != tpm2.TPMHandle(tpm2.TPMHTNVIndex) {
		return fmt.Errorf("tpm: options: audit anchor index 0x%08x is not an NV index", uint32(o.AuditAnchorIndex))
	}
	return nil
}

// Store is the device's key store in its TPM. It implements keys.Store.
// It is safe for concurrent use: TPM commands are serialized.
type Store struct {
	opts   Opts
	closer io.Closer
	tpm    transport.TPM

	mu     sync.Mutex // serializes every TPM command sequence
	closed bool

	srk      persistentKey
	identity *signer
	payload  *exchanger
	anchor   anchorIndex // the audit anchor's NV index, as last seen
}

// persistentKey is a key at a persistent handle, with its name and public
// area as the TPM reported them.
type persistentKey struct {
	handle tpm2.TPMHandle
	name   tpm2.TPM2BName
	public tpm2.TPMTPublic
}

func (k persistentKey) named() tpm2.NamedHandle {
	return tpm2.NamedHandle{Handle: k.handle, Name: k.name}
}

func (k persistentKey) auth() tpm2.AuthHandle {
	return tpm2.AuthHandle{Handle: k.handle, Name: k.name, Auth: tpm2.PasswordAuth(nil)}
}

// New opens the key store on t, starting the TPM up if it needs it, and
// checks (or, with opts.Provision on a TPM without an identity key, creates)
// the SRK, the payload key and the identity key. The Store owns t: Close
// closes it, and so does a failed New.
func New(t transport.TPMCloser, opts *Opts) (*Store, error) {
	o := opts.withDefaults()
	if err := o.validate(); err != nil {
		_ = t.Close()
		return nil, err
	}
	s := &Store{
		opts:   o,
		closer: t,
		tpm:    &retrying{next: t, attempts: o.Attempts, backoff: o.Backoff, sleep: o.Sleep},
	}
	if err := s.open(); err != nil {
		// New owns t: a failed New closes it, so a single-client TPM
		// server (swtpm) is free for the next attempt.
		_ = t.Close()
		return nil, err
	}
	return s, nil
}

func (s *Store) open() error {
	if err := s.startup(); err != nil {
		return err
	}
	if err := s.selfTest(); err != nil {
		return err
	}
	srk, err := s.ensureSRK()
	if err != nil {
		return err
	}
	s.srk = srk
	idKey, idOK, err := s.readKey(RoleIdentity, s.opts.IdentityHandle)
	if err != nil {
		return err
	}
	payKey, payOK, err := s.readKey(RolePayload, s.opts.PayloadHandle)
	if err != nil {
		return err
	}
	switch {
	case idOK && !payOK:
		return fmt.Errorf("tpm: open: %w: payload key at 0x%08x is missing but the identity key is enrolled; the device needs re-manufacturing", ErrKeyMissing, uint32(s.opts.PayloadHandle))
	case !idOK && !s.opts.Provision:
		return fmt.Errorf("tpm: open: %w: no identity key at 0x%08x; the device was never provisioned (first boot needs Opts.Provision)", ErrKeyMissing, uint32(s.opts.IdentityHandle))
	case !idOK:
		// First boot, or a first boot cut short after the payload key was
		// made: no enrollment record can name a payload key without an
		// identity, so a leftover payload key is replaced.
		if payOK {
			if err := s.evict("evict unenrolled payload key", payKey); err != nil {
				return err
			}
		}
		if payKey, err = s.createPersistent(RolePayload, s.opts.PayloadHandle); err != nil {
			return err
		}
		if idKey, err = s.createPersistent(RoleIdentity, s.opts.IdentityHandle); err != nil {
			return err
		}
	}
	if s.identity, err = newSigner(s, "identity key", idKey); err != nil {
		return err
	}
	if s.payload, err = newExchanger(s, payKey); err != nil {
		return err
	}
	return nil
}

// startup sends TPM2_Startup(CLEAR) when the TPM says it needs one (swtpm
// without startup flags); the kernel's resource manager does it otherwise.
func (s *Store) startup() error {
	_, err := tpm2.GetCapability{
		Capability:    tpm2.TPMCapTPMProperties,
		Property:      uint32(tpm2.TPMPTManufacturer),
		PropertyCount: 1,
	}.Execute(s.tpm)
	if err == nil {
		return nil
	}
	if !isRC(err, tpm2.TPMRCInitialize) {
		return wrap("probe", err)
	}
	if _, err := (tpm2.Startup{StartupType: tpm2.TPMSUClear}).Execute(s.tpm); err != nil {
		return wrap("startup", err)
	}
	return nil
}

// selfTestNo is TPM2_SelfTest with fullTest NO: a header without
// sessions (tag, size 11, command code) and the one-byte parameter.
var selfTestNo = []byte{0x80, 0x01, 0, 0, 0, 11, 0, 0, 0x01, 0x43, 0}

// selfTest has the TPM test every algorithm it has not tested yet
// (TPM2_SelfTest, fullTest NO) before a key is used, and fails if the TPM
// is in failure mode. Kernels usually run the same test when they probe
// the TPM; the QEMU board's kernel leaves it to the firmware (docs/tpm.md,
// "Self test"), so that it runs while the first screen is up rather than
// before /init. On a TPM that has tested everything already it returns at
// once. A TPM still testing in the background answers TESTING, which the
// retrying transport waits out.
func (s *Store) selfTest() error {
	rsp, err := s.tpm.Send(selfTestNo)
	if err != nil {
		return wrap("self test", err)
	}
	if len(rsp) < 10 {
		return fmt.Errorf("tpm: self test: response of %d bytes, shorter than a header", len(rsp))
	}
	switch rc := tpm2.TPMRC(binary.BigEndian.Uint32(rsp[6:10])); {
	case rc == tpm2.TPMRCSuccess:
		return nil
	case rc == tpm2.TPMRCFailure:
		return fmt.Errorf("tpm: self test: %w: %w", ErrSelfTest, rc)
	default:
		return wrap("self test", rc)
	}
}

// readKey reads the key at h. ok is false when the handle is empty; a key
// that is there but not of the role's template is ErrKeyMismatch.
func (s *Store) readKey(r Role, h tpm2.TPMHandle) (k persistentKey, ok bool, err error) {
	rsp, err := tpm2.ReadPublic{ObjectHandle: h}.Execute(s.tpm)
	if isRC(err, tpm2.TPMRCHandle) {
		return persistentKey{}, false, nil
	}
	if err != nil {
		return persistentKey{}, false, wrap("read "+r.String(), err)
	}
	pub, err := rsp.OutPublic.Contents()
	if err != nil {
		return persistentKey{}, false, wrap("read "+r.String(), err)
	}
	if !matchesRole(r, *pub) {
		return persistentKey{}, false, fmt.Errorf("tpm: read %s: %w: handle 0x%08x", r, ErrKeyMismatch, uint32(h))
	}
	if _, err := eccPoint(pub); err != nil {
		return persistentKey{}, false, fmt.Errorf("tpm: read %s: %w: %w", r, ErrKeyMismatch, err)
	}
	return persistentKey{handle: h, name: rsp.Name, public: *pub}, true, nil
}

func matchesRole(r Role, pub tpm2.TPMTPublic) bool {
	if r == RoleClient {
		return matches(pub, SigningTemplate()) || matches(pub, ImportedTemplate())
	}
	return matches(pub, templateFor(r))
}

func (s *Store) ownerAuth() tpm2.AuthHandle {
	return tpm2.AuthHandle{Handle: tpm2.TPMRHOwner, Auth: tpm2.PasswordAuth(s.opts.OwnerAuth)}
}

// ensureSRK reads the SRK, creating and persisting it when absent. The SRK
// is derived from the owner seed and its template, so re-creating it gives
// the same key for as long as the TPM is not cleared.
func (s *Store) ensureSRK() (persistentKey, error) {
	k, ok, err := s.readKey(RoleSRK, s.opts.SRKHandle)
	if err != nil || ok {
		return k, err
	}
	rsp, err := tpm2.CreatePrimary{
		PrimaryHandle: s.ownerAuth(),
		InPublic:      tpm2.New2B(SRKTemplate()),
	}.Execute(s.tpm)
	if err != nil {
		return persistentKey{}, wrap("create storage root key", err)
	}
	defer s.flush(rsp.ObjectHandle)
	if err := s.persist("persist storage root key", rsp.ObjectHandle, rsp.Name, s.opts.SRKHandle); err != nil {
		return persistentKey{}, err
	}
	k, ok, err = s.readKey(RoleSRK, s.opts.SRKHandle)
	if err == nil && !ok {
		err = fmt.Errorf("tpm: create storage root key: %w: not at 0x%08x after EvictControl", ErrKeyMissing, uint32(s.opts.SRKHandle))
	}
	return k, err
}

// createPersistent creates a key of role r under the SRK and makes it
// persistent at h. The loaded transient copy is flushed on every path.
func (s *Store) createPersistent(r Role, h tpm2.TPMHandle) (persistentKey, error) {
	step := "create " + r.String()
	handle, name, _, err := s.createLoaded(step, templateFor(r))
	if err != nil {
		return persistentKey{}, err
	}
	defer s.flush(handle)
	if err := s.persist("persist "+r.String(), handle, name, h); err != nil {
		return persistentKey{}, err
	}
	k, ok, err := s.readKey(r, h)
	if err == nil && !ok {
		err = fmt.Errorf("tpm: %s: %w: not at 0x%08x after EvictControl", step, ErrKeyMissing, uint32(h))
	}
	return k, err
}

// createLoaded creates a key from template under the SRK and loads it; the
// caller must flush the returned transient handle.
func (s *Store) createLoaded(step string, template tpm2.TPMTPublic) (tpm2.TPMHandle, tpm2.TPM2BName, tpm2.TPMTPublic, error) {
	cr, err := tpm2.Create{
		ParentHandle: s.srk.auth(),
		InPublic:     tpm2.New2B(template),
	}.Execute(s.tpm)
	if err != nil {
		return 0, tpm2.TPM2BName{}, tpm2.TPMTPublic{}, wrap(step, err)
	}
	pub, err := cr.OutPublic.Contents()
	if err != nil {
		return 0, tpm2.TPM2BName{}, tpm2.TPMTPublic{}, wrap(step, err)
	}
	lr, err := tpm2.Load{
		ParentHandle: s.srk.auth(),
		InPrivate:    cr.OutPrivate,
		InPublic:     cr.OutPublic,
	}.Execute(s.tpm)
	if err != nil {
		return 0, tpm2.TPM2BName{}, tpm2.TPMTPublic{}, wrap(step+": load", err)
	}
	return lr.ObjectHandle, lr.Name, *pub, nil
}

func (s *Store) persist(step string, obj tpm2.TPMHandle, name tpm2.TPM2BName, h tpm2.TPMHandle) error {
	_, err := tpm2.EvictControl{
		Auth:             s.ownerAuth(),
		ObjectHandle:     tpm2.NamedHandle{Handle: obj, Name: name},
		PersistentHandle: h,
	}.Execute(s.tpm)
	return wrap(step, err)
}

func (s *Store) evict(step string, k persistentKey) error {
	_, err := tpm2.EvictControl{
		Auth:             s.ownerAuth(),
		ObjectHandle:     k.named(),
		PersistentHandle: k.handle,
	}.Execute(s.tpm)
	return wrap(step, err)
}

// flush flushes a transient handle. Its error is not returned: it runs on
// paths that already return the error that matters, and a handle the TPM
// no longer has is the state flush aims for.
func (s *Store) flush(h tpm2.TPMHandle) {
	_, _ = tpm2.FlushContext{FlushHandle: h}.Execute(s.tpm)
}

// lock takes the store's lock, failing once the store is closed.
func (s *Store) lock(step string) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return fmt.Errorf("tpm: %s: store %w", step, ErrClosed)
	}
	return nil
}

// Identity implements keys.Store: the DevID key.
func (s *Store) Identity() crypto.Signer { return s.identity }

// PayloadKey implements keys.Store.
func (s *Store) PayloadKey() ecdh.KeyExchanger { return s.payload }

// TransientHandles lists the transient object handles the TPM holds now
// (for diagnostics and tests: outside an uncommitted client key it should
// be empty).
func (s *Store) TransientHandles() ([]tpm2.TPMHandle, error) {
	if err := s.lock("list transient handles"); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	return transientHandles(s.tpm)
}

func transientHandles(t transport.TPM) ([]tpm2.TPMHandle, error) {
	rsp, err := tpm2.GetCapability{
		Capability:    tpm2.TPMCapHandles,
		Property:      uint32(tpm2.TPMHTTransient) << 24,
		PropertyCount: 64,
	}.Execute(t)
	if err != nil {
		return nil, wrap("list transient handles", err)
	}
	hl, err := rsp.CapabilityData.Data.Handles()
	if err != nil {
		return nil, wrap("list transient handles", err)
	}
	var out []tpm2.TPMHandle
	for _, h := range hl.Handle {
		if h>>24 == tpm2.TPMHandle(tpm2.TPMHTTransient) {
			out = append(out, h)
		}
	}
	return out, nil
}

// String implements fmt.Stringer.
func (s *Store) String() string { return "tpm" }

// Halt implements periph's conn.Resource; the TPM has nothing to stop.
func (s *Store) Halt() error { return nil }

// Close closes the TPM transport. Keys obtained from the store fail with
// ErrClosed afterwards; an uncommitted client key should be discarded
// first (its transient handle is otherwise left to the resource manager).
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if err := s.closer.Close(); err != nil {
		return fmt.Errorf("tpm: close: %w", err)
	}
	return nil
}

var _ keys.Store = (*Store)(nil)

// errNotP256 is returned for peer keys on other curves.
var errNotP256 = errors.New("peer key is not on P-256")
