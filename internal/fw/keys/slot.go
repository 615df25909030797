package keys

import (
	"crypto"
	"fmt"
)

// Slot is one of the two places a committed client key can live. A
// provisioned device uses one; a renewal (or a re-pairing) makes its new
// key in the other, and the settings record which one is active (its
// ClientKeyRef), committed in one transaction. A power cut at any moment
// leaves the active slot's key in place: the other slot is either empty or
// a leftover that the boot evicts.
type Slot int

// Slots. SlotA is where every client key lived before renewal existed.
const (
	SlotA Slot = 1
	SlotB Slot = 2
)

// Slots lists both slots.
var Slots = []Slot{SlotA, SlotB}

// String implements fmt.Stringer.
func (s Slot) String() string {
	switch s {
	case SlotA:
		return "A"
	case SlotB:
		return "B"
	}
	return fmt.Sprintf("Slot(%d)", int(s))
}

// Valid reports whether s is SlotA or SlotB.
func (s Slot) Valid() bool { return s == SlotA || s == SlotB }

// Other is the slot a renewal writes to while s is active.
func (s Slot) Other() Slot {
	if s == SlotB {
		return SlotA
	}
	return SlotB
}

// Settings references of the slots. SlotA keeps the reference every
// provisioned device has recorded since the first firmware, so a settings
// file written before renewal reads as SlotA.
const (
	RefSlotA = "keystore:committed-client-key"
	RefSlotB = "keystore:committed-client-key-b"
)

// Ref is the reference the settings record for the key in s.
func (s Slot) Ref() string {
	if s == SlotB {
		return RefSlotB
	}
	return RefSlotA
}

// SlotOfRef is the slot a settings reference names.
func SlotOfRef(ref string) (Slot, error) {
	switch ref {
	case RefSlotA:
		return SlotA, nil
	case RefSlotB:
		return SlotB, nil
	}
	return 0, fmt.Errorf("keys: client key reference %.40q names no key slot", ref)
}

// Slotted is the part of a key store that keeps a committed client key in
// each of two slots.
type Slotted interface {
	// ClientKeyAt returns the key committed in s, or ErrNoClientKey.
	ClientKeyAt(s Slot) (crypto.Signer, error)
	// ForgetClientKeyAt removes the key committed in s; forgetting an
	// empty slot is not an error.
	ForgetClientKeyAt(s Slot) error
}

// SlotCommitter is a client key that can be committed to a given slot.
type SlotCommitter interface {
	// CommitTo makes the key the committed key of slot s, replacing what
	// was there.
	CommitTo(s Slot) error
}
