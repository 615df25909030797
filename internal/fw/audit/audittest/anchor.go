package audittest

import (
	"encoding/hex"
	"sync"
)

// Anchor is an in-memory audit.Anchor: the TPM's NV index as a variable.
// The zero value holds no anchor. It is safe for concurrent use.
type Anchor struct {
	mu   sync.Mutex
	seq  uint64
	hash [32]byte
	ok   bool
	// Writes counts successful writes.
	writes int
	// ReadErr and WriteErr, when set, are returned by the calls.
	ReadErr, WriteErr error
	// Gate, when set, makes each write wait until a value arrives on it
	// (a TPM busy with the NV write), before it takes effect.
	Gate chan struct{}
	// Started, when set, receives each write's seq as it starts (before
	// Gate): a test knows which record a write in flight carries.
	Started chan uint64
}

// ReadAuditAnchor implements audit.Anchor.
func (a *Anchor) ReadAuditAnchor() (uint64, [32]byte, bool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ReadErr != nil {
		return 0, [32]byte{}, false, a.ReadErr
	}
	return a.seq, a.hash, a.ok, nil
}

// WriteAuditAnchor implements audit.Anchor.
func (a *Anchor) WriteAuditAnchor(seq uint64, hash [32]byte) error {
	a.mu.Lock()
	gate, started, err := a.Gate, a.Started, a.WriteErr
	a.mu.Unlock()
	if started != nil {
		started <- seq
	}
	if gate != nil {
		<-gate
	}
	if err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.seq, a.hash, a.ok = seq, hash, true
	a.writes++
	return nil
}

// Get returns the anchored record's seq and hash (hex).
func (a *Anchor) Get() (seq uint64, hash string, ok bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.seq, hex.EncodeToString(a.hash[:]), a.ok
}

// Writes returns how many writes succeeded.
func (a *Anchor) Writes() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.writes
}

// Set replaces the anchor (a TPM whose NV someone else wrote).
func (a *Anchor) Set(seq uint64, hash [32]byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.seq, a.hash, a.ok = seq, hash, true
}
